/**
 * Live moves (issue 15) with the shared servers under them killed (SIGKILL) and started again
 * with `scripts/services up`, under the federation lock the file holds. Each move takes two
 * kills, one after the other: a server during a pre-copy round (20% into it), then another at
 * the cut-over, once the guest is paused:
 *
 * - in the save: `virsh save` writing the guest's memory (the job dies with libvirtd, which,
 *   started again, finds the guest's QEMU still there; or the broker, with overlays on the way);
 * - in the last transfer: the saved state on its way to cloud-b;
 * - in the restore: `virsh restore` has made the domain at cloud-b.
 *
 * cloud-a's libvirtd killed mid-round: the guest's QEMU outlives it, its heartbeat goes on
 * meanwhile. Each move completes live or compensates cleanly, and either way the VM runs in
 * exactly one cloud: after a completed move (every kill then happened) cloud-b's disk is
 * byte-identical (`qemu-img compare`) to cloud-a's chain at the cut-over and the guest goes on
 * there with no boot line; after a compensation the guest runs on at cloud-a, never rebooted,
 * and nothing of it is left at cloud-b.
 */
import { describe, expect, it } from 'vitest';
import { loadServicesFile } from '../../../scripts/local-federation.js';
import { serviceEnv, STATE_DIR } from '../../helpers/services.js';
import { waitForHeartbeat } from '../hypervisor/writing-guest.js';
import { federationHooks, type Cloud } from './federation-fixture.js';
import {
  IN_THE_LAST_TRANSFER, IN_THE_RESTORE, IN_THE_SAVE, MID_ROUND, lastHeartbeat, serversKilledAt, type KilledServer,
} from './live-fault-rig.js';

const slot = federationHooks();

/** The heartbeat the guest wrote at cloud-a while its libvirtd was down (-1: none checked). */
let heartbeatWhileDown = -1;

const libvirtd = (cloud: Cloud): KilledServer => ({
  what: `${cloud} libvirtd`, service: 'libvirt',
  pidFile: serviceEnv<{ instances: Record<string, { pidFile: string }> }>('libvirt').instances[cloud]!.pidFile,
});

/** cloud-a's libvirtd, checked while down: QEMU is not libvirtd's child in spirit, the guest writes on. */
const libvirtdA: KilledServer = {
  ...libvirtd('cloud-a'),
  whileDown: async ({ logA }) => { heartbeatWhileDown = (await waitForHeartbeat(logA, lastHeartbeat(logA).n + 1, 30_000)).at(-1)!.n; },
};

/** cloud-b's libvirtd, down 2 s (the source may reach its cut-over meanwhile, and then the guest is paused, rightly). */
const libvirtdB: KilledServer = { ...libvirtd('cloud-b'), whileDown: async () => { await new Promise((r) => setTimeout(r, 2000)); } };

const broker = (cloud: Cloud): KilledServer => ({
  what: `${cloud} broker`, service: 'rabbitmq', pidFile: loadServicesFile(STATE_DIR).brokers[cloud]!.pidFile,
});

describe('live moves with a libvirtd or a broker killed in a pre-copy round and at the cut-over', () => {
  it("cloud-a's libvirtd mid-round (the guest runs on), then cloud-b's broker in the last transfer", async () => {
    heartbeatWhileDown = -1;
    await serversKilledAt(slot, 78, [{ server: libvirtdA, point: MID_ROUND }, { server: broker('cloud-b'), point: IN_THE_LAST_TRANSFER }]);
    expect(heartbeatWhileDown).toBeGreaterThan(0);
  }, 900_000);

  it("cloud-b's libvirtd mid-round, then cloud-a's broker in the restore", async () => {
    await serversKilledAt(slot, 88, [{ server: libvirtdB, point: MID_ROUND }, { server: broker('cloud-a'), point: IN_THE_RESTORE }]);
  }, 900_000);

  it("cloud-b's broker mid-round, then cloud-a's libvirtd in the save", async () => {
    await serversKilledAt(slot, 76, [{ server: broker('cloud-b'), point: MID_ROUND }, { server: libvirtd('cloud-a'), point: IN_THE_SAVE }]);
  }, 900_000);

  it("cloud-a's broker mid-round, then cloud-b's libvirtd in the restore", async () => {
    await serversKilledAt(slot, 79, [{ server: broker('cloud-a'), point: MID_ROUND }, { server: libvirtd('cloud-b'), point: IN_THE_RESTORE }]);
  }, 900_000);

  // The two cut-over points the moves above leave out: the broker the transfers go through in the
  // save (the overlays on their way meanwhile), the source's libvirtd while the state travels.
  it("cloud-b's broker in the save, then cloud-a's libvirtd in the last transfer", async () => {
    await serversKilledAt(slot, 70, [{ server: broker('cloud-b'), point: IN_THE_SAVE }, { server: libvirtd('cloud-a'), point: IN_THE_LAST_TRANSFER }]);
  }, 900_000);
});
