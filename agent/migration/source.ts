/**
 * The source side of a VM migration (the paper's Figure 5), as sequencer steps:
 *
 *   describe → find-peer → verify-peer → negotiate → [pre-copy] → stop-source → transfer →
 *   instantiate → re-address → commit (pivot) → release-source
 *
 * Until `commit` completes, any failure or a cancel compensates newest first: the target
 * removes what it made (`release`), the addresses are registered here again, the source VM
 * starts again. The target registers the VM's addresses when the VM starts there; the
 * source's `re-address` withdraws its own registration. `commit` is the point of no return: the target has confirmed the VM runs there
 * and promised to keep it; only then is the source copy removed. So at the end the VM
 * runs in exactly one cloud.
 *
 * Warm and live moves (issue 15, `migrate-move`): `pre-copy` sends the disks' chain images
 * round after round while the VM runs; `stop-source` saves the VM's state (live) or shuts it
 * down (warm); `transfer` sends the newest overlays and the state; the target restores the VM
 * paused and resumes it at `commit`. Before the pivot the source resumes from its state file
 * (or starts again) and merges its overlays back (`abortTracking`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { IntercloudError, defineErrorCodes } from '../../protocols/errors/index.js';
import { COMPENSATION_MAX_ATTEMPTS, type StepContext, type StepDefinition, type TransactionDefinition } from '../sequencer/index.js';
import type { MigrationMode } from '../../protocols/xmpp/index.js';
import type { ImageTransferPort, MoveImage, PeerRef, PrecopyPort, Reservation, SourcePorts, VmSummary } from './ports.js';
import { chooseMode, offerModeFields, type ModeChoice } from './modes.js';
import { imageKey, planPrecopy, type PrecopyCheckpoint, type PrecopyResult } from './precopy.js';

export const MIGRATION_ERRORS = defineErrorCodes('migration', {
  MIGRATE_VM_ABSENT: { doc: 'the vm to migrate does not exist in this cloud', retryable: false },
  MIGRATE_NOT_RUNNING_AT_TARGET: { doc: 'the target does not report the vm running', retryable: true },
  MIGRATE_DIGEST_MISMATCH: { doc: 'a disk arrived with a different digest than was sent', retryable: false },
  MIGRATE_REJECTED: { doc: 'the target cloud rejected the offer', retryable: false },
  MIGRATE_NO_RESERVATION: { doc: 'the target has no reservation for this offer (expired or released)', retryable: false },
  MIGRATE_BAD_DESCRIPTOR: { doc: 'the vm descriptor or its disks do not fit together', retryable: false },
  MIGRATE_FAILED: { doc: 'the peer failed a migration request for a reason it did not code', retryable: false },
  MIGRATE_NO_PEER: { doc: 'no trusted cloud that is online matches the request', retryable: true },
  MIGRATE_NO_CAPACITY: { doc: 'the target has not enough free storage for the offered disks', retryable: true },
  MIGRATE_NAME_TAKEN: { doc: "a vm of the offered name exists in the target cloud and is not this migration's: refused, never adopted", retryable: false },
  MIGRATE_BAD_VM_NAME: { doc: "the offered vm name is not one the target passes to its hypervisor (empty, '/', control characters, a leading '-', all digits or uuid-shaped)", retryable: false },
  MIGRATE_BAD_DISK: { doc: 'a received disk file may not be used: not raw or qcow2, or it names a backing or data file that is not a disk of the same offer', retryable: false },
  MIGRATE_TARGET_UNRELEASED: { doc: 'the target could not undo its part of the migration (its job needs an operator): the vm may still be there, so the source keeps its copy stopped', retryable: false },
  MIGRATE_ADDRESS_HELD: { doc: "the target site already holds one of the offered vm's addresses, or publishes its name, for a vm of its own: refused before anything is defined or registered, and never withdrawn by the migration", retryable: false },
  MIGRATE_NOT_OURS: { doc: 'the vm of that name at the target is not the one this migration defined (another uuid): it is left alone', retryable: false },
  MIGRATE_MODE_UNSUPPORTED: { doc: 'no migration mode the operator accepts is supported by both clouds (the source cannot track changes or save state, or the target does not take the mode or cannot restore the machine type)', retryable: false },
  MIGRATE_BAD_MODE_REQUEST: { doc: 'the fallback migration mode asked for is above the requested mode', retryable: false },
  MIGRATE_BAD_ACCEPT: { doc: "the target's accept names a held base for a disk that offered none", retryable: false },
  MIGRATE_BASE_UNLINKABLE: { doc: "a received overlay cannot be linked onto this cloud's own base: the base is no longer held here, or the hypervisor cannot link images in its local storage", retryable: false },
  MIGRATE_OVERLAY_UNSENDABLE: { doc: "a disk that overlays a backing image could not be flattened to be sent (its image is not in the hypervisor's local storage directory, or qemu-img convert failed)", retryable: false },
  MIGRATE_BAD_IMAGES: { doc: "the images a warm or live move sent are not the ones the target received (a missing, extra or misnamed chain image or state), the source's disk chains are not one per disk of the same depth, or the state file the source's save left is not the one it sent (the commit checks)", retryable: false },
});

/** What a migration job is started with. */
export interface MigrateOutInput {
  vm: string;
  to?: string;
  region?: string;
  /** The VM's addresses (EIDs) to keep reachable; default: what the hypervisor port knows. */
  addresses?: string[];
  /** Unique per job; the target keys its reservation on it, so every call is idempotent. */
  offerId: string;
  /**
   * The migration mode the operator asks for (issue 15); absent: `cold`, as before modes
   * existed. `warm` and `live` pre-copy the disks while the VM runs.
   */
  mode?: MigrationMode;
  /** The lowest mode the operator accepts when `mode` cannot be used (see {@link chooseMode}). */
  fallback?: MigrationMode;
  /** Pre-copy limits: stop when the newest overlays hold at most `smallBytes`, or after `maxRounds` rounds. */
  precopy?: { maxRounds?: number; smallBytes?: number };
}

/** What `negotiate` journals: the reservation, and the mode both sides agreed (absent: cold). */
type Negotiated = Reservation & { mode?: MigrationMode; fellBack?: boolean };

/** What `stop-source` journals. */
interface Stopped {
  /** When the VM stopped running here (the pause or shutdown began): the downtime starts. */
  stoppedAt: string;
  /** Live, in journals of moves that saved in `stop-source` (before the pause): bytes of the saved state. */
  stateBytes?: number;
}

type Described = { summary: VmSummary; descriptor: string; wasRunning: boolean };

/** The reservation `negotiate` returned, or undefined when it never completed. */
function reservationOf(ctx: StepContext<MigrateOutInput>): Reservation | undefined {
  try {
    return ctx.result<Reservation>('negotiate');
  } catch (err) {
    if (err instanceof IntercloudError && err.code === 'SEQ_JOURNAL_MISMATCH') return undefined;
    throw err;
  }
}

/** The mode `negotiate` agreed (cold when it did not complete, or before modes existed). */
function modeOf(ctx: StepContext<MigrateOutInput>): MigrationMode {
  return (reservationOf(ctx) as Negotiated | undefined)?.mode ?? 'cold';
}

/** The ports a warm or live move needs, or `MIGRATE_MODE_UNSUPPORTED` when the daemon gave none. */
function moving(ports: SourcePorts): { precopy: PrecopyPort; images: ImageTransferPort } {
  if (ports.precopy === undefined || ports.images === undefined) {
    throw new IntercloudError('MIGRATE_MODE_UNSUPPORTED', `cloud '${ports.cloudId}' cannot pre-copy a running vm (no change tracking)`, { retryable: false });
  }
  return { precopy: ports.precopy, images: ports.images };
}

/**
 * The images of each disk's chain (depths 0 … `rounds`, depth by depth, disk by disk: the order
 * the target receives them in) that `sent` does not name: once the VM is stopped or saved, what
 * is left to send after a pre-copy of `rounds` rounds.
 */
export function unsentImages(disks: ReadonlyArray<{ id: string }>, rounds: number, sent: Readonly<Record<string, string>>): MoveImage[] {
  const out: MoveImage[] = [];
  for (let depth = 0; depth <= rounds; depth++) {
    for (const d of disks) if (sent[imageKey({ diskId: d.id, depth })] === undefined) out.push({ diskId: d.id, depth });
  }
  return out;
}

/** The steps of the source side of a cold move, bound to `ports` (the `migrate-out` transaction). */
export function migrateOutSteps(ports: SourcePorts): Array<StepDefinition<MigrateOutInput>> {
  return sourceSteps(ports, false).filter((s) => s.name !== 'pre-copy');
}

/**
 * The steps of the source side of a move in a mode the operator asked for (`migrate-move`):
 * those of {@link migrateOutSteps} with `pre-copy` before the cut-over. A move that falls back to
 * `cold` runs them too (its pre-copy does nothing).
 */
export function migrateMoveSteps(ports: SourcePorts): Array<StepDefinition<MigrateOutInput>> {
  return sourceSteps(ports, true);
}

/** The steps; without `modes`, every move is cold whatever the input asks (`migrate-out`). */
function sourceSteps(ports: SourcePorts, modes: boolean): Array<StepDefinition<MigrateOutInput>> {
  const peerOf = (ctx: { result<T>(s: string): T }): PeerRef => ctx.result<PeerRef>('find-peer');
  /** The mode for this move: cold unless the operator asked for another and both sides can. */
  const choose = async (ctx: StepContext<MigrateOutInput>, peer: PeerRef): Promise<ModeChoice | undefined> => {
    const { input, signal } = ctx;
    if (!modes || input.mode === undefined || input.mode === 'cold') return undefined;
    const { wasRunning } = ctx.result<Described>('describe');
    // A stopped VM has nothing to pre-copy or save: only cold can move it.
    const source = wasRunning && ports.precopy !== undefined && ports.images !== undefined
      ? await ports.precopy.support(input.vm, signal)
      : { changeTracking: false, stateCapture: false };
    const advert = await ports.control.advert?.(peer, signal);
    return chooseMode({
      vm: input.vm,
      request: { mode: input.mode, ...(input.fallback === undefined ? {} : { fallback: input.fallback }) },
      source,
      target: { cloudId: peer.cloudId, ...(advert === undefined ? {} : { advert }) },
    });
  };
  return [
    {
      name: 'describe',
      run: async ({ input, signal }) => {
        const state = await ports.hypervisor.state(input.vm, signal);
        if (state === 'absent') throw new IntercloudError('MIGRATE_VM_ABSENT', `vm '${input.vm}' does not exist in '${ports.cloudId}'`);
        const d = await ports.hypervisor.describe(input.vm, signal);
        const summary = input.addresses ? { ...d.summary, addresses: input.addresses } : d.summary;
        return { ...d, summary, wasRunning: state === 'running' } satisfies Described;
      },
    },
    {
      name: 'find-peer',
      run: async ({ input, signal, result }) => {
        const { summary } = result<Described>('describe');
        return ports.control.findPeer({ to: input.to, region: input.region, vm: summary }, signal);
      },
    },
    {
      name: 'verify-peer',
      run: async (ctx) => {
        const peer = peerOf(ctx);
        const v = await ports.control.verifyPeer(peer, ctx.signal);
        await ports.audit.record('peer-verified', { job: ctx.jobId, peer: peer.cloudId, fingerprint: v.fingerprint });
        return v;
      },
    },
    {
      name: 'negotiate',
      run: async (ctx) => {
        const peer = peerOf(ctx);
        const { summary } = ctx.result<Described>('describe');
        const choice = await choose(ctx, peer);
        // Issue 16: a cold move offers each overlay disk's base; warm and live send chains.
        const vm = choice === undefined || choice.mode === 'cold' ? summary : { ...summary, disks: summary.disks.map(({ base: _b, ...d }) => d) };
        const reservation = await ports.control.offer(peer, {
          offerId: ctx.input.offerId, vm, region: ctx.input.region, ...(choice === undefined ? {} : offerModeFields(choice)),
        }, ctx.signal);
        await ports.audit.record('offer-accepted', {
          job: ctx.jobId, peer: peer.cloudId, offerId: ctx.input.offerId, reservationId: reservation.reservationId, mode: choice?.mode ?? 'cold',
          ...(reservation.bases === undefined ? {} : { heldBases: reservation.bases }),
        });
        if (choice === undefined || choice.mode === 'cold') return reservation;
        return { ...reservation, mode: choice.mode, fellBack: choice.fellBack } satisfies Negotiated;
      },
      compensate: async (ctx) => {
        const peer = peerOf(ctx);
        try {
          await ports.control.release(peer, ctx.input.offerId, ctx.signal);
        } catch (err) {
          // A peer that cannot be reached (gone for good) cannot be told; but it ends an
          // accepted offer on its own once the reservation expires (its receive and
          // await-instantiate steps stop at the expiry and compensate). Wait for that on the
          // last attempt rather than leaving the job to an operator.
          const reservation = reservationOf(ctx);
          if (!(err instanceof IntercloudError) || !err.retryable || !reservation) throw err;
          const left = Date.parse(reservation.expiresAt) - Date.now();
          if (left > 0 && ctx.attempt < COMPENSATION_MAX_ATTEMPTS) throw err;
          if (left > 0) await sleep(left, undefined, { signal: ctx.signal });
          await ports.audit.record('reservation-lapsed', {
            job: ctx.jobId, peer: peer.cloudId, offerId: ctx.input.offerId, expiresAt: reservation.expiresAt, error: err.code,
          });
          return;
        }
        await ports.audit.record('reservation-released', { job: ctx.jobId, peer: peer.cloudId, offerId: ctx.input.offerId });
      },
    },
    {
      // Warm and live: the disks are copied while the VM runs, round after round, each round
      // journaled (a restarted step goes on from the hypervisor's chain and its checkpoints).
      name: 'pre-copy',
      run: async (ctx): Promise<PrecopyResult> => {
        if (modeOf(ctx) === 'cold') return { rounds: 0, digests: {}, bytesSent: 0 };
        const { precopy, images } = moving(ports);
        const { input, signal } = ctx;
        const peer = peerOf(ctx);
        const reservation = ctx.result<Reservation>('negotiate');
        const digests: Record<string, string> = {};
        let bytesSent = 0;
        for (const c of ctx.checkpoints<PrecopyCheckpoint>()) { Object.assign(digests, c.sent); bytesSent += c.bytesSent; }
        const limits = { maxRounds: input.precopy?.maxRounds ?? 5, smallBytes: input.precopy?.smallBytes ?? 8 * 1024 * 1024 };
        for (;;) {
          const chain = await precopy.chain(input.vm, signal);
          const plan = planPrecopy(chain, digests, limits);
          const sent: Record<string, string> = {};
          let roundBytes = 0;
          for (const image of plan.send) {
            const r = await images.sendImage({ offerId: input.offerId, vm: input.vm, image, reservation, peer },
              (p) => ctx.progress({ round: plan.round, image: imageKey(image), bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }), signal);
            sent[imageKey(image)] = r.sha256;
            roundBytes += r.bytesSent;
          }
          if (plan.send.length > 0) {
            Object.assign(digests, sent);
            bytesSent += roundBytes;
            await ctx.checkpoint({ round: plan.round, sent, bytesSent: roundBytes } satisfies PrecopyCheckpoint);
          }
          if (plan.done) {
            await ports.audit.record('pre-copied', { job: ctx.jobId, vm: input.vm, rounds: plan.round, bytesSent, left: plan.topBytes });
            return { rounds: plan.round, digests, bytesSent };
          }
          await precopy.startRound(input.vm, signal);
        }
      },
      // The VM runs on its original images again (resumed first by stop-source's compensation).
      compensate: async (ctx) => {
        if (modeOf(ctx) === 'cold') return;
        await moving(ports).precopy.abortTracking(ctx.input.vm, ctx.signal);
      },
    },
    {
      name: 'stop-source',
      run: async (ctx): Promise<Stopped> => {
        const { input, signal, result } = ctx;
        const stoppedAt = new Date().toISOString();
        // Live: the guest pauses (its disks no longer change); `transfer` saves its memory and
        // devices to a file while the newest overlays go, and the guest goes on at the target.
        if (modeOf(ctx) === 'live') {
          await moving(ports).precopy.pause(input.vm, signal);
          return { stoppedAt };
        }
        if (result<Described>('describe').wasRunning) await ports.hypervisor.stop(input.vm, signal);
        return { stoppedAt };
      },
      compensate: async (ctx) => {
        const { input, signal, result } = ctx;
        if (modeOf(ctx) === 'live') await moving(ports).precopy.resumeFromState(input.vm, signal);
        else if (result<Described>('describe').wasRunning) await ports.hypervisor.start(input.vm, signal);
      },
    },
    {
      name: 'transfer',
      run: async (ctx) => {
        const { summary } = ctx.result<Described>('describe');
        const reservation = ctx.result<Reservation>('negotiate');
        const peer = peerOf(ctx);
        const mode = modeOf(ctx);
        if (mode !== 'cold') {
          // The newest overlays (readable now the VM stopped) and, live, the saved state. The chains
          // have one image more than the pre-copy's rounds (no round starts after it): what it did
          // not send is the newest of each disk, known without asking the hypervisor again.
          const { images } = moving(ports);
          const pre = ctx.result<PrecopyResult>('pre-copy');
          const digests: Record<string, string> = { ...pre.digests };
          const rest = unsentImages(summary.disks, pre.rounds, digests);
          let bytesSent = 0;
          const send = async (image: MoveImage): Promise<number> => {
            const r = await images.sendImage({ offerId: ctx.input.offerId, vm: ctx.input.vm, image, reservation, peer },
              (p) => ctx.progress({ image: imageKey(image), bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }), ctx.signal);
            digests[imageKey(image)] = r.sha256;
            bytesSent += r.bytesSent;
            return r.bytes;
          };
          // Live: the paused guest's state is saved, then sent (the image port saves it before it
          // reads it), while the overlays go (the target receives each on its own transfer); the
          // overlays in order, as the target takes them.
          let stateBytes: number | undefined;
          const overlays = (async () => { for (const image of rest) await send(image); })();
          const state = async (): Promise<void> => { stateBytes = await send('state'); };
          const results = await Promise.allSettled([overlays, ...(mode === 'live' ? [state()] : [])]);
          for (const r of results) if (r.status === 'rejected') throw r.reason;
          await ports.audit.record('disks-transferred', { job: ctx.jobId, peer: peer.cloudId, digests, bytesSent, mode });
          return { digests, bytesSent, precopyBytes: pre.bytesSent, ...(stateBytes === undefined ? {} : { stateBytes }) };
        }
        const total = summary.disks.reduce((n, d) => n + d.capacityBytes, 0);
        let before = 0;
        const digests: Record<string, string> = {};
        let bytesSent = 0;
        for (const disk of summary.disks) {
          const r = await ports.transfer.sendDisk(
            // Issue 16: a disk whose base the target holds goes as its overlay only (else flattened).
            { offerId: ctx.input.offerId, vm: ctx.input.vm, diskId: disk.id, reservation, peer, ...(reservation.bases?.includes(disk.id) ? { overlay: true } : {}) },
            (p) => ctx.progress({ bytesDone: before + p.bytesDone, bytesTotal: total }),
            ctx.signal,
          );
          digests[disk.id] = r.sha256;
          bytesSent += r.bytesSent;
          before += disk.capacityBytes;
        }
        ctx.progress({ bytesDone: total, bytesTotal: total });
        await ports.audit.record('disks-transferred', { job: ctx.jobId, peer: peer.cloudId, digests, bytesSent });
        return { digests, bytesSent };
      },
    },
    {
      name: 'instantiate',
      // Retried across a restart of the target's agent (seconds): the request is idempotent.
      maxAttempts: 6,
      run: async (ctx) => {
        const peer = peerOf(ctx);
        const { descriptor, summary } = ctx.result<Described>('describe');
        const { digests } = ctx.result<{ digests: Record<string, string> }>('transfer');
        // This site holds the VM's addresses: it signs their hand-over to the target, which
        // the target presents to the mapping system when it registers them.
        const handOver = summary.addresses.length > 0 && ports.addressing.signHandOver
          ? await ports.addressing.signHandOver({ addresses: summary.addresses, to: peer.cloudId, offerId: ctx.input.offerId }, ctx.signal)
          : undefined;
        return ports.control.instantiate(peer, {
          offerId: ctx.input.offerId, descriptor, digests, addresses: summary.addresses, ...(handOver === undefined ? {} : { handOver }),
        }, ctx.signal);
      },
      compensate: async (ctx) => {
        await ports.control.release(peerOf(ctx), ctx.input.offerId, ctx.signal);
      },
    },
    {
      // The target registered the addresses when the VM started there; this cloud withdraws.
      name: 're-address',
      maxAttempts: 6,
      run: async (ctx) => {
        const { summary } = ctx.result<Described>('describe');
        await ports.addressing.withdraw({ name: summary.name, addresses: summary.addresses }, ctx.signal);
        return { addresses: summary.addresses, at: peerOf(ctx).cloudId };
      },
      compensate: async (ctx) => {
        // The target holds the addresses now (handed over): it gives them back when it releases
        // the VM (its re-address is undone first), and only then may this site register them
        // again. Release is idempotent; the instantiate step's compensation repeats it harmlessly.
        await ports.control.release(peerOf(ctx), ctx.input.offerId, ctx.signal);
        const { summary } = ctx.result<Described>('describe');
        await ports.addressing.register({ name: summary.name, addresses: summary.addresses }, ctx.signal);
      },
    },
    {
      name: 'commit',
      pivot: true,
      maxAttempts: 5,
      run: async (ctx) => {
        const peer = peerOf(ctx);
        // Checked once, before the first commit request: a repeat may follow a request the target
        // took (it resumed the VM), and must then only ask again, whatever this host says now.
        if (modeOf(ctx) === 'live' && !ctx.checkpoints<{ stateChecked?: boolean }>().some((c) => c.stateChecked)) {
          // The VM is down here before it may run there: the save the transfer sent from (maybe
          // still stopping the VM then) has ended, and its file is the one sent.
          const { stateBytes } = ctx.result<{ stateBytes?: number }>('transfer');
          const saved = await moving(ports).precopy.saveState(ctx.input.vm, ctx.signal);
          if (saved.sizeBytes !== stateBytes) {
            throw new IntercloudError('MIGRATE_BAD_IMAGES', `vm '${ctx.input.vm}': the state sent was ${stateBytes} bytes, the state saved ${saved.sizeBytes}`, { retryable: false });
          }
          await ctx.checkpoint({ stateChecked: true });
        }
        const r = await ports.control.commit(peer, ctx.input.offerId, ctx.signal);
        const runningAt = new Date().toISOString();
        // Downtime: from the VM stopping here (save or shutdown) to the target answering that it runs.
        const stopped = ctx.result<Stopped>('stop-source');
        const downtimeMs = Date.parse(runningAt) - Date.parse(stopped.stoppedAt);
        await ports.audit.record('target-committed', { job: ctx.jobId, peer: peer.cloudId, offerId: ctx.input.offerId, mode: modeOf(ctx), downtimeMs });
        return { ...r, runningAt, mode: modeOf(ctx), downtimeMs };
      },
    },
    {
      name: 'release-source',
      maxAttempts: 10,
      run: async (ctx) => {
        if (modeOf(ctx) === 'live') await moving(ports).precopy.discardState(ctx.input.vm, ctx.signal);
        await ports.hypervisor.remove(ctx.input.vm, ctx.signal);
        await ports.audit.record('source-released', { job: ctx.jobId, vm: ctx.input.vm, to: peerOf(ctx).cloudId });
        return { removed: ctx.input.vm };
      },
    },
  ];
}

/** The migration transaction, source side. Bump `version` when steps change incompatibly. */
export function migrateOutDefinition(ports: SourcePorts): TransactionDefinition<MigrateOutInput> {
  return { kind: 'migrate-out', version: 1, steps: migrateOutSteps(ports) };
}

/**
 * The migration transaction with a mode (issue 15: `warm` or `live` asked, maybe falling back):
 * a sibling of `migrate-out`, so that journals of cold moves replay to the same steps.
 */
export function migrateMoveDefinition(ports: SourcePorts): TransactionDefinition<MigrateOutInput> {
  return { kind: 'migrate-move', version: 1, steps: migrateMoveSteps(ports) };
}

/**
 * A dry run: describe, find, verify and negotiate, then release the reservation. Nothing
 * moves; the job's outcome says whether the migration would be accepted.
 */
export function migrateDryRunDefinition(ports: SourcePorts): TransactionDefinition<MigrateOutInput> {
  const steps = migrateOutSteps(ports).filter((s) => ['describe', 'find-peer', 'verify-peer', 'negotiate'].includes(s.name));
  return {
    kind: 'migrate-dry-run',
    version: 1,
    steps: [
      ...steps,
      {
        name: 'release-reservation',
        run: async (ctx) => {
          await ports.control.release(ctx.result<PeerRef>('find-peer'), ctx.input.offerId, ctx.signal);
          return { released: true };
        },
      },
    ],
  };
}
