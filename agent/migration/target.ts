/**
 * The target side of a VM migration, started when this cloud accepts an offer:
 *
 *   receive → await-instantiate → verify → define → start → re-address → await-commit (pivot)
 *
 * Before `await-commit` completes, a failure, a cancel, the source's `release` or the
 * reservation expiring compensates newest first (stop, undefine and remove the VM, discard
 * received disks). Once committed, the target keeps the VM: the source removes its copy.
 */
import { IntercloudError } from '../../protocols/errors/index.js';
import type { TransactionDefinition } from '../sequencer/index.js';
import type { InstantiateOrder, PeerRef, Reservation, TargetPorts, VmSummary } from './ports.js';

/** What a receiving job is started with (from the accepted offer). */
export interface MigrateInInput {
  offerId: string;
  peer: PeerRef;
  vm: VmSummary;
  reservation: Reservation;
  /** How long to wait for the source's commit after the VM runs here (ms). */
  commitTimeoutMs: number;
}

/** The migration transaction, target side. */
export function migrateInDefinition(ports: TargetPorts): TransactionDefinition<MigrateInInput> {
  const untilExpiry = (ms: number, signal: AbortSignal): AbortSignal =>
    AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, ms))]);
  const expired = (what: string, offerId: string): IntercloudError =>
    new IntercloudError('MIGRATE_NO_RESERVATION', `reservation for offer '${offerId}' expired while waiting for ${what}`);
  return {
    kind: 'migrate-in',
    version: 1,
    steps: [
      {
        name: 'receive',
        run: async ({ input, signal, progress }) => {
          const got = await ports.receive.receiveDisks(
            { offerId: input.offerId, from: input.peer.cloudId, reservation: input.reservation, disks: input.vm.disks }, progress, signal);
          return got;
        },
        compensate: async ({ input, signal }) => ports.receive.discard(input.offerId, signal),
      },
      {
        name: 'await-instantiate',
        run: async ({ input, signal }) => {
          const wait = untilExpiry(Date.parse(input.reservation.expiresAt) - Date.now(), signal);
          try {
            return await ports.requests.instantiateRequest(input.offerId, wait);
          } catch (err) {
            if (!signal.aborted && wait.aborted) throw expired('the instantiate request', input.offerId);
            throw err;
          }
        },
      },
      {
        name: 'verify',
        run: async ({ input, result }) => {
          const received = result<Record<string, { sha256: string }>>('receive');
          const { digests } = result<{ digests: Record<string, string> }>('await-instantiate');
          for (const d of input.vm.disks) {
            if (received[d.id]?.sha256 !== digests[d.id]) {
              throw new IntercloudError('MIGRATE_DIGEST_MISMATCH',
                `disk '${d.id}' of offer '${input.offerId}': received sha256 '${received[d.id]?.sha256}', source sent '${digests[d.id]}'`);
            }
          }
          return { verified: Object.keys(digests).length };
        },
      },
      {
        name: 'define',
        run: async ({ result, signal }) => {
          const received = result<Record<string, { path: string }>>('receive');
          const { descriptor } = result<{ descriptor: string }>('await-instantiate');
          const disks = Object.fromEntries(Object.entries(received).map(([id, r]) => [id, r.path]));
          return ports.hypervisor.define({ descriptor, disks }, signal);
        },
        compensate: async ({ input, signal }) => {
          await ports.hypervisor.remove(input.vm.name, signal);
          await ports.audit.record('vm-removed', { offerId: input.offerId, vm: input.vm.name });
        },
      },
      {
        name: 'start',
        run: async ({ input, result, signal }) => {
          const { vm } = result<{ vm: string }>('define');
          await ports.hypervisor.start(vm, signal);
          await ports.audit.record('vm-started', { offerId: input.offerId, vm, from: input.peer.cloudId });
          return { vm, startedAt: new Date().toISOString() };
        },
        compensate: async ({ input, signal }) => ports.hypervisor.stop(input.vm.name, signal),
      },
      {
        name: 're-address',
        run: async ({ input, result, signal }) => {
          // The source's signed hand-over lets this site take the addresses it held.
          const { addresses, handOver } = result<InstantiateOrder>('await-instantiate');
          await ports.addressing.register({ name: input.vm.name, addresses }, signal, handOver);
          return { registered: addresses };
        },
        compensate: async ({ input, result, signal }) => {
          const { addresses } = result<InstantiateOrder>('await-instantiate');
          await ports.addressing.withdraw({ name: input.vm.name, addresses }, signal);
        },
      },
      {
        name: 'await-commit',
        pivot: true,
        run: async ({ input, result, signal }) => {
          const wait = untilExpiry(input.commitTimeoutMs, signal);
          try {
            await ports.requests.commitRequest(input.offerId, wait);
          } catch (err) {
            if (!signal.aborted && wait.aborted) throw expired('the commit', input.offerId);
            throw err;
          }
          const { vm } = result<{ vm: string }>('define');
          if ((await ports.hypervisor.state(vm, signal)) !== 'running') {
            throw new IntercloudError('MIGRATE_NOT_RUNNING_AT_TARGET', `vm '${vm}' is not running in '${ports.cloudId}'`, { retryable: false });
          }
          await ports.audit.record('migration-committed', { offerId: input.offerId, vm, from: input.peer.cloudId });
          return { committed: true };
        },
      },
    ],
  };
}
