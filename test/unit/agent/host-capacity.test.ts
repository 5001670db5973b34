import { describe, expect, it } from 'vitest';
import { advertisedCapacity } from '../../../agent/admission/index.js';

const GiB = 1024 ** 3;
const host = (vcpusTotal: number, vcpusFree: number) => ({
  vcpusTotal, vcpusFree, memoryBytesTotal: 8 * GiB, memoryBytesFree: 3 * GiB + 5, diskBytesTotal: 100 * GiB, diskBytesFree: 40.5 * GiB,
});

describe('the capacity a cloud advertises (policy.cpuAllocationRatio)', () => {
  it('without overcommit: the vCPUs running VMs leave free, whole MiB and GiB, the storage lent', () => {
    expect(advertisedCapacity(host(2, 1), 7, 1)).toEqual({ vcpus: 1, memoryMiB: 3072, diskGiB: 40, objectStorageGiB: 7 });
  });
  it('with a ratio of 4, two CPUs offer 8 vCPUs less those held, never below zero', () => {
    expect(advertisedCapacity(host(2, 1), 0, 4).vcpus).toBe(7);
    expect(advertisedCapacity(host(2, -3), 0, 4).vcpus).toBe(3);
    expect(advertisedCapacity(host(2, -10), 0, 4).vcpus).toBe(0);
    expect(advertisedCapacity(host(2, -3), 0, 1).vcpus).toBe(0);
  });
  it('a ratio below 1 keeps CPUs for the host', () => {
    expect(advertisedCapacity(host(8, 8), 0, 0.5).vcpus).toBe(4);
  });
});
