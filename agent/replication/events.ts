/**
 * Events of replication for the local API (pure): each one is derived from a journal record
 * when it is made durable, so an event never announces what a crash could undo.
 */
import type { ReplRecord } from './journal-records.js';
import type { ReplicaObject } from './state.js';

/** One replication event. Times are ISO strings. */
export type ReplicationEvent =
  | { readonly type: 'replica-pending'; readonly subcontractId: string; readonly key: string; readonly size: number; readonly at: string }
  | { readonly type: 'replica-retry'; readonly subcontractId: string; readonly key: string; readonly code: string; readonly attempts: number; readonly nextAttemptAt: string }
  | { readonly type: 'replica-failed'; readonly subcontractId: string; readonly key: string; readonly code: string; readonly message: string; readonly attempts: number }
  | { readonly type: 'replica-completed'; readonly subcontractId: string; readonly key: string; readonly size: number; readonly at: string }
  | { readonly type: 'replica-delete-pending'; readonly subcontractId: string; readonly key: string; readonly at: string }
  | { readonly type: 'replica-deleted'; readonly subcontractId: string; readonly key: string; readonly at: string }
  | { readonly type: 'pass-completed'; readonly subcontractId: string; readonly pass: number; readonly at: string }
  | { readonly type: 'pass-failed' | 'audit-failed' | 'compaction-failed'; readonly subcontractId: string; readonly code: string; readonly message: string; readonly at: string }
  | { readonly type: 'audit-completed'; readonly subcontractId: string; readonly checked: number; readonly missing: number; readonly corrupt: number; readonly requeued: number; readonly at: string };

/**
 * The event a durable record announces, if any. `after` is the record's object as the state holds
 * it once the record is applied: B's receipt (`completed`) is announced as `replica-completed` only
 * when it completed the version A holds (issue 14, "Honest status"); a receipt for a version a pass
 * found replaced meanwhile leaves the object owed, and is announced as `replica-pending` of the
 * current version (nothing while a delete is owed instead). Without `after`, every record is
 * announced as it reads.
 */
export function eventOf(subcontractId: string, r: ReplRecord, after?: Readonly<ReplicaObject>): ReplicationEvent | undefined {
  const iso = (t: number): string => new Date(t).toISOString();
  if (r.t === 'completed' && after !== undefined && !(after.state === 'COMPLETED' && after.etag === r.etag)) {
    return after.state === 'PENDING' && after.op === 'put' ? { type: 'replica-pending', subcontractId, key: r.key, size: after.size, at: iso(r.at) } : undefined;
  }
  switch (r.t) {
    case 'pending': return { type: 'replica-pending', subcontractId, key: r.key, size: r.size, at: iso(r.at) };
    case 'retry': return { type: 'replica-retry', subcontractId, key: r.key, code: r.code, attempts: r.attempts, nextAttemptAt: iso(r.nextAt) };
    case 'failed': return { type: 'replica-failed', subcontractId, key: r.key, code: r.code, message: r.message, attempts: r.attempts };
    case 'completed': return { type: 'replica-completed', subcontractId, key: r.key, size: r.size, at: iso(r.at) };
    case 'delete': return { type: 'replica-delete-pending', subcontractId, key: r.key, at: iso(r.at) };
    case 'deleted': return r.forgotten ? undefined : { type: 'replica-deleted', subcontractId, key: r.key, at: iso(r.at) };
    case 'pass-end': return { type: 'pass-completed', subcontractId, pass: r.pass, at: iso(r.at) };
    default: return undefined;
  }
}
