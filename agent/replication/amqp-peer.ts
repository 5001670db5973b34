/**
 * The {@link ReplicaPeer} over AMQP (I/O). Everything of a subcontract lives on B's broker under
 * names the one grant {@link subcontractGrantPattern} covers:
 * - the request channel, transfer id {@link channelTransferId}: A publishes requests
 *   (`replicate`, `delete`, `audit`) to its `data` queue, B answers on its `ctl` queue, matched by
 *   `requestId` (messages.ts);
 * - one reliable transfer (protocols/amqp: chunked, checksummed, resumable) per batch, its id
 *   {@link newTransferId}, carrying the batch's objects end to end.
 * B answers `stored` only after it wrote, verified and read back each object.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import {
  QUEUE_IDLE_EXPIRY_MS, ROUTING, TransferJournal, connectBroker, receiveTransfer, sendTransfer, streamSource, transferTopology,
  type BrokerOptions, type TransferTopology,
} from '../../protocols/amqp/index.js';
import { isIntercloudError } from '../../protocols/errors/index.js';
import { replError } from './errors.js';
import { decodeReplMessage, encodeReplMessage, type AuditEntry, type ReplMessage } from './messages.js';
import type { BatchSource, ReplicaPeer, ReplicateBatch } from './peer.js';
import { asCoded, type ReplicaReceiver } from './receiver.js';
import type { ObjectReceipt } from './state.js';
import { channelTransferId, isSubcontractTransfer, type Subcontract } from './subcontract.js';

/**
 * Bytes B keeps free on the disk it stages batches on, beyond the batches being received (its
 * journals, and the sequencer's, live there too).
 */
export const STAGING_HEADROOM_BYTES = 256 * 1024 * 1024;

/** Bytes declared by the batches this process is staging now, every subcontract's (one disk). */
let stagingDeclared = 0;

/**
 * Throws `REPL_PEER_BUSY` (retryable: room frees as batches end) when a batch of `need` bytes does
 * not fit on the staging disk that has `freeBytes` free, once the batches being staged
 * (`declaredBytes`, not yet all written) and {@link STAGING_HEADROOM_BYTES} are set aside. A peer
 * declares what it sends: without this, one batch as large as its reservation could fill B's disk.
 */
export function checkStagingRoom(need: number, freeBytes: number, declaredBytes: number): void {
  if (need + declaredBytes + STAGING_HEADROOM_BYTES > freeBytes) {
    throw replError('REPL_PEER_BUSY', `a batch of ${need} bytes does not fit on the staging disk: ${freeBytes} bytes free, ${declaredBytes} declared by batches being received, ${STAGING_HEADROOM_BYTES} kept free`, {
      details: { needBytes: need, freeBytes, declaredBytes, headroomBytes: STAGING_HEADROOM_BYTES },
    });
  }
}

/** Queue arguments of the request channel (both sides declare them alike). */
const CHANNEL_ARGS = { 'x-expires': QUEUE_IDLE_EXPIRY_MS, 'x-max-length': 10_000, 'x-overflow': 'reject-publish' } as const;

async function assertChannel(ch: Channel, topo: TransferTopology): Promise<void> {
  await ch.assertExchange(topo.exchange, 'direct', { durable: false, autoDelete: false });
  await ch.assertQueue(topo.dataQueue, { durable: false, autoDelete: false, arguments: CHANNEL_ARGS });
  await ch.assertQueue(topo.controlQueue, { durable: false, autoDelete: false, arguments: CHANNEL_ARGS });
  await ch.bindQueue(topo.dataQueue, topo.exchange, ROUTING.data);
  await ch.bindQueue(topo.controlQueue, topo.exchange, ROUTING.control);
}

/** How A reaches B. */
export interface AmqpPeerOptions {
  /** B's broker, logged in to as A (B granted {@link subcontractGrantPattern}). */
  readonly broker: BrokerOptions;
  readonly subcontract: Subcontract;
  /** Where A's transfer journals go (removed when a transfer ends). */
  readonly journalDir: string;
  /** Longest B may take to answer a request, beyond the time its bytes take (default 60 s). */
  readonly answerTimeoutMs?: number;
  /** Options passed to each transfer (chunk size, window, reconnect pause). */
  readonly transfer?: { chunkSize?: number; windowBytes?: number; reconnectDelayMs?: number; endRetryMs?: number };
}

/** A's side: requests to B over B's broker. */
export class AmqpReplicaPeer implements ReplicaPeer {
  readonly #o: AmqpPeerOptions;
  readonly #topo: TransferTopology;
  readonly #pending = new Map<string, { resolve: (m: ReplMessage) => void; reject: (e: unknown) => void }>();
  #conn: Promise<{ conn: ChannelModel; ch: Channel }> | undefined;

  constructor(o: AmqpPeerOptions) {
    this.#o = o;
    this.#topo = transferTopology(o.subcontract.from, o.subcontract.to, channelTransferId(o.subcontract.id));
  }

  #connect(): Promise<{ conn: ChannelModel; ch: Channel }> {
    this.#conn ??= (async () => {
      const conn = await connectBroker(this.#o.broker);
      const lost = (err?: unknown): void => {
        this.#conn = undefined;
        // B's broker handed us a message over the cap (refused unread by the frame reader): B's
        // doing, said so, not an outage to wait out.
        const oversized = isIntercloudError(err, 'XFER_TOO_LARGE');
        for (const [id, p] of this.#pending) {
          this.#pending.delete(id);
          p.reject(oversized
            ? replError('REPL_BAD_MESSAGE', `the peer's broker delivered a message over the cap: ${(err as Error).message}`, { cause: err })
            : replError('REPL_PEER_UNAVAILABLE', `connection to the peer's broker was lost`, { cause: err }));
        }
      };
      conn.on('close', lost);
      conn.on('error', lost);
      try {
        const ch = await conn.createConfirmChannel();
        ch.on('error', lost);
        await assertChannel(ch, this.#topo);
        // B's answers are taken a few at a time (each acked as it arrives), whatever B's broker sends.
        await ch.prefetch(16);
        await ch.consume(this.#topo.controlQueue, (msg: ConsumeMessage | null) => {
          if (!msg) return;
          ch.ack(msg);
          let m: ReplMessage;
          try {
            m = decodeReplMessage(msg.content);
          } catch {
            return; // a malformed answer is dropped; the request it answers times out and is retried
          }
          const p = this.#pending.get(m.requestId);
          if (!p) return; // an answer to a request of an earlier run
          this.#pending.delete(m.requestId);
          p.resolve(m);
        });
        return { conn, ch };
      } catch (err) {
        await conn.close().catch(() => undefined);
        throw channelSetupError(err);
      }
    })();
    const c = this.#conn;
    c.catch(() => {
      if (this.#conn === c) this.#conn = undefined;
    });
    return c;
  }

  /** Publishes a request and resolves with B's answer (or `REPL_PEER_UNAVAILABLE` after the timeout). */
  async #request(m: ReplMessage, extraMs: number, signal?: AbortSignal): Promise<ReplMessage> {
    const { ch } = await this.#connect();
    const answered = new Promise<ReplMessage>((resolve, reject) => {
      const timeoutMs = (this.#o.answerTimeoutMs ?? 60_000) + extraMs;
      const timer = setTimeout(() => {
        this.#pending.delete(m.requestId);
        reject(replError('REPL_PEER_UNAVAILABLE', `peer did not answer request '${m.requestId}' in ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        clearTimeout(timer);
        this.#pending.delete(m.requestId);
        reject(replError('REPL_CLOSED', `request '${m.requestId}' was cancelled`, { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(m.requestId, {
        resolve: (a) => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); resolve(a); },
        reject: (e) => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); reject(e); },
      });
    });
    try {
      ch.publish(this.#topo.exchange, ROUTING.data, encodeReplMessage(m), { persistent: false, contentType: 'application/json' });
      await (ch as unknown as { waitForConfirms(): Promise<void> }).waitForConfirms();
    } catch (err) {
      this.#pending.get(m.requestId)?.reject(replError('REPL_PEER_UNAVAILABLE', `cannot publish request '${m.requestId}'`, { cause: err }));
    }
    const a = await answered;
    if (a.type === 'error') {
      throw replError('REPL_PEER_REJECTED', `peer refused request '${m.requestId}': ${a.code}: ${a.message}`, { retryable: a.retryable, details: { peerCode: a.code } });
    }
    return a;
  }

  async replicate(batch: ReplicateBatch, source: BatchSource, signal?: AbortSignal): Promise<ObjectReceipt[]> {
    const s = this.#o.subcontract;
    // Time for the bytes at a pessimistic 1 MB/s, on top of the answer timeout.
    const extraMs = Math.ceil(source.size / 1000);
    const answer = this.#request({ type: 'replicate', v: 1, requestId: batch.requestId, subcontractId: s.id, ...(batch.transferId ? { transferId: batch.transferId } : {}), objects: batch.objects }, extraMs, signal);
    answer.catch(() => undefined);
    if (batch.transferId) {
      const t = this.#o.transfer ?? {};
      try {
        await sendTransfer({
          broker: this.#o.broker, transferId: batch.transferId, from: s.from, to: s.to,
          source: streamSource({ size: source.size, open: (offset) => source.open(offset) }),
          expiresAt: Date.now() + (this.#o.answerTimeoutMs ?? 60_000) + extraMs, journalDir: this.#o.journalDir,
          ...(t.chunkSize ? { chunkSize: t.chunkSize } : {}), ...(t.windowBytes ? { windowBytes: t.windowBytes } : {}),
          ...(t.reconnectDelayMs ? { reconnectDelayMs: t.reconnectDelayMs } : {}), ...(t.endRetryMs ? { endRetryMs: t.endRetryMs } : {}),
          ...(signal ? { signal } : {}),
        });
      } finally {
        await fs.rm(TransferJournal.pathFor(this.#o.journalDir, batch.transferId, 'send'), { force: true });
      }
    }
    const a = await answer;
    if (a.type !== 'stored') throw replError('REPL_BAD_MESSAGE', `peer answered '${a.type}' to a replicate request`);
    return [...a.receipts];
  }

  async delete(keys: readonly string[], signal?: AbortSignal): Promise<string[]> {
    const a = await this.#request({ type: 'delete', v: 1, requestId: randomUUID(), subcontractId: this.#o.subcontract.id, keys }, keys.length * 50, signal);
    if (a.type !== 'deleted') throw replError('REPL_BAD_MESSAGE', `peer answered '${a.type}' to a delete request`);
    return [...a.keys];
  }

  async audit(keys: readonly string[], options: { deep?: boolean; signal?: AbortSignal } = {}): Promise<AuditEntry[]> {
    const a = await this.#request({ type: 'audit', v: 1, requestId: randomUUID(), subcontractId: this.#o.subcontract.id, keys, ...(options.deep ? { deep: true } : {}) }, keys.length * (options.deep ? 1000 : 50), options.signal);
    if (a.type !== 'audit-result') throw replError('REPL_BAD_MESSAGE', `peer answered '${a.type}' to an audit request`);
    return [...a.entries];
  }

  async close(): Promise<void> {
    const c = this.#conn;
    this.#conn = undefined;
    if (c) await (await c.catch(() => undefined))?.conn.close().catch(() => undefined);
  }
}

/** How B serves a subcontract. */
export interface ServeOptions {
  /** B's own broker, logged in to as B. */
  readonly broker: BrokerOptions;
  readonly subcontract: Subcontract;
  readonly receiver: ReplicaReceiver;
  /** Staging files and transfer journals of incoming batches. */
  readonly workDir: string;
  /** Requests handled at once (default 4). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly reconnectDelayMs?: number;
}

/** A running server of one subcontract at B. */
export interface ReplicaServer {
  /** Stops consuming and closes the connection. */
  close(): Promise<void>;
}

/**
 * Serves A's requests for one subcontract at B: receives each batch's transfer into staging,
 * stores and verifies its objects through {@link ReplicaReceiver}, and answers with the receipts.
 * When the connection to B's broker is lost (the broker restarted or was killed), the server
 * connects again every `reconnectDelayMs` (default 1 s) until it is closed, and serves on. A
 * request in flight then is answered on the channel it came on if that still works; otherwise its
 * answer is lost with the broker's queues and A, whose request fails with the connection, sends
 * it again. Rejects only when the first connection cannot be made.
 */
export async function serveReplicaPeer(o: ServeOptions): Promise<ReplicaServer> {
  const s = o.subcontract;
  const topo = transferTopology(s.from, s.to, channelTransferId(s.id));
  // Batches half received before a restart are not resumed: A sends them again under new ids.
  await fs.rm(join(o.workDir, 'staging'), { recursive: true, force: true });
  await fs.rm(join(o.workDir, 'journal'), { recursive: true, force: true });
  const abort = new AbortController();
  o.signal?.addEventListener('abort', () => abort.abort(o.signal?.reason), { once: true });
  const handle = async (m: ReplMessage): Promise<ReplMessage | undefined> => {
    if (m.type !== 'replicate' && m.type !== 'delete' && m.type !== 'audit') return undefined;
    if (m.subcontractId !== s.id) return { type: 'error', v: 1, requestId: m.requestId, code: 'REPL_CONFIG', message: `request for subcontract '${m.subcontractId}' on '${s.id}'s channel`, retryable: false };
    try {
      if (m.type === 'delete') return { type: 'deleted', v: 1, requestId: m.requestId, keys: await o.receiver.deleteKeys(m.keys, abort.signal) };
      if (m.type === 'audit') return { type: 'audit-result', v: 1, requestId: m.requestId, entries: await o.receiver.audit(m.keys, { deep: m.deep === true, signal: abort.signal }) };
      // A batch beyond the terms is refused before B stages a byte of it.
      const release = o.receiver.admitBatch(m.objects);
      const total = m.objects.reduce((n, x) => n + x.size, 0);
      // Named here, never after anything the peer sent.
      const path = join(o.workDir, 'staging', `${randomUUID()}.batch`);
      let staged = 0;
      try {
        await fs.mkdir(join(o.workDir, 'staging'), { recursive: true });
        if (total > 0) {
          const disk = await fs.statfs(join(o.workDir, 'staging'));
          checkStagingRoom(total, disk.bavail * disk.bsize, stagingDeclared);
          stagingDeclared += total;
          staged = total;
        }
        if (m.transferId !== undefined) {
          if (!isSubcontractTransfer(s.id, m.transferId)) throw replError('REPL_CONFIG', `transfer '${m.transferId}' is not one of subcontract '${s.id}'`);
          try {
            await receiveTransfer({
              broker: o.broker, transferId: m.transferId, from: s.from, to: s.to, targetPath: path, journalDir: join(o.workDir, 'journal'),
              maxSize: total, expiresAt: Date.now() + 60_000 + Math.ceil(total / 1000), signal: abort.signal,
              ...(o.reconnectDelayMs ? { reconnectDelayMs: o.reconnectDelayMs } : {}),
            });
          } finally {
            await fs.rm(TransferJournal.pathFor(join(o.workDir, 'journal'), m.transferId, 'receive'), { force: true });
          }
        } else {
          if (total !== 0) throw replError('REPL_BAD_MESSAGE', 'a batch with bytes names no transfer');
          await fs.writeFile(path, '');
        }
        return { type: 'stored', v: 1, requestId: m.requestId, receipts: await o.receiver.storeBatch(m.objects, path, abort.signal) };
      } finally {
        stagingDeclared -= staged;
        release();
        await fs.rm(path, { force: true });
      }
    } catch (err) {
      const e = asCoded(err);
      return { type: 'error', v: 1, requestId: m.requestId, code: e.code, message: e.message, retryable: e.retryable };
    }
  };

  let conn: ChannelModel | undefined;
  /** One session: a connection, the request channel's topology, and the consumer of A's requests. */
  const open = async (): Promise<ChannelModel> => {
    const c = await connectBroker(o.broker);
    let lost = false;
    const onLost = (): void => {
      if (lost) return;
      lost = true;
      if (conn === c) conn = undefined;
      if (!abort.signal.aborted) void reconnect();
    };
    c.on('error', onLost);
    c.on('close', onLost);
    try {
      const ch = await c.createChannel();
      ch.on('error', onLost);
      ch.on('close', onLost);
      await assertChannel(ch, topo);
      await ch.prefetch(o.concurrency ?? 4);
      // Acks and answers on a channel that died with its broker are lost with its queues: A asks again.
      const settle = (msg: ConsumeMessage, a?: ReplMessage): void => {
        if (lost) return;
        try {
          if (a && !abort.signal.aborted) ch.publish(topo.exchange, ROUTING.control, encodeReplMessage(a), { persistent: false, contentType: 'application/json' });
          ch.ack(msg);
        } catch (err) {
          onLost();
          void err;
        }
      };
      await ch.consume(topo.dataQueue, (msg) => {
        if (!msg) {
          onLost(); // the broker cancelled the consumer (its queue is gone): start a new session
          return;
        }
        let m: ReplMessage;
        try {
          m = decodeReplMessage(msg.content);
        } catch (err) {
          settle(msg); // malformed: nothing to answer to
          void err;
          return;
        }
        void handle(m).then((a) => settle(msg, a), () => settle(msg));
      });
    } catch (err) {
      lost = true;
      await c.close().catch(() => undefined);
      throw err;
    }
    if (lost) {
      await c.close().catch(() => undefined);
      throw replError('REPL_PEER_UNAVAILABLE', 'the connection to the broker was lost while the request channel was set up');
    }
    conn = c;
    return c;
  };
  let reconnecting = false;
  const reconnect = async (): Promise<void> => {
    if (reconnecting) return;
    reconnecting = true;
    try {
      while (!abort.signal.aborted && conn === undefined) {
        await new Promise((r) => setTimeout(r, o.reconnectDelayMs ?? 1000));
        if (abort.signal.aborted) return;
        try {
          const c = await open();
          if (abort.signal.aborted) await c.close().catch(() => undefined);
        } catch (err) {
          void err; // the broker is still down: try again after the pause
        }
      }
    } finally {
      reconnecting = false;
    }
  };
  try {
    await open();
  } catch (err) {
    abort.abort(err); // no session to keep: stop any reconnect the failure started
    throw err;
  }
  return {
    async close() {
      abort.abort(replError('REPL_CLOSED', 'replica server stopped'));
      const c = conn;
      conn = undefined;
      await c?.close().catch(() => undefined);
    },
  };
}

/**
 * A failure to set up the request channel as a coded error keeping AMQP's reply code
 * (AMQP 0-9-1 §1.9, reply codes): 403 ACCESS_REFUSED — B's broker does not grant this cloud the
 * subcontract's channel (not its subcontract, or a grant not given yet or withdrawn) — is
 * `REPL_PEER_REJECTED`; anything else `REPL_PEER_UNAVAILABLE`. Both can be retried: a grant may come.
 */
function channelSetupError(err: unknown): unknown {
  if (isIntercloudError(err)) return err;
  const replyCode = typeof (err as { code?: unknown } | undefined)?.code === 'number' ? (err as { code: number }).code : undefined;
  const details = replyCode === undefined ? {} : { replyCode };
  return replyCode === 403
    ? replError('REPL_PEER_REJECTED', "the peer's broker refused this cloud the subcontract's request channel (access refused)", { cause: err, details })
    : replError('REPL_PEER_UNAVAILABLE', "cannot set up the subcontract's request channel on the peer's broker", { cause: err, details });
}
