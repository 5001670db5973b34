/**
 * The sequencer: runs transactions (a migration, a storage subcontract) as named sequences
 * of steps, journaling each step's start and result before the next runs. After a crash,
 * {@link Sequencer.resumeAll} replays every unfinished journal through {@link decideNext}
 * and carries on where it stopped: completed steps are not run again, an interrupted step
 * is run again (actions are idempotent), a failed transaction compensates.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { IntercloudError } from '../../protocols/errors/index.js';
import { decideNext, viewJob, type Decision, type StepShape } from './decide.js';
import { JournalFile } from './journal-file.js';
import { recordError, type JobOutcome, type JournalRecord } from './journal-records.js';

/** What a step's action and compensation receive. */
export interface StepContext<I> {
  readonly jobId: string;
  readonly input: I;
  /** 1 on the first try; more after a retry or a restart. */
  readonly attempt: number;
  /** The result a completed earlier step returned (as journaled). */
  result<T>(step: string): T;
  /** Aborted when the job is cancelled (before the pivot) or the sequencer stops. */
  readonly signal: AbortSignal;
  /** Reports progress of a long step (bytes moved …) to whoever watches the job. */
  progress(detail: Record<string, unknown>): void;
  /**
   * Journals a durable checkpoint of this step (fsync'ed before it resolves): a step that does
   * its work in parts (pre-copy rounds) records each part, and when it runs again after a crash
   * or a retry reads them with {@link checkpoints} to go on from the last one.
   */
  checkpoint(detail: unknown): Promise<void>;
  /** The checkpoints this step journaled so far (every attempt), oldest first. */
  checkpoints<T>(): T[];
}

/** One step of a transaction. */
export interface StepDefinition<I> extends Omit<StepShape, 'compensable'> {
  /** Does the step's work and returns a JSON-serialisable result. Must be idempotent. */
  run(ctx: StepContext<I>): Promise<unknown>;
  /** Undoes what `run` did; idempotent, and must tolerate a `run` that never happened or half happened. */
  compensate?(ctx: StepContext<I>): Promise<void>;
}

/** A kind of transaction. `version` changes when its steps change incompatibly. */
export interface TransactionDefinition<I> {
  readonly kind: string;
  readonly version: number;
  readonly steps: ReadonlyArray<StepDefinition<I>>;
}

/** What the sequencer tells watchers (the daemon logs, counts and streams these). */
export type SequencerEvent =
  | { type: 'step-started'; jobId: string; kind: string; step: string; attempt: number }
  | { type: 'step-completed'; jobId: string; kind: string; step: string; ms: number }
  | { type: 'step-failed'; jobId: string; kind: string; step: string; error: ReturnType<typeof recordError> }
  | { type: 'compensating'; jobId: string; kind: string; step: string }
  | { type: 'progress'; jobId: string; kind: string; step: string; detail: Record<string, unknown> }
  | { type: 'job-finished'; jobId: string; kind: string; outcome: JobOutcome; error?: ReturnType<typeof recordError> };

/** A job's state as the local API and CLI show it. */
export interface JobStatus {
  jobId: string;
  kind: string;
  input: unknown;
  state: 'running' | JobOutcome;
  currentStep: string | undefined;
  completedSteps: string[];
  /** What each completed step returned (as journaled). */
  results: Record<string, unknown>;
  /**
   * When each completed step's last attempt started and when it completed (the journal's record
   * times, ISO 8601), and the milliseconds between: where a job's time went.
   */
  stepTimes: Record<string, StepTime>;
  cancelRequested: boolean;
  error: ReturnType<typeof recordError> | undefined;
  startedAt: string;
  updatedAt: string;
  lastProgress: Record<string, unknown> | undefined;
}

/** One completed step's last attempt, from its journal records. */
export interface StepTime {
  startedAt: string;
  completedAt: string;
  ms: number;
}

/** Options of a {@link Sequencer}. */
export interface SequencerOptions {
  /** Where journals live (one file per job). */
  readonly journalDir: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly definitions: ReadonlyArray<TransactionDefinition<any>>;
  /** Delay before retry number `attempt` (default: 0.5 s × 2^(attempt-2), at most 15 s). */
  readonly backoffMs?: (attempt: number) => number;
  readonly onEvent?: (event: SequencerEvent) => void;
  readonly now?: () => Date;
}

interface RunningJob {
  journal: JournalFile;
  controller: AbortController;
  done: Promise<JobOutcome>;
  currentStep: string | undefined;
  lastProgress: Record<string, unknown> | undefined;
}

/** Runs and resumes journaled transactions. */
export class Sequencer {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly definitions = new Map<string, TransactionDefinition<any>>();
  private readonly running = new Map<string, RunningJob>();
  private readonly stopping = new AbortController();
  private readonly watchers = new Set<(e: SequencerEvent) => void>();

  constructor(private readonly options: SequencerOptions) {
    for (const d of options.definitions) this.definitions.set(d.kind, d);
  }

  /** Starts a new job; resolves once its first record is durable. `done` resolves at the end. */
  async start<I>(kind: string, jobId: string, input: I): Promise<{ jobId: string; done: Promise<JobOutcome> }> {
    const def = this.definition(kind);
    const journal = await JournalFile.create(
      this.options.journalDir, jobId,
      { type: 'job-started', jobId, kind, version: def.version, input }, this.now,
    );
    return { jobId, done: this.drive(def, jobId, journal) };
  }

  /** Resumes every job whose journal has no `job-finished` record. */
  async resumeAll(): Promise<Array<{ jobId: string; done: Promise<JobOutcome> }>> {
    const resumed: Array<{ jobId: string; done: Promise<JobOutcome> }> = [];
    for (const jobId of await JournalFile.list(this.options.journalDir)) {
      if (this.running.has(jobId)) continue;
      const records = await JournalFile.read(this.options.journalDir, jobId);
      if (viewJob(records).outcome) continue;
      const first = records[0];
      if (first?.type !== 'job-started') continue;
      const def = this.definition(first.kind);
      if (first.version !== def.version) {
        throw new IntercloudError('SEQ_JOURNAL_MISMATCH',
          `job '${jobId}' was journaled by '${first.kind}' version ${first.version}, this agent runs version ${def.version}`);
      }
      const journal = await JournalFile.open(this.options.journalDir, jobId, this.now);
      resumed.push({ jobId, done: this.drive(def, jobId, journal) });
    }
    return resumed;
  }

  /**
   * Asks a job to cancel. Before the pivot the running step is aborted and the job
   * compensates; after it, the cancel is recorded and ignored. Returns whether it can
   * still take effect.
   */
  async cancel(jobId: string, reason = 'cancelled by operator'): Promise<{ accepted: boolean; state: JobStatus['state'] }> {
    const job = this.running.get(jobId);
    if (!job) {
      const status = await this.status(jobId);
      return { accepted: false, state: status.state };
    }
    const def = this.definition((job.journal.all[0] as Extract<JournalRecord, { type: 'job-started' }>).kind);
    const v = viewJob(job.journal.all);
    const pastPivot = def.steps.some((s) => s.pivot === true && v.completed.has(s.name));
    if (v.cancelReason === undefined) await job.journal.append({ type: 'cancel-requested', reason });
    if (!pastPivot) job.controller.abort(new IntercloudError('SEQ_CANCELLED', `job '${jobId}' cancelled: ${reason}`));
    return { accepted: !pastPivot, state: 'running' };
  }

  /** The status of one job, from its journal. */
  async status(jobId: string): Promise<JobStatus> {
    const job = this.running.get(jobId);
    const records = job ? job.journal.all : await JournalFile.read(this.options.journalDir, jobId);
    return summarise(records, job);
  }

  /** Every job this sequencer's journal directory holds, newest first. */
  async list(): Promise<JobStatus[]> {
    const out: JobStatus[] = [];
    for (const id of await JournalFile.list(this.options.journalDir)) out.push(await this.status(id));
    return out.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }

  /** Calls `listener` with every event of every job; returns the function that stops it. */
  watch(listener: (e: SequencerEvent) => void): () => void {
    this.watchers.add(listener);
    return () => { this.watchers.delete(listener); };
  }

  /**
   * Resolves once `ready(status)` holds for job `jobId` (checked now and after each of its
   * events), or rejects when `signal` aborts.
   */
  async waitFor(jobId: string, ready: (s: JobStatus) => boolean, signal?: AbortSignal): Promise<JobStatus> {
    return new Promise<JobStatus>((resolve, reject) => {
      let settled = false;
      let checking = Promise.resolve();
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        off();
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const check = (): void => {
        checking = checking.then(async () => {
          if (settled) return;
          const s = await this.status(jobId);
          if (ready(s)) finish(() => resolve(s));
        }).catch((err: unknown) => finish(() => reject(err)));
      };
      const off = this.watch((e) => { if (e.jobId === jobId) check(); });
      const onAbort = (): void => finish(() => reject(signal?.reason));
      if (signal?.aborted) { onAbort(); return; }
      signal?.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  /** Stops driving jobs (their journals stay; a later `resumeAll` continues them). */
  async stop(): Promise<void> {
    this.stopping.abort(new IntercloudError('SEQ_CANCELLED', 'sequencer stopping'));
    await Promise.allSettled([...this.running.values()].map((j) => j.done));
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private definition(kind: string): TransactionDefinition<any> {
    const def = this.definitions.get(kind);
    if (!def) throw new IntercloudError('SEQ_JOURNAL_MISMATCH', `no transaction definition named '${kind}'`);
    return def;
  }

  private get now(): () => Date {
    return this.options.now ?? (() => new Date());
  }

  private drive<I>(def: TransactionDefinition<I>, jobId: string, journal: JournalFile): Promise<JobOutcome> {
    const controller = new AbortController();
    const job: RunningJob = { journal, controller, done: Promise.resolve('completed'), currentStep: undefined, lastProgress: undefined };
    job.done = this.loop(def, jobId, job).finally(async () => {
      this.running.delete(jobId);
      await journal.close();
    });
    this.running.set(jobId, job);
    return job.done;
  }

  private async loop<I>(def: TransactionDefinition<I>, jobId: string, job: RunningJob): Promise<JobOutcome> {
    const { journal } = job;
    const input = (journal.all[0] as Extract<JournalRecord, { type: 'job-started' }>).input as I;
    const emit = (e: SequencerEvent): void => {
      this.options.onEvent?.(e);
      for (const w of this.watchers) w(e);
    };
    const shapes = shapesOf(def);
    for (;;) {
      if (this.stopping.signal.aborted) throw this.stopping.signal.reason;
      const decision: Decision = decideNext(shapes, journal.all);
      if (decision.kind === 'finished') return decision.outcome;
      if (decision.kind === 'finish') {
        await journal.append({ type: 'job-finished', outcome: decision.outcome, ...(decision.error ? { error: decision.error } : {}) });
        emit({ type: 'job-finished', jobId, kind: def.kind, outcome: decision.outcome, ...(decision.error ? { error: decision.error } : {}) });
        return decision.outcome;
      }
      const step = def.steps.find((s) => s.name === decision.step);
      if (!step) throw new IntercloudError('SEQ_JOURNAL_MISMATCH', `no step '${decision.step}' in '${def.kind}'`);
      const results = viewJob(journal.all).completed;
      // Compensations are not cancellable (a cancel is what starts them); the sequencer stopping still aborts them.
      const signal = decision.kind === 'run'
        ? AbortSignal.any([job.controller.signal, this.stopping.signal])
        : this.stopping.signal;
      const ctx: StepContext<I> = {
        jobId, input, attempt: decision.attempt, signal,
        result: <T>(name: string): T => {
          if (!results.has(name)) throw new IntercloudError('SEQ_JOURNAL_MISMATCH', `step '${name}' has no result yet`);
          return results.get(name) as T;
        },
        progress: (detail) => {
          job.lastProgress = { step: step.name, ...detail };
          emit({ type: 'progress', jobId, kind: def.kind, step: step.name, detail });
        },
        checkpoint: async (detail) => {
          await journal.append({ type: 'step-checkpoint', step: step.name, detail: detail ?? null });
        },
        checkpoints: <T>(): T[] => journal.all
          .filter((r): r is Extract<JournalRecord, { type: 'step-checkpoint' }> => r.type === 'step-checkpoint' && r.step === step.name)
          .map((r) => r.detail as T),
      };
      job.currentStep = step.name;
      if (decision.kind === 'run') {
        if (decision.attempt > 1) await this.backoff(decision.attempt, signal);
        await journal.append({ type: 'step-started', step: step.name, attempt: decision.attempt });
        emit({ type: 'step-started', jobId, kind: def.kind, step: step.name, attempt: decision.attempt });
        const t0 = Date.now();
        try {
          if (signal.aborted) throw signal.reason;
          const result = await step.run(ctx);
          await journal.append({ type: 'step-completed', step: step.name, result: result ?? null });
          emit({ type: 'step-completed', jobId, kind: def.kind, step: step.name, ms: Date.now() - t0 });
        } catch (err) {
          if (this.stopping.signal.aborted) throw this.stopping.signal.reason; // leave the step open: resumed later
          const error = recordError(job.controller.signal.aborted ? job.controller.signal.reason : err);
          await journal.append({ type: 'step-failed', step: step.name, attempt: decision.attempt, error });
          emit({ type: 'step-failed', jobId, kind: def.kind, step: step.name, error });
        }
      } else {
        await journal.append({ type: 'compensation-started', step: step.name, attempt: decision.attempt });
        emit({ type: 'compensating', jobId, kind: def.kind, step: step.name });
        try {
          if (decision.attempt > 1) await this.backoff(decision.attempt, signal);
          await step.compensate?.(ctx);
          await journal.append({ type: 'compensation-completed', step: step.name });
        } catch (err) {
          if (this.stopping.signal.aborted) throw this.stopping.signal.reason;
          await journal.append({ type: 'compensation-failed', step: step.name, attempt: decision.attempt, error: recordError(err) });
        }
      }
    }
  }

  private async backoff(attempt: number, signal: AbortSignal): Promise<void> {
    const ms = this.options.backoffMs?.(attempt) ?? Math.min(15_000, 500 * 2 ** Math.max(0, attempt - 2));
    // An abort ends the wait early; the loop then sees the aborted signal and stops or fails the step.
    if (ms > 0) await sleep(ms, undefined, { signal }).catch(() => undefined);
  }
}

/** The part of a definition the pure decision needs. */
export function shapesOf<I>(def: TransactionDefinition<I>): StepShape[] {
  return def.steps.map((s) => ({ name: s.name, pivot: s.pivot, maxAttempts: s.maxAttempts, compensable: s.compensate !== undefined }));
}

/** {@link JobStatus.stepTimes} from a journal: each completed step's last start and its completion. */
function stepTimesOf(records: readonly JournalRecord[]): Record<string, StepTime> {
  const started = new Map<string, string>();
  const out: Record<string, StepTime> = {};
  for (const r of records) {
    if (r.type === 'step-started') started.set(r.step, r.at);
    else if (r.type === 'step-completed') {
      const startedAt = started.get(r.step) ?? r.at;
      out[r.step] = { startedAt, completedAt: r.at, ms: Date.parse(r.at) - Date.parse(startedAt) };
    }
  }
  return out;
}

function summarise(records: readonly JournalRecord[], job: RunningJob | undefined): JobStatus {
  const first = records[0] as Extract<JournalRecord, { type: 'job-started' }>;
  const v = viewJob(records);
  const finished = records.find((r): r is Extract<JournalRecord, { type: 'job-finished' }> => r.type === 'job-finished');
  const lastFailure = [...records].reverse().find((r) => r.type === 'step-failed');
  return {
    jobId: first.jobId,
    kind: first.kind,
    input: first.input,
    state: v.outcome ?? 'running',
    currentStep: job?.currentStep,
    completedSteps: [...v.completed.keys()],
    results: Object.fromEntries(v.completed),
    stepTimes: stepTimesOf(records),
    cancelRequested: v.cancelReason !== undefined,
    // A finished job shows what ended it (nothing when it completed); a running one its latest failure.
    error: finished ? finished.error : lastFailure?.type === 'step-failed' ? lastFailure.error : undefined,
    startedAt: first.at,
    updatedAt: records[records.length - 1]?.at ?? first.at,
    lastProgress: job?.lastProgress,
  };
}
