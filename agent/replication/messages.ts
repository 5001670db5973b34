/**
 * Replication messages between A's and B's agents (pure): JSON, a discriminated union on `type`,
 * validated strictly. Requests go A → B, answers B → A, matched by `requestId`.
 *
 * - `replicate`: the objects of one batch, packed end to end in the transfer `transferId`
 *   (absent when every object is empty); B answers `stored` with one receipt per object, each
 *   saying what B read back from its store after writing it.
 * - `delete`: keys to remove at B; B answers `deleted` with the keys now absent.
 * - `audit`: keys to describe; B answers `audit-result` with what its store holds (HEAD).
 */
import { z } from 'zod';
import { replError } from './errors.js';
import type { ObjectReceipt } from './state.js';

/** Version of the message set. */
export const REPL_MESSAGE_VERSION = 1;

/** One object inside a batch transfer. */
export interface BatchObject {
  readonly key: string;
  /** A's ETag of the version sent (for B's records; B's own ETag differs for multipart). */
  readonly etag: string;
  readonly size: number;
  readonly sha256: string;
  /** Where its bytes start in the transfer. */
  readonly offset: number;
}

/** What B's store holds for one key, as an audit answers. */
export type AuditEntry =
  | { readonly key: string; readonly present: false }
  | { readonly key: string; readonly present: true; readonly size: number; readonly sha256?: string; readonly etag: string };

/** A replication message. */
export type ReplMessage =
  | { readonly type: 'replicate'; readonly v: 1; readonly requestId: string; readonly subcontractId: string; readonly transferId?: string; readonly objects: readonly BatchObject[] }
  | { readonly type: 'stored'; readonly v: 1; readonly requestId: string; readonly receipts: readonly ObjectReceipt[] }
  | { readonly type: 'delete'; readonly v: 1; readonly requestId: string; readonly subcontractId: string; readonly keys: readonly string[] }
  | { readonly type: 'deleted'; readonly v: 1; readonly requestId: string; readonly keys: readonly string[] }
  | { readonly type: 'audit'; readonly v: 1; readonly requestId: string; readonly subcontractId: string; readonly keys: readonly string[]; readonly deep?: boolean }
  | { readonly type: 'audit-result'; readonly v: 1; readonly requestId: string; readonly entries: readonly AuditEntry[] }
  | { readonly type: 'error'; readonly v: 1; readonly requestId: string; readonly code: string; readonly message: string; readonly retryable: boolean };

const KEY = z.string().min(1).max(1024);
/**
 * Most characters of an error's text, and of a code (an error's text is journaled for each object
 * it refused: a peer's answer must not be able to fill the other side's disk through it).
 */
export const MAX_REPL_TEXT = 1024;
const CODE = z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/);
const TEXT = z.string().max(MAX_REPL_TEXT);
/** An ETag as S3 stores give it (quoted MD5, `-N` for multipart): bounded for the same reason. */
const ETAG = z.string().min(1).max(200);
const N = z.number().int().nonnegative();
const HEX64 = z.string().regex(/^[0-9a-f]{64}$/);
const ID = z.string().min(1).max(200);
/** A lowercase UUID (what `randomUUID` gives): request and transfer ids never name anything but themselves. */
const UUID = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
const V = z.literal(REPL_MESSAGE_VERSION);
const MAX = 10_000;
const schema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('replicate'), v: V, requestId: UUID, subcontractId: ID, transferId: UUID.optional(),
    objects: z.array(z.strictObject({ key: KEY, etag: ETAG, size: N, sha256: HEX64, offset: N })).min(1).max(MAX),
  }),
  z.strictObject({
    type: z.literal('stored'), v: V, requestId: UUID,
    receipts: z.array(z.union([
      z.strictObject({ key: KEY, ok: z.literal(true), size: N, sha256: HEX64, etag: ETAG }),
      z.strictObject({ key: KEY, ok: z.literal(false), code: CODE, message: TEXT, retryable: z.boolean() }),
    ])).max(MAX),
  }),
  z.strictObject({ type: z.literal('delete'), v: V, requestId: UUID, subcontractId: ID, keys: z.array(KEY).min(1).max(MAX) }),
  z.strictObject({ type: z.literal('deleted'), v: V, requestId: UUID, keys: z.array(KEY).max(MAX) }),
  z.strictObject({ type: z.literal('audit'), v: V, requestId: UUID, subcontractId: ID, keys: z.array(KEY).min(1).max(MAX), deep: z.boolean().optional() }),
  z.strictObject({
    type: z.literal('audit-result'), v: V, requestId: UUID,
    entries: z.array(z.union([
      z.strictObject({ key: KEY, present: z.literal(false) }),
      z.strictObject({ key: KEY, present: z.literal(true), size: N, sha256: HEX64.optional(), etag: ETAG }),
    ])).max(MAX),
  }),
  z.strictObject({ type: z.literal('error'), v: V, requestId: UUID, code: CODE, message: TEXT, retryable: z.boolean() }),
]);

/** Encodes a message; an error's text longer than {@link MAX_REPL_TEXT} characters is cut to it. */
export function encodeReplMessage(m: ReplMessage): Buffer {
  const cut = (t: string): string => (t.length > MAX_REPL_TEXT ? `${t.slice(0, MAX_REPL_TEXT - 1)}…` : t);
  const out: ReplMessage = m.type === 'error'
    ? { ...m, message: cut(m.message) }
    : m.type === 'stored' ? { ...m, receipts: m.receipts.map((r) => (r.ok ? r : { ...r, message: cut(r.message) })) } : m;
  return Buffer.from(JSON.stringify(out), 'utf8');
}

/** Decodes and validates a message (`REPL_BAD_MESSAGE`). */
export function decodeReplMessage(bytes: Uint8Array): ReplMessage {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw replError('REPL_BAD_MESSAGE', 'replication message is not json', { cause: err });
  }
  const r = schema.safeParse(json);
  if (!r.success) throw replError('REPL_BAD_MESSAGE', `invalid replication message: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (r.data.type === 'replicate') {
    let end = 0;
    for (const o of r.data.objects) {
      if (o.offset !== end) throw replError('REPL_BAD_MESSAGE', `object '${o.key}' does not start where the previous one ended`);
      end += o.size;
    }
  }
  return r.data as ReplMessage;
}
