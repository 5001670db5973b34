/**
 * Live moves (issue 15) with cloud-b's RabbitMQ (the broker the pre-copy images travel through),
 * or cloud-a's (the node that also carries the control vhost), killed (SIGKILL) during a pre-copy round and started again with `scripts/services up rabbitmq`,
 * under the federation lock the file holds. The move completes live (or compensates cleanly), and
 * either way the VM runs in exactly one cloud; after a completed move cloud-b's disk is
 * byte-identical (`qemu-img compare`) to cloud-a's chain at the cut-over, after a compensation
 * the guest runs on at cloud-a, never rebooted.
 */
import { describe, it } from 'vitest';
import { loadServicesFile } from '../../../scripts/local-federation.js';
import { STATE_DIR } from '../../helpers/services.js';
import { federationHooks, type Cloud } from './federation-fixture.js';
import { serverKilledAt } from './live-fault-rig.js';

const slot = federationHooks();

/** One move with `broker`'s RabbitMQ killed at 20% of a pre-copy round and started again. */
async function brokerKilledMidRound(n: number, broker: Cloud): Promise<void> {
  const pidFile = loadServicesFile(STATE_DIR).brokers[broker]!.pidFile;
  await serverKilledAt(slot, n, { what: `${broker} broker`, pidFile, service: 'rabbitmq' });
}

describe('live moves with a broker killed during a pre-copy round', () => {
  it("cloud-b's broker killed mid-round and started again: the vm ends in one cloud, its disk identical", async () => {
    await brokerKilledMidRound(76, 'cloud-b');
  }, 900_000);

  it("cloud-a's broker killed mid-round and started again: the vm ends in one cloud, its disk identical", async () => {
    await brokerKilledMidRound(79, 'cloud-a');
  }, 900_000);
});
