/**
 * The sequencer: durable, replayable execution of multi-step intercloud transactions.
 * See `engine.ts` for how jobs run and `decide.ts` for the rules that decide each move.
 */
export { Sequencer, shapesOf } from './engine.js';
export type { JobStatus, StepTime, SequencerEvent, SequencerOptions, StepContext, StepDefinition, TransactionDefinition } from './engine.js';
export { decideNext, viewJob, DEFAULT_MAX_ATTEMPTS, COMPENSATION_MAX_ATTEMPTS } from './decide.js';
export type { Decision, JobView, StepShape } from './decide.js';
export { JournalFile } from './journal-file.js';
export { decodeJournal, encodeRecord, recordError, SEQUENCER_ERRORS } from './journal-records.js';
export type { JobOutcome, JournalRecord, NewRecord, RecordedError } from './journal-records.js';
