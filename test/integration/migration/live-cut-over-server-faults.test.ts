/**
 * Live moves (issue 15) with a shared server killed (SIGKILL) at the cut-over, after the guest
 * was paused, and started again with `scripts/services up`, under the federation lock the file
 * holds:
 *
 * - cloud-a's libvirtd in the save (`virsh save` writing the guest's memory: the job it runs dies
 *   with it, and libvirtd, started again, finds the guest's QEMU still there);
 * - cloud-b's broker in the last transfer (the saved state on its way);
 * - cloud-b's libvirtd in the restore (`virsh restore` has made the domain at cloud-b);
 * - cloud-a's broker in the restore (the source's control vhost, while it waits for the target).
 *
 * Each move completes live or compensates cleanly, and either way the VM runs in exactly one
 * cloud: after a completed move cloud-b's disk is byte-identical (`qemu-img compare`) to cloud-a's
 * chain at the cut-over and the guest goes on there with no boot line; after a compensation the
 * guest runs on at cloud-a, never rebooted, and nothing of it is left at cloud-b.
 */
import { describe, it } from 'vitest';
import { loadServicesFile } from '../../../scripts/local-federation.js';
import { serviceEnv, STATE_DIR } from '../../helpers/services.js';
import { federationHooks, type Cloud } from './federation-fixture.js';
import { IN_THE_LAST_TRANSFER, IN_THE_RESTORE, IN_THE_SAVE, serverKilledAt, type KilledServer } from './live-fault-rig.js';

const slot = federationHooks();

const libvirtd = (cloud: Cloud): KilledServer => ({
  what: `${cloud} libvirtd`, service: 'libvirt',
  pidFile: serviceEnv<{ instances: Record<string, { pidFile: string }> }>('libvirt').instances[cloud]!.pidFile,
});

const broker = (cloud: Cloud): KilledServer => ({
  what: `${cloud} broker`, service: 'rabbitmq', pidFile: loadServicesFile(STATE_DIR).brokers[cloud]!.pidFile,
});

describe('live moves with a server killed at the cut-over', () => {
  it("cloud-a's libvirtd killed in the save: the vm ends in one cloud, never in two", async () => {
    await serverKilledAt(slot, 91, libvirtd('cloud-a'), IN_THE_SAVE);
  }, 900_000);

  it("cloud-b's broker killed in the last transfer: the vm ends in one cloud, its disk identical", async () => {
    await serverKilledAt(slot, 92, broker('cloud-b'), IN_THE_LAST_TRANSFER);
  }, 900_000);

  it("cloud-b's libvirtd killed in the restore: the vm ends in one cloud, never in two", async () => {
    await serverKilledAt(slot, 93, libvirtd('cloud-b'), IN_THE_RESTORE);
  }, 900_000);

  it("cloud-a's broker killed in the restore: the vm ends in one cloud, its disk identical", async () => {
    await serverKilledAt(slot, 94, broker('cloud-a'), IN_THE_RESTORE);
  }, 900_000);
});
