/**
 * The sequencer's orchestration, as one pure function of the journal.
 *
 * Given a transaction definition and the records written so far, {@link decideNext} says
 * what to do next: run a step, compensate one, or finish. It reads no clock, no network and
 * no files, so a recorded journal replays to the same decisions (Temporal's workflow /
 * activity split; the saga pattern with a pivot step).
 *
 * Rules:
 * - Steps run in order; a completed step is never run again.
 * - A step that started and neither completed nor failed (the process died) is run again:
 *   actions are idempotent. Every start counts as an attempt.
 * - A failure that is retryable is retried until `maxAttempts` starts; then, or on a failure
 *   that is not retryable, the transaction compensates: every step that started, newest
 *   first, whose definition has a compensation (compensations are idempotent and must
 *   tolerate an action that never happened or half happened).
 * - A cancel before the pivot compensates the same way; after the pivot it is too late and
 *   is ignored (the transaction rolls forward).
 * - After a step marked `pivot` completes, failures never compensate: the step is retried
 *   (up to `maxAttempts` per step); if it still fails the job ends `needs-operator`.
 */
import type { JobOutcome, JournalRecord, RecordedError } from './journal-records.js';

/** What the engine knows of a step to decide (the action itself lives in the engine). */
export interface StepShape {
  readonly name: string;
  readonly compensable: boolean;
  readonly pivot?: boolean;
  /** Starts allowed before giving up on the step (default {@link DEFAULT_MAX_ATTEMPTS}). */
  readonly maxAttempts?: number;
}

/** Attempts per step unless the step says otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** Attempts per compensation before the job needs an operator. */
export const COMPENSATION_MAX_ATTEMPTS = 5;

/** What to do next. */
export type Decision =
  | { kind: 'run'; step: string; attempt: number }
  | { kind: 'compensate'; step: string; attempt: number }
  | { kind: 'finish'; outcome: JobOutcome; error?: RecordedError }
  | { kind: 'finished'; outcome: JobOutcome };

/** What the journal says about one job, folded. */
export interface JobView {
  /** Starts per step (every start is an attempt). */
  started: Map<string, number>;
  /** Whether the latest start of a step is still open (`running`: the process died) or `failed`. */
  latest: Map<string, 'running' | 'failed' | 'completed'>;
  completed: Map<string, unknown>;
  lastFailure: Map<string, RecordedError>;
  compensationsStarted: Map<string, number>;
  compensated: Set<string>;
  compensationFailures: Map<string, RecordedError>;
  cancelReason: string | undefined;
  outcome: JobOutcome | undefined;
}

/** Folds the records into a {@link JobView}. */
export function viewJob(records: readonly JournalRecord[]): JobView {
  const v: JobView = {
    started: new Map(), latest: new Map(), completed: new Map(), lastFailure: new Map(),
    compensationsStarted: new Map(), compensated: new Set(), compensationFailures: new Map(),
    cancelReason: undefined, outcome: undefined,
  };
  for (const r of records) {
    switch (r.type) {
      case 'step-started': v.started.set(r.step, r.attempt); v.latest.set(r.step, 'running'); break;
      case 'step-completed': v.completed.set(r.step, r.result); v.latest.set(r.step, 'completed'); break;
      case 'step-failed': v.lastFailure.set(r.step, r.error); v.latest.set(r.step, 'failed'); break;
      case 'cancel-requested': v.cancelReason ??= r.reason; break;
      case 'compensation-started': v.compensationsStarted.set(r.step, r.attempt); break;
      case 'compensation-completed': v.compensated.add(r.step); break;
      case 'compensation-failed': v.compensationFailures.set(r.step, r.error); break;
      case 'job-finished': v.outcome = r.outcome; break;
      case 'job-started': case 'step-checkpoint': break;
    }
  }
  return v;
}

/** Decides the next action for the job whose journal is `records`. Pure. */
export function decideNext(steps: readonly StepShape[], records: readonly JournalRecord[]): Decision {
  const v = viewJob(records);
  if (v.outcome) return { kind: 'finished', outcome: v.outcome };

  const pastPivot = steps.some((s) => s.pivot === true && v.completed.has(s.name));
  const next = steps.find((s) => !v.completed.has(s.name));
  if (!next) return { kind: 'finish', outcome: 'completed' };

  const attempts = v.started.get(next.name) ?? 0;
  const max = next.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const failure = v.lastFailure.get(next.name);
  let fatal: RecordedError | undefined;
  if (v.latest.get(next.name) === 'failed' && failure && (!failure.retryable || attempts >= max)) fatal = failure;
  if (v.latest.get(next.name) === 'running' && attempts >= max) fatal = crashLoop(next.name);

  if (pastPivot) {
    // Past the point of no return: roll forward, never compensate; a cancel is too late.
    if (fatal) return { kind: 'finish', outcome: 'needs-operator', error: fatal };
    return { kind: 'run', step: next.name, attempt: attempts + 1 };
  }
  const cancelled = v.cancelReason !== undefined;
  if (!cancelled && !fatal) return { kind: 'run', step: next.name, attempt: attempts + 1 };

  // Backward: compensate every started step, newest first.
  for (const s of [...steps].reverse()) {
    if (!s.compensable || !v.started.has(s.name) || v.compensated.has(s.name)) continue;
    const tries = v.compensationsStarted.get(s.name) ?? 0;
    if (tries >= COMPENSATION_MAX_ATTEMPTS) {
      return { kind: 'finish', outcome: 'needs-operator', error: v.compensationFailures.get(s.name) ?? crashLoop(s.name) };
    }
    return { kind: 'compensate', step: s.name, attempt: tries + 1 };
  }
  if (cancelled) return { kind: 'finish', outcome: 'cancelled' };
  return fatal ? { kind: 'finish', outcome: 'compensated', error: fatal } : { kind: 'finish', outcome: 'compensated' };
}

function crashLoop(step: string): RecordedError {
  return { code: 'SEQ_STEP_FAILED', message: `step '${step}' did not finish after repeated attempts`, retryable: false };
}
