/**
 * The terms replication works from (pure): one {@link Subcontract}, however it was agreed, and
 * the naming of its object transfers. Every transfer of a subcontract has an id that starts with
 * the subcontract's 64-bit transfer prefix, so the receiving cloud grants all of them with one
 * broker permission regex ({@link subcontractGrantPattern}) when it accepts the subcontract,
 * instead of widening the grant for each object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { replError } from './errors.js';

/** When a write through the agent is answered (see the README's "Ack modes"). */
export type AckMode = 'async' | 'sync' | 'quorum';

/** What happens at B to an object deleted at A. */
export type DeletePolicy = 'propagate' | 'retain';

/** The agreed terms replication needs. */
export interface Subcontract {
  /** The subcontract's id (the signed offer's id). */
  readonly id: string;
  /** Cloud A, the one that subcontracts (source). */
  readonly from: string;
  /** Cloud B, the one that stores the replicas. */
  readonly to: string;
  /** A's bucket and the key prefix replicated from it (`''` for the whole bucket). */
  readonly source: { readonly bucket: string; readonly prefix: string };
  /** B's bucket made for A. Keys keep their names there. */
  readonly target: { readonly bucket: string };
  readonly ackMode: AckMode;
  /** Sender bytes per second on the wire for this subcontract (0 = unlimited). */
  readonly bandwidthBytesPerSecond: number;
  readonly deletePolicy: DeletePolicy;
}

const CLOUD = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/);
const schema = z.strictObject({
  id: z.string().min(1).max(200),
  from: CLOUD,
  to: CLOUD,
  source: z.strictObject({ bucket: z.string().min(3).max(63), prefix: z.string().max(512) }),
  target: z.strictObject({ bucket: z.string().min(3).max(63) }),
  ackMode: z.enum(['async', 'sync', 'quorum']),
  bandwidthBytesPerSecond: z.number().int().nonnegative(),
  deletePolicy: z.enum(['propagate', 'retain']),
});

/** Checks a subcontract value (`REPL_CONFIG` when it is not one). */
export function parseSubcontract(value: unknown): Subcontract {
  const r = schema.safeParse(value);
  if (!r.success) throw replError('REPL_CONFIG', `invalid subcontract: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/**
 * The subcontract's transfer prefix: the first three groups (16 hex digits) of every transfer
 * id of its objects, taken from SHA-256 of the id so that any id string fits a uuid.
 */
export function transferPrefix(subcontractId: string): string {
  const h = createHash('sha256').update(`intercloud-replication\0${subcontractId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}`;
}

/** A fresh transfer id of the subcontract (its prefix, then 64 random bits). */
export function newTransferId(subcontractId: string): string {
  const r = randomBytes(8).toString('hex');
  return `${transferPrefix(subcontractId)}-${r.slice(0, 4)}-${r.slice(4)}`;
}

/**
 * The id of the subcontract's request channel: the transfer id whose exchange and queues carry
 * replication requests (A → B on its `data` queue) and answers (B → A on its `ctl` queue).
 */
export function channelTransferId(subcontractId: string): string {
  return `${transferPrefix(subcontractId)}-0000-000000000000`;
}

/** Whether `transferId` belongs to the subcontract. */
export function isSubcontractTransfer(subcontractId: string, transferId: string): boolean {
  return new RegExp(`^${transferPrefix(subcontractId)}-[0-9a-f]{4}-[0-9a-f]{12}$`).test(transferId);
}

/**
 * The RabbitMQ permission regex B's agent sets for peer `from` on its broker for this
 * subcontract: the exchange and queues of every transfer of the subcontract (objects and the
 * request channel) from `from` into `to`, nothing else. Combine several with `|` inside a group
 * when a peer holds several offers.
 */
export function subcontractGrantPattern(from: string, to: string, subcontractId: string): string {
  for (const id of [from, to]) if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id)) throw replError('REPL_CONFIG', `cloud id '${id}' is not valid`);
  const esc = (c: string): string => c.replace(/-/g, '\\-');
  return `^xfer\\.${esc(from)}\\.${esc(to)}\\.${esc(transferPrefix(subcontractId))}\\-[0-9a-f]{4}\\-[0-9a-f]{12}(\\.(data|ctl))?$`;
}
