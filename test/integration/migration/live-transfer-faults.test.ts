/**
 * Live moves (issue 15) with an agent killed (SIGKILL) during the last transfer — after
 * `stop-source` paused the guest and `transfer` saved it, while the saved state travels — and
 * started again on the same directory. The source's `transfer` step runs again (the guest stays
 * saved: `stop-source` is not run again) and the target's `receive` step goes on with what it had
 * not journaled; the move completes live: the guest goes on at cloud-b with no boot line, on a
 * disk byte-identical (`qemu-img compare`) to cloud-a's chain at the cut-over, both jobs end
 * completed, and the VM runs in one cloud only.
 */
import { describe, expect, it } from 'vitest';
import { federationHooks, inboundOf, lastJournalRecord } from './federation-fixture.js';
import {
  copyAtTransfer, expectLiveAtB, finish, follow, journal, logDuration, midLastTransfer, startLiveMove, starts,
} from './live-fault-rig.js';

const slot = federationHooks();

/** One live move with `victim`'s agent killed at 20% of the saved state's transfer and started again. */
async function killInLastTransfer(n: number, victim: 'source' | 'target') {
  const move = await startLiveMove(slot, n, 'small');
  const { f, jobId } = move;
  const agent = victim === 'source' ? f.a : f.b;
  const journalId = victim === 'source' ? jobId : inboundOf(jobId);
  let killedAt = '';
  const copy = copyAtTransfer(move);
  const fired = await follow(f, jobId, [
    copy.action,
    [midLastTransfer('state', 0.2), async () => {
      await agent.stop('SIGKILL');
      killedAt = await lastJournalRecord(agent, journalId);
      await agent.start();
    }],
  ]);
  expect(fired).toBe(2);
  const { job, target } = await finish(move, `${victim} killed in the last transfer with its journal at '${killedAt}'`);
  await expectLiveAtB(move, job, copy.at.hb!, { compare: true });
  expect(job.completedSteps).toEqual([
    'describe', 'find-peer', 'verify-peer', 'negotiate', 'pre-copy', 'stop-source', 'transfer', 'instantiate', 're-address', 'commit', 'release-source',
  ]);
  if (target === 'unknown') throw new Error(`cloud-b has no job for '${jobId}'`);
  expect(target.state).toBe('completed');
  expect(target.kind).toBe('migrate-in-live');
  expect(target.completedSteps).toContain('flatten');
  logDuration(move, `last-transfer ${victim}-kill test`);
  return { move, killedAt };
}

describe('live moves with an agent killed during the last transfer', () => {
  it('source killed while the saved state travels: sends the rest again and completes the move live', async () => {
    const { move, killedAt } = await killInLastTransfer(86, 'source');
    // The kill landed in the transfer, after the save (at 20% of the state's send).
    expect(killedAt).toBe('step-started transfer');
    const records = await journal(move.f.a, move.jobId);
    // The transfer ran again; the guest was saved and the disks pre-copied once.
    expect(starts(records, 'transfer')).toBe(2);
    expect(starts(records, 'stop-source')).toBe(1);
    expect(starts(records, 'pre-copy')).toBe(1);
  }, 900_000);

  it('target killed while the saved state arrives: resumes receiving and completes the move live', async () => {
    const { move, killedAt } = await killInLastTransfer(87, 'target');
    // The kill landed in the receive step (the pre-copied images journaled, the state not yet).
    expect(killedAt).toMatch(/^step-(started|checkpoint) receive$/);
    const records = await journal(move.f.b, inboundOf(move.jobId));
    expect(starts(records, 'receive')).toBe(2);
    // Images received before the kill were not received again: one checkpoint per image.
    const keys = records.filter((r) => r.type === 'step-checkpoint' && r.step === 'receive').map((r) => (r as { detail: { key: string } }).detail.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toContain('state');
  }, 900_000);
});
