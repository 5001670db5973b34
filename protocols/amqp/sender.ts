/**
 * The sending side of a transfer (I/O): reads the source chunk by chunk (never the whole of it
 * in memory), skips zero chunks and what the receiver already holds or can copy locally,
 * publishes frames with a bounded window of unconfirmed messages (publisher confirms), then
 * polls with `end` until the receiver commits. Survives broker restarts (reconnects, waits for
 * the receiver's `status`, answers `need`) and its own restarts (journal + receiver status).
 */
import { createHash } from 'node:crypto';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { isIntercloudError } from '../errors/index.js';
import { assertTopology, brokerError, connectBroker, deleteTopology, type BrokerOptions } from './connection.js';
import { xferError, XFER_ERRORS, type XferCode, type XferError } from './errors.js';
import { WholeDigest, zeroChunkSha256 } from './digest.js';
import { FRAME_HEADER_SIZE, isAllZero, isTransferId, writeFrameHeader, type FrameKind } from './frame.js';
import { TransferJournal } from './journal-file.js';
import { CONTROL_VERSION, decodeControl, encodeControl, parseManifest, type ControlMessage, type Manifest } from './messages.js';
import { ROUTING, transferTopology } from './naming.js';
import { ProgressMeter, type ProgressEvent } from './progress.js';
import { SenderMachine } from './sender-machine.js';
import { ackOn, closeQuietly, deferred, publishConfirmed, sleep, type Deferred } from './session-util.js';
import { blockSizeFor, readBlocks, type Block } from './read-ahead.js';
import { fileSource, isHole, type TransferSource } from './source.js';

/** What a fault-injection tap is told about a frame about to be published. */
export interface FrameTapInfo {
  readonly index: number;
  readonly kind: FrameKind;
  /** 1 for the first time this index is published in this run, 2 for its first re-send … */
  readonly attempt: number;
}

/**
 * Fault injection for tests: given a frame about to be published, returns the frames to
 * publish instead (none to drop it, two to duplicate it, a modified copy to corrupt it, or
 * frames held back earlier to reorder). Production code passes none.
 */
export type FrameTap = (frame: Buffer, info: FrameTapInfo) => Buffer[];

/** Options of {@link sendTransfer}. */
export interface SendOptions {
  readonly broker: BrokerOptions;
  /** The transfer's id (a lowercase UUID agreed with the receiver). */
  readonly transferId: string;
  readonly from: string;
  readonly to: string;
  /** A file path, or any {@link TransferSource} (stream, object, hypervisor export). */
  readonly source: string | TransferSource;
  /** Name for the manifest (default: the file name or the transfer id). */
  readonly name?: string;
  /** Chunk size in bytes (default 1 MiB; 4 KiB … 64 MiB). */
  readonly chunkSize?: number;
  /** Bytes of unconfirmed frames at most (default 16 MiB). */
  readonly windowBytes?: number;
  /** Broker-persistent messages and durable queues (default false: see the README). */
  readonly persistent?: boolean;
  /** Deadline, ms since epoch. */
  readonly expiresAt: number;
  /** Directory of this side's journals. */
  readonly journalDir: string;
  /** How long to wait for an answer to `end` before repeating it, ms (default 2000). */
  readonly endRetryMs?: number;
  /** Delay between reconnection attempts, ms (default 500). */
  readonly reconnectDelayMs?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Progress events at most this often, ms (default 200). */
  readonly progressIntervalMs?: number;
  /** Fault injection (tests only). */
  readonly tap?: FrameTap;
  readonly now?: () => number;
}

/** What {@link sendTransfer} resolves to. */
export interface SendResult {
  readonly transferId: string;
  /** Whole digest (hex, `digest.ts`) of the source, as the receiver confirmed it. */
  readonly digest: string;
  readonly size: number;
  /** Payload bytes published (data frames, including re-sends). */
  readonly bytesSent: number;
  /** All bytes published (frame headers and control messages too). */
  readonly wireBytes: number;
  /** Chunks by how they travelled in this run (`held`: the receiver had them already). */
  readonly chunks: { data: number; zero: number; ref: number; held: number; resent: number };
  readonly elapsedMs: number;
  /** True when this run continued from an earlier run's journal. */
  readonly resumed: boolean;
}

const DEFAULT_CHUNK = 1024 * 1024;

/**
 * Sends `source` as transfer `transferId`. Resolves once the receiver committed a file whose
 * SHA-256 equals the source's; rejects with `XFER_…` errors (`XFER_EXPIRED`, `XFER_ABORTED`,
 * the receiver's failure code such as `XFER_DISK_FULL`, `XFER_SOURCE_CHANGED`,
 * `XFER_BROKER_AUTH`). Honours `signal` (aborts both sides). Idempotent: running it again with
 * the same id resumes, sending only what the receiver lacks.
 */
export async function sendTransfer(o: SendOptions): Promise<SendResult> {
  if (!isTransferId(o.transferId)) throw xferError('XFER_CONFIG', `transfer id '${o.transferId}' is not a lowercase uuid`);
  const topo = transferTopology(o.from, o.to, o.transferId);
  const now = o.now ?? Date.now;
  const started = now();
  const persistent = o.persistent ?? false;
  const source = typeof o.source === 'string' ? await fileSource(o.source) : o.source;
  const { journal, records } = await TransferJournal.open(TransferJournal.pathFor(o.journalDir, o.transferId, 'send'));
  try {
    const previous = records.find((r) => r.t === 'manifest');
    let manifest: Manifest;
    if (previous?.t === 'manifest') {
      manifest = previous.manifest;
      const was = previous.source;
      if (was && (was.size !== source.identity.size || was.mtimeMs !== source.identity.mtimeMs)) {
        throw xferError('XFER_SOURCE_CHANGED', `source of transfer '${o.transferId}' changed since the earlier attempt`, {
          details: { was, now: source.identity },
        });
      }
    } else {
      const chunkSize = o.chunkSize ?? DEFAULT_CHUNK;
      manifest = parseManifest({
        transferId: o.transferId,
        from: o.from,
        to: o.to,
        name: o.name ?? (typeof o.source === 'string' ? o.source.split('/').pop()! : o.transferId),
        size: source.size,
        chunkSize,
        chunkCount: Math.ceil(source.size / chunkSize),
        expiresAt: o.expiresAt,
      });
      await journal.append({ t: 'manifest', manifest, source: source.identity });
    }
    if (records.some((r) => r.t === 'aborted')) {
      throw xferError('XFER_ABORTED', `transfer '${o.transferId}' was aborted earlier`);
    }
    const committedBefore = records.find((r) => r.t === 'committed');
    if (committedBefore?.t === 'committed') {
      return result(manifest, committedBefore.digest, { data: 0, zero: 0, ref: 0, held: manifest.chunkCount, resent: 0 }, 0, 0, now() - started, true);
    }
    return await runSender(o, topo, manifest, source, journal, persistent, now, started, records.length > 0);
  } finally {
    await journal.close();
    await source.close();
  }
}

function result(
  manifest: Manifest,
  digest: string,
  chunks: SendResult['chunks'],
  bytesSent: number,
  wireBytes: number,
  elapsedMs: number,
  resumed: boolean,
): SendResult {
  return { transferId: manifest.transferId, digest, size: manifest.size, bytesSent, wireBytes, chunks, elapsedMs, resumed };
}

async function runSender(
  o: SendOptions,
  topo: ReturnType<typeof transferTopology>,
  manifest: Manifest,
  source: TransferSource,
  journal: TransferJournal,
  persistent: boolean,
  now: () => number,
  started: number,
  resumed: boolean,
): Promise<SendResult> {
  const machine = new SenderMachine(manifest);
  const windowBytes = Math.max(o.windowBytes ?? 16 * 1024 * 1024, manifest.chunkSize + FRAME_HEADER_SIZE);
  const chunks = { data: 0, zero: 0, ref: 0, held: 0, resent: 0 };
  const attempts = new Map<number, number>();
  let bytesSent = 0;
  let wireBytes = 0;
  const progress = new ProgressMeter(o.transferId, manifest.size, now());
  let lastReport = 0;
  const report = (force = false) => {
    if (!o.onProgress) return;
    const t = now();
    if (!force && t - lastReport < (o.progressIntervalMs ?? 200)) return;
    lastReport = t;
    o.onProgress(progress.report(t));
  };

  // Streaming state survives reconnects: the next chunk to read and the running whole digest.
  const whole = new WholeDigest(manifest.size, manifest.chunkSize);
  let nextIndex = 0;
  let digest: string | undefined;
  const resend: number[] = [];
  let committed: Extract<ControlMessage, { type: 'committed' }> | undefined;
  const done = deferred<void>();
  let wake: Deferred<void> = deferred<void>();
  let statusSeen: Deferred<void> = deferred<void>();
  const notify = () => wake.resolve();

  let kick: () => void = () => undefined;
  const fail = (err: XferError) => {
    if (!done.settled) done.reject(err);
    notify();
    statusSeen.resolve();
    kick();
  };

  const onControl = (msg: ConsumeMessage | null, ch: ConfirmChannel) => {
    if (msg === null) return;
    try {
      ackOn(ch, msg);
    } catch (err) {
      if (isIntercloudError(err, 'XFER_BROKER')) return; // redelivered after the reconnect
      throw err;
    }
    let m: ControlMessage;
    try {
      m = decodeControl(msg.content);
    } catch (err) {
      if (isIntercloudError(err, 'XFER_BAD_FRAME')) return; // not ours to act on; the poll repeats
      throw err;
    }
    if (m.transferId !== o.transferId) return;
    switch (m.type) {
      case 'status':
        machine.onStatus(m);
        statusSeen.resolve();
        break;
      case 'need':
        for (const i of machine.onNeed(m.chunks)) resend.push(i);
        break;
      case 'committed':
        committed = m;
        break;
      case 'abort': {
        const peer = m.code && m.code in XFER_ERRORS ? (m.code as XferCode) : undefined;
        const code: XferCode = m.reason === 'expired' ? 'XFER_EXPIRED' : (peer ?? 'XFER_ABORTED');
        fail(xferError(code, `receiver ${m.reason === 'expired' ? 'expired' : 'aborted'} transfer '${o.transferId}'${m.code ? ` (${m.code})` : ''}`, {
          details: { peerReason: m.reason, peerCode: m.code, peerMessage: m.message },
        }));
        break;
      }
      default:
        break;
    }
    notify();
  };

  const scratch = Buffer.allocUnsafe(FRAME_HEADER_SIZE + manifest.chunkSize);
  // Frame buffers come back once the broker confirmed their message (it has been written to the
  // socket by then), so a transfer cycles through about one window of them instead of leaving
  // the garbage collector a buffer per chunk. Not with a fault-injection tap, which may publish
  // one buffer twice.
  const pool: Buffer[] = [];
  const frameBuffer = (length: number): Buffer =>
    length === manifest.chunkSize && pool.length > 0 ? pool.pop()! : Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
  const recycle = (body: Buffer) => {
    if (!o.tap && body.length === FRAME_HEADER_SIZE + manifest.chunkSize && pool.length < 64) pool.push(body);
  };
  /** Reads chunk `index` into a frame buffer; returns the frame and whether it is all zero. */
  const readChunk = async (index: number): Promise<{ buf: Buffer | undefined; length: number; zero: boolean }> => {
    const offset = index * manifest.chunkSize;
    const length = Math.min(manifest.chunkSize, manifest.size - offset);
    if (source.extents && isHole(source.extents, offset, length)) return { buf: undefined, length, zero: true };
    // Read into one reused buffer; only a chunk that travels gets its own frame buffer (the
    // window holds those until confirmed), so zero-heavy images make no garbage.
    await source.read(offset, length, scratch, FRAME_HEADER_SIZE);
    if (isAllZero(scratch.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length))) return { buf: undefined, length, zero: true };
    const buf = frameBuffer(length);
    scratch.copy(buf, FRAME_HEADER_SIZE, FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length);
    return { buf, length, zero: false };
  };

  const session = async (): Promise<void> => {
    let conn: ChannelModel | undefined;
    let ch: ConfirmChannel | undefined;
    const closed = deferred<void>();
    statusSeen = deferred<void>();
    let inflight = 0;
    let slot: Deferred<void> | undefined;
    let publishError: unknown;
    try {
      conn = await connectBroker(o.broker);
      conn.on('error', () => undefined); // reported through 'close'
      kick = () => slot?.resolve();
      conn.on('close', () => {
        closed.resolve();
        notify();
        slot?.resolve();
        statusSeen.resolve();
      });
      ch = await conn.createConfirmChannel();
      ch.on('error', () => undefined);
      const c = ch;
      await assertTopology(c, topo, persistent);
      await c.prefetch(16);
      await c.consume(topo.controlQueue, (m) => onControl(m, c), { noAck: false });

      const publish = (body: Buffer) => {
        inflight += body.length;
        wireBytes += body.length;
        c.publish(topo.exchange, ROUTING.data, body, { persistent }, (err) => {
          inflight -= body.length;
          if (err) publishError = err;
          else recycle(body);
          slot?.resolve();
        });
      };
      const waitSlot = async () => {
        while (inflight >= windowBytes && !closed.settled && !done.settled) {
          slot = deferred<void>();
          await slot.promise;
        }
        if (publishError) throw brokerError(publishError, 'broker refused a chunk');
        if (closed.settled) throw xferError('XFER_BROKER', 'broker connection closed', { retryable: true });
      };
      const sendControl = (m: ControlMessage) => publishConfirmed(c, topo.exchange, ROUTING.data, encodeControl(m), persistent);

      const sendFrame = async (index: number, kind: FrameKind, buf: Buffer | undefined, sha: Buffer, length: number) => {
        const frame = buf ?? Buffer.allocUnsafe(FRAME_HEADER_SIZE);
        writeFrameHeader(frame, { kind, transferId: o.transferId, index, offset: index * manifest.chunkSize, length, sha256: sha });
        const attempt = (attempts.get(index) ?? 0) + 1;
        attempts.set(index, attempt);
        const out = o.tap ? o.tap(frame, { index, kind, attempt }) : [frame];
        for (const f of out) {
          await waitSlot();
          publish(f);
          if (kind === 'data') bytesSent += length;
        }
      };

      /** Sends chunk `index` as data (or zero): the answer to a `need`. */
      const resendChunk = async (index: number) => {
        const { buf, length, zero } = await readChunk(index);
        const sha = zero ? zeroChunkSha256(length) : createHash('sha256').update(buf!.subarray(FRAME_HEADER_SIZE)).digest();
        chunks.resent++;
        progress.resent(zero ? 0 : length);
        await sendFrame(index, zero ? 'zero' : 'data', zero ? undefined : buf, sha, length);
      };

      // Announce, then wait for the receiver's status: it says what not to send again.
      await sendControl({ type: 'manifest', v: CONTROL_VERSION, transferId: o.transferId, manifest });
      await statusSeen.promise;
      if (done.settled || closed.settled) return;

      // Without an allocation map, scan the source in read-ahead blocks; with one, read only
      // the chunks that hold data.
      const blocks = source.extents
        ? undefined
        : readBlocks(nextIndex * manifest.chunkSize, manifest.size, blockSizeFor(manifest.chunkSize), (off, len, into) => source.read(off, len, into, 0));
      let block: Block | undefined;
      const chunkFromBlocks = async (index: number): Promise<{ buf: Buffer | undefined; length: number; zero: boolean }> => {
        const offset = index * manifest.chunkSize;
        const length = Math.min(manifest.chunkSize, manifest.size - offset);
        while (!block || offset >= block.offset + block.bytes.length) {
          const r = await blocks!.next();
          if (r.done) throw xferError('XFER_IO', `source ended before offset '${offset}'`);
          block = r.value;
        }
        const piece = block.bytes.subarray(offset - block.offset, offset - block.offset + length);
        if (isAllZero(piece)) return { buf: undefined, length, zero: true };
        const buf = frameBuffer(length);
        piece.copy(buf, FRAME_HEADER_SIZE);
        return { buf, length, zero: false };
      };

      while (nextIndex < manifest.chunkCount) {
        if (done.settled) return;
        while (resend.length > 0) await resendChunk(resend.shift()!);
        const index = nextIndex;
        const { buf, length, zero } = blocks ? await chunkFromBlocks(index) : await readChunk(index);
        const sha = zero ? zeroChunkSha256(length) : createHash('sha256').update(buf!.subarray(FRAME_HEADER_SIZE)).digest();
        const plan = machine.plan(index, zero, zero ? undefined : sha.toString('hex'));
        if (!plan.send) chunks.held++;
        else {
          await sendFrame(index, plan.kind, plan.kind === 'data' ? buf : undefined, sha, length);
          chunks[plan.kind]++;
        }
        // Only now is the chunk part of the stream: a failed publish above retries it whole.
        whole.add(index, sha);
        nextIndex++;
        progress.advance(length);
        report();
      }
      if (digest === undefined) {
        digest = whole.hex();
        machine.onStreamed(digest);
        await journal.append({ t: 'end', digest });
      }
      await c.waitForConfirms();

      // Poll with `end` until the receiver commits; answer its `need`s.
      while (!done.settled) {
        if (committed) {
          if (!machine.onCommitted(committed)) {
            throw xferError('XFER_DIGEST_MISMATCH', `receiver committed sha-256 '${committed.digest}', source has '${digest}'`);
          }
          await journal.append({ t: 'committed', digest });
          await deleteTopology(c, [topo.controlQueue, topo.dataQueue], topo.exchange);
          report(true);
          done.resolve();
          return;
        }
        while (resend.length > 0) await resendChunk(resend.shift()!);
        await c.waitForConfirms();
        wake = deferred<void>();
        await sendControl({ type: 'end', v: CONTROL_VERSION, transferId: o.transferId, manifest, digest });
        if (closed.settled) throw xferError('XFER_BROKER', 'broker connection closed', { retryable: true });
        await Promise.race([wake.promise, sleep(o.endRetryMs ?? 2000)]);
        if (closed.settled) throw xferError('XFER_BROKER', 'broker connection closed', { retryable: true });
      }
    } catch (err) {
      throw brokerError(err, `sender(${o.from}): broker session failed`);
    } finally {
      await closeQuietly(ch, conn);
    }
  };

  const abortPeer = async (reason: 'expired' | 'aborted', err: XferError) => {
    let conn: ChannelModel | undefined;
    let ch: ConfirmChannel | undefined;
    try {
      conn = await connectBroker(o.broker);
      ch = await conn.createConfirmChannel();
      await assertTopology(ch, topo, persistent);
      if (reason === 'expired') {
        await deleteTopology(ch, [topo.dataQueue, topo.controlQueue], topo.exchange);
      } else {
        await publishConfirmed(ch, topo.exchange, ROUTING.data, encodeControl({ type: 'abort', v: CONTROL_VERSION, transferId: o.transferId, reason, code: err.code }), persistent);
        await deleteTopology(ch, [topo.controlQueue]);
      }
    } finally {
      await closeQuietly(ch, conn);
    }
  };

  let ending: 'expired' | 'aborted' | undefined;
  const onAbort = () => {
    ending ??= 'aborted';
    fail(xferError('XFER_ABORTED', `transfer '${o.transferId}' aborted by the caller`));
  };
  const expiryTimer = setTimeout(() => {
    ending ??= 'expired';
    fail(xferError('XFER_EXPIRED', `transfer '${o.transferId}' expired at '${new Date(manifest.expiresAt).toISOString()}'`));
  }, Math.max(0, manifest.expiresAt - now()));
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });

  let current: Promise<void> = Promise.resolve();
  try {
    while (!done.settled) {
      try {
        current = session();
        await Promise.race([current, done.promise]);
      } catch (err) {
        if (done.settled) break;
        if (!isIntercloudError(err, 'XFER_BROKER')) {
          fail(err as XferError);
          break;
        }
      }
      if (!done.settled) await sleep(o.reconnectDelayMs ?? 500, o.signal);
    }
    // A session still running after an abort winds down on its own (every wait is kicked).
    await current.catch(() => undefined);
    try {
      await done.promise;
    } catch (err) {
      const e = err as XferError;
      const reason = ending ?? (isIntercloudError(e, 'XFER_EXPIRED') ? 'expired' : undefined);
      if (reason || e.code === 'XFER_ABORTED' || e.details['peerReason'] !== undefined) {
        // Our own abort/expiry tells the receiver; a peer's abort leaves us the rest of the queues.
        const peerAborted = e.details['peerReason'] !== undefined;
        await (peerAborted
          ? cleanupAfterPeerAbort(o, topo, persistent)
          : abortPeer(reason ?? 'aborted', e)
        ).catch((cleanupErr: unknown) => {
          throw xferError(e.code, e.message, { cause: cleanupErr, details: { ...e.details, cleanup: String(cleanupErr) } });
        });
      }
      // Only an end of the transfer itself is journaled; a login or i/o failure can be retried.
      if (reason || e.details['peerReason'] !== undefined || e.code === 'XFER_DIGEST_MISMATCH') {
        await journal.append({ t: 'aborted', reason: reason ?? 'failed', code: e.code });
      }
      throw e;
    }
  } finally {
    clearTimeout(expiryTimer);
    o.signal?.removeEventListener('abort', onAbort);
  }
  return result(manifest, digest!, chunks, bytesSent, wireBytes, now() - started, resumed);
}

async function cleanupAfterPeerAbort(o: SendOptions, topo: ReturnType<typeof transferTopology>, persistent: boolean): Promise<void> {
  let conn: ChannelModel | undefined;
  let ch: ConfirmChannel | undefined;
  try {
    conn = await connectBroker(o.broker);
    ch = await conn.createConfirmChannel();
    void persistent;
    await deleteTopology(ch, [topo.controlQueue, topo.dataQueue], topo.exchange);
  } finally {
    await closeQuietly(ch, conn);
  }
}
