/**
 * The sending side of a transfer (I/O): the loop that reads the source chunk by chunk (never
 * the whole of it in memory), hashes each chunk, feeds events to the sender's state machine
 * (`sender-machine.ts`, pure) and carries out the actions it returns — publishing frames through
 * the publisher (`publisher.ts`, which owns the window of unconfirmed frames and the buffers),
 * control messages, journal records, broker clean-up. Survives broker restarts (reconnects,
 * waits for the receiver's `status`, answers `need`) and its own restarts (journal + receiver
 * status).
 */
import { createHash } from 'node:crypto';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { isIntercloudError } from '../errors/index.js';
import { assertTopology, brokerError, connectBroker, deleteTopology, isLegacyControlQueue, type BrokerOptions } from './connection.js';
import { xferError, type XferError } from './errors.js';
import { zeroChunkSha256 } from './digest.js';
import { CHUNK_CODECS } from './chunk-codec.js';
import { CompressStage, type CompressCounts } from './compress-stage.js';
import { FRAME_HEADER_SIZE, isAllZero, isTransferId, type FrameCodec } from './frame.js';
import { TransferJournal } from './journal-file.js';
import { decodeControl, encodeControl, parseManifest, type ControlMessage, type Manifest } from './messages.js';
import { ROUTING, transferTopology, type TransferTopology } from './naming.js';
import { ProgressMeter, type ProgressEvent } from './progress.js';
import { Publisher, type FrameTap } from './publisher.js';
import { SenderMachine, type SenderAction, type SenderChunkCounts, type SenderFailure, type TransferQueue } from './sender-machine.js';
import { ackOn, closeQuietly, deferred, publishConfirmed, sleep, type Deferred } from './session-util.js';
import { blockSizeFor, readBlocks, type Block } from './read-ahead.js';
import { fileSource, isHole, type TransferSource } from './source.js';

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
  /** Bytes of unconfirmed frames at most (default 8 MiB). */
  readonly windowBytes?: number;
  /** Broker-persistent messages and durable queues (default false: see the README). */
  readonly persistent?: boolean;
  /**
   * Compress `data` frames that pay (default true), with a codec the receiver announced it
   * decodes (`chunk-codec.ts`); a receiver that announces none gets every chunk raw.
   */
  readonly compress?: boolean;
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
  /**
   * Data frames of this run sent compressed (with their chunks' bytes and their payloads' bytes
   * on the wire) and sent raw (the probe or the compressor found they did not pay, or the
   * receiver decodes no codec).
   */
  readonly compression: CompressCounts;
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
  const source = typeof o.source === 'string' ? await fileSource(o.source) : o.source;
  const { journal, records } = await TransferJournal.open(TransferJournal.pathFor(o.journalDir, o.transferId, 'send'));
  try {
    let machine = SenderMachine.restore(records);
    if (machine) machine.checkSource(source.identity);
    else {
      const chunkSize = o.chunkSize ?? DEFAULT_CHUNK;
      const manifest = parseManifest({
        transferId: o.transferId,
        from: o.from,
        to: o.to,
        name: o.name ?? (typeof o.source === 'string' ? o.source.split('/').pop()! : o.transferId),
        size: source.size,
        chunkSize,
        chunkCount: Math.ceil(source.size / chunkSize),
        expiresAt: o.expiresAt,
      });
      machine = new SenderMachine(manifest, { source: source.identity });
      for (const a of machine.begin()) if (a.type === 'journal') await journal.append(a.record);
    }
    if (machine.phase === 'aborted') throw xferError('XFER_ABORTED', `transfer '${o.transferId}' was aborted earlier`);
    if (machine.phase === 'committed') {
      const held = { data: 0, zero: 0, ref: 0, held: machine.manifest.chunkCount, resent: 0 };
      return result(machine.manifest, machine.digest!, held, newCounts(), 0, 0, now() - started, true);
    }
    return await runSender({ o, topo, machine, source, journal, persistent: o.persistent ?? false, now, started, resumed: records.length > 0 });
  } finally {
    await journal.close();
    await source.close();
  }
}

function result(
  manifest: Manifest,
  digest: string,
  chunks: SendResult['chunks'],
  compression: CompressCounts,
  bytesSent: number,
  wireBytes: number,
  elapsedMs: number,
  resumed: boolean,
): SendResult {
  return { transferId: manifest.transferId, digest, size: manifest.size, bytesSent, wireBytes, chunks, compression, elapsedMs, resumed };
}

function newCounts(): CompressCounts {
  return { compressed: 0, compressedChunkBytes: 0, compressedPayloadBytes: 0, raw: 0 };
}

/** What {@link runSender} works with. */
interface SenderRun {
  readonly o: SendOptions;
  readonly topo: TransferTopology;
  readonly machine: SenderMachine;
  readonly source: TransferSource;
  readonly journal: TransferJournal;
  readonly persistent: boolean;
  readonly now: () => number;
  readonly started: number;
  readonly resumed: boolean;
}

/** One chunk as read: its frame buffer (payload after the header) unless it is all zero. */
interface ReadChunk {
  readonly buf: Buffer | undefined;
  readonly length: number;
  readonly zero: boolean;
}

/**
 * Reads chunks of the source into frame buffers. The stream is read in read-ahead blocks
 * (without an allocation map) or chunk by chunk (with one: holes are not read at all); a re-sent
 * chunk is read on its own. Only a chunk that travels gets a frame buffer of its own, so
 * zero-heavy images make no garbage.
 */
class ChunkReader {
  private readonly scratch: Buffer;
  private blocks: AsyncGenerator<Block> | undefined;
  private block: Block | undefined;

  constructor(
    private readonly source: TransferSource,
    private readonly manifest: Manifest,
    private readonly publisher: Publisher,
  ) {
    this.scratch = Buffer.allocUnsafe(FRAME_HEADER_SIZE + manifest.chunkSize);
  }

  /** A new session: the stream's read-ahead starts again at the next chunk it is asked for. */
  restart(): void {
    this.blocks = undefined;
    this.block = undefined;
  }

  /** Reads chunk `index`: the next of the stream (`sequential`), or any one (a re-send). */
  read(index: number, sequential: boolean): Promise<ReadChunk> {
    return sequential && !this.source.extents ? this.fromBlocks(index) : this.single(index);
  }

  private async single(index: number): Promise<ReadChunk> {
    const { chunkSize, size } = this.manifest;
    const offset = index * chunkSize;
    const length = Math.min(chunkSize, size - offset);
    if (this.source.extents && isHole(this.source.extents, offset, length)) return { buf: undefined, length, zero: true };
    // Read into one reused buffer; only a chunk that travels gets its own frame buffer (the
    // window holds those until confirmed).
    const s = this.scratch;
    await this.source.read(offset, length, s, FRAME_HEADER_SIZE);
    if (isAllZero(s.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length))) return { buf: undefined, length, zero: true };
    const buf = this.publisher.frameBuffer(length);
    s.copy(buf, FRAME_HEADER_SIZE, FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length);
    return { buf, length, zero: false };
  }

  private async fromBlocks(index: number): Promise<ReadChunk> {
    const { chunkSize, size } = this.manifest;
    const offset = index * chunkSize;
    const length = Math.min(chunkSize, size - offset);
    this.blocks ??= readBlocks(offset, size, blockSizeFor(chunkSize), (off, len, into) => this.source.read(off, len, into, 0));
    while (!this.block || offset >= this.block.offset + this.block.bytes.length) {
      const r = await this.blocks.next();
      if (r.done) throw xferError('XFER_IO', `source ended before offset '${offset}'`);
      this.block = r.value;
    }
    const piece = this.block.bytes.subarray(offset - this.block.offset, offset - this.block.offset + length);
    if (isAllZero(piece)) return { buf: undefined, length, zero: true };
    const buf = this.publisher.frameBuffer(length);
    piece.copy(buf, FRAME_HEADER_SIZE);
    return { buf, length, zero: false };
  }
}

/** The queue names of `queues` in `topo`. */
function queueNames(topo: TransferTopology, queues: readonly TransferQueue[]): string[] {
  return queues.map((q) => (q === 'data' ? topo.dataQueue : topo.controlQueue));
}

async function runSender(r: SenderRun): Promise<SendResult> {
  const { o, topo, machine, journal, persistent, now } = r;
  const manifest = machine.manifest;
  const publisher = new Publisher({
    chunkSize: manifest.chunkSize,
    windowBytes: o.windowBytes ?? 8 * 1024 * 1024,
    exchange: topo.exchange,
    routingKey: ROUTING.data,
    persistent,
    ...(o.tap ? { tap: o.tap } : {}),
  });
  const reader = new ChunkReader(r.source, manifest, publisher);
  // The codec to compress with: the first of ours that the receiver's `codecs` names.
  let codec: FrameCodec | undefined;
  const compression = newCounts();
  const progress = new ProgressMeter(o.transferId, manifest.size, now());
  let lastReport = 0;
  const report = (force = false) => {
    if (!o.onProgress) return;
    const t = now();
    if (!force && t - lastReport < (o.progressIntervalMs ?? 200)) return;
    lastReport = t;
    o.onProgress(progress.report(t));
  };

  const done = deferred<void>();
  // Every control message (and the end of a connection or of the transfer) is an event; a step
  // that waits for one waits until the count moves past what it had seen.
  let events = 0;
  let wake: Deferred<void> | undefined;
  const notify = () => {
    events++;
    wake?.resolve();
  };
  const waitEvent = async (since: number, ms?: number) => {
    if (events !== since) return;
    wake = deferred<void>();
    await (ms === undefined ? wake.promise : Promise.race([wake.promise, sleep(ms)]));
  };
  /** Actions returned by events that arrived between two steps (run before the next step). */
  const queued: SenderAction[] = [];

  const fail = (f: SenderFailure) => {
    const err = machine.fail(f);
    if (!done.settled) done.reject(err);
    publisher.stop();
    notify();
  };

  /**
   * `committed` deliveries of the current session, acked only once `committed` is journaled: the
   * receiver answers it once and exits, so a sender that dies (or cannot journal) before that
   * finds the answer queued again on its next run.
   */
  let unackedCommitted: Array<{ ch: ConfirmChannel; msg: ConsumeMessage }> = [];
  const ackCommitted = () => {
    for (const { ch, msg } of unackedCommitted.splice(0)) {
      try {
        ackOn(ch, msg);
      } catch (err) {
        // The channel is gone: the broker requeued the message, and the topology is deleted next.
        if (!isIntercloudError(err, 'XFER_BROKER')) throw err;
      }
    }
  };

  const onControl = (msg: ConsumeMessage | null, ch: ConfirmChannel) => {
    if (msg === null) return;
    let m: ControlMessage | undefined;
    try {
      m = decodeControl(msg.content);
    } catch (err) {
      if (!isIntercloudError(err, 'XFER_BAD_FRAME')) throw err; // a bad one is not ours to act on; the poll repeats
    }
    // One `committed` stays unacked until the journal holds it (a restart is handed it again);
    // any other copy is acked at once: each is up to the cap whole in memory, and the target's
    // broker, not us, decides how many it delivers.
    if (m?.type === 'committed' && m.transferId === o.transferId && !unackedCommitted.some((u) => u.ch === ch)) unackedCommitted.push({ ch, msg });
    else {
      try {
        ackOn(ch, msg);
      } catch (err) {
        if (isIntercloudError(err, 'XFER_BROKER')) return; // redelivered after the reconnect
        throw err;
      }
    }
    if (m === undefined || m.transferId !== o.transferId) return;
    switch (m.type) {
      case 'status':
        queued.push(...machine.onStatus(m));
        break;
      case 'need':
        queued.push(...machine.onNeed(m.chunks));
        break;
      case 'committed':
        queued.push(...machine.onCommittedMessage(m));
        break;
      case 'codecs':
        codec = o.compress === false ? undefined : CHUNK_CODECS.find((c) => m.codecs.includes(c));
        break;
      case 'abort':
        fail({ kind: 'peer-abort', message: m });
        break;
      default:
        break;
    }
    notify();
  };

  // False once the control queue turned out declared non-durable (an earlier agent's).
  let controlDurable = true;
  const session = async (): Promise<void> => {
    let conn: ChannelModel | undefined;
    let ch: ConfirmChannel | undefined;
    const closed = deferred<void>();
    // A delivery refused for its size (the frame reader's XFER_TOO_LARGE) ends the transfer: the
    // broker is the target's, and reconnecting would be handed the same message again.
    let refusal: XferError | undefined;
    const closedError = () => refusal ?? xferError('XFER_BROKER', 'broker connection closed', { retryable: true });
    const stage = new CompressStage(publisher, () => codec, compression);
    try {
      conn = await connectBroker(o.broker);
      conn.on('error', () => undefined); // reported through 'close'
      conn.on('close', (err?: unknown) => {
        if (isIntercloudError(err, 'XFER_TOO_LARGE')) refusal = err as XferError;
        closed.resolve();
        if (ch) publisher.detach(ch);
        notify();
      });
      ch = await conn.createConfirmChannel();
      ch.on('error', () => undefined);
      const c = ch;
      await assertTopology(c, topo, persistent, { controlDurable });
      // Control messages are few and small; each unacked one sits whole in memory. The broker
      // that carries them is the receiver's: the frame reader refuses any over our cap unread.
      await c.prefetch(4);
      publisher.attach(c);
      reader.restart();
      unackedCommitted = []; // deliveries of an earlier channel went back to the queue with it
      await c.consume(topo.controlQueue, (m) => onControl(m, c), { noAck: false });

      let steps: SenderAction[] = machine.onConnected();
      for (;;) {
        if (done.settled) return;
        if (closed.settled) throw closedError();
        let seen = events;
        if (steps.length === 0) steps = queued.length > 0 ? queued.splice(0) : machine.next();
        const a = steps.shift()!;
        switch (a.type) {
          case 'journal':
            await journal.append(a.record);
            if (a.record.t === 'committed') ackCommitted();
            break;
          case 'send':
            await publisher.sendControl(a.message);
            break;
          case 'await-status':
            await waitEvent(seen);
            break;
          case 'read': {
            const chunk = await reader.read(a.index, !a.resend);
            const sha = chunk.zero ? zeroChunkSha256(chunk.length) : createHash('sha256').update(chunk.buf!.subarray(FRAME_HEADER_SIZE)).digest();
            if (a.resend) progress.resent(chunk.zero ? 0 : chunk.length);
            for (const p of machine.onRead(a.index, chunk.zero, chunk.zero ? undefined : sha.toString('hex'), a.resend)) {
              if (p.type !== 'publish') continue;
              const frame = p.kind === 'data' ? chunk.buf! : Buffer.allocUnsafe(FRAME_HEADER_SIZE);
              const header = { kind: p.kind, transferId: o.transferId, index: p.index, offset: p.index * manifest.chunkSize, length: chunk.length, sha256: sha };
              // Compressed in the thread pool while the next chunks are read (compress-stage.ts).
              await stage.submit(frame, header, { index: p.index, kind: p.kind, attempt: p.attempt });
            }
            if (!a.resend) {
              // Only now is the chunk part of the stream: a failed publish above retries it whole.
              // (A frame still in the compression stage when its session fails is asked for again
              // by the receiver's `need` after `end`, like one the broker lost.)
              steps.push(...machine.onSent(a.index, sha));
              progress.advance(chunk.length);
              report();
            }
            break;
          }
          case 'poll':
            // Poll with `end` until the receiver commits; its `need`s come back as `read` steps.
            await stage.flush();
            await publisher.drain();
            seen = events;
            await publisher.sendControl(a.message);
            if (closed.settled) throw closedError();
            await waitEvent(seen, o.endRetryMs ?? 2000);
            break;
          case 'delete-topology':
            await deleteTopology(c, queueNames(topo, a.queues), a.exchange ? topo.exchange : undefined);
            break;
          case 'finished':
            report(true);
            done.resolve();
            return;
          case 'fail':
            throw a.error;
          default:
            throw xferError('XFER_CONFIG', `sender cannot run action '${a.type}' in a session`);
        }
      }
    } catch (err) {
      if (isLegacyControlQueue(err)) controlDurable = false;
      throw refusal ?? brokerError(err, `sender(${o.from}): broker session failed`);
    } finally {
      await stage.settle();
      await closeQuietly(ch, conn);
    }
  };

  const onAbort = () => fail({ kind: 'caller-abort' });
  const expiryTimer = setTimeout(() => fail({ kind: 'expired' }), Math.max(0, manifest.expiresAt - now()));
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
          fail({ kind: 'error', error: err as XferError });
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
      for (const a of machine.windDown()) {
        if (a.type === 'abort-cleanup') {
          await abortCleanup(o, topo, persistent, a).catch((cleanupErr: unknown) => {
            throw xferError(e.code, e.message, { cause: cleanupErr, details: { ...e.details, cleanup: String(cleanupErr) } });
          });
        } else if (a.type === 'journal') await journal.append(a.record);
      }
      throw e;
    }
  } finally {
    clearTimeout(expiryTimer);
    o.signal?.removeEventListener('abort', onAbort);
  }
  const chunks: SenderChunkCounts = { ...machine.chunks };
  return result(manifest, machine.digest!, chunks, { ...compression }, publisher.bytesSent, publisher.wireBytes, now() - r.started, r.resumed);
}

/**
 * After a failure, on a connection of its own: declare the topology (so that the peer's queue
 * exists to read our `abort`), tell the receiver, delete what is ours to delete.
 */
async function abortCleanup(o: SendOptions, topo: TransferTopology, persistent: boolean, a: Extract<SenderAction, { type: 'abort-cleanup' }>): Promise<void> {
  let conn: ChannelModel | undefined;
  let ch: ConfirmChannel | undefined;
  try {
    conn = await connectBroker(o.broker);
    ch = await conn.createConfirmChannel();
    if (a.declare) await assertTopology(ch, topo, persistent);
    if (a.tell) await publishConfirmed(ch, topo.exchange, ROUTING.data, encodeControl(a.tell), persistent);
    await deleteTopology(ch, queueNames(topo, a.queues), a.exchange ? topo.exchange : undefined);
  } finally {
    await closeQuietly(ch, conn);
  }
}
