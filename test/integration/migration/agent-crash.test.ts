/**
 * Real agents killed (SIGKILL) while a migration runs, then started again with the same
 * directory and config so they resume from their journals. Whatever the job's outcome
 * (completed or compensated), the invariant must hold once it ends.
 *
 * Boundaries covered here: the source at negotiate (an offer in flight, nothing moved), mid-
 * transfer (VM stopped, disk half sent) and at commit (the pivot); the target mid-transfer
 * (disk half received) and at instantiate (the source waiting for the VM to run there).
 * Every other boundary, and crashes during compensation, are covered with fakes in
 * test/unit/migration/migration.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { JobStatus } from '../../../agent/sequencer/index.js';
import type { AgentProcess } from '../../../scripts/local-federation.js';
import {
  assertInvariant, federationHooks, inboundOf, lastJournalRecord, midTransfer, migrate, onEvent, setUpFederation, stepStarts, waitForEnd,
  waitForTargetEnd, type ApiEvent, type FederationOptions,
} from './federation-fixture.js';

const slot = federationHooks();

/** A disk big enough (random bytes) that a kill lands while it is on the wire. */
const BIG: FederationOptions = { diskMiB: 192, randomMiB: 160 };

/**
 * Migrates, kills `victim` (SIGKILL) on the first event `when` matches, starts it again,
 * and returns the source job's end state, the target's, and where the victim's journal
 * stood when it died.
 */
async function crashAndResume(n: number, victim: 'source' | 'target', when: (e: ApiEvent) => boolean, o: FederationOptions = {}) {
  const fed = (slot.f = await setUpFederation(n, o));
  const agent: AgentProcess = victim === 'source' ? fed.a : fed.b;
  const { jobId } = await migrate(fed);
  const jobAtVictim = victim === 'source' ? jobId : inboundOf(jobId);
  let killedAt = '';
  await onEvent(fed, jobId, when, async () => {
    await agent.stop('SIGKILL');
    killedAt = await lastJournalRecord(agent, jobAtVictim);
    await agent.start();
  });
  const job: JobStatus = await waitForEnd(fed.a, jobId);
  const target = await waitForTargetEnd(fed, jobId);
  const where = await assertInvariant(fed);
  console.info(`${victim} killed with its journal at '${killedAt}': source ${job.state}${job.error ? ` (${job.error.code})` : ''}, target ${target === 'unknown' ? 'no job' : target.state}, vm in ${where}`);
  return { job, target, where, killedAt };
}

describe('agents killed during a migration and restarted', () => {
  it('source killed at negotiate: resumes and finishes with the vm in one cloud', async () => {
    const r = await crashAndResume(11, 'source', stepStarts('negotiate'));
    expect(['completed', 'compensated']).toContain(r.job.state);
    expect(r.where).toBe(r.job.state === 'completed' ? 'cloud-b' : 'cloud-a');
  }, 240_000);

  it('source killed mid-transfer: resumes the transfer and finishes', async () => {
    const r = await crashAndResume(12, 'source', midTransfer(0.2), BIG);
    expect(r.killedAt).toMatch(/transfer/);
    expect(['completed', 'compensated']).toContain(r.job.state);
    expect(r.where).toBe(r.job.state === 'completed' ? 'cloud-b' : 'cloud-a');
  }, 240_000);

  it('source killed at commit (the pivot): rolls forward, the vm stays at the target', async () => {
    const r = await crashAndResume(13, 'source', stepStarts('commit'));
    // Past re-address nothing compensates the target's running VM away: either commit had
    // completed or it is retried; the move must complete.
    expect(r.job.state).toBe('completed');
    expect(r.where).toBe('cloud-b');
  }, 240_000);

  it('target killed mid-transfer: resumes receiving and finishes', async () => {
    const r = await crashAndResume(14, 'target', midTransfer(0.2), BIG);
    expect(['completed', 'compensated']).toContain(r.job.state);
    expect(r.where).toBe(r.job.state === 'completed' ? 'cloud-b' : 'cloud-a');
  }, 240_000);

  it('target killed at instantiate: finishes with the vm in one cloud', async () => {
    const r = await crashAndResume(15, 'target', stepStarts('instantiate'));
    expect(['completed', 'compensated']).toContain(r.job.state);
    expect(r.where).toBe(r.job.state === 'completed' ? 'cloud-b' : 'cloud-a');
  }, 240_000);
});
