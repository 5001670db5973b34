/**
 * What this cloud's catalog entry advertises as free, from the hypervisor's host capacity and the
 * config: the free capacity the reservation book then draws from.
 */
import type { HostCapacity } from '../../adapters/hypervisor/index.js';
import type { CloudProfile } from '../../protocols/xmpp/index.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/**
 * The catalog's view of a host's free capacity, and the object storage this cloud lends (its
 * config's; the session subtracts what is reserved). vCPUs: the host's CPUs times the configured
 * allocation ratio (`policy.cpuAllocationRatio`, Nova's `cpu_allocation_ratio`), less those its
 * running VMs hold; never below zero.
 */
export function advertisedCapacity(c: HostCapacity, objectStorageGiB: number, cpuAllocationRatio: number): CloudProfile['capacity'] {
  const vcpusHeld = c.vcpusTotal - c.vcpusFree;
  return {
    vcpus: Math.max(0, Math.floor(c.vcpusTotal * cpuAllocationRatio) - vcpusHeld),
    memoryMiB: Math.max(0, Math.floor(c.memoryBytesFree / MiB)),
    diskGiB: Math.max(0, Math.floor(c.diskBytesFree / GiB)),
    objectStorageGiB,
  };
}
