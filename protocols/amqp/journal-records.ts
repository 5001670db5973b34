/**
 * The record format of the transfer journals (pure codec). Each side keeps one small journal per
 * transfer: one line per record, `<crc-32 as 8 hex digits> <json>\n` (protocols/journal). A crash can leave a torn
 * last line: {@link decodeJournal} drops it (and reports how many bytes are good, so the file can
 * be truncated there before appending). A bad line *before* the last is corruption.
 *
 * Receiver records: `manifest`, `have` (chunk ranges whose bytes are durable in the staging
 * file — written only after the staging file was fsync'ed), `end` (the sender's whole digest),
 * `committed`, `aborted`.
 * Sender records: `manifest` (+ the source's identity), `end` (the digest it computed),
 * `committed`, `aborted`.
 */
import { z } from 'zod';
import { decodeJournalLines, encodeJournalLine, type DecodedJournalLines } from '../journal/index.js';
import { xferError } from './errors.js';
import { parseManifest, type Manifest } from './messages.js';

/** Identity of a sender's source, to notice it changed between attempts. */
export interface SourceIdentity {
  readonly size: number;
  /** Modification time in ms, when the source is a file. */
  readonly mtimeMs?: number;
}

/** One journal record. */
export type JournalRecord =
  | { readonly t: 'manifest'; readonly manifest: Manifest; readonly source?: SourceIdentity }
  | {
      readonly t: 'have';
      readonly chunks: ReadonlyArray<readonly [number, number]>;
      /** Of those, the ones held as holes (zero frames, never written): not re-read to verify. */
      readonly holes?: ReadonlyArray<readonly [number, number]>;
    }
  | { readonly t: 'end'; readonly digest: string }
  | { readonly t: 'committed'; readonly digest: string }
  | { readonly t: 'aborted'; readonly reason: 'expired' | 'aborted' | 'failed'; readonly code?: string };

const recordSchema = z.discriminatedUnion('t', [
  z.strictObject({
    t: z.literal('manifest'),
    manifest: z.unknown(),
    source: z.strictObject({ size: z.number().int().nonnegative(), mtimeMs: z.number().optional() }).optional(),
  }),
  z.strictObject({
    t: z.literal('have'),
    chunks: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive()])),
    holes: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive()])).optional(),
  }),
  z.strictObject({ t: z.literal('end'), digest: z.string().regex(/^[0-9a-f]{64}$/) }),
  z.strictObject({ t: z.literal('committed'), digest: z.string().regex(/^[0-9a-f]{64}$/) }),
  z.strictObject({ t: z.literal('aborted'), reason: z.enum(['expired', 'aborted', 'failed']), code: z.string().optional() }),
]);

/** Encodes one record as a journal line (with its trailing newline). */
export function encodeJournalRecord(record: JournalRecord): string {
  return encodeJournalLine(record);
}

/** Result of {@link decodeJournal}. */
export type DecodedJournal = DecodedJournalLines<JournalRecord>;

/** Decodes a journal's text; drops a torn last line, throws `XFER_JOURNAL` on earlier damage. */
export function decodeJournal(text: string, where = 'journal'): DecodedJournal {
  return decodeJournalLines(text, parseRecord, (line) => xferError('XFER_JOURNAL', `${where}: line ${line} is damaged`, { details: { line } }));
}

function parseRecord(json: unknown): JournalRecord | undefined {
  const r = recordSchema.safeParse(json);
  if (!r.success) return undefined;
  if (r.data.t === 'manifest') {
    const source = r.data.source;
    return { t: 'manifest', manifest: parseManifest(r.data.manifest), ...(source ? { source } : {}) };
  }
  return r.data as JournalRecord;
}
