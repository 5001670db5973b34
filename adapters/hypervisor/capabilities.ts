/**
 * Optional capabilities of a hypervisor adapter, for moving a *running* VM between separately
 * administered clouds (issue 15): change tracking for disk pre-copy and state capture at the
 * source, state restore at the target. An adapter declares them in {@link Hypervisor.capabilities};
 * callers discover them with {@link changeTracking}, {@link stateCapture} and {@link stateRestore}
 * and never look at the adapter's kind. An adapter that declares none (VMware today) can still be
 * moved `cold`, or `warm` with a boot at the target.
 *
 * The mechanism (libvirt; measured in `shared/docs/real-services.md`, "Moving a running VM between
 * separate libvirt hosts"): every pre-copy round freezes each disk's current image by starting a
 * new overlay (external disk-only snapshot), so the frozen image can be read while the guest
 * writes to the overlay; the cut-over saves memory and device state to a file; the target
 * rebases the received chain onto its own files, restores the state with the domain description
 * rewritten for its host, defines the VM, and later flattens the chain.
 */
import type { Readable } from 'node:stream';
import type { DiskFormat } from '../../protocols/vm/index.js';
import type { CallOptions, DiskExtent, DiskRef, Hypervisor, ReadDiskOptions } from './contract.js';

/** One image of a disk's chain, as stored (base first; each overlay holds what changed after the one below). */
export interface ChainImage {
  /** The disk's id (index in `vm.disks`, as for {@link Hypervisor.readDisk}). */
  readonly diskId: string;
  /** Position in the disk's chain: 0 is the base, `k` the overlay started by round `k`. */
  readonly depth: number;
  /** The backend's reference of the image (read it with {@link ChangeTracking.readImage}). */
  readonly href: string;
  /** Format of the stored image: the base's own; overlays are `qcow2` on libvirt. */
  readonly format: DiskFormat;
  /** Length of the stored image in bytes (what `readImage` yields in full). */
  readonly sizeBytes: number;
  /** Allocation map over `[0, sizeBytes)` where the backend can tell; `data: false` runs read as zeros. */
  readonly extents?: readonly DiskExtent[];
}

/** What {@link ChangeTracking.startRound} did. */
export interface PrecopyRound {
  /** 1 for the first round; `k` when the chain had `k - 1` overlays before. */
  readonly round: number;
  /** Per disk, the image that has just stopped changing: the base at round 1, the previous overlay after. */
  readonly frozen: readonly ChainImage[];
  /** Per disk, the new overlay the guest now writes to. */
  readonly overlays: readonly DiskRef[];
}

/**
 * Source side of a disk pre-copy. A round freezes every disk's current image at once (atomic
 * across the VM's disks) by putting a new, empty overlay on top that takes the guest's writes.
 * State lives in the backend (the domain's disk chain), so a caller that restarts asks
 * {@link chain} where it was.
 *
 * **Not idempotent:** `startRound` (each call is a new round). **Idempotent:** `chain`,
 * `readImage`, `abortTracking` (a VM without overlays is left as it is).
 */
export interface ChangeTracking {
  /**
   * Starts a round on a running VM: every disk's current image becomes read-only and a new overlay
   * takes the writes. `HV_INVALID_STATE` when the VM is not running; `HV_TRACKING_UNSUPPORTED`
   * when one of its disks cannot be tracked (not a file image).
   */
  startRound(name: string, options?: CallOptions): Promise<PrecopyRound>;
  /**
   * Each disk's chain as stored now, base first (`chain[i]` is disk `i`), with sizes: the newest
   * overlay's `sizeBytes` says how much a further round would leave to send.
   */
  chain(name: string, options?: CallOptions): Promise<ChainImage[][]>;
  /**
   * Streams one image of the VM's chain (a range with `offset`/`length`). Only images that no
   * longer change are readable: any image below the newest, or the newest once the VM is paused
   * ({@link StateCapture.pause}) or stopped (saved); else `HV_INVALID_STATE`. An href that is not in the VM's chain is `HV_DISK_NOT_FOUND`.
   */
  readImage(name: string, href: string, options?: ReadDiskOptions): Promise<Readable>;
  /**
   * Undoes the pre-copy: merges every overlay back into its disk's base while the VM runs
   * (`blockcommit --active --pivot`), so the VM runs on its original images exactly as before,
   * and removes the overlays. A VM that was saved is to be resumed first
   * ({@link StateCapture.resumeFromState}); a stopped VM with overlays is `HV_INVALID_STATE`.
   */
  abortTracking(name: string, options?: CallOptions): Promise<void>;
}

/** What a VM's saved state needs of the host that restores it. */
export interface StateRequirements {
  /** The hypervisor that runs the guest (`qemu`). */
  readonly hypervisor: string;
  /** CPU architecture (`x86_64`). */
  readonly arch: string;
  /** The exact machine type the guest runs on (`pc-i440fx-7.2`): its device state only loads into the same one. */
  readonly machine: string;
}

/** A VM's memory and device state, saved by {@link StateCapture.saveState}. */
export interface SavedState {
  /** The backend's reference of the state file. */
  readonly href: string;
  /** Its length in bytes (what {@link StateCapture.readState} yields in full). */
  readonly sizeBytes: number;
}

/** Options of {@link StateCapture.saveState}. */
export interface SaveStateOptions extends CallOptions {
  /**
   * Called at most once, before the save resolves, with what it will resolve with, as soon as the
   * state file is whole and will not change again: a hypervisor may still be stopping the VM then
   * (libvirt tears its QEMU down for a second or more after the last byte), and the caller may
   * start reading the file meanwhile. Not called when the save fails, nor when the adapter cannot
   * tell that the file is whole before the save ends (never for a file an earlier save left).
   */
  onWritten?: (saved: SavedState) => void;
}

/**
 * Source side of a cut-over that keeps the guest running: its memory and device state saved to a
 * file (the VM stops running), to be restored elsewhere — or here again if the move fails.
 */
export interface StateCapture {
  /** What a host must offer to restore this VM's state (compare with {@link StateRestore.restoreTarget}). */
  stateRequirements(name: string, options?: CallOptions): Promise<StateRequirements>;
  /**
   * Pauses the running VM (its vCPUs stop; it writes nothing more) without saving it: the newest
   * image of each disk no longer changes and {@link ChangeTracking.readImage} reads it while
   * {@link saveState} saves the paused VM. {@link resumeFromState} runs it again. Idempotent: a
   * paused VM, or one stopped with its state saved, is left as it is; `HV_INVALID_STATE` for a VM
   * stopped without a state file.
   */
  pause(name: string, options?: CallOptions): Promise<void>;
  /**
   * Saves the running (or paused) VM's memory and device state to a file and stops it. Idempotent:
   * a VM already stopped with its state file present resolves with that file, and a call while
   * this adapter saves the VM answers with that save.
   * `HV_INVALID_STATE` for a VM stopped without a state file.
   */
  saveState(name: string, options?: SaveStateOptions): Promise<SavedState>;
  /** Streams the saved state file (a range with `offset`/`length`); `HV_STATE_NOT_FOUND` when there is none. */
  readState(name: string, options?: ReadDiskOptions): Promise<Readable>;
  /**
   * Resumes the VM here from its state file (the cut-over failed), or a paused one where it is,
   * then removes the file. Idempotent: a running VM stays running.
   */
  resumeFromState(name: string, options?: CallOptions): Promise<void>;
  /** Removes the state file (after the VM runs elsewhere). Idempotent. */
  discardState(name: string, options?: CallOptions): Promise<void>;
}

/** One machine type a host can run. */
export interface MachineType {
  readonly arch: string;
  /** The machine type's versioned name (`pc-i440fx-7.2`). */
  readonly machine: string;
  /** The alias it is the canonical target of (`pc`), when it is one. */
  readonly alias?: string;
}

/** What a host can restore (for the negotiation: a target that cannot is refused before the cut-over). */
export interface RestoreTarget {
  /** The hypervisor (`qemu`). */
  readonly hypervisor: string;
  /** Its version as the backend reports it (`7.2.19`), when it does. */
  readonly version?: string;
  /** The machine types it runs, per architecture. */
  readonly machines: readonly MachineType[];
}

/** One received image of a disk's chain, written to this backend with {@link Hypervisor.writeDisk}. */
export interface ReceivedImage {
  /** The href `writeDisk` answered. */
  readonly href: string;
  /** The format the image is to be read as (the base's own; `qcow2` for overlays). */
  readonly format: DiskFormat;
}

/** Options of {@link ChainImport.linkChains}. */
export interface LinkOptions extends CallOptions {
  /**
   * Issue 16: files outside the backend's storage that the caller's operator lists as base
   * images (absolute paths, read-only raw images): each may be the first image of a chain,
   * declared `raw`, and more than one disk's; it is never written (only the overlay above it is
   * rebased), and it stays out of the VM's storage. An adapter that cannot link onto one refuses
   * (`HV_STATE_INVALID`).
   */
  heldBases?: readonly string[];
}

/**
 * Target side of a warm move (issue 15): the received chain of each disk is linked (each overlay
 * onto the image below it) so that a VM defined on the chain's top with {@link Hypervisor.defineVm}
 * boots on the moved disk; flattened once the VM runs. The same rules as {@link StateRestore}:
 * the images must be this backend's own storage (written by the caller with `writeDisk`), each
 * named once; formats are declared (a base `raw` or `qcow2`, an overlay `qcow2`), never probed;
 * a base may name no other file and an overlay's backing reference is replaced by the image
 * the caller names below it (`HV_STATE_INVALID` otherwise).
 */
export interface ChainImport {
  /**
   * Links each disk's chain (`disks[i]` is disk `i`, base first) and answers the top of each
   * (`id` the disk's index, `capacityBytes` its virtual size), to define the VM on. Idempotent
   * (linking again rewrites the same references). On a refusal the files are left as they
   * were written (the caller removes them).
   */
  linkChains(disks: ReadonlyArray<readonly ReceivedImage[]>, options?: LinkOptions): Promise<DiskRef[]>;
  /** As {@link StateRestore.flattenDisks}: one image per disk again, while the VM runs. Idempotent. */
  flattenDisks(name: string, options?: CallOptions): Promise<void>;
}

/** What {@link StateRestore.restoreVm} needs: everything written to this backend by the caller. */
export interface RestoreRequest {
  /** The VM's name (must be the name the state carries). */
  readonly name: string;
  /** The state file, written with `writeDisk` (format `raw`). */
  readonly state: string;
  /** Per disk (`disks[i]` is disk `i`), its chain base first. */
  readonly disks: ReadonlyArray<readonly ReceivedImage[]>;
}

/** Options of {@link StateRestore.restoreVm}. */
export interface RestoreOptions extends CallOptions {
  /**
   * Leave the restored VM paused (its vCPUs stopped, nothing written) until `startVm` resumes it:
   * the target holds the VM ready while the source has not yet given it up. Default: running.
   */
  paused?: boolean;
  /**
   * Called with the UUID the restored domain will carry, once everything is checked and before
   * the domain is created: the caller journals it, so that after a crash it knows the domain is
   * the one it made (and passes it as `replacing`).
   */
  beforeRestore?: (uuid: string) => Promise<void>;
  /**
   * The UUID an earlier, interrupted call of the caller restored under this name (as
   * `beforeRestore` gave it): a domain of that name with exactly this UUID that is not running
   * is removed and the restore is done again. Any other domain of that name is `HV_VM_EXISTS`.
   */
  replacing?: string;
  /**
   * Leave the restored VM transient (not defined): {@link StateRestore.persistRestored} defines
   * it later, off the cut-over (the define is a round trip to the host while the guest is down).
   * Default: defined persistently before the call resolves.
   */
  transient?: boolean;
}

/** Result of {@link StateRestore.restoreVm}. */
export interface RestoreResult {
  readonly name: string;
  readonly uuid?: string;
  /** The VM's disks as they now run (the top of each chain). */
  readonly disks: readonly DiskRef[];
}

/**
 * Target side of a cut-over that keeps the guest running. Everything the peer sent is untrusted:
 * the images and the state file must be this backend's own storage (written by the caller with
 * `writeDisk`); image formats are declared, never probed; references inside the images to other
 * files are replaced by the chain the caller names or refused; the saved description's
 * host-specific parts (disk paths, console logs, emulator) are rewritten to this host's, and
 * anything else that names a file on the host is refused (`HV_STATE_INVALID`).
 */
export interface StateRestore {
  /** The hypervisor and machine types this host can restore a saved VM onto. */
  restoreTarget(options?: CallOptions): Promise<RestoreTarget>;
  /**
   * Links each disk's received chain (each overlay onto the image below it), restores the VM's
   * memory and device state from the state file so the guest goes on running where it stopped,
   * and defines the VM persistently (not with `transient`; paused with `paused`: `startVm` or
   * {@link resumeRestored} resumes it). `HV_VM_EXISTS` when the name is taken,
   * but by the domain an interrupted earlier call made (see `beforeRestore` and `replacing`).
   * On failure no VM is left; the written files stay the caller's (remove them with `removeDisk`).
   */
  restoreVm(request: RestoreRequest, options?: RestoreOptions): Promise<RestoreResult>;
  /**
   * Runs the VM that {@link restoreVm} restored paused, found by the UUID it answered (never by
   * name): one step, for the cut-over waits on it. Idempotent: a running VM of that UUID is left
   * so. `HV_VM_NOT_FOUND` when no VM has that UUID, `HV_INVALID_STATE` when it is stopped.
   */
  resumeRestored(uuid: string, options?: CallOptions): Promise<void>;
  /**
   * Defines the VM of UUID `uuid` persistently as it is now (one restored `transient`), so that it
   * outlives its process. Idempotent (a persistent VM is defined again as it is). `HV_VM_NOT_FOUND`
   * when no VM has that UUID.
   */
  persistRestored(uuid: string, options?: CallOptions): Promise<void>;
  /**
   * Merges each disk's chain of a running VM into its base while it runs, and removes the merged
   * overlays: afterwards each disk is one image. Idempotent (a flat VM is left as it is).
   */
  flattenDisks(name: string, options?: CallOptions): Promise<void>;
}

/** The optional capabilities an adapter declares (absent ones it does not have). */
export interface HypervisorCapabilities {
  readonly changeTracking?: ChangeTracking;
  readonly stateCapture?: StateCapture;
  readonly stateRestore?: StateRestore;
  readonly chainImport?: ChainImport;
}

/** The adapter's change tracking for disk pre-copy, or `undefined` when it has none. */
export function changeTracking(hv: Hypervisor): ChangeTracking | undefined {
  return hv.capabilities?.changeTracking;
}

/** The adapter's state capture (source of a live move), or `undefined` when it has none. */
export function stateCapture(hv: Hypervisor): StateCapture | undefined {
  return hv.capabilities?.stateCapture;
}

/** The adapter's state restore (target of a live move), or `undefined` when it has none. */
export function stateRestore(hv: Hypervisor): StateRestore | undefined {
  return hv.capabilities?.stateRestore;
}

/** The adapter's chain import (target of a warm move), or `undefined` when it has none. */
export function chainImport(hv: Hypervisor): ChainImport | undefined {
  return hv.capabilities?.chainImport;
}

/**
 * Whether a target's {@link RestoreTarget} can take a VM with these {@link StateRequirements}:
 * the same hypervisor and the exact machine type on the same architecture (a saved device state
 * loads only into the machine it was saved from).
 */
export function canRestore(target: RestoreTarget, needs: StateRequirements): boolean {
  return target.hypervisor === needs.hypervisor
    && target.machines.some((m) => m.arch === needs.arch && m.machine === needs.machine);
}
