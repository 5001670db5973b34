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
import type { MigrationMode } from '../../protocols/xmpp/index.js';
import type { DefinedVm, InstantiateOrder, LocalVmRef, MoveImage, PeerRef, Reservation, TargetPorts, VmSummary } from './ports.js';
import { imageKey } from './precopy.js';
import { legacyDomainUuid } from './target-model.js';

/** Deepest disk chain a live move may send (rounds + 1). */
export const MAX_CHAIN_DEPTH = 64;

/** A received image of a live move, as the receive step journals it (checkpoint and result). */
interface ReceivedImage {
  key: string;
  path: string;
  sha256: string;
}

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
  /** The mode the accepted offer names (issue 15); absent: cold. */
  mode?: MigrationMode;
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

/** The migration transaction, target side (cold moves). */
export function migrateInDefinition(ports: TargetPorts): TransactionDefinition<MigrateInInput> {
  return { kind: 'migrate-in', version: 1, steps: targetSteps(ports, 'cold') };
}

/**
 * The target side of a warm move (issue 15), a sibling of `migrate-in-live`:
 *
 *   receive (chain images as they come, no state) → await-instantiate → verify → define (the
 *   offered descriptor on each disk's linked chain) → start (a boot, as cold) → re-address →
 *   await-commit (pivot) → flatten
 *
 * The source stopped the VM before it sent the newest overlays, so the boot here runs it in
 * one cloud only, as a cold move does. The domain has the job's own UUID.
 */
export function migrateInWarmDefinition(ports: TargetPorts, options: { orderGraceMs?: number } = {}): TransactionDefinition<MigrateInInput> {
  return { kind: 'migrate-in-warm', version: 1, steps: targetSteps(ports, 'warm', options.orderGraceMs ?? ORDER_GRACE_MS) };
}

/**
 * The target side of a live move (issue 15), a sibling of `migrate-in`:
 *
 *   receive (chain images as they come, and the state) → await-instantiate → verify →
 *   define (restore, paused) → start (stays paused) → re-address → await-commit (pivot: resume)
 *   → flatten
 *
 * The VM is restored paused before the source is asked to commit, and resumed by the commit:
 * it never runs in two clouds. Its domain keeps the UUID the saved state carries (recorded by
 * `define`); every later step goes by that.
 */
export function migrateInLiveDefinition(ports: TargetPorts, options: { orderGraceMs?: number } = {}): TransactionDefinition<MigrateInInput> {
  return { kind: 'migrate-in-live', version: 1, steps: targetSteps(ports, 'live', options.orderGraceMs ?? ORDER_GRACE_MS) };
}

/**
 * How long, once the source's instantiate order arrived, an image it names may still take to be
 * received here (it was committed before the order was sent: only a receive that the order
 * overtook, or one resumed after a restart, is still running). A named image that does not
 * arrive by then was never sent: `MIGRATE_BAD_IMAGES`.
 */
export const ORDER_GRACE_MS = 60_000;

/** The most bytes the peer may send for one image of `vm` (a disk's capacity, a qcow2's metadata; the state: memory and devices). */
function maxImageBytes(vm: VmSummary, image: MoveImage): number {
  const MiB = 1024 * 1024;
  if (image === 'state') return Math.ceil(vm.memoryBytes * 1.25) + 64 * MiB;
  const d = vm.disks.find((x) => x.id === image.diskId);
  return Math.ceil((d?.capacityBytes ?? 0) * 1.1) + 16 * MiB;
}

function targetSteps(ports: TargetPorts, mode: MigrationMode, orderGraceMs = ORDER_GRACE_MS): TransactionDefinition<MigrateInInput>['steps'] {
  const live = mode === 'live';
  /** Warm and live receive each disk's chain of images (live: and the state). */
  const chained = mode !== 'cold';
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
  /**
   * Our VM: live, the UUID its restored state carries (recorded by `define`, or journaled by it
   * before the restore when its result never was); else the job's own.
   */
  const ourVm = (ctx: StepContext<MigrateInInput>): LocalVmRef => {
    const ref = localVmOf(ctx.input);
    const uuid = live ? recorded<DefinedVm>(ctx, 'define')?.uuid ?? restoring(ctx) : undefined;
    return uuid === undefined ? ref : { ...ref, uuid };
  };
  /** The UUID the define step journaled before its last restore began (live), if it did. */
  const restoring = (ctx: StepContext<MigrateInInput>): string | undefined => ctx.checkpoints<{ restoring: string }>().at(-1)?.restoring;
  const unsupported = (): IntercloudError =>
    new IntercloudError('MIGRATE_MODE_UNSUPPORTED', `cloud '${ports.cloudId}' cannot receive or ${live ? 'restore a live' : 'define a vm on the chains of a warm'} move`, { retryable: false });
  /**
   * Warm and live: receives each disk's chain images in the order the source sends them (depth by
   * depth, disk by disk) and, live, beside them the saved state, until the source's instantiate order says
   * which it sent: the one receive still waiting then is for an image that never comes. Each
   * received image is journaled (a checkpoint), so a restarted step receives only the rest.
   */
  const receiveChain = async (ctx: StepContext<MigrateInInput>): Promise<Record<string, ReceivedImage>> => {
    const { input, signal, progress } = ctx;
    const receiveImage = ports.receive.receiveImage;
    if (receiveImage === undefined) throw unsupported();
    const got: Record<string, ReceivedImage> = {};
    for (const c of ctx.checkpoints<ReceivedImage>()) got[c.key] = c;
    const wait = untilExpiry(Date.parse(input.reservation.expiresAt) - Date.now(), signal);
    let order: InstantiateOrder | undefined;
    const grace = new AbortController();
    const notSent = (): IntercloudError => new IntercloudError('MIGRATE_BAD_IMAGES',
      `offer '${input.offerId}': the source names images it did not send within ${orderGraceMs} ms of its instantiate request`, { retryable: false });
    let graceTimer: NodeJS.Timeout | undefined;
    const ordered = ports.requests.instantiateRequest(input.offerId, wait).then((o) => {
      order = o;
      graceTimer = setTimeout(() => grace.abort(notSent()), orderGraceMs);
      return o;
    });
    ordered.catch(() => undefined);
    const bounded = (...signals: AbortSignal[]): AbortSignal => AbortSignal.any([wait, grace.signal, ...signals]);
    // Each overlay is linked onto the image below it as soon as both are here, one link after the
    // other, while the rest arrives: the define or restore, which checks and links every image
    // again, then finds them linked (a pre-link that fails is left to it). Not once the saved
    // state starts to arrive (live): the source is paused then, and the restore, which waits for
    // every link, links what is left itself.
    let linking: Promise<void> = Promise.resolve();
    let cutOver = false;
    const prelink = (image: MoveImage): void => {
      const link = ports.hypervisor.link;
      if (link === undefined || image === 'state' || image.depth === 0 || cutOver) return;
      const chain = Array.from({ length: image.depth + 1 }, (_, k) => got[imageKey({ diskId: image.diskId, depth: k })]);
      if (chain.some((x) => x === undefined)) return;
      const disk = chain.map((x, k) => ({ path: x!.path, format: k === 0 ? 'raw' as const : 'qcow2' as const }));
      linking = linking.then(() => link.call(ports.hypervisor, [disk], signal)).catch(() => undefined);
    };
    const one = async (image: MoveImage, slot: string, s: AbortSignal): Promise<void> => {
      const key = imageKey(image);
      if (got[key] !== undefined) return;
      const r = await receiveImage.call(ports.receive, {
        offerId: input.offerId, from: input.peer.cloudId, reservation: input.reservation, image, slot, maxSize: maxImageBytes(input.vm, image),
      }, (p) => {
        // The state's manifest (its first report): the source paused and saved the guest.
        if (image === 'state') cutOver = true;
        progress({ image: key, ...p });
      }, s);
      got[key] = { key, path: r.path, sha256: r.sha256 };
      await ctx.checkpoint(got[key]);
      prelink(image);
    };
    const state = live ? one('state', 'state', bounded()) : Promise.resolve();
    state.catch(() => undefined);
    try {
      chain: for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
        for (const [i, d] of input.vm.disks.entries()) {
          const image = { diskId: d.id, depth };
          const key = imageKey(image);
          if (got[key] !== undefined) continue;
          if (order !== undefined && order.digests[key] === undefined) break chain;
          const stop = new AbortController();
          const pending = one(image, `d${i}-${depth}`, bounded(stop.signal));
          pending.catch(() => undefined);
          const first = await Promise.race([pending.then(() => 'image' as const), ordered.then(() => 'order' as const)]);
          if (first === 'order' && order!.digests[key] === undefined) {
            // The source sent everything before it asked: this image is not coming.
            stop.abort(new IntercloudError('SEQ_CANCELLED', `image '${key}' of offer '${input.offerId}' was not sent`));
            await pending.catch(() => undefined);
            break chain;
          }
          await pending;
        }
      }
      await ordered;
      await state;
    } catch (err) {
      if (!signal.aborted && wait.aborted) throw expired('the images and the instantiate request', input.offerId);
      if (!signal.aborted && grace.signal.aborted) throw notSent();
      throw err;
    } finally {
      clearTimeout(graceTimer);
      // No link runs on after the step (the define links the same files).
      await linking;
    }
    return got;
  };
  return [
      {
        name: 'receive',
        run: async (ctx) => {
          const { input, signal, progress } = ctx;
          if (chained) return receiveChain(ctx);
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
          if (chained) {
            // Exactly the images received, each with the digest the source sent; every disk's chain
            // as deep; live: and the state (warm: none).
            const sent = Object.keys(digests).sort();
            const got = Object.keys(received).sort();
            const depths = input.vm.disks.map((d) => got.filter((k) => k.startsWith(`${d.id}.`) && /^\d+$/.test(k.slice(d.id.length + 1))).length);
            if (sent.join() !== got.join() || got.includes('state') !== live || depths.some((n) => n === 0 || n !== depths[0])
              || depths.reduce((a, b) => a + b, live ? 1 : 0) !== got.length) {
              throw new IntercloudError('MIGRATE_BAD_IMAGES',
                `offer '${input.offerId}': the source names images ${sent.map((k) => `'${k}'`).join(', ')}, this cloud received ${got.map((k) => `'${k}'`).join(', ')}`,
                { retryable: false, details: { sent, received: got } });
            }
            for (const k of got) {
              if (received[k]!.sha256 !== digests[k]) {
                throw new IntercloudError('MIGRATE_DIGEST_MISMATCH', `image '${k}' of offer '${input.offerId}': received sha256 '${received[k]!.sha256}', source sent '${digests[k]}'`);
              }
            }
            return { verified: got.length };
          }
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
        run: async (ctx) => {
          const { input, result, signal } = ctx;
          const received = result<Record<string, { path: string }>>('receive');
          /** Each disk's received chain, base first. */
          const chains = (): Array<Array<{ path: string; format: 'raw' | 'qcow2' }>> => {
            const depth = Object.keys(received).filter((k) => k.startsWith(`${input.vm.disks[0]!.id}.`)).length;
            return input.vm.disks.map((d) => Array.from({ length: depth }, (_, k) => ({
              path: received[imageKey({ diskId: d.id, depth: k })]!.path,
              // A base is read as raw (never probed: the peer's bytes are not trusted as a header); overlays are qcow2.
              format: k === 0 ? 'raw' as const : 'qcow2' as const,
            })));
          };
          if (mode === 'warm') {
            const defineOnChain = ports.hypervisor.defineOnChain;
            if (defineOnChain === undefined) throw unsupported();
            const { descriptor } = result<{ descriptor: string }>('await-instantiate');
            const defined = await defineOnChain.call(ports.hypervisor, { descriptor, disks: chains(), vm: localVmOf(input), offer: input.vm }, signal);
            await ports.audit.record('vm-defined', {
              offerId: input.offerId, vm: defined.vm, uuid: defined.uuid, from: input.peer.cloudId, mode,
              losses: defined.losses.filter((l) => l.severity === 'loss').map((l) => l.path),
            });
            return defined;
          }
          if (live) {
            const restore = ports.hypervisor.restore;
            if (restore === undefined) throw unsupported();
            // The UUID is journaled before the domain exists: a run cut after the restore (the agent
            // killed) knows the paused domain of that name and UUID is the one it made, and makes it
            // again; a domain it did not make is never touched (HV_VM_EXISTS).
            const earlier = restoring(ctx);
            const defined = await restore.call(ports.hypervisor, {
              vm: input.vm.name, state: received['state']!.path, disks: chains(),
              beforeRestore: (uuid) => ctx.checkpoint({ restoring: uuid }),
              ...(earlier === undefined ? {} : { replacing: earlier }),
            }, signal);
            await ports.audit.record('vm-restored', { offerId: input.offerId, vm: defined.vm, uuid: defined.uuid, from: input.peer.cloudId, paused: true });
            return defined;
          }
          const { descriptor } = result<{ descriptor: string }>('await-instantiate');
          const disks = Object.fromEntries(Object.entries(received).map(([id, r]) => [id, r.path]));
          // Issue 16: the disks whose base this side said it holds arrived as overlays.
          const held = new Set(input.reservation.bases ?? []);
          const bases = Object.fromEntries(input.vm.disks.flatMap((d) => (held.has(d.id) && d.base !== undefined ? [[d.id, d.base]] : [])));
          const defined = await ports.hypervisor.define({
            descriptor, disks, vm: localVmOf(input), offer: input.vm, ...(Object.keys(bases).length === 0 ? {} : { bases }),
          }, signal);
          await ports.audit.record('vm-defined', {
            offerId: input.offerId, vm: defined.vm, uuid: defined.uuid, from: input.peer.cloudId,
            losses: defined.losses.filter((l) => l.severity === 'loss').map((l) => l.path),
          });
          return defined;
        },
        compensate: async (ctx) => {
          const { input, signal } = ctx;
          const ref = ourVm(ctx);
          // Only what the step recorded as made; a step that failed made nothing (the
          // adapter's define is all or nothing) beyond a domain that carries our UUID.
          const volumes = recorded<DefinedVm>(ctx, 'define')?.volumes ?? [];
          const { undefined: removed } = await ports.hypervisor.remove(ref, volumes, signal);
          await ports.audit.record(removed ? 'vm-removed' : 'vm-not-removed', { offerId: input.offerId, vm: ref.name, uuid: ref.uuid, volumes });
        },
      },
      {
        name: 'start',
        run: async (ctx) => {
          const { input, signal } = ctx;
          const ref = ourVm(ctx);
          // Live: the restored VM stays paused until the source commits (never running in two clouds).
          if (live) return { vm: ref.name, paused: true };
          await ports.hypervisor.start(ref, signal);
          await ports.audit.record('vm-started', { offerId: input.offerId, vm: ref.name, uuid: ref.uuid, from: input.peer.cloudId });
          return { vm: ref.name, startedAt: new Date().toISOString() };
        },
        // Live: nothing ran (define's compensation removes the paused VM).
        compensate: async (ctx) => { if (!live) await ports.hypervisor.stop(ourVm(ctx), ctx.signal); },
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
        run: async (ctx) => {
          const { input, signal } = ctx;
          const wait = untilExpiry(input.commitTimeoutMs, signal);
          // Live: the restored VM is defined persistently while the commit is awaited (off the
          // cut-over, and before the VM runs here); the flatten step does it again if this failed.
          if (live) void ports.hypervisor.persist?.(ourVm(ctx), signal).catch(() => undefined);
          try {
            await ports.requests.commitRequest(input.offerId, wait);
          } catch (err) {
            if (!signal.aborted && wait.aborted) throw expired('the commit', input.offerId);
            throw err;
          }
          const ref = ourVm(ctx);
          // Live: the source gave the VM up; the guest goes on here where it stopped there. The
          // resume is the check that it runs (it resolves once our VM runs): no second look, the
          // source waits for this answer with the guest stopped. By UUID, in one step.
          if (live) await (ports.hypervisor.resume ?? ports.hypervisor.start).call(ports.hypervisor, ref, signal);
          // Live: when the guest ran again (the end of its downtime as this side sees it).
          const resumedAt = live ? new Date().toISOString() : undefined;
          if (!live && (await ports.hypervisor.state(ref, signal)) !== 'running') {
            throw new IntercloudError('MIGRATE_NOT_RUNNING_AT_TARGET', `vm '${ref.name}' (uuid '${ref.uuid}') is not running in '${ports.cloudId}'`, { retryable: false });
          }
          await ports.audit.record('migration-committed', { offerId: input.offerId, vm: ref.name, uuid: ref.uuid, from: input.peer.cloudId });
          return { committed: true, runningAt: new Date().toISOString(), ...(resumedAt === undefined ? {} : { resumedAt }) };
        },
      },
      ...(chained ? [{
        // After the pivot: one image per disk again, while the guest runs.
        name: 'flatten',
        maxAttempts: 5,
        run: async (ctx: StepContext<MigrateInInput>) => {
          const ref = ourVm(ctx);
          // Live: the restored VM was left transient (the define is off the cut-over): defined while
          // the commit was awaited, and again now (idempotent), in case that failed.
          if (live) await ports.hypervisor.persist?.(ref, ctx.signal);
          const state = ctx.result<Record<string, { path: string }>>('receive')['state']?.path;
          await ports.hypervisor.flatten?.(ref, state === undefined ? [] : [state], ctx.signal);
          await ports.audit.record('disks-flattened', { offerId: ctx.input.offerId, vm: ref.name });
          return { flattened: ports.hypervisor.flatten !== undefined };
        },
      }] : []),
  ];
}
