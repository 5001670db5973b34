/**
 * The records of a transaction journal, and their pure codec.
 *
 * A journal is a JSON-lines file, one record per line, appended and fsync'ed before the
 * engine moves on. Records are a discriminated union on `type`; `seq` counts from 1 with
 * no gaps, so a lost or reordered line is detected on replay.
 */
import { defineErrorCodes, IntercloudError } from '../../protocols/errors/index.js';

export const SEQUENCER_ERRORS = defineErrorCodes('sequencer', {
  SEQ_JOURNAL_CORRUPT: { doc: 'a journal line is not a valid record, or records are out of sequence', retryable: false },
  SEQ_JOURNAL_MISMATCH: { doc: 'a journal was written by a different transaction definition than the one replaying it', retryable: false },
  SEQ_UNKNOWN_JOB: { doc: 'no journal exists for this job id', retryable: false },
  SEQ_JOB_EXISTS: { doc: 'a job with this id already exists', retryable: false },
  SEQ_CANCELLED: { doc: 'the job was cancelled', retryable: false },
  SEQ_STEP_FAILED: { doc: 'a step failed and the transaction was compensated', retryable: false },
  SEQ_NEEDS_OPERATOR: { doc: 'a step after the point of no return kept failing; an operator must look', retryable: true },
});

/** A step's error as kept in the journal (enough to decide, never a stack). */
export interface RecordedError {
  code: string;
  message: string;
  retryable: boolean;
}

/** The record types, in the order a job normally writes them. */
export type JournalRecord =
  | { seq: number; at: string; type: 'job-started'; jobId: string; kind: string; version: number; input: unknown }
  | { seq: number; at: string; type: 'step-started'; step: string; attempt: number }
  | { seq: number; at: string; type: 'step-completed'; step: string; result: unknown }
  | { seq: number; at: string; type: 'step-failed'; step: string; attempt: number; error: RecordedError }
  /** A running step's durable progress (a pre-copy round done): read back by the step when it runs again. */
  | { seq: number; at: string; type: 'step-checkpoint'; step: string; detail: unknown }
  | { seq: number; at: string; type: 'cancel-requested'; reason: string }
  | { seq: number; at: string; type: 'compensation-started'; step: string; attempt: number }
  | { seq: number; at: string; type: 'compensation-completed'; step: string }
  | { seq: number; at: string; type: 'compensation-failed'; step: string; attempt: number; error: RecordedError }
  | { seq: number; at: string; type: 'job-finished'; outcome: JobOutcome; error?: RecordedError };

/** How a job ended. `needs-operator` means compensation or roll-forward could not complete. */
export type JobOutcome = 'completed' | 'compensated' | 'cancelled' | 'needs-operator';

/** A record before the journal gives it its `seq` and time. */
export type NewRecord = DistributiveOmit<JournalRecord, 'seq' | 'at'>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

const TYPES = new Set<JournalRecord['type']>([
  'job-started', 'step-started', 'step-completed', 'step-failed', 'step-checkpoint', 'cancel-requested',
  'compensation-started', 'compensation-completed', 'compensation-failed', 'job-finished',
]);

/** Encodes one record as one journal line (with the trailing newline). */
export function encodeRecord(record: JournalRecord): string {
  return JSON.stringify(record) + '\n';
}

/**
 * Decodes a whole journal text. A torn last line (no newline: the process died while
 * writing it, so it was never fsync'ed as complete) is ignored; any other bad line, or a
 * gap or repeat in `seq`, is `SEQ_JOURNAL_CORRUPT` naming the line.
 */
export function decodeJournal(text: string, source = 'journal'): JournalRecord[] {
  const lines = text.split('\n');
  const complete = text.endsWith('\n') ? lines.slice(0, -1) : lines.slice(0, -1); // last piece is '' or torn
  const records: JournalRecord[] = [];
  complete.forEach((line, i) => {
    const where = `${source}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new IntercloudError('SEQ_JOURNAL_CORRUPT', `${where}: line is not json`, { cause: err });
    }
    const rec = value as Partial<JournalRecord>;
    if (typeof rec !== 'object' || rec === null || !TYPES.has(rec.type as JournalRecord['type'])) {
      throw new IntercloudError('SEQ_JOURNAL_CORRUPT', `${where}: unknown record type '${String(rec?.type)}'`);
    }
    if (rec.seq !== i + 1) {
      throw new IntercloudError('SEQ_JOURNAL_CORRUPT', `${where}: expected seq ${i + 1}, found '${String(rec.seq)}'`);
    }
    if (i === 0 && rec.type !== 'job-started') {
      throw new IntercloudError('SEQ_JOURNAL_CORRUPT', `${where}: a journal must begin with 'job-started'`);
    }
    records.push(rec as JournalRecord);
  });
  return records;
}

/** Turns any thrown value into what the journal keeps of it. */
export function recordError(err: unknown): RecordedError {
  if (err instanceof IntercloudError) return { code: err.code, message: err.message, retryable: err.retryable };
  return { code: 'SEQ_STEP_FAILED', message: err instanceof Error ? err.message : String(err), retryable: false };
}
