/**
 * Live moves (issue 15) with an agent killed (SIGKILL) during a pre-copy round and started
 * again on the same directory: the source resumes the round it was in (the hypervisor's chain
 * and the step's journaled checkpoints: no new round started for the one that was cut, the
 * base sent once), the target resumes receiving; the move completes live — the guest's
 * heartbeat goes on at cloud-b with no boot line — and the VM runs in one cloud only.
 */
import { describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../../agent/sequencer/index.js';
import { federationHooks, inboundOf, lastJournalRecord, onEvent } from './federation-fixture.js';
import { expectLiveAtB, finish, journal, lastHeartbeat, midRound, startLiveMove, starts } from './live-fault-rig.js';

const slot = federationHooks();

async function killMidRound(n: number, victim: 'source' | 'target') {
  const move = await startLiveMove(slot, n, 'large');
  const { f, jobId } = move;
  const agent = victim === 'source' ? f.a : f.b;
  let killedAt = '';
  await onEvent(f, jobId, midRound(0.2), async () => {
    await agent.stop('SIGKILL');
    killedAt = await lastJournalRecord(agent, victim === 'source' ? jobId : inboundOf(jobId));
    await agent.start();
  });
  const { job } = await finish(move, `${victim} killed mid-round with its journal at '${killedAt}'`);
  // The guest went on at cloud-b: no boot there.
  await expectLiveAtB(move, job, lastHeartbeat(move.logA), { compare: false });
  return { f, jobId, killedAt };
}

describe('live moves with an agent killed during a pre-copy round', () => {
  it('source killed mid-round: resumes the round it was in and completes the move live', async () => {
    const { f, jobId, killedAt } = await killMidRound(73, 'source');
    expect(killedAt).toMatch(/pre-copy/);
    const records = await journal(f.a, jobId);
    // The pre-copy step ran twice (killed, resumed) ...
    expect(starts(records, 'pre-copy')).toBe(2);
    // ... and went on with round 1 (its base), not a new round: the first checkpoint is round 1 with the base only.
    const checkpoints = records.filter((r): r is Extract<JournalRecord, { type: 'step-checkpoint' }> => r.type === 'step-checkpoint');
    const first = checkpoints[0]!.detail as { round: number; sent: Record<string, string> };
    expect(first.round).toBe(1);
    expect(Object.keys(first.sent)).toEqual(['0.0']);
    const rounds = checkpoints.map((c) => (c.detail as { round: number }).round);
    expect(new Set(rounds).size).toBe(rounds.length);
  }, 900_000);

  it('target killed mid-round: resumes receiving and completes the move live', async () => {
    const { killedAt } = await killMidRound(74, 'target');
    expect(killedAt).toMatch(/receive/);
  }, 900_000);
});
