/**
 * Events of replication for the local API (pure): each one is derived from a journal record
 * when it is made durable, so an event never announces what a crash could undo.
 */
import type { ReplRecord } from './journal-records.js';

/** One replication event. Times are ISO strings. */
export type ReplicationEvent =
  | { readonly type: 'replica-pending'; readonly subcontractId: string; readonly key: string; readonly size: number; readonly at: string }
  | { readonly type: 'replica-retry'; readonly subcontractId: string; readonly key: string; readonly code: string; readonly attempts: number; readonly nextAttemptAt: string }
  | { readonly type: 'replica-failed'; readonly subcontractId: string; readonly key: string; readonly code: string; readonly message: string; readonly attempts: number }
  | { readonly type: 'replica-completed'; readonly subcontractId: string; readonly key: string; readonly size: number; readonly at: string }
  | { readonly type: 'replica-delete-pending'; readonly subcontractId: string; readonly key: string; readonly at: string }
  | { readonly type: 'replica-deleted'; readonly subcontractId: string; readonly key: string; readonly at: string }
  | { readonly type: 'pass-completed'; readonly subcontractId: string; readonly pass: number; readonly at: string }
  | { readonly type: 'pass-failed' | 'audit-failed'; readonly subcontractId: string; readonly code: string; readonly message: string; readonly at: string }
  | { readonly type: 'audit-completed'; readonly subcontractId: string; readonly checked: number; readonly missing: number; readonly corrupt: number; readonly requeued: number; readonly at: string };

/** The event a durable record announces, if any. */
export function eventOf(subcontractId: string, r: ReplRecord): ReplicationEvent | undefined {
  const iso = (t: number): string => new Date(t).toISOString();
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
