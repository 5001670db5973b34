/**
 * The receiving side of a transfer (I/O): consumes the transfer's data queue with a prefetch
 * window and manual acks, applies chunks to the staging file, journals what is durable, asks
 * for what is missing, verifies the whole SHA-256 and commits by rename. Survives broker
 * restarts (reconnects and re-declares) and its own restarts (replays its journal).
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { isIntercloudError } from '../errors/index.js';
import { assertTopology, brokerError, connectBroker, deleteTopology, isLegacyControlQueue, type BrokerOptions } from './connection.js';
import { xferError, type XferError } from './errors.js';
import { CHUNK_CODECS, decodeChunk } from './chunk-codec.js';
import { decodeFrame, isTransferId, verifyPayload, type Frame } from './frame.js';
import { TransferJournal } from './journal-file.js';
import { CONTROL_VERSION, classifyBody, decodeControl, encodeControl, type ControlMessage } from './messages.js';
import { ROUTING, transferTopology } from './naming.js';
import { ProgressMeter, type ProgressEvent } from './progress.js';
import { ReceiverMachine, type ReceiverAction } from './receiver-machine.js';
import { ackOn, closeQuietly, deferred, publishConfirmed, sleep } from './session-util.js';
import { StagingFile } from './staging-file.js';
import type { ContentIndex } from './content-index.js';

/** Options of {@link receiveTransfer}. */
export interface ReceiveOptions {
  readonly broker: BrokerOptions;
  /** The transfer's id (a lowercase UUID agreed with the sender). */
  readonly transferId: string;
  /** Sending and receiving cloud ids (they name the broker resources). */
  readonly from: string;
  readonly to: string;
  /** Where the file lands on commit; the staging file sits beside it. */
  readonly targetPath: string;
  /** Directory of this side's journals. */
  readonly journalDir: string;
  /** Chunks the target already holds (e.g. base images): sent as references, copied locally. */
  readonly contentIndex?: ContentIndex;
  /**
   * Unacked deliveries at once (default 8): each sits whole in memory, so this times the largest
   * message the broker passes (`MAX_TRANSFER_MESSAGE_BYTES`) bounds what a sender can make this
   * side hold; 8 MiB with the default 1 MiB chunks.
   */
  readonly prefetch?: number;
  /** Bytes written between two staging fsyncs + journal appends (group commit; default 64 MiB). */
  readonly syncBytes?: number;
  /** Longest a written chunk waits for its fsync, ms (default 500). */
  readonly syncIntervalMs?: number;
  /** Durable queues (must match the sender's `persistent`). Default false. */
  readonly durable?: boolean;
  /** Deadline (ms since epoch); default: the manifest's. */
  readonly expiresAt?: number;
  /** Delay between reconnection attempts, ms (default 500). */
  readonly reconnectDelayMs?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Clock (ms); tests may replace it. */
  readonly now?: () => number;
  /**
   * Most bytes the sender may declare (e.g. the offered disk's capacity): a larger manifest is
   * refused with `XFER_TOO_LARGE` before a staging file or bitmap is made, and the sender told.
   */
  readonly maxSize?: number;
}

/** What {@link receiveTransfer} resolves to. */
export interface ReceiveResult {
  readonly transferId: string;
  readonly path: string;
  /** Whole digest (hex, `digest.ts`) of the committed file. */
  readonly digest: string;
  readonly size: number;
  /**
   * Frames by what the receiver did with them (`compressed`: of the `data` frames written, those
   * that arrived compressed; `corrupt`: payloads that failed their SHA-256 or did not decompress).
   */
  readonly frames: { data: number; compressed: number; zero: number; ref: number; duplicate: number; corrupt: number; dropped: number };
  /** Payload bytes received in data frames (including duplicates and corrupted ones). */
  readonly bytesReceived: number;
  /** True when this run continued from an earlier run's journal. */
  readonly resumed: boolean;
}


/**
 * Receives transfer `transferId` into `targetPath`. Resolves when the file is committed (its
 * SHA-256 matched the sender's); rejects with `XFER_…` errors: `XFER_DISK_FULL` (staging
 * removed), `XFER_EXPIRED`, `XFER_ABORTED` (signal or peer), `XFER_DIGEST_MISMATCH`,
 * `XFER_BROKER_AUTH`. A broken connection is retried until the deadline. Idempotent: running
 * it again after a crash resumes from the journal; after a commit it answers `committed` again.
 */
export async function receiveTransfer(o: ReceiveOptions): Promise<ReceiveResult> {
  if (!isTransferId(o.transferId)) throw xferError('XFER_CONFIG', `transfer id '${o.transferId}' is not a lowercase uuid`);
  const topo = transferTopology(o.from, o.to, o.transferId);
  const now = o.now ?? Date.now;
  const prefetch = o.prefetch ?? 8;
  const syncBytes = o.syncBytes ?? 64 * 1024 * 1024;
  const durable = o.durable ?? false;
  const { journal, records } = await TransferJournal.open(TransferJournal.pathFor(o.journalDir, o.transferId, 'receive'));
  const machine = ReceiverMachine.restore(o.transferId, records, o.maxSize === undefined ? {} : { maxSize: o.maxSize });
  const resumed = records.length > 0;
  if (machine.phase === 'aborted') {
    await journal.close();
    throw xferError('XFER_ABORTED', `transfer '${o.transferId}' was aborted earlier`);
  }
  let staging: StagingFile | undefined;
  try {
    // Committed: the journal says so before the rename, which a kill may have come before.
    if (machine.phase === 'committed') await StagingFile.completeCommit(o.targetPath, o.transferId);
    else if (machine.manifest) staging = await StagingFile.open(o.targetPath, o.transferId, machine.manifest.size);
  } catch (err) {
    await journal.close();
    throw err;
  }
  // Held data chunks live in the staging file: one this run had to create holds none of them
  // (removed behind our back). Verifying it would blame the sender with a digest mismatch; this
  // says what broke. (Held holes are what a new staging file holds anyway.)
  const stagingLost = staging?.createdByThisRun === true && machine.heldDataCount > 0
    ? xferError('XFER_IO', `the staging file '${staging.path}' of transfer '${o.transferId}' is gone with the ${machine.heldCount} chunks it held: the transfer cannot be verified`, {
      details: { path: staging.path, held: machine.heldCount },
    })
    : undefined;
  const frames = { data: 0, compressed: 0, zero: 0, ref: 0, duplicate: 0, corrupt: 0, dropped: 0 };
  let bytesReceived = 0;
  let progress: ProgressMeter | undefined;
  const done = deferred<void>();
  let failure: XferError | undefined;
  let channel: ConfirmChannel | undefined;
  // Chunks written but not yet fsync'ed. Their messages are acked already: a crash loses them
  // from the staging file *and* the journal, and the sender's `end` poll has them sent again
  // (the end-to-end argument), so acks need not wait for fsync and prefetch never stalls on it.
  let batch: number[] = [];
  let batchBytes = 0;
  let flushTimer: NodeJS.Timeout | undefined;
  let work: Promise<void> = Promise.resolve();
  let expiryTimer: NodeJS.Timeout | undefined;
  const hashes = o.contentIndex?.hashes() ?? [];

  const report = () => {
    if (!o.onProgress || !machine.manifest) return;
    progress ??= new ProgressMeter(o.transferId, machine.manifest.size, now());
    progress.atLeast(machine.heldBytes);
    o.onProgress(progress.report(now()));
  };

  const armExpiry = () => {
    const at = o.expiresAt ?? machine.manifest?.expiresAt;
    if (at === undefined || expiryTimer) return;
    expiryTimer = setTimeout(() => {
      enqueue(() => fail(xferError('XFER_EXPIRED', `transfer '${o.transferId}' expired at '${new Date(at).toISOString()}'`), 'expired'));
    }, Math.max(0, at - now()));
  };

  /**
   * Publishes a control message; true once the broker confirmed it. A lost message (false) is
   * repeated on the sender's next poll, and the session loop reconnects — except `committed`:
   * once we stop, nobody answers that poll, so it goes persistent into the durable control queue
   * (`assertTopology`) and the transfer ends only when the broker confirmed it.
   */
  const send = async (message: ControlMessage): Promise<boolean> => {
    const ch = channel;
    if (!ch) return false; // not connected: the sender polls with `end` and gets the answer later
    // The codecs we decode go before every `status`, so the sender knows them before it streams.
    const bodies = message.type === 'status'
      ? [encodeControl({ type: 'codecs', v: CONTROL_VERSION, transferId: o.transferId, codecs: [...CHUNK_CODECS] }), encodeControl(message)]
      : [encodeControl(message)];
    const persistent = durable || message.type === 'committed';
    for (const body of bodies) {
      const confirmed = await publishConfirmed(ch, topo.exchange, ROUTING.control, body, persistent).then(() => true, (err: unknown) => {
        if (!isIntercloudError(err, 'XFER_BROKER')) throw err;
        return false;
      });
      if (!confirmed) return false;
    }
    return true;
  };

  const run = async (actions: readonly ReceiverAction[]): Promise<void> => {
    for (const a of actions) {
      switch (a.type) {
        case 'create-staging':
          staging ??= await StagingFile.open(o.targetPath, o.transferId, a.size);
          armExpiry();
          break;
        case 'journal':
          await journal.append(a.record);
          break;
        case 'send':
          // The transfer is over once the sender can learn it is: `committed` confirmed.
          if ((await send(a.message)) && a.message.type === 'committed') done.resolve();
          break;
        case 'commit-staging':
          try {
            await staging!.commit();
          } catch (err) {
            // `committed` is journaled: the transfer must not end as a success nor be aborted. A
            // restarted receiver finishes the rename (StagingFile.completeCommit).
            const e = isIntercloudError(err) ? (err as XferError) : xferError('XFER_IO', String(err), { cause: err });
            done.reject(e);
            throw e;
          }
          staging = undefined;
          break;
        case 'remove-staging':
          if (staging) await staging.remove();
          else await StagingFile.open(o.targetPath, o.transferId, 0).then((s) => s.remove());
          break;
        case 'verify': {
          await flush();
          const digest = await staging!.digest(machine.manifest!.chunkSize, (i) => machine.isHole(i));
          const ok = digest === a.digest;
          await run(machine.onVerified(ok)); // ok: renames, then resolves `done` once `committed` is confirmed
          if (!ok) await fail(xferError('XFER_DIGEST_MISMATCH', `assembled file has digest '${digest}', sender sent '${a.digest}'`), 'failed', false);
          break;
        }
      }
    }
  };

  /** Group commit: fsync the staging file, then journal its chunks as held. */
  const flush = async (): Promise<void> => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (batch.length === 0) return;
    const items = batch;
    batch = [];
    batchBytes = 0;
    await staging?.sync();
    await run(machine.onDurable(items));
    report();
  };

  const fail = async (err: XferError, reason: 'expired' | 'aborted' | 'failed', tellPeer = true): Promise<void> => {
    if (done.settled) return;
    // Committed and renamed (its answer not yet confirmed): the file is whole and in place,
    // whatever comes now — the caller's abort, the sender's `abort`, the expiry — and the transfer
    // has succeeded. Committed but not renamed (the journal's `committed` or the rename failed):
    // it fails, the staging file kept for a restart to verify or rename.
    if (machine.phase === 'committed') {
      if (staging === undefined) done.resolve();
      else done.reject(err);
      return;
    }
    failure = err;
    batch = [];
    try {
      await run(machine.abort(reason, err.code, tellPeer && reason !== 'expired'));
      const ch = channel;
      if (ch) {
        // Expiry: nobody needs the queues any more. Otherwise the sender needs the control queue
        // to read our `abort`, and deletes it and the exchange itself.
        if (reason === 'expired') await deleteTopology(ch, [topo.dataQueue, topo.controlQueue], topo.exchange);
        else await deleteTopology(ch, [topo.dataQueue]);
      }
    } catch (cleanupErr) {
      failure = xferError(err.code, err.message, { cause: cleanupErr, details: { ...err.details, cleanup: String(cleanupErr) } });
    }
    done.reject(failure);
  };

  const enqueue = (job: () => Promise<void>) => {
    work = work.then(job).catch(async (err: unknown) => {
      const e = isIntercloudError(err) ? (err as XferError) : xferError('XFER_IO', `receiver failed: ${String(err)}`, { cause: err });
      if (isIntercloudError(e, 'XFER_BROKER')) return; // the session loop reconnects
      await fail(e, 'failed');
    });
  };

  /** Runs a write for chunk `index`; if it fails the chunk is no longer in progress (asked for again later). */
  const applyOrRelease = async <T>(index: number, write: () => Promise<T>): Promise<T> => {
    try {
      return await write();
    } catch (err) {
      machine.release(index);
      throw err;
    }
  };

  /**
   * `chunk`: a compressed payload's decompression, started when the message arrived (in the thread
   * pool, while earlier messages were written); rejects with `XFER_BAD_FRAME` for a payload
   * that does not decompress to its chunk within the chunk's length, or fails its SHA-256.
   */
  const onFrame = async (frame: Frame, chunk: Promise<Buffer> | undefined, msg: ConsumeMessage, ch: Channel) => {
    let bytes = frame.payload;
    let ok = frame.kind !== 'data';
    if (frame.kind === 'data') {
      bytesReceived += frame.length;
      if (frame.codec === 'raw') ok = verifyPayload(frame);
      else {
        try {
          bytes = await (chunk ?? decodeChunk(frame, machine.manifest?.chunkSize ?? 0));
          ok = true;
        } catch (err) {
          // A bomb, garbage or a wrong hash: asked for again below, like a corrupted raw payload.
          if (!isIntercloudError(err, 'XFER_BAD_FRAME')) throw err;
        }
      }
    }
    const decision = machine.onFrame(frame, ok);
    switch (decision.action) {
      case 'drop':
        if (decision.reason === 'duplicate') frames.duplicate++;
        else frames.dropped++;
        ackOn(ch, msg);
        return;
      case 'need':
        frames.corrupt++;
        ackOn(ch, msg);
        await send(decision.message);
        return;
      case 'hole':
        frames.zero++;
        break;
      case 'write':
        frames.data++;
        if (frame.codec !== 'raw') frames.compressed++;
        await applyOrRelease(frame.index, () => staging!.write(frame.offset, bytes!, frame.sha256));
        break;
      case 'copy-local': {
        const bytes = await applyOrRelease(frame.index, () => o.contentIndex?.read(frame.sha256.toString('hex'), frame.length) ?? Promise.resolve(undefined));
        if (!bytes) {
          ackOn(ch, msg);
          await send(machine.onLocalMiss(frame.index));
          return;
        }
        frames.ref++;
        await applyOrRelease(frame.index, () => staging!.write(frame.offset, bytes, frame.sha256));
        break;
      }
    }
    // Written (or a hole): it becomes held at the next flush, whatever happens to the ack.
    batch.push(frame.index);
    if (frame.kind !== 'zero') batchBytes += frame.length;
    try {
      ackOn(ch, msg);
    } finally {
      if (batchBytes >= syncBytes) await flush();
      else flushTimer ??= setTimeout(() => enqueue(flush), o.syncIntervalMs ?? 500);
    }
  };

  const onControl = async (message: ControlMessage, msg: ConsumeMessage, ch: Channel) => {
    ackOn(ch, msg);
    switch (message.type) {
      case 'manifest':
        await run(machine.onManifest(message.manifest, hashes));
        report();
        return;
      case 'end':
        await flush();
        await run(machine.onEnd(message.manifest, message.digest));
        armExpiry();
        return;
      case 'abort': {
        const code = message.reason === 'expired' ? 'XFER_EXPIRED' : 'XFER_ABORTED';
        await fail(xferError(code, `sender ${message.reason === 'expired' ? 'expired' : 'aborted'} transfer '${o.transferId}'`, {
          details: { peerCode: message.code, peerMessage: message.message },
        }), message.reason, false);
        return;
      }
      default:
        frames.dropped++; // receiver-bound queue: other types do not belong here
    }
  };

  /**
   * Decodes a frame's header as it arrives, and starts decompressing a compressed payload — at
   * most the transfer's chunk size, whatever the header claims (without a manifest yet, in
   * onFrame, where a frame without one is dropped anyway).
   */
  const early = (body: Buffer): { frame: Frame; chunk: Promise<Buffer> | undefined } | { error: unknown } => {
    try {
      const frame = decodeFrame(body);
      const chunkSize = machine.manifest?.chunkSize;
      if (frame.kind !== 'data' || frame.codec === 'raw' || chunkSize === undefined) return { frame, chunk: undefined };
      const chunk = decodeChunk(frame, chunkSize);
      chunk.catch(() => undefined); // observed in onFrame
      return { frame, chunk };
    } catch (error) {
      return { error };
    }
  };

  const onMessage = (msg: ConsumeMessage | null, ch: Channel) => {
    if (msg === null) return; // consumer cancelled (queue deleted): the session ends via close
    const decoded = classifyBody(msg.content) === 'frame' ? early(msg.content) : undefined;
    enqueue(async () => {
      if (done.settled) return;
      if (decoded) {
        if ('error' in decoded) {
          // A damaged header: drop it; the sender's `end` poll makes us ask for the chunk.
          if (!isIntercloudError(decoded.error, 'XFER_BAD_FRAME')) throw decoded.error;
          frames.dropped++;
          ackOn(ch, msg);
          return;
        }
        await onFrame(decoded.frame, decoded.chunk, msg, ch);
      } else {
        let message: ControlMessage;
        try {
          message = decodeControl(msg.content);
        } catch (err) {
          if (!isIntercloudError(err, 'XFER_BAD_FRAME')) throw err;
          frames.dropped++;
          ackOn(ch, msg);
          return;
        }
        await onControl(message, msg, ch);
      }
    });
  };

  // False once the control queue turned out declared non-durable (an earlier agent's).
  let controlDurable = true;
  const session = async (): Promise<void> => {
    let conn: ChannelModel | undefined;
    let ch: ConfirmChannel | undefined;
    const closed = deferred<void>();
    // A delivery refused for its size (the frame reader's XFER_TOO_LARGE) ends the transfer:
    // reconnecting would be handed the same message again.
    let refusal: XferError | undefined;
    try {
      conn = await connectBroker(o.broker);
      conn.on('error', () => undefined); // reported through 'close'
      conn.on('close', (err?: unknown) => {
        if (isIntercloudError(err, 'XFER_TOO_LARGE')) refusal = err as XferError;
        closed.resolve();
      });
      ch = await conn.createConfirmChannel();
      ch.on('error', () => undefined);
      ch.on('close', () => closed.resolve());
      await assertTopology(ch, topo, durable, { controlDurable });
      await ch.prefetch(prefetch);
      channel = ch;
      const c = ch;
      // Tell the (possibly restarted) sender what we hold; answer a finished transfer at once.
      enqueue(async () => {
        if (stagingLost) await fail(stagingLost, 'failed');
        else if (machine.phase === 'committed') await run(machine.onEnd(machine.manifest!, machine.digest!));
        else if (machine.manifest) await send(machine.status(hashes));
      });
      if (machine.phase === 'committed') {
        await work;
        if (!done.settled) throw xferError('XFER_BROKER', 'the broker did not confirm our `committed` answer', { retryable: true });
      } else {
        await c.consume(topo.dataQueue, (m) => onMessage(m, c), { noAck: false });
      }
      await Promise.race([closed.promise, done.promise.catch(() => undefined)]);
      if (refusal) throw refusal;
    } catch (err) {
      if (isLegacyControlQueue(err)) controlDurable = false;
      throw refusal ?? brokerError(err, `receiver(${o.to}): broker session failed`);
    } finally {
      await work;
      channel = undefined;
      await closeQuietly(ch, conn);
    }
  };

  const onAbort = () => enqueue(() => fail(xferError('XFER_ABORTED', `transfer '${o.transferId}' aborted by the caller`), 'aborted'));
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  armExpiry();
  try {
    while (!done.settled) {
      try {
        await session();
      } catch (err) {
        if (!isIntercloudError(err, 'XFER_BROKER') || done.settled) {
          // e.g. XFER_BROKER_AUTH: a configuration problem, not the transfer's. Keep the
          // staging file and journal so that a corrected run resumes.
          if (!done.settled) done.reject(err);
          break;
        }
      }
      if (!done.settled) await sleep(o.reconnectDelayMs ?? 500, o.signal);
    }
    await done.promise;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    if (expiryTimer) clearTimeout(expiryTimer);
    if (flushTimer) clearTimeout(flushTimer);
    await work;
    await staging?.close();
    await journal.close();
  }
  return {
    transferId: o.transferId,
    path: o.targetPath,
    digest: machine.digest!,
    size: machine.manifest!.size,
    frames,
    bytesReceived,
    resumed,
  };
}
