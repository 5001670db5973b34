/**
 * The target side of a VM migration, started when this cloud accepts an offer:
 *
 *   receive → await-instantiate → verify → define → start → re-address → await-commit (pivot)
 *
 * Before `await-commit` completes, a failure, a cancel, the source's `release` or the
 * reservation expiring compensates newest first (stop, undefine and remove the VM, discard
 * received disks). Once committed, the target keeps the VM: the source removes its copy.
 *
 * The peer is a stranger: the job touches only what it made. The VM's domain gets a UUID
 * chosen when the offer was accepted and journaled in the job's input; starting, stopping,
 * checking and removing go by name *and* that UUID, so a domain of the same name that is not
 * ours is never adopted, stopped or undefined. Compensation removes only the storage the
 * define step recorded, and the received files (`receive`).
 *
 * Addresses likewise: an address (or name) this site already holds for a VM of its own is
 * refused when the instantiate arrives and again before the re-address step registers
 * (`MIGRATE_ADDRESS_HELD`), and the re-address compensation withdraws only what the step
 * recorded as newly registered, so a peer's `release` never withdraws the site's own.
 */
import { IntercloudError, isIntercloudError } from '../../protocols/errors/index.js';
import type { StepContext, TransactionDefinition } from '../sequencer/index.js';
import type { DefinedVm, InstantiateOrder, LocalVmRef, PeerRef, Reservation, TargetPorts, VmSummary } from './ports.js';
import { legacyDomainUuid } from './target-model.js';

/** What a receiving job is started with (from the accepted offer). */
export interface MigrateInInput {
  offerId: string;
  peer: PeerRef;
  vm: VmSummary;
  reservation: Reservation;
  /** How long to wait for the source's commit after the VM runs here (ms). */
  commitTimeoutMs: number;
  /**
   * The UUID this cloud gives the VM's domain, chosen when the offer was accepted. Absent in
   * jobs journaled before it existed: those use {@link legacyDomainUuid}, which no domain
   * defined then has, so they never touch one.
   */
  domainUuid?: string;
}

/** The result `step` journaled, or undefined when it never completed. */
function recorded<T>(ctx: StepContext<MigrateInInput>, step: string): T | undefined {
  try {
    return ctx.result<T>(step);
  } catch (err) {
    if (isIntercloudError(err, 'SEQ_JOURNAL_MISMATCH')) return undefined;
    throw err;
  }
}

/** The VM this job defines (or defined): the offer's name with the job's own UUID. */
export function localVmOf(input: MigrateInInput): LocalVmRef {
  return { name: input.vm.name, uuid: input.domainUuid ?? legacyDomainUuid(input.offerId) };
}

/** The re-address step's journaled result: what it newly registered (absent `name`: an older record). */
interface ReAddressed {
  registered: string[];
  name: boolean;
}

/** The migration transaction, target side. */
export function migrateInDefinition(ports: TargetPorts): TransactionDefinition<MigrateInInput> {
  const untilExpiry = (ms: number, signal: AbortSignal): AbortSignal =>
    AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, ms))]);
  const expired = (what: string, offerId: string): IntercloudError =>
    new IntercloudError('MIGRATE_NO_RESERVATION', `reservation for offer '${offerId}' expired while waiting for ${what}`);
  /** Refuses `vm` when this site already holds any of its addresses or its name (`MIGRATE_ADDRESS_HELD`). */
  const refuseHeld = async (vm: { name: string; addresses: string[] }, input: MigrateInInput, signal: AbortSignal): Promise<void> => {
    const held = await ports.addressing.held(vm, signal);
    if (held.addresses.length === 0 && !held.name) return;
    const what = [...held.addresses.map((a) => `address '${a}'`), ...(held.name ? [`the name of vm '${vm.name}'`] : [])].join(', ');
    throw new IntercloudError('MIGRATE_ADDRESS_HELD',
      `offer '${input.offerId}' from '${input.peer.cloudId}': '${ports.cloudId}' already holds ${what} for a vm of its own`,
      { retryable: false, details: { offerId: input.offerId, addresses: held.addresses, name: held.name } });
  };
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
          let order: InstantiateOrder;
          try {
            order = await ports.requests.instantiateRequest(input.offerId, wait);
          } catch (err) {
            if (!signal.aborted && wait.aborted) throw expired('the instantiate request', input.offerId);
            throw err;
          }
          // Before the peer's VM is defined (and runs here with those addresses): what this site
          // holds for a VM of its own is refused, so nothing of it is ever taken or withdrawn.
          await refuseHeld({ name: input.vm.name, addresses: order.addresses }, input, signal);
          return order;
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
        run: async ({ input, result, signal }) => {
          const received = result<Record<string, { path: string }>>('receive');
          const { descriptor } = result<{ descriptor: string }>('await-instantiate');
          const disks = Object.fromEntries(Object.entries(received).map(([id, r]) => [id, r.path]));
          const defined = await ports.hypervisor.define({ descriptor, disks, vm: localVmOf(input), offer: input.vm }, signal);
          await ports.audit.record('vm-defined', {
            offerId: input.offerId, vm: defined.vm, uuid: defined.uuid, from: input.peer.cloudId,
            losses: defined.losses.filter((l) => l.severity === 'loss').map((l) => l.path),
          });
          return defined;
        },
        compensate: async (ctx) => {
          const { input, signal } = ctx;
          const ref = localVmOf(input);
          // Only what the step recorded as made; a step that failed made nothing (the
          // adapter's define is all or nothing) beyond a domain that carries our UUID.
          const volumes = recorded<DefinedVm>(ctx, 'define')?.volumes ?? [];
          const { undefined: removed } = await ports.hypervisor.remove(ref, volumes, signal);
          await ports.audit.record(removed ? 'vm-removed' : 'vm-not-removed', { offerId: input.offerId, vm: ref.name, uuid: ref.uuid, volumes });
        },
      },
      {
        name: 'start',
        run: async ({ input, signal }) => {
          const ref = localVmOf(input);
          await ports.hypervisor.start(ref, signal);
          await ports.audit.record('vm-started', { offerId: input.offerId, vm: ref.name, uuid: ref.uuid, from: input.peer.cloudId });
          return { vm: ref.name, startedAt: new Date().toISOString() };
        },
        compensate: async ({ input, signal }) => { await ports.hypervisor.stop(localVmOf(input), signal); },
      },
      {
        name: 're-address',
        run: async ({ input, result, signal, attempt }) => {
          // The source's signed hand-over lets this site take the addresses it held.
          const { addresses, handOver } = result<InstantiateOrder>('await-instantiate');
          const vm = { name: input.vm.name, addresses };
          // Checked again, for what this site registered since (another job): only on the first
          // attempt, as a retry may follow this job's own half-done register (a refusal is final).
          if (attempt === 1) await refuseHeld(vm, input, signal);
          await ports.addressing.register(vm, signal, handOver);
          // All of it is new here (the held were refused): the compensation withdraws this.
          return { registered: addresses, name: true } satisfies ReAddressed;
        },
        compensate: async (ctx) => {
          const { input, signal } = ctx;
          const order = recorded<InstantiateOrder>(ctx, 'await-instantiate');
          if (!order) return;
          const done = recorded<{ registered: string[]; name?: boolean }>(ctx, 're-address');
          const vm = { name: input.vm.name, addresses: order.addresses };
          if (done && typeof done.name === 'boolean') {
            // What this step recorded as newly registered, and nothing else.
            if (done.name) await ports.addressing.withdraw({ name: vm.name, addresses: done.registered }, signal);
            return;
          }
          if (done) {
            // Journaled before the step recorded what was new: whether the site held some of it
            // before is unknown, so nothing is withdrawn (an operator withdraws, if need be).
            await ports.audit.record('addresses-kept', { offerId: input.offerId, vm: vm.name, addresses: vm.addresses, reason: 'old-journal' });
            return;
          }
          // The step failed, maybe half way: withdraw only when this site holds none of it now
          // (a register that half happened left nothing held; a refused one left the owner's).
          const now = await ports.addressing.held(vm, signal);
          if (now.name || now.addresses.length > 0) {
            await ports.audit.record('addresses-kept', { offerId: input.offerId, vm: vm.name, addresses: now.addresses, name: now.name, reason: 'held' });
            return;
          }
          await ports.addressing.withdraw(vm, signal);
        },
      },
      {
        name: 'await-commit',
        pivot: true,
        run: async ({ input, signal }) => {
          const wait = untilExpiry(input.commitTimeoutMs, signal);
          try {
            await ports.requests.commitRequest(input.offerId, wait);
          } catch (err) {
            if (!signal.aborted && wait.aborted) throw expired('the commit', input.offerId);
            throw err;
          }
          const ref = localVmOf(input);
          if ((await ports.hypervisor.state(ref, signal)) !== 'running') {
            throw new IntercloudError('MIGRATE_NOT_RUNNING_AT_TARGET', `vm '${ref.name}' (uuid '${ref.uuid}') is not running in '${ports.cloudId}'`, { retryable: false });
          }
          await ports.audit.record('migration-committed', { offerId: input.offerId, vm: ref.name, uuid: ref.uuid, from: input.peer.cloudId });
          return { committed: true };
        },
      },
    ],
  };
}
