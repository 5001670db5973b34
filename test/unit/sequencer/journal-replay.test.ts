/**
 * Journals recorded by real agents (`test/fixtures/journals/`, written by migrations between
 * two real clouds in test/integration/migration: a completed move, a move whose target agent
 * was killed at instantiate and restarted — retries and a step resumed after a crash — and a
 * move cancelled during the transfer — compensation), and journals of storage subcontracts
 * (issue 14, `subcontract-*.journal`, recorded by the two-cloud world of test/unit/subcontract:
 * a completed subcontract at A, B's side of it with B restarted while active, an accept A refused
 * at both ends, and B refusing to adopt a bucket that was there), and journals of live moves
 * (issue 15, `live-*.journal`, both sides of a completed live move — with its pre-copy and receive
 * checkpoints — and of one cancelled during the pre-copy, recorded by
 * test/integration/migration/live-migration.test.ts) replay to the same decisions:
 * for every prefix of the recorded records,
 * {@link decideNext} over the shapes of today's `migrateOutDefinition` / `migrateInDefinition`
 * gives the move the recorded next record shows (run or compensate the recorded step with the
 * recorded attempt, or finish with the recorded outcome and error code).
 *
 * The definitions are built over ports that throw when touched: replaying decides, it never acts.
 *
 * A recorded journal that no longer replays means a change of the steps (names, order,
 * pivot, attempts, compensations) or of the decision rules that agents with unfinished jobs
 * on disk would resume wrongly after an upgrade: that is a breaking change. Bump the
 * definition's `version` (the sequencer then refuses such journals with
 * `SEQ_JOURNAL_MISMATCH`) and record new fixtures; do not edit these.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  migrateInDefinition, migrateInLiveDefinition, migrateMoveDefinition, migrateOutDefinition, type SourcePorts, type TargetPorts,
} from '../../../agent/migration/index.js';
import {
  subcontractInDefinition, subcontractOutDefinition, type SubcontractInPorts, type SubcontractOutPorts,
} from '../../../agent/subcontract/index.js';
import {
  decideNext, decodeJournal, shapesOf, type Decision, type JournalRecord, type TransactionDefinition,
} from '../../../agent/sequencer/index.js';

const FIXTURES = resolve(import.meta.dirname, '../../fixtures/journals');

/** Ports whose every use throws: replay must not touch them. */
function untouchable<T extends object>(what: string): T {
  return new Proxy({} as T, {
    get(_t, prop) {
      throw new Error(`replay touched the ${what} port ('${String(prop)}')`);
    },
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const DEFINITIONS: Record<string, TransactionDefinition<any>> = {
  'migrate-out': migrateOutDefinition(untouchable<SourcePorts>('source')),
  'migrate-in': migrateInDefinition(untouchable<TargetPorts>('target')),
  'migrate-move': migrateMoveDefinition(untouchable<SourcePorts>('source')),
  'migrate-in-live': migrateInLiveDefinition(untouchable<TargetPorts>('target')),
  'subcontract-out': subcontractOutDefinition(untouchable<SubcontractOutPorts>('subcontract-out')),
  'subcontract-in': subcontractInDefinition(untouchable<SubcontractInPorts>('subcontract-in')),
};

/** The decision a recorded record shows was taken, or undefined for records that are results. */
function recordedDecision(r: JournalRecord): Decision | undefined {
  switch (r.type) {
    case 'step-started': return { kind: 'run', step: r.step, attempt: r.attempt };
    case 'compensation-started': return { kind: 'compensate', step: r.step, attempt: r.attempt };
    case 'job-finished': return { kind: 'finish', outcome: r.outcome, ...(r.error ? { error: r.error } : {}) };
    default: return undefined;
  }
}

const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.journal')).sort();

describe('recorded journals replay to the same decisions', () => {
  it('has recordings of both sides of a completed migration', () => {
    const kinds = files.map((f) => decodeJournal(readFileSync(join(FIXTURES, f), 'utf8'), f)[0]).map((r) => r?.type === 'job-started' ? r.kind : '');
    expect(kinds).toEqual(expect.arrayContaining(['migrate-out', 'migrate-in', 'migrate-move', 'migrate-in-live', 'subcontract-out', 'subcontract-in']));
  });

  for (const file of files) {
    describe(file, () => {
      const records = decodeJournal(readFileSync(join(FIXTURES, file), 'utf8'), file);
      const first = records[0];
      if (first?.type !== 'job-started') throw new Error(`${file} does not begin with job-started`);
      const def = DEFINITIONS[first.kind];
      if (!def) throw new Error(`${file}: no definition for kind '${first.kind}'`);
      const shapes = shapesOf(def);

      it(`was written by ${first.kind} version ${def.version}`, () => {
        expect(first.version).toBe(def.version);
      });

      it('gives, for every prefix, the decision the next recorded record shows', () => {
        let checked = 0;
        for (let k = 1; k < records.length; k++) {
          const want = recordedDecision(records[k]!);
          if (!want) continue;
          expect(decideNext(shapes, records.slice(0, k)), `${file}: after record ${k} (seq ${records[k - 1]!.seq})`).toEqual(want);
          checked++;
        }
        // Every step start and the finish were decisions.
        expect(checked).toBe(records.filter((r) => recordedDecision(r) !== undefined).length);
      });

      it('is finished once the whole journal is read', () => {
        const end = records[records.length - 1];
        expect(end?.type).toBe('job-finished');
        expect(decideNext(shapes, records)).toEqual({ kind: 'finished', outcome: end?.type === 'job-finished' ? end.outcome : undefined });
      });
    });
  }
});
