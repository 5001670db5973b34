/**
 * Replication state of one subcontract at A (pure): the fold of its journal records
 * ({@link ReplRecord}) and the decisions taken from a listing page, a failed attempt or B's
 * receipt — each returned as records for the caller to journal (fsync) and then apply. No I/O,
 * no clock: times come in as arguments.
 *
 * Per object: PENDING (a copy or delete at B is owed; always with a next-attempt time),
 * COMPLETED (B confirmed it persisted and verified A's current version), FAILED (attempts
 * exhausted or not retryable; the coded reason is kept and the next audit queues it again).
 */
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { ReplRecord } from './journal-records.js';
import { MAX_REPL_TEXT } from './messages.js';

/** Per-object replication state. */
export type ReplicaState = 'PENDING' | 'COMPLETED' | 'FAILED';

/** What the state knows of one key. */
export interface ReplicaObject {
  readonly key: string;
  /** What A holds (last listed or written); for a pending delete, what it held. */
  size: number;
  etag: string;
  state: ReplicaState;
  /** `put` copies A's version to B; `delete` removes B's copy. */
  op: 'put' | 'delete';
  /** When the owed operation became owed (the pending age counts from here). */
  pendingSince?: number;
  /** Failed attempts since it became owed. */
  attempts: number;
  /** When the next attempt is due (PENDING only; always set). */
  nextAttemptAt?: number;
  /** The last failure's coded reason. */
  lastError?: { code: string; message: string };
  /** What B confirmed it holds. */
  replica?: { etag: string; size: number; sha256: string; replicaEtag: string; at: number };
  /** Last time a record touched this key (a listing older than this cannot say it is gone). */
  touchedAt: number;
}

/** One object of a listing page, as the state needs it. */
export interface ListedObject {
  readonly key: string;
  readonly sizeBytes: number;
  readonly etag: string;
}

/** An error as a failure record keeps it. */
export interface FailureInfo {
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
}

/** What B answered for one object it was sent. */
export type ObjectReceipt =
  | { readonly key: string; readonly ok: true; readonly size: number; readonly sha256: string; readonly etag: string }
  | { readonly key: string; readonly ok: false; readonly code: string; readonly message: string; readonly retryable: boolean };

/** The honest figures of one subcontract (JSON-able). */
export interface ReplicationStatus {
  readonly subcontractId: string;
  readonly objects: { readonly pending: number; readonly completed: number; readonly failed: number };
  readonly pendingBytes: number;
  /** Age of the oldest owed operation, seconds (0 when nothing is pending). */
  readonly oldestPendingAgeSeconds: number;
  /** Earliest next attempt among pending objects (ISO time), if any. */
  readonly nextAttemptAt?: string;
  /** FAILED objects by reason code. */
  readonly failedByCode: Readonly<Record<string, number>>;
  readonly failures: ReadonlyArray<{ key: string; code: string; message: string; attempts: number }>;
  /** Bytes B confirmed since the journal began. */
  readonly bytesMoved: number;
  readonly objectsMoved: number;
  readonly lastFullPassAt?: string;
  readonly pass: { readonly number: number; readonly inProgress: boolean; readonly after?: string };
}

/** Compares object keys in the order listings use: their UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The fold of one subcontract's journal. */
export class ReplicationState {
  readonly objects = new Map<string, ReplicaObject>();
  subcontractId: string | undefined;
  bytesMoved = 0;
  objectsMoved = 0;
  /** The current or last pass. */
  pass = { number: 0, inProgress: false, after: undefined as string | undefined, startedAt: 0 };
  lastFullPassAt: number | undefined;

  /** Applies one journal record (replay and live alike). */
  apply(r: ReplRecord): void {
    switch (r.t) {
      case 'open':
        this.subcontractId = r.subcontractId;
        return;
      case 'pending': {
        const o = this.objects.get(r.key);
        const wasOwed = o?.state === 'PENDING' && o.op === 'put';
        this.objects.set(r.key, {
          ...(o ?? {}), key: r.key, size: r.size, etag: r.etag, state: 'PENDING', op: 'put',
          pendingSince: wasOwed ? (o.pendingSince ?? r.at) : r.at, attempts: wasOwed ? o.attempts : 0, nextAttemptAt: r.at,
          touchedAt: r.at, ...(o?.replica ? { replica: o.replica } : {}),
        });
        return;
      }
      case 'delete': {
        const o = this.objects.get(r.key);
        if (!o) return;
        Object.assign(o, { state: 'PENDING', op: 'delete', pendingSince: r.at, attempts: 0, nextAttemptAt: r.at, touchedAt: r.at });
        delete o.lastError;
        return;
      }
      case 'retry': {
        const o = this.objects.get(r.key);
        if (!o) return;
        Object.assign(o, { state: 'PENDING', attempts: r.attempts, nextAttemptAt: r.nextAt, lastError: { code: r.code, message: r.message } });
        return;
      }
      case 'failed': {
        const o = this.objects.get(r.key);
        if (!o) return;
        Object.assign(o, { state: 'FAILED', attempts: r.attempts, lastError: { code: r.code, message: r.message }, touchedAt: r.at });
        delete o.nextAttemptAt;
        return;
      }
      case 'completed': {
        const o = this.objects.get(r.key);
        this.bytesMoved += r.size;
        this.objectsMoved += 1;
        const replica = { etag: r.etag, size: r.size, sha256: r.sha256, replicaEtag: r.replicaEtag, at: r.at };
        if (!o) return;
        o.replica = replica;
        // B holds an older version than A's current one (changed while copied): still owed.
        if (o.op === 'put' && o.etag === r.etag) {
          Object.assign(o, { state: 'COMPLETED', attempts: 0, touchedAt: r.at });
          delete o.nextAttemptAt;
          delete o.pendingSince;
          delete o.lastError;
        } else if (o.op === 'put' && o.state !== 'PENDING') {
          // A late copy of another version overwrote B's: the current version is owed again.
          Object.assign(o, { state: 'PENDING', attempts: 0, pendingSince: r.at, nextAttemptAt: r.at, touchedAt: r.at });
        }
        return;
      }
      case 'deleted': {
        const o = this.objects.get(r.key);
        if (o?.op === 'delete' || r.forgotten === true) this.objects.delete(r.key);
        return;
      }
      case 'pass':
        this.pass = { number: r.pass, inProgress: true, after: undefined, startedAt: r.at };
        return;
      case 'page':
        if (r.pass === this.pass.number) this.pass.after = r.after;
        return;
      case 'pass-end':
        if (r.pass === this.pass.number) {
          this.pass.inProgress = false;
          this.lastFullPassAt = r.at;
        }
        return;
      case 'snapshot':
        this.objects.clear();
        this.bytesMoved = r.bytesMoved;
        this.objectsMoved = r.objectsMoved;
        this.pass = { number: r.pass, inProgress: r.passInProgress, after: r.passAfter, startedAt: r.passStartedAt };
        this.lastFullPassAt = r.lastFullPassAt;
        return;
      case 'object': {
        const { lastError, replica, ...o } = r.o;
        this.objects.set(o.key, { ...o, ...(lastError ? { lastError: { ...lastError } } : {}), ...(replica ? { replica: { ...replica } } : {}) });
        return;
      }
      default:
        return;
    }
  }

  /**
   * The records a compacted journal holds instead of those folded so far: `open`, a `snapshot` and
   * one `object` per key. Folded, they give this state again.
   */
  snapshotRecords(): ReplRecord[] {
    if (this.subcontractId === undefined) return [];
    const p = this.pass;
    return [
      { t: 'open', subcontractId: this.subcontractId, at: 0 },
      {
        t: 'snapshot', bytesMoved: this.bytesMoved, objectsMoved: this.objectsMoved, pass: p.number, passInProgress: p.inProgress,
        ...(p.after === undefined ? {} : { passAfter: p.after }), passStartedAt: p.startedAt,
        ...(this.lastFullPassAt === undefined ? {} : { lastFullPassAt: this.lastFullPassAt }),
      },
      ...[...this.objects.values()].map((o): ReplRecord => ({ t: 'object', o: JSON.parse(JSON.stringify(o)) as ReplicaObject })),
    ];
  }

  /**
   * The records one listing page leads to, ending with its checkpoint: new or changed objects
   * (ETag or size differ from what B holds or is owed) become PENDING; known keys in the page's
   * key range that the page lacks are gone from A — deleted at B when `deleteAtB`, otherwise no
   * longer tracked. A key touched at or after `listedAt` (a write through the agent racing the
   * listing) is never taken for gone.
   *
   * @param page the page's objects, in key order
   * @param isLast no page follows: the range runs to the end of the bucket
   */
  planPage(page: readonly ListedObject[], isLast: boolean, opts: { prefix: string; deleteAtB: boolean; listedAt: number; now: number }): ReplRecord[] {
    const out: ReplRecord[] = [];
    const pass = this.pass.number;
    const from = this.pass.after;
    const to = page.length > 0 ? page[page.length - 1]!.key : undefined;
    const listed = new Set<string>();
    for (const l of page) {
      listed.add(l.key);
      const o = this.objects.get(l.key);
      const same = o !== undefined && o.op === 'put' && o.etag === l.etag && o.size === l.sizeBytes;
      if (!same) out.push({ t: 'pending', key: l.key, size: l.sizeBytes, etag: l.etag, at: opts.now });
    }
    for (const o of this.objects.values()) {
      if (listed.has(o.key) || o.op === 'delete' || !o.key.startsWith(opts.prefix)) continue;
      if (from !== undefined && compareKeys(o.key, from) <= 0) continue;
      if (!isLast && (to === undefined || compareKeys(o.key, to) > 0)) continue;
      if (o.touchedAt >= opts.listedAt) continue;
      // Gone from A: delete B's copy when the terms say so; otherwise (or when B never had
      // it) stop tracking it.
      if (opts.deleteAtB && o.replica) out.push({ t: 'delete', key: o.key, at: opts.now });
      else out.push({ t: 'deleted', key: o.key, forgotten: true, at: opts.now });
    }
    if (to !== undefined && !isLast) out.push({ t: 'page', pass, after: to });
    if (isLast) out.push({ t: 'pass-end', pass, at: opts.now });
    return out;
  }

  /** Keys whose next attempt is due at `now`, oldest first, excluding `busy`. */
  due(now: number, busy: ReadonlySet<string>, limit = Infinity): ReplicaObject[] {
    const out: ReplicaObject[] = [];
    for (const o of this.objects.values()) {
      if (o.state === 'PENDING' && (o.nextAttemptAt ?? 0) <= now && !busy.has(o.key)) out.push(o);
    }
    out.sort((a, b) => (a.nextAttemptAt ?? 0) - (b.nextAttemptAt ?? 0));
    return out.slice(0, limit);
  }

  /** The earliest next attempt among pending keys not in `busy`. */
  nextDueAt(busy: ReadonlySet<string>): number | undefined {
    let t: number | undefined;
    for (const o of this.objects.values()) {
      if (o.state !== 'PENDING' || busy.has(o.key) || o.nextAttemptAt === undefined) continue;
      if (t === undefined || o.nextAttemptAt < t) t = o.nextAttemptAt;
    }
    return t;
  }

  /**
   * The record a failed attempt on `key` (A's version `etag`) leads to: a retry with backoff, or
   * FAILED when the error cannot be retried or attempts are exhausted. Nothing when the object
   * moved on meanwhile (a newer version is owed and scheduled already).
   */
  planFailure(key: string, etag: string | undefined, err: FailureInfo, now: number, policy: BackoffPolicy, random: () => number): ReplRecord[] {
    const o = this.objects.get(key);
    if (!o || o.state !== 'PENDING' || (etag !== undefined && o.etag !== etag)) return [];
    const attempts = o.attempts + 1;
    // Journaled for every object a failure names, and a peer's text is part of it: bounded.
    const message = err.message.length > MAX_REPL_TEXT ? `${err.message.slice(0, MAX_REPL_TEXT - 1)}…` : err.message;
    if (!err.retryable || attempts >= policy.maxAttempts) {
      return [{ t: 'failed', key, attempts, code: err.code, message, at: now }];
    }
    return [{ t: 'retry', key, attempts, code: err.code, message, nextAt: now + backoffDelay(policy, attempts, random) }];
  }

  /**
   * The record B's receipt for `key` leads to. COMPLETED only when B says it stored exactly
   * what was sent: same size, same SHA-256, and a non-empty ETag it read back. Anything else is
   * a failure (`REPL_VERIFY_FAILED`, or B's own coded reason).
   */
  planReceipt(sent: { key: string; etag: string; size: number; sha256: string }, receipt: ObjectReceipt | undefined, now: number, policy: BackoffPolicy, random: () => number): ReplRecord[] {
    if (receipt === undefined) {
      return this.planFailure(sent.key, sent.etag, { code: 'REPL_VERIFY_FAILED', message: `peer said nothing about '${sent.key}'`, retryable: true }, now, policy, random);
    }
    if (!receipt.ok) {
      // B's own coded reason (STORE_FULL, REPL_VERIFY_FAILED …) is the object's reason.
      return this.planFailure(sent.key, sent.etag, {
        code: receipt.code, message: `peer could not store '${sent.key}': ${receipt.message}`, retryable: receipt.retryable,
      }, now, policy, random);
    }
    if (receipt.size !== sent.size || receipt.sha256 !== sent.sha256 || receipt.etag.length === 0) {
      return this.planFailure(sent.key, sent.etag, {
        code: 'REPL_VERIFY_FAILED',
        message: `peer holds '${sent.key}' as size '${receipt.size}' sha-256 '${receipt.sha256}', sent size '${sent.size}' sha-256 '${sent.sha256}'`,
        retryable: true,
      }, now, policy, random);
    }
    return [{ t: 'completed', key: sent.key, etag: sent.etag, size: sent.size, sha256: sent.sha256, replicaEtag: receipt.etag, at: now }];
  }

  /** The status figures at `now`. */
  status(now: number): ReplicationStatus {
    let pending = 0;
    let completed = 0;
    let failed = 0;
    let pendingBytes = 0;
    let oldest: number | undefined;
    let next: number | undefined;
    const failedByCode: Record<string, number> = {};
    const failures: Array<{ key: string; code: string; message: string; attempts: number }> = [];
    for (const o of this.objects.values()) {
      if (o.state === 'COMPLETED') completed++;
      else if (o.state === 'FAILED') {
        failed++;
        const code = o.lastError?.code ?? 'UNKNOWN';
        failedByCode[code] = (failedByCode[code] ?? 0) + 1;
        if (failures.length < 100) failures.push({ key: o.key, code, message: o.lastError?.message ?? '', attempts: o.attempts });
      } else {
        pending++;
        if (o.op === 'put') pendingBytes += o.size;
        if (o.pendingSince !== undefined && (oldest === undefined || o.pendingSince < oldest)) oldest = o.pendingSince;
        if (o.nextAttemptAt !== undefined && (next === undefined || o.nextAttemptAt < next)) next = o.nextAttemptAt;
      }
    }
    return {
      subcontractId: this.subcontractId ?? '',
      objects: { pending, completed, failed },
      pendingBytes,
      oldestPendingAgeSeconds: oldest === undefined ? 0 : Math.max(0, (now - oldest) / 1000),
      ...(next === undefined ? {} : { nextAttemptAt: new Date(next).toISOString() }),
      failedByCode,
      failures,
      bytesMoved: this.bytesMoved,
      objectsMoved: this.objectsMoved,
      ...(this.lastFullPassAt === undefined ? {} : { lastFullPassAt: new Date(this.lastFullPassAt).toISOString() }),
      pass: { number: this.pass.number, inProgress: this.pass.inProgress, ...(this.pass.after === undefined ? {} : { after: this.pass.after }) },
    };
  }
}
