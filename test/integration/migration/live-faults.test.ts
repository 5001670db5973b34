/**
 * Live moves (issue 15) with an agent killed (SIGKILL) during a pre-copy round and started
 * again on the same directory: the source resumes the round it was in (the hypervisor's chain
 * and the step's journaled checkpoints: no new round started for the one that was cut, the
 * base sent once), the target resumes receiving; the move completes live — the guest's
 * heartbeat goes on at cloud-b with no boot line — and the VM runs in one cloud only.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../../agent/sequencer/index.js';
import type { AgentProcess } from '../../../scripts/local-federation.js';
import { heartbeats, waitForHeartbeat } from '../hypervisor/writing-guest.js';
import {
  assertInvariant, federationHooks, inboundOf, lastJournalRecord, onEvent, setUpFederation, waitForEnd, waitForTargetEnd, type ApiEvent,
} from './federation-fixture.js';

const slot = federationHooks();

/** The first pre-copy progress past `fraction` of an image (mid-round). */
const midRound = (fraction: number) => (e: ApiEvent): boolean => {
  if (e.type !== 'progress' || e.step !== 'pre-copy') return false;
  const { bytesDone, bytesTotal } = e.detail as { bytesDone: number; bytesTotal: number };
  return bytesDone >= fraction * bytesTotal && bytesDone < bytesTotal;
};

async function journal(agent: AgentProcess, jobId: string): Promise<JournalRecord[]> {
  const text = await fs.readFile(join(agent.dir, 'state', 'journal', `${jobId}.journal`), 'utf8');
  return text.trim().split('\n').map((l) => JSON.parse(l) as JournalRecord);
}

async function killMidRound(n: number, victim: 'source' | 'target') {
  const f = (slot.f = await setUpFederation(n, { diskMiB: 192, randomMiB: 160 }));
  const logA = join(f.a.dir, 'consoles', `${f.vm}-created.log`);
  await waitForHeartbeat(logA, 2, 60_000);
  const agent = victim === 'source' ? f.a : f.b;
  const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], mode: 'live' });
  let killedAt = '';
  await onEvent(f, jobId, midRound(0.2), async () => {
    await agent.stop('SIGKILL');
    killedAt = await lastJournalRecord(agent, victim === 'source' ? jobId : inboundOf(jobId));
    await agent.start();
  });
  const job = await waitForEnd(f.a, jobId, 600_000);
  const target = await waitForTargetEnd(f, jobId, 300_000);
  console.info(`${victim} killed mid-round with its journal at '${killedAt}': source ${job.state}${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}, `
    + `target ${target === 'unknown' ? 'no job' : target.state}`);
  expect(job.error).toBeUndefined();
  expect(job.state).toBe('completed');
  expect((job.results['commit'] as { mode: string }).mode).toBe('live');
  // The guest went on at cloud-b: no boot there.
  const logB = join(f.b.dir, 'consoles', `${f.vm}-serial0.log`);
  const lastA = heartbeats(readFileSync(logA, 'latin1')).at(-1)!;
  const hbB = await waitForHeartbeat(logB, lastA.n + 1, 60_000);
  expect(hbB[0]!.n).toBeGreaterThan(lastA.n);
  expect(readFileSync(logB, 'latin1')).not.toContain('INTERCLOUD-GUEST-UP');
  expect(await assertInvariant(f)).toBe('cloud-b');
  return { f, jobId, killedAt };
}

describe('live moves with an agent killed during a pre-copy round', () => {
  it('source killed mid-round: resumes the round it was in and completes the move live', async () => {
    const { f, jobId, killedAt } = await killMidRound(73, 'source');
    expect(killedAt).toMatch(/pre-copy/);
    const records = await journal(f.a, jobId);
    // The pre-copy step ran twice (killed, resumed) ...
    expect(records.filter((r) => r.type === 'step-started' && r.step === 'pre-copy').length).toBe(2);
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
