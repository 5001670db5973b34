import { defineConfig } from 'vitest/config';

/**
 * `unit` is hermetic (no servers, no root). The tests that talk to the real servers that
 * `scripts/services up` starts on loopback are in four projects, by what they do to those servers:
 *
 * - `integration-exclusive`: tests that kill, restart or cut a shared server (a broker, a Root, the
 *   s2s link, libvirtd, the LISP map server) or re-issue what every client trusts (the CRL). They
 *   must run alone.
 * - `integration-federation`: two real agents migrating a VM, and the XMPP tests whose gateways log
 *   in under the same cloud JIDs the agents use.
 * - `integration-vm`: tests that define or run VMs in the clouds' libvirtd (or vcsim), or drive
 *   libvirtd hard ({@link VM_TESTS}).
 * - `integration`: the rest. They use their own transfer ids, buckets, EIDs and accounts, run no
 *   VM, and break nothing anyone else uses.
 *
 * Each server project runs its files one at a time. `scripts/test` (the README's `npm test`) runs
 * `integration-exclusive` alone first (with `unit` beside it), then `integration-federation`,
 * `integration-vm` and `integration` in three processes side by side. VM tests may run beside the
 * federation because the tests' agents overcommit vCPUs (`policy.cpuAllocationRatio` 4): a
 * migration's find-peer reads the target's free vCPUs from its signed catalog entry, and a
 * hypervisor test's VMs in the same libvirtd left none on two CPUs. A new test that stops,
 * restarts or reconfigures a shared server goes in {@link EXCLUSIVE}; one that defines or runs
 * a VM goes in {@link VM_TESTS}.
 */
const EXCLUSIVE = [
  'test/integration/amqp/faults.test.ts',
  'test/integration/lisp/eid-ownership.test.ts',
  'test/integration/migration/broker-per-cloud.test.ts',
  // kills a libvirtd or a broker during a live move's pre-copy and at its cut-over (save, last transfer,
  // restore) and starts it again with `scripts/services up libvirt|rabbitmq`
  'test/integration/migration/live-server-faults.test.ts',
  'test/integration/migration/server-crash.test.ts',
  'test/integration/migration/two-roots.test.ts',
  // kills cloud-b's broker and starts it again with `scripts/services up rabbitmq`
  'test/integration/replication/broker-restart.test.ts',
  // kills cloud-b's Swift proxy and starts it again with `scripts/services up swift`
  'test/integration/replication/swift-replication.test.ts',
  // kills cloud-a's Swift proxy and object server and starts them again with `scripts/services up swift`
  'test/integration/replication/swift-a-down.test.ts',
  // wipes one of cloud-b's Swift object devices and runs Swift's object replicator
  'test/integration/replication/wiped-device.test.ts',
  'test/integration/services/dispatcher.test.ts',
  'test/integration/services/inherited-fds.test.ts',
  'test/integration/services/revocation.test.ts',
  'test/integration/services/swift.test.ts',
  'test/integration/xmpp/crl-live.test.ts',
  'test/integration/xmpp/server-restart.test.ts',
];

const FEDERATION = [
  'test/integration/migration/**/*.test.ts',
  'test/integration/xmpp/**/*.test.ts',
  // Run the two clouds' agents (storage-daemon*), or set cloud-a's grant on cloud-b's `transfers`
  // vhost as cloud-b's agent does (subcontract-grants): they take the federation lock. The other
  // replication tests work in a vhost and buckets of their own and run in `integration`.
  'test/integration/replication/storage-daemon*.test.ts',
  'test/integration/replication/subcontract-grants.test.ts',
];

/** Tests that define or run VMs (libvirtd of cloud-a/cloud-b, vcsim) or drive libvirtd. */
const VM_TESTS = [
  'test/conformance/hypervisor/**/*.test.ts',
  'test/integration/hypervisor/**/*.test.ts',
  'test/integration/descriptors/libvirt-define.test.ts',
  'test/integration/descriptors/ovf-vcsim.test.ts',
  'test/integration/services/libvirt.test.ts',
];

const SERVER_TESTS = ['test/integration/**/*.test.ts', 'test/conformance/**/*.test.ts'];

const serverTimeouts = { testTimeout: 120_000, hookTimeout: 180_000 };

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: SERVER_TESTS,
          exclude: [...FEDERATION, ...EXCLUSIVE, ...VM_TESTS],
          ...serverTimeouts,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'integration-vm',
          include: VM_TESTS,
          exclude: [...FEDERATION, ...EXCLUSIVE],
          ...serverTimeouts,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'integration-federation',
          include: FEDERATION,
          exclude: EXCLUSIVE,
          ...serverTimeouts,
          // A test here boots a guest twice and migrates it while `unit` runs beside it.
          testTimeout: 240_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'integration-exclusive',
          include: EXCLUSIVE,
          ...serverTimeouts,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
