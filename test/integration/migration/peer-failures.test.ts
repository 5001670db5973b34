/**
 * Peers that do not see a migration through: one that rejects the offer (its policy accepts
 * no one), one that accepts and then disappears for good, and a reservation that expires
 * while the source is down. In every case the source ends the job and the VM runs at the
 * source, untouched.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assertInvariant, federationHooks, lastJournalRecord, migrate, onEvent, setUpFederation, stepStarts, waitForEnd,
  waitForTargetEnd,
} from './federation-fixture.js';

const slot = federationHooks();

describe('peers that do not complete a migration', () => {
  it('a peer that rejects: compensated with MIGRATE_REJECTED, the vm untouched at the source', async () => {
    const f = (slot.f = await setUpFederation(41, { b: { acceptFrom: [] } }));
    const { jobId } = await migrate(f);
    const job = await waitForEnd(f.a, jobId);
    expect(job.state).toBe('compensated');
    expect(job.error?.code).toBe('MIGRATE_REJECTED');
    expect(job.completedSteps).toEqual(['describe', 'find-peer', 'verify-peer']);
    expect(await waitForTargetEnd(f, jobId)).toBe('unknown');
    expect(await assertInvariant(f)).toBe('cloud-a');
  }, 240_000);

  it('a peer that accepts and disappears for good: the source gives up, the vm runs at the source', async () => {
    // The target's reservation is short so the source's transfer gives up in seconds.
    const fed = (slot.f = await setUpFederation(42, { b: { reservationSeconds: 12 } }));
    const { jobId } = await migrate(fed);
    await onEvent(fed, jobId, stepStarts('stop-source'), async () => { await fed.b.stop('SIGKILL'); });
    const job = await waitForEnd(fed.a, jobId);
    console.info(`target gone after negotiate: source ${job.state}${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}`);
    expect(job.state).toBe('compensated');
    expect(job.completedSteps).not.toContain('transfer');
    expect(await assertInvariant(fed)).toBe('cloud-a');
  }, 240_000);

  it('a reservation that expires while the source is down: the source compensates when it comes back', async () => {
    const fed = (slot.f = await setUpFederation(43, { b: { reservationSeconds: 10 } }));
    const { jobId } = await migrate(fed);
    let stoppedAt = '';
    await onEvent(fed, jobId, (e) => e.type === 'step-completed' && e.step === 'negotiate', async () => {
      await fed.a.stop('SIGKILL');
      stoppedAt = await lastJournalRecord(fed.a, jobId);
    });
    const negotiated = readFileSync(join(fed.a.dir, 'state', 'journal', `${jobId}.journal`), 'utf8');
    const expiresAt = /"expiresAt":"([^"]+)"/.exec(negotiated)?.[1];
    expect(expiresAt).toBeDefined();
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiresAt!) - Date.now()) + 1000));
    await fed.a.start();
    const job = await waitForEnd(fed.a, jobId);
    console.info(`source stopped at '${stoppedAt}', restarted after expiry: source ${job.state}${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}`);
    expect(job.state).toBe('compensated');
    const target = await waitForTargetEnd(fed, jobId);
    expect(target !== 'unknown' && target.state).toBe('compensated');
    expect(await assertInvariant(fed)).toBe('cloud-a');
  }, 240_000);
});
