/**
 * Live moves (issue 15) with a cloud's libvirtd killed (SIGKILL) during a pre-copy round and
 * started again with `scripts/services up libvirt`, under the federation lock the file holds:
 * cloud-a's (the source's hypervisor: the guest's QEMU outlives libvirtd, its heartbeat goes on
 * meanwhile, no reboot) and cloud-b's (the target's, whose storage the images are received into).
 * The move completes live (or compensates cleanly), and either way the VM runs in exactly one
 * cloud; after a completed move cloud-b's disk is byte-identical (`qemu-img compare`) to
 * cloud-a's chain at the cut-over, after a compensation the guest runs on at cloud-a, never
 * rebooted.
 */
import { describe, expect, it } from 'vitest';
import { serviceEnv } from '../../helpers/services.js';
import { waitForHeartbeat } from '../hypervisor/writing-guest.js';
import { federationHooks, type Cloud } from './federation-fixture.js';
import { lastHeartbeat, serverKilledAt } from './live-fault-rig.js';

const slot = federationHooks();

/** One move with `cloud`'s libvirtd killed at 20% of a pre-copy round and started again. */
async function libvirtdKilledMidRound(n: number, cloud: Cloud): Promise<void> {
  const pidFile = serviceEnv<{ instances: Record<string, { pidFile: string }> }>('libvirt').instances[cloud]!.pidFile;
  let hbWhileDown = -1;
  await serverKilledAt(slot, n, {
    what: `${cloud} libvirtd`, pidFile, service: 'libvirt',
    whileDown: async ({ logA }) => {
      if (cloud === 'cloud-a') {
        // QEMU is not libvirtd's child in spirit: the guest goes on writing its heartbeat.
        hbWhileDown = (await waitForHeartbeat(logA, lastHeartbeat(logA).n + 1, 30_000)).at(-1)!.n;
      } else {
        // The target's libvirtd: the source may reach its cut-over meanwhile (a pre-copy of one
        // round takes about as long as the kill), and then the guest is paused, rightly.
        await new Promise((r) => setTimeout(r, 2000));
      }
    },
  });
  if (cloud === 'cloud-a') expect(hbWhileDown).toBeGreaterThan(0);
}

describe('live moves with a libvirtd killed during a pre-copy round', () => {
  it("cloud-a's libvirtd killed mid-round and started again: the guest runs on, the vm ends in one cloud, its disk identical", async () => {
    await libvirtdKilledMidRound(78, 'cloud-a');
  }, 900_000);

  it("cloud-b's libvirtd killed mid-round and started again: the vm ends in one cloud, its disk identical", async () => {
    await libvirtdKilledMidRound(88, 'cloud-b');
  }, 900_000);
});
