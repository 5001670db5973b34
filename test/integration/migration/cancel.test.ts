/**
 * Cancelling a migration through the local API before the pivot: during negotiate (nothing
 * moved yet) and during the transfer (the VM stopped, the disk half sent). The job ends
 * cancelled, the VM runs at the source as before, nothing of it is left at the target.
 * Cancels at the other steps are covered with fakes in test/unit/migration/migration.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  assertInvariant, federationHooks, midTransfer, migrate, onEvent, setUpFederation, stepStarts, waitForEnd, waitForTargetEnd,
  type ApiEvent, type FederationOptions,
} from './federation-fixture.js';

const slot = federationHooks();

async function cancelAt(n: number, when: (e: ApiEvent) => boolean, o: FederationOptions = {}) {
  const fed = (slot.f = await setUpFederation(n, o));
  const { jobId } = await migrate(fed);
  let answer: { accepted: boolean; state: string } | undefined;
  await onEvent(fed, jobId, when, async () => { answer = await fed.a.api.cancel(jobId); });
  expect(answer).toEqual({ accepted: true, state: 'running' });
  const job = await waitForEnd(fed.a, jobId);
  expect(job.state).toBe('cancelled');
  expect(job.cancelRequested).toBe(true);
  const target = await waitForTargetEnd(fed, jobId);
  if (target !== 'unknown') expect(target.state).not.toBe('completed');
  expect(await assertInvariant(fed)).toBe('cloud-a');
  return job;
}

describe('a migration cancelled through the local api', () => {
  it('during negotiate: the vm keeps running at the source', async () => {
    await cancelAt(31, stepStarts('negotiate'));
  });

  it('during the transfer: the vm runs at the source again, nothing at the target', async () => {
    const job = await cancelAt(32, midTransfer(0.2), { diskMiB: 192, randomMiB: 160 });
    expect(job.completedSteps).toContain('stop-source');
    expect(job.completedSteps).not.toContain('transfer');
  });
});
