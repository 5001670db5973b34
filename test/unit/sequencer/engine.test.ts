import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IntercloudError } from '../../../protocols/errors/index.js';
import {
  JournalFile, Sequencer, decideNext, decodeJournal, shapesOf,
  type StepDefinition, type TransactionDefinition,
} from '../../../agent/sequencer/index.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'seq-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

/** A world the steps change, so tests can check what was done and undone. */
function world() {
  const log: string[] = [];
  const state = new Set<string>();
  return { log, state };
}

function step(w: ReturnType<typeof world>, name: string, opts: Partial<StepDefinition<unknown>> & { fail?: () => unknown } = {}): StepDefinition<unknown> {
  return {
    name,
    pivot: opts.pivot,
    maxAttempts: opts.maxAttempts,
    run: opts.run ?? (async (ctx) => {
      w.log.push(`run:${name}#${ctx.attempt}`);
      const f = opts.fail?.();
      if (f) throw f;
      w.state.add(name);
      return { made: name };
    }),
    compensate: opts.compensate === undefined ? async () => { w.log.push(`undo:${name}`); w.state.delete(name); } : opts.compensate,
  };
}

const fast = { backoffMs: () => 0 };

describe('Sequencer', () => {
  it('runs steps in order, passes results on, and journals every start and result', async () => {
    const w = world();
    const def: TransactionDefinition<{ vm: string }> = {
      kind: 'demo', version: 1,
      steps: [
        step(w, 'a'),
        { name: 'b', run: async (ctx) => ({ saw: ctx.result<{ made: string }>('a').made, vm: ctx.input.vm }) },
      ],
    };
    const seq = new Sequencer({ journalDir: dir, definitions: [def], ...fast });
    const { done } = await seq.start('demo', 'job-1', { vm: 'web1' });
    expect(await done).toBe('completed');
    const records = await JournalFile.read(dir, 'job-1');
    expect(records.map((r) => r.type)).toEqual(['job-started', 'step-started', 'step-completed', 'step-started', 'step-completed', 'job-finished']);
    expect(records[4]).toMatchObject({ step: 'b', result: { saw: 'a', vm: 'web1' } });
    expect((await seq.status('job-1')).state).toBe('completed');
    await expect(seq.start('demo', 'job-1', { vm: 'x' })).rejects.toMatchObject({ code: 'SEQ_JOB_EXISTS' });
  });

  it('compensates started steps newest first when a step fails for good', async () => {
    const w = world();
    const boom = new IntercloudError('TEST_NO', 'target refused', { retryable: false });
    const def: TransactionDefinition<unknown> = {
      kind: 'demo', version: 1,
      steps: [step(w, 'a'), { ...step(w, 'b'), compensate: undefined }, step(w, 'c', { fail: () => boom }), step(w, 'd')],
    };
    const seq = new Sequencer({ journalDir: dir, definitions: [def], ...fast });
    expect(await (await seq.start('demo', 'j', {})).done).toBe('compensated');
    expect(w.log).toEqual(['run:a#1', 'run:b#1', 'run:c#1', 'undo:c', 'undo:a']);
    expect((await seq.status('j')).error).toMatchObject({ code: 'TEST_NO' });
  });

  it('retries a retryable failure with backoff and then goes on', async () => {
    const w = world();
    let n = 0;
    const def: TransactionDefinition<unknown> = {
      kind: 'demo', version: 1,
      steps: [step(w, 'a', { fail: () => (++n < 3 ? new IntercloudError('TEST_BUSY', 'busy', { retryable: true }) : undefined) })],
    };
    const seq = new Sequencer({ journalDir: dir, definitions: [def], ...fast });
    expect(await (await seq.start('demo', 'j', {})).done).toBe('completed');
    expect(w.log).toEqual(['run:a#1', 'run:a#2', 'run:a#3']);
    // A completed job reports no error, whatever failed on the way.
    expect((await seq.status('j')).error).toBeUndefined();
  });

  it("reports each completed step's last attempt's start, its completion and the ms between (stepTimes)", async () => {
    const w = world();
    let t = Date.parse('2026-12-07T03:00:00.000Z');
    // Every journal record is 100 ms after the one before.
    const now = (): Date => new Date((t += 100));
    let n = 0;
    const def: TransactionDefinition<unknown> = {
      kind: 'demo', version: 1,
      steps: [step(w, 'a'), step(w, 'b', { fail: () => (++n < 2 ? new IntercloudError('TEST_BUSY', 'busy', { retryable: true }) : undefined) })],
    };
    const seq = new Sequencer({ journalDir: dir, definitions: [def], ...fast, now });
    expect(await (await seq.start('demo', 'j', {})).done).toBe('completed');
    // job-started +100, a started +200, a completed +300, b started +400, b failed +500, b started +600, b completed +700.
    expect((await seq.status('j')).stepTimes).toEqual({
      a: { startedAt: '2026-12-07T03:00:00.200Z', completedAt: '2026-12-07T03:00:00.300Z', ms: 100 },
      b: { startedAt: '2026-12-07T03:00:00.600Z', completedAt: '2026-12-07T03:00:00.700Z', ms: 100 },
    });
  });

  it('resumes after a stop mid-step without re-running completed steps', async () => {
    const w = world();
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const blocking = (name: string): StepDefinition<unknown> => ({
      name,
      run: async (ctx) => {
        w.log.push(`run:${name}#${ctx.attempt}`);
        if (ctx.attempt === 1) await new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason)));
        await gate;
        return null;
      },
    });
    const def: TransactionDefinition<unknown> = { kind: 'demo', version: 1, steps: [step(w, 'a'), blocking('b'), step(w, 'c')] };
    const first = new Sequencer({ journalDir: dir, definitions: [def], ...fast });
    const { done } = await first.start('demo', 'j', {});
    await new Promise((r) => setTimeout(r, 20));
    await first.stop();
    await expect(done).rejects.toMatchObject({ code: 'SEQ_CANCELLED' });
    expect((await JournalFile.read(dir, 'j')).at(-1)).toMatchObject({ type: 'step-started', step: 'b' });

    const second = new Sequencer({ journalDir: dir, definitions: [def], ...fast });
    release();
    const resumed = await second.resumeAll();
    expect(resumed.map((r) => r.jobId)).toEqual(['j']);
    expect(await resumed[0]!.done).toBe('completed');
    expect(w.log).toEqual(['run:a#1', 'run:b#1', 'run:b#2', 'run:c#1']);
    expect(await second.resumeAll()).toEqual([]);
  });

  it('cancels before the pivot by compensating, and ignores a cancel after it', async () => {
    const w = world();
    let inB!: () => void;
    const reachedB = new Promise<void>((r) => { inB = r; });
    const def: TransactionDefinition<unknown> = {
      kind: 'demo', version: 1,
      steps: [
        step(w, 'a'),
        { name: 'b', run: async (ctx) => { inB(); await new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason))); }, compensate: async () => { w.log.push('undo:b'); } },
        step(w, 'c'),
      ],
    };
    const seq = new Sequencer({ journalDir: dir, definitions: [def], ...fast });
    const { done } = await seq.start('demo', 'j1', {});
    await reachedB;
    expect(await seq.cancel('j1', 'operator')).toEqual({ accepted: true, state: 'running' });
    expect(await done).toBe('cancelled');
    expect(w.log).toEqual(['run:a#1', 'undo:b', 'undo:a']);

    const w2 = world();
    let inD!: () => void;
    let finishD!: () => void;
    const reachedD = new Promise<void>((r) => { inD = r; });
    const holdD = new Promise<void>((r) => { finishD = r; });
    const def2: TransactionDefinition<unknown> = {
      kind: 'late', version: 1,
      steps: [step(w2, 'a', { pivot: true }), { name: 'd', run: async () => { inD(); await holdD; w2.log.push('run:d'); } }],
    };
    const seq2 = new Sequencer({ journalDir: dir, definitions: [def2], ...fast });
    const late = await seq2.start('late', 'j2', {});
    await reachedD;
    expect(await seq2.cancel('j2')).toEqual({ accepted: false, state: 'running' });
    finishD();
    expect(await late.done).toBe('completed');
    expect(w2.log).toEqual(['run:a#1', 'run:d']);
  });

  it('never compensates past the pivot: it retries, then asks for an operator', async () => {
    const w = world();
    const def: TransactionDefinition<unknown> = {
      kind: 'demo', version: 1,
      steps: [step(w, 'a', { pivot: true }), step(w, 'b', { maxAttempts: 2, fail: () => new IntercloudError('TEST_DOWN', 'down', { retryable: true }) })],
    };
    const seq = new Sequencer({ journalDir: dir, definitions: [def], ...fast });
    expect(await (await seq.start('demo', 'j', {})).done).toBe('needs-operator');
    expect(w.log).toEqual(['run:a#1', 'run:b#1', 'run:b#2']);
    expect(w.state.has('a')).toBe(true);
  });

  it('refuses to resume a journal written by another version of the transaction', async () => {
    const w = world();
    const hang = (ctx: { signal: AbortSignal }) => new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason)));
    const v1: TransactionDefinition<unknown> = { kind: 'demo', version: 1, steps: [step(w, 'a', { run: hang })] };
    const seq = new Sequencer({ journalDir: dir, definitions: [v1], ...fast });
    const { done } = await seq.start('demo', 'j', {});
    await seq.stop();
    await expect(done).rejects.toMatchObject({ code: 'SEQ_CANCELLED' });
    const v2 = new Sequencer({ journalDir: dir, definitions: [{ ...v1, version: 2 }], ...fast });
    await expect(v2.resumeAll()).rejects.toMatchObject({ code: 'SEQ_JOURNAL_MISMATCH' });
  });
});

describe('journal files', () => {
  it('drop a torn last line and reject a corrupt or out-of-sequence one', async () => {
    const j = await JournalFile.create(dir, 'j', { type: 'job-started', jobId: 'j', kind: 'demo', version: 1, input: {} });
    await j.append({ type: 'step-started', step: 'a', attempt: 1 });
    await j.close();
    const path = JournalFile.pathFor(dir, 'j');
    await appendFile(path, '{"seq":3,"at":"x","type":"step-compl');
    const reopened = await JournalFile.open(dir, 'j');
    expect(reopened.all).toHaveLength(2);
    await reopened.append({ type: 'step-completed', step: 'a', result: 1 });
    await reopened.close();
    expect(decodeJournal(await readFile(path, 'utf8')).map((r) => r.seq)).toEqual([1, 2, 3]);

    const text = await readFile(path, 'utf8');
    const lines = text.trimEnd().split('\n');
    await writeFile(path, [lines[0], lines[2], lines[1]].join('\n') + '\n');
    await expect(JournalFile.read(dir, 'j')).rejects.toMatchObject({ code: 'SEQ_JOURNAL_CORRUPT', message: expect.stringContaining(':2') });
    await writeFile(path, lines[0] + '\nnot json\n');
    await expect(JournalFile.read(dir, 'j')).rejects.toMatchObject({ code: 'SEQ_JOURNAL_CORRUPT' });
    await expect(JournalFile.read(dir, 'nope')).rejects.toMatchObject({ code: 'SEQ_UNKNOWN_JOB' });
    expect(() => JournalFile.pathFor(dir, '../etc/passwd')).toThrow(IntercloudError);
  });
});

describe('decideNext', () => {
  it('always ends with every step done, or every started step compensated, or an operator called', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.constantFrom('ok', 'retry', 'fatal'), { minLength: 6, maxLength: 6 }),
      fc.integer({ min: -1, max: 5 }),
      fc.integer({ min: -1, max: 6 }),
      async (behaviour, pivotAt, cancelAt) => {
        const d = await mkdtemp(join(tmpdir(), 'seqp-'));
        try {
          const w = world();
          const seqHolder: { s?: Sequencer } = {};
          const steps = behaviour.map((b, i) => step(w, `s${i}`, {
            pivot: i === pivotAt,
            maxAttempts: 2,
            fail: () => {
              if (i === cancelAt) void seqHolder.s!.cancel('j');
              if (b === 'fatal') return new IntercloudError('TEST_NO', 'no');
              if (b === 'retry') return new IntercloudError('TEST_BUSY', 'busy', { retryable: true });
              return undefined;
            },
          }));
          const def: TransactionDefinition<unknown> = { kind: 'p', version: 1, steps };
          const seq = new Sequencer({ journalDir: d, definitions: [def], ...fast });
          seqHolder.s = seq;
          const outcome = await (await seq.start('p', 'j', {})).done;
          const pastPivot = pivotAt >= 0 && w.state.has(`s${pivotAt}`);
          if (outcome === 'completed') expect(w.state.size).toBe(6);
          if (outcome === 'compensated' || outcome === 'cancelled') {
            expect(pastPivot).toBe(false);
            expect(w.state.size).toBe(0);
          }
          if (outcome === 'needs-operator') expect(pastPivot).toBe(true);
          // Replaying the finished journal decides nothing new.
          expect(decideNext(shapesOf(def), await JournalFile.read(d, 'j'))).toEqual({ kind: 'finished', outcome });
        } finally {
          await rm(d, { recursive: true, force: true });
        }
      },
    ), { numRuns: 60 });
  });
});
