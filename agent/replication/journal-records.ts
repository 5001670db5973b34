/**
 * The replication journal's records and their line codec (pure). One journal per subcontract at
 * A: `<crc32 hex> <json>\n` lines, the same framing as the transfer journals
 * (protocols/amqp/journal-records.ts); a torn last line is dropped on reopen, damage before it
 * is `REPL_JOURNAL`. The state ({@link ReplicationState}) is the fold of these records, so a
 * restart replays the journal instead of re-copying what B already confirmed.
 */
import { z } from 'zod';
import { decodeJournalLines, encodeJournalLine, type DecodedJournalLines } from '../../protocols/journal/index.js';
import { replError } from './errors.js';

/** One journal record. Times are ms since the epoch. */
export type ReplRecord =
  /** First record: whose journal this is. */
  | { readonly t: 'open'; readonly subcontractId: string; readonly at: number }
  /** A holds `key` with this ETag/size and B does not (yet): copy it. */
  | { readonly t: 'pending'; readonly key: string; readonly size: number; readonly etag: string; readonly at: number }
  /** `key` is gone from A and the terms say delete it at B. */
  | { readonly t: 'delete'; readonly key: string; readonly at: number }
  /** An attempt failed; the next one is at `nextAt` (the object stays PENDING). */
  | { readonly t: 'retry'; readonly key: string; readonly attempts: number; readonly code: string; readonly message: string; readonly nextAt: number }
  /** Attempts are exhausted or the error cannot be retried: FAILED. */
  | { readonly t: 'failed'; readonly key: string; readonly attempts: number; readonly code: string; readonly message: string; readonly at: number }
  /** B confirmed it persisted and verified the copy of A's version `etag`. */
  | {
      readonly t: 'completed'; readonly key: string; readonly etag: string; readonly size: number; readonly sha256: string;
      readonly replicaEtag: string; readonly at: number;
    }
  /** B confirmed `key` is gone (or, `forgotten`, A stops tracking a key gone from A that B keeps or never had). */
  | { readonly t: 'deleted'; readonly key: string; readonly forgotten?: boolean; readonly at: number }
  /** A full listing pass starts. */
  | { readonly t: 'pass'; readonly pass: number; readonly at: number }
  /** The pass has handled every key up to and including `after` (the checkpoint a crash resumes from). */
  | { readonly t: 'page'; readonly pass: number; readonly after: string }
  /** The pass listed the whole bucket. */
  | { readonly t: 'pass-end'; readonly pass: number; readonly at: number }
  /**
   * A compacted journal (`ReplicationJournal.compact`), right after `open`: what the records it
   * replaced had folded to, apart from the objects (each an `object` record after it).
   */
  | {
      readonly t: 'snapshot'; readonly bytesMoved: number; readonly objectsMoved: number; readonly pass: number; readonly passInProgress: boolean;
      readonly passAfter?: string; readonly passStartedAt: number; readonly lastFullPassAt?: number;
    }
  /** One object as the state held it when the journal was compacted. */
  | { readonly t: 'object'; readonly o: SnapshotObject };

/** An object in a compacted journal: `ReplicaObject` of state.ts. */
export interface SnapshotObject {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly state: 'PENDING' | 'COMPLETED' | 'FAILED';
  readonly op: 'put' | 'delete';
  readonly pendingSince?: number;
  readonly attempts: number;
  readonly nextAttemptAt?: number;
  readonly lastError?: { readonly code: string; readonly message: string };
  readonly replica?: { readonly etag: string; readonly size: number; readonly sha256: string; readonly replicaEtag: string; readonly at: number };
  readonly touchedAt: number;
}

const KEY = z.string().min(1).max(1024);
const T = z.number().int().nonnegative();
const HEX64 = z.string().regex(/^[0-9a-f]{64}$/);
const schema = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('open'), subcontractId: z.string().min(1), at: T }),
  z.strictObject({ t: z.literal('pending'), key: KEY, size: T, etag: z.string().min(1), at: T }),
  z.strictObject({ t: z.literal('delete'), key: KEY, at: T }),
  z.strictObject({ t: z.literal('retry'), key: KEY, attempts: T, code: z.string().min(1), message: z.string(), nextAt: T }),
  z.strictObject({ t: z.literal('failed'), key: KEY, attempts: T, code: z.string().min(1), message: z.string(), at: T }),
  z.strictObject({ t: z.literal('completed'), key: KEY, etag: z.string().min(1), size: T, sha256: HEX64, replicaEtag: z.string().min(1), at: T }),
  z.strictObject({ t: z.literal('deleted'), key: KEY, forgotten: z.boolean().optional(), at: T }),
  z.strictObject({ t: z.literal('pass'), pass: T, at: T }),
  z.strictObject({ t: z.literal('page'), pass: T, after: KEY }),
  z.strictObject({ t: z.literal('pass-end'), pass: T, at: T }),
  z.strictObject({
    t: z.literal('snapshot'), bytesMoved: T, objectsMoved: T, pass: T, passInProgress: z.boolean(), passAfter: KEY.optional(), passStartedAt: T,
    lastFullPassAt: T.optional(),
  }),
  z.strictObject({
    t: z.literal('object'),
    o: z.strictObject({
      key: KEY, size: T, etag: z.string().min(1), state: z.enum(['PENDING', 'COMPLETED', 'FAILED']), op: z.enum(['put', 'delete']),
      pendingSince: T.optional(), attempts: T, nextAttemptAt: T.optional(), lastError: z.strictObject({ code: z.string().min(1), message: z.string() }).optional(),
      replica: z.strictObject({ etag: z.string().min(1), size: T, sha256: HEX64, replicaEtag: z.string().min(1), at: T }).optional(), touchedAt: T,
    }),
  }),
]);

/** Encodes one record as a journal line (with its newline). */
export function encodeReplRecord(record: ReplRecord): string {
  return encodeJournalLine(record);
}

/** Records of a journal's text, and where its good part ends. */
export type DecodedReplJournal = DecodedJournalLines<ReplRecord>;

/** Decodes a journal's text; drops a torn last line, throws `REPL_JOURNAL` on earlier damage. */
export function decodeReplJournal(text: string, where = 'replication journal'): DecodedReplJournal {
  return decodeJournalLines(text, (json) => {
    const r = schema.safeParse(json);
    return r.success ? (r.data as ReplRecord) : undefined;
  }, (line) => replError('REPL_JOURNAL', `${where}: line ${line} is damaged`, { details: { line } }));
}
