/**
 * A's replication engine for one subcontract (I/O): lists A's bucket in passes with a journaled
 * checkpoint, copies what B lacks in batches over a {@link ReplicaPeer}, deletes by the terms,
 * audits and repairs, and offers the write path whose answer waits for the ack mode. Every
 * decision is taken by the pure {@link ReplicationState} and made durable in the journal before
 * it is acted on or announced; a restart replays the journal and resumes the interrupted pass
 * from its last checkpoint.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ObjectInfo, ObjectStore } from '../../adapters/storage/index.js';
import { isIntercloudError } from '../../protocols/errors/index.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { replError } from './errors.js';
import { eventOf, type ReplicationEvent } from './events.js';
import { ReplicationJournal } from './journal-file.js';
import type { ReplRecord } from './journal-records.js';
import type { AuditEntry, BatchObject } from './messages.js';
import type { ReplicaPeer } from './peer.js';
import { asCoded } from './receiver.js';
import { ReplicationState, compareKeys, type ReplicaObject, type ReplicationStatus } from './state.js';
import { newTransferId, parseSubcontract, type Subcontract } from './subcontract.js';
import { throttle } from './throttle.js';
import { TokenBucket } from './token-bucket.js';

/** A journal is compacted once it holds more records than this, and more than the objects it tracks. */
export const COMPACT_MIN_RECORDS = 10_000;

/** How a replicator runs. */
export interface ReplicatorOptions {
  readonly subcontract: Subcontract;
  /** A's object store (the subcontract's source bucket is in it). */
  readonly store: ObjectStore;
  /** B's agent. */
  readonly peer: ReplicaPeer;
  /** The subcontract's journal file. */
  readonly journalPath: string;
  /** Where batches are staged at A before they are sent. */
  readonly stagingDir: string;
  readonly backoff?: BackoffPolicy;
  /** Batches in flight at once (default 4). */
  readonly concurrency?: number;
  /** Most objects per batch (default 256). */
  readonly batchMaxObjects?: number;
  /** Most bytes per batch; an object over half of it travels alone (default 16 MiB). */
  readonly batchMaxBytes?: number;
  /** Listing page size (default 1000). */
  readonly pageSize?: number;
  /** Keys per audit request (default 500). */
  readonly auditChunk?: number;
  /** The journal is compacted past this many records, and past the objects it tracks (default {@link COMPACT_MIN_RECORDS}). */
  readonly compactMinRecords?: number;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** What {@link Replicator.put} resolves with. */
export interface PutResult {
  /** The object as A's store holds it. */
  readonly info: ObjectInfo;
  /** Whether B confirmed it when the promise resolved (false in `async` mode). */
  readonly replicated: boolean;
}

/** What an audit found. */
export interface AuditReport {
  readonly checked: number;
  readonly missing: readonly string[];
  readonly corrupt: readonly string[];
  /** Keys queued again (missing, corrupt, or FAILED before). */
  readonly requeued: number;
}

/** The replication engine of one subcontract at A. */
export class Replicator {
  readonly subcontract: Subcontract;
  readonly #o: ReplicatorOptions;
  readonly #state: ReplicationState;
  readonly #journal: ReplicationJournal;
  /** Records in the journal file since it was last compacted (or opened); compacted past {@link COMPACT_MIN_RECORDS} and the objects tracked. */
  #sinceCompaction = 0;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #policy: BackoffPolicy;
  readonly #bucket: TokenBucket;
  readonly #busy = new Set<string>();
  readonly #listeners = new Set<(e: ReplicationEvent) => void>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #abort = new AbortController();
  #running = 0;
  #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  readonly #intervals: NodeJS.Timeout[] = [];
  #pausedUntil = 0;
  #closed = false;
  #tail: Promise<unknown> = Promise.resolve();
  /** The audit running or last run: the next one starts after it. */
  #auditTail: Promise<unknown> = Promise.resolve();

  private constructor(o: ReplicatorOptions, state: ReplicationState, journal: ReplicationJournal) {
    this.#o = o;
    this.subcontract = o.subcontract;
    this.#state = state;
    this.#journal = journal;
    this.#now = o.now ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#policy = o.backoff ?? DEFAULT_BACKOFF;
    const rate = o.subcontract.bandwidthBytesPerSecond;
    this.#bucket = new TokenBucket(rate, Math.max(64 * 1024, Math.floor(rate / 10)), this.#now());
  }

  /** Opens the subcontract's journal (replaying it) and returns an idle replicator; {@link start} runs it. */
  static async open(o: ReplicatorOptions): Promise<Replicator> {
    const subcontract = parseSubcontract(o.subcontract);
    const { journal, records } = await ReplicationJournal.open(o.journalPath);
    const state = new ReplicationState();
    for (const r of records) state.apply(r);
    if (state.subcontractId !== undefined && state.subcontractId !== subcontract.id) {
      await journal.close();
      throw replError('REPL_JOURNAL', `journal '${o.journalPath}' belongs to subcontract '${state.subcontractId}', not '${subcontract.id}'`);
    }
    // Batches staged before a crash are never resumed (their objects are re-read when due).
    const stale = await fs.readdir(o.stagingDir).catch(() => [] as string[]);
    for (const f of stale) if (f.endsWith('.batch')) await fs.rm(join(o.stagingDir, f), { force: true });
    const r = new Replicator({ ...o, subcontract }, state, journal);
    // What a compaction wrote counts as its starting point, not as records to compact away.
    r.#sinceCompaction = records.filter((x) => x.t !== 'open' && x.t !== 'snapshot' && x.t !== 'object').length;
    if (state.subcontractId === undefined) await r.#commit([{ t: 'open', subcontractId: subcontract.id, at: r.#now() }]);
    else await r.#compactIfLong();
    return r;
  }

  /**
   * Starts copying what is due (and keeps doing so as things become due). With intervals, also
   * runs a listing pass every `passEveryMs` (the first at once) and an audit every `auditEveryMs`,
   * one at a time; a pass or audit that fails is announced (`pass-failed`, `audit-failed`) and
   * tried again at the next tick.
   */
  start(schedule: { passEveryMs?: number; auditEveryMs?: number; deepAudit?: boolean } = {}): void {
    this.#kick();
    const every = (ms: number | undefined, what: 'pass' | 'audit', run: () => Promise<unknown>, atOnce: boolean): void => {
      if (ms === undefined || ms <= 0) return;
      let busy = false;
      const tick = (): void => {
        if (busy || this.#closed) return;
        busy = true;
        run().catch((err: unknown) => {
          if (this.#closed) return;
          const e = asCoded(err);
          this.#emit({ type: `${what}-failed`, subcontractId: this.subcontract.id, code: e.code, message: e.message, at: new Date(this.#now()).toISOString() });
        }).finally(() => {
          busy = false;
        });
      };
      const t = setInterval(tick, ms);
      t.unref();
      this.#intervals.push(t);
      if (atOnce) tick();
    };
    every(schedule.passEveryMs, 'pass', () => this.runPass(this.#abort.signal), true);
    every(schedule.auditEveryMs, 'audit', () => this.audit({ deep: schedule.deepAudit === true, signal: this.#abort.signal }), false);
  }

  /** Stops: in-flight batches are aborted (their objects stay PENDING) and the journal closed. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const t of this.#intervals) clearInterval(t);
    this.#abort.abort(replError('REPL_CLOSED', 'replicator stopped'));
    await Promise.allSettled([...this.#inFlight]);
    await this.#tail.catch(() => undefined);
    await this.#journal.close();
  }

  /** Listens to replication events; returns the unsubscribe function. */
  onEvent(listener: (e: ReplicationEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The subcontract's status (JSON-able), with the batches in flight. */
  status(): ReplicationStatus & { readonly inFlightObjects: number } {
    return { ...this.#state.status(this.#now()), inFlightObjects: this.#busy.size };
  }

  /**
   * The tracked objects (copies), optionally only those in `state`, in key order: what
   * `storage status --json` lists per object (state, attempts, next attempt, coded reason).
   */
  objects(state?: 'PENDING' | 'COMPLETED' | 'FAILED', limit = 1000): Array<Readonly<ReplicaObject>> {
    const out: ReplicaObject[] = [];
    for (const o of this.#state.objects.values()) if (state === undefined || o.state === state) out.push(structuredClone(o));
    return out.sort((x, y) => compareKeys(x.key, y.key)).slice(0, limit);
  }

  /** One object's state (a copy), or undefined. */
  object(key: string): Readonly<ReplicaObject> | undefined {
    const o = this.#state.objects.get(key);
    return o ? structuredClone(o) : undefined;
  }

  /**
   * One full listing pass over A's bucket (prefix), resuming the interrupted one if there is
   * one. Each page's decisions and its checkpoint are journaled together before the next page
   * is read. Resolves when the pass ended.
   */
  async runPass(signal?: AbortSignal): Promise<void> {
    const s = this.subcontract;
    if (!this.#state.pass.inProgress) await this.#commit([{ t: 'pass', pass: this.#state.pass.number + 1, at: this.#now() }]);
    for (;;) {
      const listedAt = this.#now();
      const after = this.#state.pass.after;
      const page = await this.#o.store.listObjects(s.source.bucket, {
        prefix: s.source.prefix, maxKeys: this.#o.pageSize ?? 1000, ...(after === undefined ? {} : { startAfter: after }), ...sig(signal),
      });
      const isLast = page.nextStartAfter === undefined;
      const plan = this.#state.planPage(page.objects, isLast, {
        prefix: s.source.prefix, deleteAtB: s.deletePolicy === 'propagate', listedAt, now: this.#now(),
      });
      await this.#commit(plan);
      this.#kick();
      if (isLast) return;
    }
  }

  /**
   * Writes an object into A's bucket through the agent and answers per the subcontract's ack
   * mode: `async` once A's store has it (the copy is queued and journaled); `sync` and `quorum`
   * (a majority of the two copies A and B, which is both) once B confirmed it persisted and
   * verified this version. A sync write whose copy FAILS rejects with the coded reason.
   */
  async put(key: string, body: Readable | Uint8Array, options: { sizeBytes: number; sha256: string; metadata?: Record<string, string>; signal?: AbortSignal }): Promise<PutResult> {
    const info = await this.write(key, body, options);
    if (this.subcontract.ackMode === 'async') return { info, replicated: false };
    await this.waitReplicated(key, info.etag, options.signal);
    return { info, replicated: true };
  }

  /** Writes into A's store and queues the copy (journaled); resolves with A's object. */
  async write(key: string, body: Readable | Uint8Array, options: { sizeBytes: number; sha256: string; metadata?: Record<string, string>; signal?: AbortSignal }): Promise<ObjectInfo> {
    const s = this.subcontract;
    if (!key.startsWith(s.source.prefix)) throw replError('REPL_CONFIG', `key '${key}' is outside the subcontract's prefix '${s.source.prefix}'`);
    const info = await this.#o.store.putObject(s.source.bucket, key, body, {
      sizeBytes: options.sizeBytes, sha256: options.sha256, ...(options.metadata ? { metadata: options.metadata } : {}), ...sig(options.signal),
    });
    await this.track(key, info);
    return info;
  }

  /** Queues the copy of A's object `info` (written by the caller into A's bucket). */
  async track(key: string, info: { sizeBytes: number; etag: string }): Promise<void> {
    const o = this.#state.objects.get(key);
    if (o && o.op === 'put' && o.etag === info.etag && o.size === info.sizeBytes) return;
    await this.#commit([{ t: 'pending', key, size: info.sizeBytes, etag: info.etag, at: this.#now() }]);
    this.#kick();
  }

  /**
   * Resolves once B confirmed version `etag` of `key`; rejects with the coded reason if it
   * becomes FAILED, with `REPL_SOURCE_CHANGED` if A's object moved on to another version first.
   */
  waitReplicated(key: string, etag: string, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): boolean => {
        const o = this.#state.objects.get(key);
        if (o?.replica?.etag === etag && (o.state === 'COMPLETED' || o.etag !== etag)) {
          resolve();
          return true;
        }
        if (!o || o.etag !== etag) {
          reject(replError('REPL_SOURCE_CHANGED', `'${key}' changed at the source before version '${etag}' reached the peer`));
          return true;
        }
        if (o.state === 'FAILED') {
          reject(replError((o.lastError?.code ?? 'REPL_PEER_REJECTED') as 'REPL_PEER_REJECTED', `replication of '${key}' failed: ${o.lastError?.message ?? ''}`, {
            details: { code: o.lastError?.code, attempts: o.attempts },
          }));
          return true;
        }
        return false;
      };
      if (check()) return;
      const set = this.#waiters.get(key) ?? new Set<() => void>();
      const done = (): void => {
        set.delete(fire);
        if (set.size === 0) this.#waiters.delete(key);
        signal?.removeEventListener('abort', onAbort);
      };
      const fire = (): void => {
        if (check()) done();
      };
      const onAbort = (): void => {
        done();
        reject(replError('REPL_CLOSED', `waiting for '${key}' was cancelled`, { cause: signal?.reason }));
      };
      set.add(fire);
      this.#waiters.set(key, set);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Compares A's listing with what B holds (B HEADs its store; `deep` makes it hash each
   * object) and queues again every replica that is missing, of another size or SHA-256, or
   * whose ETag at B is not the one B confirmed; FAILED objects are queued again too.
   *
   * Audits run one after another: one asked while another runs (an operator's `storage verify`
   * during the scheduled one) starts when it ends. B runs one deep audit of a subcontract at a
   * time and answers a second with `REPL_PEER_BUSY`, and two at once would read B's store twice.
   */
  audit(options: { deep?: boolean; signal?: AbortSignal } = {}): Promise<AuditReport> {
    const run = this.#auditTail.then(() => this.#audit(options));
    this.#auditTail = run.catch(() => undefined);
    return run;
  }

  async #audit(options: { deep?: boolean; signal?: AbortSignal }): Promise<AuditReport> {
    options.signal?.throwIfAborted();
    const s = this.subcontract;
    const missing: string[] = [];
    const corrupt: string[] = [];
    const requeue: ReplRecord[] = [];
    let checked = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.#o.store.listObjects(s.source.bucket, { prefix: s.source.prefix, maxKeys: this.#o.pageSize ?? 1000, ...(after === undefined ? {} : { startAfter: after }), ...sig(options.signal) });
      const held = page.objects.filter((l) => {
        const o = this.#state.objects.get(l.key);
        if (o?.state === 'FAILED') requeue.push({ t: 'pending', key: l.key, size: l.sizeBytes, etag: l.etag, at: this.#now() });
        return o?.state === 'COMPLETED' && o.etag === l.etag && !this.#busy.has(l.key);
      });
      const chunk = this.#o.auditChunk ?? 500;
      for (let i = 0; i < held.length; i += chunk) {
        const part = held.slice(i, i + chunk);
        const answers = new Map<string, AuditEntry>((await this.#o.peer.audit(part.map((l) => l.key), options)).map((e) => [e.key, e]));
        for (const l of part) {
          checked++;
          const o = this.#state.objects.get(l.key);
          const r = o?.replica;
          if (!o || !r || o.state !== 'COMPLETED') continue;
          const e = answers.get(l.key);
          let bad: 'missing' | 'corrupt' | undefined;
          if (!e || !e.present) bad = 'missing';
          else if (e.size !== r.size || e.sha256 !== r.sha256 || e.etag !== r.replicaEtag) bad = 'corrupt';
          if (bad === undefined) continue;
          (bad === 'missing' ? missing : corrupt).push(l.key);
          requeue.push({ t: 'pending', key: l.key, size: l.sizeBytes, etag: l.etag, at: this.#now() });
        }
      }
      if (page.nextStartAfter === undefined) break;
      after = page.nextStartAfter;
    }
    // A pending record makes a COMPLETED key owed again (the fold keeps B's last confirmation).
    await this.#commit(requeue);
    this.#emit({ type: 'audit-completed', subcontractId: s.id, checked, missing: missing.length, corrupt: corrupt.length, requeued: requeue.length, at: new Date(this.#now()).toISOString() });
    this.#kick();
    return { checked, missing, corrupt, requeued: requeue.length };
  }

  /** Resolves when nothing is pending and nothing in flight (tests and benchmarks), or rejects on `signal`. */
  async idle(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const st = this.#state.status(this.#now());
      if (st.objects.pending === 0 && this.#busy.size === 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Rewrites the journal as what it folds to once it holds more records than
   * {@link COMPACT_MIN_RECORDS} and than the objects it tracks: every pass, retry and receipt
   * appends to it, and a subcontract lives for months.
   */
  async #compactIfLong(): Promise<void> {
    if (this.#sinceCompaction <= Math.max(this.#o.compactMinRecords ?? COMPACT_MIN_RECORDS, this.#state.objects.size)) return;
    await this.#journal.compact(this.#state.snapshotRecords());
    // The next one once as many records again as the snapshot holds (at least the minimum): each
    // record appended pays for at most one record rewritten.
    this.#sinceCompaction = 0;
  }

  /** Journals records (one write, one fsync), applies them, then announces them. */
  async #commit(records: readonly ReplRecord[]): Promise<void> {
    if (records.length === 0) return;
    const run = this.#tail.then(async () => {
      await this.#journal.append(records);
      this.#sinceCompaction += records.length;
      for (const r of records) {
        this.#state.apply(r);
        const e = eventOf(this.subcontract.id, r, 'key' in r ? this.#state.objects.get(r.key) : undefined);
        if (e) this.#emit(e);
      }
      for (const r of records) if ('key' in r) for (const w of [...(this.#waiters.get(r.key) ?? [])]) w();
      // The records are durable: a compaction that fails is announced, and tried again at the next commit.
      await this.#compactIfLong().catch((err: unknown) => {
        const e = asCoded(err);
        this.#emit({ type: 'compaction-failed', subcontractId: this.subcontract.id, code: e.code, message: e.message, at: new Date(this.#now()).toISOString() });
      });
    });
    this.#tail = run.catch(() => undefined);
    await run;
  }

  #emit(e: ReplicationEvent): void {
    for (const l of this.#listeners) l(e);
  }

  /** Starts batches for what is due, up to the concurrency; arms a timer for the next due time. */
  #kick(): void {
    if (this.#closed) return;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const max = this.#o.concurrency ?? 4;
    if (this.#now() < this.#pausedUntil) {
      this.#timer = setTimeout(() => this.#kick(), this.#pausedUntil - this.#now());
      this.#timer.unref();
      return;
    }
    while (this.#running < max) {
      const batch = this.#nextBatch();
      if (batch.length === 0) break;
      for (const o of batch) this.#busy.add(o.key);
      this.#running++;
      const p = (batch[0]!.op === 'delete' ? this.#runDeletes(batch) : this.#runCopies(batch))
        .catch((err: unknown) => this.#failAll(batch, err))
        .catch(() => {
          // Not even the failure could be journaled (disk full, journal gone): the objects are
          // still due, so pause instead of spinning on them.
          this.#pausedUntil = this.#now() + 1000;
        })
        .finally(() => {
          for (const o of batch) this.#busy.delete(o.key);
          this.#running--;
          this.#inFlight.delete(p);
          this.#kick();
        });
      this.#inFlight.add(p);
    }
    const next = this.#state.nextDueAt(this.#busy);
    if (next !== undefined && this.#running < max) {
      this.#timer = setTimeout(() => this.#kick(), Math.max(0, next - this.#now()));
      this.#timer.unref();
    }
  }

  /** The next batch of due objects: deletes together, small copies together, a large copy alone. */
  #nextBatch(): Array<{ key: string; etag: string; size: number; op: 'put' | 'delete' }> {
    const due = this.#state.due(this.#now(), this.#busy, 10_000);
    if (due.length === 0) return [];
    const maxObjects = this.#o.batchMaxObjects ?? 256;
    const maxBytes = this.#o.batchMaxBytes ?? 16 * 1024 * 1024;
    const first = due[0]!;
    const pick = (o: ReplicaObject): { key: string; etag: string; size: number; op: 'put' | 'delete' } => ({ key: o.key, etag: o.etag, size: o.size, op: o.op });
    if (first.op === 'delete') return due.filter((o) => o.op === 'delete').slice(0, 1000).map(pick);
    if (first.size > maxBytes / 2) return [pick(first)];
    const out = [];
    let bytes = 0;
    for (const o of due) {
      if (o.op !== 'put' || o.size > maxBytes / 2) continue;
      if (out.length >= maxObjects || bytes + o.size > maxBytes) break;
      out.push(pick(o));
      bytes += o.size;
    }
    return out;
  }

  /** Copies one batch: stage at A (read with If-Match), send, then journal B's receipts. */
  async #runCopies(batch: ReadonlyArray<{ key: string; etag: string; size: number }>): Promise<void> {
    const s = this.subcontract;
    const signal = this.#abort.signal;
    const requestId = randomUUID();
    await fs.mkdir(this.#o.stagingDir, { recursive: true });
    const path = join(this.#o.stagingDir, `${requestId}.batch`);
    const objects: BatchObject[] = [];
    const records: ReplRecord[] = [];
    let offset = 0;
    try {
      const out = await fs.open(path, 'w');
      try {
        for (const b of batch) {
          let read;
          try {
            read = await this.#o.store.getObject(s.source.bucket, b.key, { ifMatch: b.etag, signal });
          } catch (err) {
            records.push(...(await this.#sourceMoved(b, err)));
            continue;
          }
          const hash = createHash('sha256');
          let n = 0;
          for await (const piece of read.body) {
            const buf = piece as Buffer;
            hash.update(buf);
            await out.write(buf, 0, buf.length, offset + n);
            n += buf.length;
          }
          if (n !== read.info.sizeBytes || read.info.etag !== b.etag) {
            records.push({ t: 'pending', key: b.key, size: read.info.sizeBytes, etag: read.info.etag, at: this.#now() });
            continue;
          }
          objects.push({ key: b.key, etag: b.etag, size: n, sha256: hash.digest('hex'), offset });
          offset += n;
        }
      } finally {
        await out.close();
      }
      await this.#commit(records);
      if (objects.length === 0) return;
      const receipts = await this.#o.peer.replicate(
        { requestId, ...(offset > 0 ? { transferId: newTransferId(s.id) } : {}), objects },
        { size: offset, open: (from: number) => throttle(createReadStream(path, { start: from, highWaterMark: 1 << 20 }), this.#bucket, this.#now) },
        signal,
      );
      const byKey = new Map(receipts.map((r) => [r.key, r]));
      const done: ReplRecord[] = [];
      for (const o of objects) done.push(...this.#state.planReceipt(o, byKey.get(o.key), this.#now(), this.#policy, this.#random));
      await this.#commit(done);
    } catch (err) {
      if (objects.length === 0) throw err;
      await this.#failAll(objects.map((o) => ({ key: o.key, etag: o.etag })), err);
    } finally {
      await fs.rm(path, { force: true });
    }
  }

  /** The records for an object that could not be read as listed: changed → queued anew; else a retry. */
  async #sourceMoved(b: { key: string; etag: string }, err: unknown): Promise<ReplRecord[]> {
    const code = isIntercloudError(err) ? err.code : '';
    if (code === 'STORE_PRECONDITION_FAILED' || code === 'STORE_OBJECT_NOT_FOUND') {
      const now = await this.#o.store.headObject(this.subcontract.source.bucket, b.key, sig(this.#abort.signal)).catch(() => undefined);
      if (now && now.etag !== b.etag) return [{ t: 'pending', key: b.key, size: now.sizeBytes, etag: now.etag, at: this.#now() }];
      return this.#state.planFailure(b.key, b.etag, { code: 'REPL_SOURCE_CHANGED', message: `'${b.key}' vanished or changed at the source while being read`, retryable: true }, this.#now(), this.#policy, this.#random);
    }
    const e = asCoded(err);
    return this.#state.planFailure(b.key, b.etag, e, this.#now(), this.#policy, this.#random);
  }

  async #runDeletes(batch: ReadonlyArray<{ key: string; etag: string }>): Promise<void> {
    const gone = new Set(await this.#o.peer.delete(batch.map((b) => b.key), this.#abort.signal));
    const records: ReplRecord[] = [];
    for (const b of batch) {
      if (gone.has(b.key)) records.push({ t: 'deleted', key: b.key, at: this.#now() });
      else records.push(...this.#state.planFailure(b.key, undefined, { code: 'REPL_PEER_REJECTED', message: `peer did not confirm '${b.key}' deleted`, retryable: true }, this.#now(), this.#policy, this.#random));
    }
    await this.#commit(records);
  }

  /** Every object of a batch failed with `err` (transport or peer); each gets its retry or FAILED. */
  async #failAll(batch: ReadonlyArray<{ key: string; etag: string }>, err: unknown): Promise<void> {
    if (this.#closed) return; // stopping: objects stay PENDING with their due time; the next start retries.
    const e = asCoded(err);
    // A transfer that failed can be sent again later, except one the peer refused for its size or
    // as beyond the whole reservation it holds for us.
    const info = { ...e, retryable: e.code !== 'XFER_TOO_LARGE' && e.code !== 'REPL_OVER_RESERVATION' };
    const records: ReplRecord[] = [];
    for (const b of batch) records.push(...this.#state.planFailure(b.key, b.etag, info, this.#now(), this.#policy, this.#random));
    await this.#commit(records);
  }
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}
