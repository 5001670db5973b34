/**
 * Re-addressing by DNS instead of LISP, end to end: both agents configured with
 * `addressing.dns` (RFC 2136 updates signed with TSIG to the BIND that `scripts/services up`
 * starts), a real VM moved between the two libvirt clouds, and the VM's A record read back
 * from BIND with `dig`. The name `<vm>.vms.intercloud.test` stays; its A record points at the
 * locator of the cloud the VM runs in.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { assertNothingLeftAtTarget, federationHooks, inboundOf, migrate, migrateToCompletion, setUpFederation, waitForEnd, waitForTargetEnd } from './federation-fixture.js';
import { DnsRelay, assertRunsOnlyIn, digA, locatorOf, publishName, unpublishName, waitForTargetJob } from './dns-fixture.js';

const slot = federationHooks();
let relay: DnsRelay | undefined;
afterEach(async () => {
  if (slot.f) await unpublishName(slot.f);
  await relay?.close();
  relay = undefined;
});

describe('re-addressing by dns (rfc 2136 + tsig on bind)', () => {
  it('a migration moves the vm\'s A record from cloud-a\'s locator to cloud-b\'s', async () => {
    const f = (slot.f = await setUpFederation(51, { a: { addressing: 'dns' }, b: { addressing: 'dns' } }));
    await publishName(f, 'cloud-a');
    expect(await digA(f)).toEqual([locatorOf(f, 'cloud-a')]);

    await migrateToCompletion(f);

    expect(await digA(f)).toEqual([locatorOf(f, 'cloud-b')]);
    await assertRunsOnlyIn(f, 'cloud-b');
    await assertNothingLeftAtTarget(f, 'cloud-b');
  });

  it('a failure before the pivot puts the A record back at the source', async () => {
    // cloud-a's updates go through a relay that holds them: its withdraw goes unanswered while
    // cloud-b, which waits only 1 s for the commit, gives the vm up (withdrawing its record).
    // (cloud-a's start check goes unanswered too: for a silent server the agent only warns.)
    relay = await DnsRelay.start();
    const f = (slot.f = await setUpFederation(52, {
      a: { addressing: 'dns', dnsServer: relay.address },
      b: { addressing: 'dns', commitTimeoutMs: 1_000 },
    }));
    await publishName(f, 'cloud-a');
    const [a, b] = [locatorOf(f, 'cloud-a'), locatorOf(f, 'cloud-b')];

    const { jobId } = await migrate(f);
    await waitForTargetJob(f, jobId);
    const target = await waitForTargetEnd(f, jobId);
    if (target === 'unknown') throw new Error(`cloud-b has no job for '${inboundOf(jobId)}'`);
    expect(target.state).toBe('compensated');
    expect(target.completedSteps).toContain('re-address');
    expect(relay.dropped).toBeGreaterThan(0);
    expect(await digA(f)).toEqual([a]);

    // Now the source's withdraw gets through, its commit is refused, and it compensates.
    relay.release();
    const job = await waitForEnd(f.a, jobId);
    expect(job.state).toBe('compensated');
    expect(job.error?.code).toBe('MIGRATE_NO_RESERVATION');
    expect(relay.forwarded).toEqual([`delete ${a}`, `add ${a}`]);
    expect(await digA(f)).toEqual([a]);
    expect(await digA(f)).not.toContain(b);
    await assertRunsOnlyIn(f, 'cloud-a');
    await assertNothingLeftAtTarget(f, 'cloud-a');
  });
});
