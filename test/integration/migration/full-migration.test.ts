/**
 * A full migration cloud-a → cloud-b with real agents, servers and VMs: the job completes,
 * every step ran once, and the invariant holds (checked with virsh, the disk bytes, the
 * guest's heartbeat, both audit logs and the LISP mapping).
 */
import { describe, expect, it } from 'vitest';
import { assertInvariant, federationHooks, migrateToCompletion, setUpFederation } from './federation-fixture.js';

describe('a full migration between two clouds', () => {
  const slot = federationHooks();

  it('moves the vm with its mac, disk bytes and address, and removes it from the source', async () => {
    const f = (slot.f = await setUpFederation(1, { diskMiB: 64, randomMiB: 16 }));
    await assertInvariant(f, 'cloud-a');
    const { job, target } = await migrateToCompletion(f);
    expect(job.completedSteps).toEqual([
      'describe', 'find-peer', 'verify-peer', 'negotiate', 'stop-source', 'transfer', 'instantiate', 're-address', 'commit', 'release-source',
    ]);
    // The transfer's whole digest the source sent is the one the target computed on receipt.
    const sent = (job.results['transfer'] as { digests: Record<string, string> }).digests;
    const received = target.results['receive'] as Record<string, { sha256: string }>;
    expect(Object.keys(sent)).toEqual(['0']);
    expect(received['0']?.sha256).toBe(sent['0']);
    expect(await assertInvariant(f)).toBe('cloud-b');
  });
});
