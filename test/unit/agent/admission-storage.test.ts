/**
 * Issue 12 finding 8: the target checks free storage before it accepts, through the
 * hypervisor adapter (here the in-memory fake adapter with 10 GiB of storage).
 */
import { describe, expect, it } from 'vitest';
import { FakeHypervisor } from '../../../adapters/hypervisor/fake/fake-hypervisor.js';
import { checkFreeStorage } from '../../../agent/daemon/admission.js';

const GiB = 1024 ** 3;
const hv = new FakeHypervisor({ name: 'cloud-b', vcpus: 4, memoryBytes: 8 * GiB, diskBytes: 10 * GiB, guestsIgnoreShutdown: false });
const offer = (...disks: number[]) => ({ offerId: 'o1', vm: { disks: disks.map((d, i) => ({ id: String(i), capacityBytes: d * GiB })) } });

describe('the accept-time storage check', () => {
  it('accepts disks that fit beside what live reservations hold', async () => {
    await expect(checkFreeStorage(hv, offer(4, 2), 4 * GiB)).resolves.toBeUndefined();
  });

  it('refuses, retryably, disks that do not fit in the free storage now', async () => {
    await expect(checkFreeStorage(hv, offer(4, 3), 4 * GiB)).rejects.toMatchObject({
      code: 'MIGRATE_NO_CAPACITY', retryable: true, details: { needBytes: 7 * GiB, freeBytes: 10 * GiB, reservedBytes: 4 * GiB },
    });
    await expect(checkFreeStorage(hv, offer(11), 0)).rejects.toMatchObject({ code: 'MIGRATE_NO_CAPACITY' });
  });
});
