/**
 * The one interface every hypervisor backend implements ({@link Hypervisor}), with its contract.
 * The sequencer, the catalog and the CLI see only this; backend details stay in `adapters/`.
 */
import type { Readable } from 'node:stream';
import type { ConversionReport, DiskFormat, VirtualMachine } from '../../protocols/vm/index.js';
import type { HypervisorCapabilities } from './capabilities.js';

/** Power state of a VM as every backend can report it. */
export type VmPowerState = 'running' | 'stopped' | 'paused' | 'other';

/** Options every call takes. */
export interface CallOptions {
  /**
   * Cancels the call: it rejects with `HV_ABORTED` as soon as it can, closes the backend's
   * command or request, and — for calls that create things (`defineVm`, `writeDisk`,
   * `importVm`) — removes what it had made. A call that already finished is not undone.
   */
  signal?: AbortSignal;
}

/** One VM in a listing. */
export interface VmListing {
  readonly name: string;
  readonly uuid?: string;
  readonly state: VmPowerState;
}

/**
 * A disk as a backend stores it. `id` is the disk's index in {@link VirtualMachine.disks}
 * as a decimal string (`"0"` is the first disk), the same on every backend.
 */
export interface DiskRef {
  readonly id: string;
  /**
   * Where the backend keeps the image, in its own terms: an absolute volume path for libvirt,
   * a datastore path (`[LocalDS_0] web1/disk0.vmdk`) for vSphere, `fake:NAME` for the fake.
   * This is what a model's `disks[i].file.href` must hold to attach an existing disk.
   */
  readonly href: string;
  /** Format of the stored image. */
  readonly format: DiskFormat;
  /** Virtual size the guest sees, in bytes. */
  readonly capacityBytes: number;
}

/** One run of bytes of a stored image: `data: false` means the run reads as zeros (a hole). */
export interface DiskExtent {
  readonly offset: number;
  readonly length: number;
  readonly data: boolean;
}

/** What {@link Hypervisor.statDisk} reports. */
export interface DiskInfo extends DiskRef {
  /** Length of the stored image in bytes (what {@link Hypervisor.readDisk} yields in full). */
  readonly sizeBytes: number;
  /**
   * The image's allocation map over `[0, sizeBytes)`, in order, without gaps, when the backend can
   * tell (libvirt: `qemu-img map --output=json`); absent when it cannot. Readers need not read
   * or send the `data: false` runs: they are zeros.
   */
  readonly extents?: readonly DiskExtent[];
  /**
   * The image this disk's image overlays (its backing file), when it has one (libvirt: a qcow2
   * overlay on a golden base, `qemu-img info`'s `full-backing-filename` and its declared format).
   * Such a disk's stored bytes are not the disk the guest sees: {@link Hypervisor.readDisk} yields
   * the overlay alone, so a reader that needs the whole disk flattens it (issue 16).
   */
  readonly backing?: { readonly href: string; readonly format: DiskFormat };
}

/** A VM as {@link Hypervisor.describeVm} returns it. */
export interface VmDescription {
  /** The VM in the shared model; `disks[i].file.href` is the backend's {@link DiskRef.href}. */
  readonly vm: VirtualMachine;
  readonly state: VmPowerState;
  /** Its disks, `disks[i]` describing `vm.disks[i]`. */
  readonly disks: readonly DiskRef[];
}

/** What a host (or cluster) can still take; feeds the cloud's catalog entry. */
export interface HostCapacity {
  readonly vcpusTotal: number;
  /** vCPUs not given to running VMs (may be negative when overcommitted). */
  readonly vcpusFree: number;
  readonly memoryBytesTotal: number;
  readonly memoryBytesFree: number;
  /** Storage where new disks go (libvirt pool, vSphere datastore). */
  readonly diskBytesTotal: number;
  readonly diskBytesFree: number;
}

/** Result of {@link Hypervisor.defineVm} and {@link Hypervisor.importVm}. */
export interface DefineResult {
  readonly name: string;
  readonly uuid?: string;
  /** Its disks, as created or attached. */
  readonly disks: readonly DiskRef[];
  /**
   * What the backend could not hold of the model (`loss`) or chose itself (`note`): describing the
   * VM afterwards equals the model except for exactly these paths.
   */
  readonly report: ConversionReport;
}

/** Options of {@link Hypervisor.shutdownVm}. */
export interface ShutdownOptions extends CallOptions {
  /** How long to wait for the guest to stop after the graceful request, before forcing it off. */
  timeoutMs: number;
}

/** Result of {@link Hypervisor.shutdownVm}. */
export interface ShutdownResult {
  /** The VM was already stopped: nothing was done. */
  readonly alreadyStopped: boolean;
  /** The guest did not stop in time and was forced off. */
  readonly forced: boolean;
}

/** Options of {@link Hypervisor.undefineVm}. */
export interface UndefineOptions extends CallOptions {
  /** Also delete the VM's disk images (default false: they stay, detached). */
  removeStorage?: boolean;
}

/** Options of {@link Hypervisor.readDisk}: a byte range of the stored image (default: all of it). */
export interface ReadDiskOptions extends CallOptions {
  offset?: number;
  length?: number;
}

/** A new disk for {@link Hypervisor.writeDisk}. */
export interface NewDisk {
  /** File/volume name in the backend's storage (`web1-disk0.qcow2`); letters, digits, `._-`. */
  readonly name: string;
  readonly format: DiskFormat;
  /** Exact number of bytes the source stream will carry (the stored image's length). */
  readonly sizeBytes: number;
  /** Virtual size the guest sees; for `raw` it equals `sizeBytes`. Used by backends that record it. */
  readonly capacityBytes: number;
}

/** A disk to import with a VM: `vm.disks[i]` takes its bytes from `disks[i]`. */
export interface ImportDisk {
  readonly source: Readable;
  readonly sizeBytes: number;
  readonly format: DiskFormat;
}

/**
 * A local hypervisor, as the gateway drives it.
 *
 * **Not found.** A VM that does not exist makes `describeVm`, `startVm`, `shutdownVm`, `statDisk`
 * and `readDisk` reject with `HV_VM_NOT_FOUND`; a missing disk index rejects with
 * `HV_DISK_NOT_FOUND`. `vmState` answers `'absent'` instead, and `undefineVm`/`removeDisk` treat
 * an absent target as done (they are idempotent).
 *
 * **Idempotent calls** (repeating one with the same arguments is harmless and gives the same
 * outcome): `listVms`, `describeVm`, `vmState`, `hostCapacity`, `statDisk`, `readDisk`; `startVm`
 * (a running VM stays running); `shutdownVm` (a stopped VM reports `alreadyStopped`);
 * `undefineVm` (an absent VM reports `existed: false`); `removeDisk`.
 * **Not idempotent:** `defineVm`, `importVm` and `writeDisk` create things and reject with
 * `HV_VM_EXISTS` / `HV_DISK_EXISTS` when the name is taken — a caller replaying a step checks
 * with `vmState`/`describeVm` first.
 *
 * **Atomic creation.** When `defineVm`, `writeDisk` or `importVm` fails or is cancelled, nothing it
 * made is left behind: no defined VM, no orphaned disk. A disk stream that ends before
 * `sizeBytes` rejects with `HV_STREAM_SHORT`, one that carries more with `HV_STREAM_LONG`;
 * storage that cannot hold the disk rejects with `HV_NO_SPACE`.
 *
 * **Cancellation.** Every call honours `signal` (see {@link CallOptions}).
 *
 * **Errors** are `IntercloudError`s: `HV_…` for the outcomes above, `LIBVIRT_…`/`VMWARE_…` for
 * the backend's own failures with its fields in `details` (virsh exit status and stderr, SOAP
 * fault name, HTTP status). Messages are prefixed `libvirt(cloud-a): …` / `vmware(cloud-c): …`.
 */
export interface Hypervisor {
  /** The adapter's registered name (`libvirt`, `vmware`, `fake`). For messages: callers never branch on it. */
  readonly kind: string;

  /**
   * Optional capabilities for moving a running VM (`capabilities.ts`): change tracking, state
   * capture, state restore. Discover them with `changeTracking(hv)`, `stateCapture(hv)`,
   * `stateRestore(hv)`; absent ones the adapter does not have.
   */
  readonly capabilities?: HypervisorCapabilities;

  /** Every VM the backend knows (defined or running), sorted by name. */
  listVms(options?: CallOptions): Promise<VmListing[]>;

  /** One VM in the shared model, its power state and its disks. */
  describeVm(name: string, options?: CallOptions): Promise<VmDescription>;

  /** The VM's power state, or `'absent'` when no VM has this name. */
  vmState(name: string, options?: CallOptions): Promise<VmPowerState | 'absent'>;

  /** Free and total vCPUs, memory and disk of the host/cluster new VMs go to. */
  hostCapacity(options?: CallOptions): Promise<HostCapacity>;

  /**
   * Defines (registers, does not start) a VM from the model. A disk whose `file.href` is a
   * {@link DiskRef.href} of this backend (from `writeDisk`) is attached as it is; a disk without
   * `file` gets a new blank image of `capacityBytes` (format `qcow2` where supported). The
   * result's report lists what the backend could not hold.
   */
  defineVm(vm: VirtualMachine, options?: CallOptions): Promise<DefineResult>;

  /** Starts a defined VM. Idempotent: a running VM is left running. */
  startVm(name: string, options?: CallOptions): Promise<void>;

  /**
   * Asks the guest to shut down (ACPI), waits up to `timeoutMs` for it to stop, then forces it off.
   * Resolves once the VM is stopped. Idempotent.
   */
  shutdownVm(name: string, options: ShutdownOptions): Promise<ShutdownResult>;

  /**
   * Removes the VM's definition (a running VM is forced off first), and its disk images when
   * `removeStorage`. Idempotent: an absent VM resolves `{ existed: false }`.
   */
  undefineVm(name: string, options?: UndefineOptions): Promise<{ existed: boolean }>;

  /** Size, format and (where the backend can tell) allocation map of one of the VM's disks. */
  statDisk(name: string, diskId: string, options?: CallOptions): Promise<DiskInfo>;

  /**
   * Streams the stored image bytes of one of the VM's disks (a range when `offset`/`length` are
   * given), never buffered whole. The stream errors with a coded error if the backend fails midway.
   * Read a stopped VM's disks: a running guest may change them while they are read.
   */
  readDisk(name: string, diskId: string, options?: ReadDiskOptions): Promise<Readable>;

  /**
   * Creates a new disk image in the backend's storage from `source`, which must carry exactly
   * `disk.sizeBytes` bytes. Resolves with its {@link DiskRef} (id `"0"`; the id is only meaningful
   * within a VM). On any failure the partial image is removed.
   */
  writeDisk(disk: NewDisk, source: Readable, options?: CallOptions): Promise<DiskRef>;

  /** Deletes a disk image by its href. Idempotent: an absent image is fine. */
  removeDisk(href: string, options?: CallOptions): Promise<void>;

  /**
   * Optional. The storage new disks go to, as a directory of the machine this process runs on,
   * when the backend can prove it is one (libvirt: a `dir` pool whose path shows the backend a
   * probe file this process wrote there); `undefined` when it is not (remote host, other pool
   * type). A raw image file written into it under a name `isSafeDiskName` accepts is a volume of
   * the backend: `defineVm` attaches it when a disk's `file.href` is its path, so a receiver can
   * write a disk once instead of staging it and streaming it again through `writeDisk`. Such a
   * file belongs to the caller until a VM is defined on it (then `undefineVm` with
   * `removeStorage` removes it).
   */
  localStorageDir?(options?: CallOptions): Promise<string | undefined>;

  /**
   * Defines a VM together with its disks' bytes (the receiving side of a migration):
   * `vm.disks[i]` is written from `disks[i]`, then the VM is defined. All or nothing: a failure
   * leaves no defined VM and no disk behind.
   */
  importVm(vm: VirtualMachine, disks: readonly ImportDisk[], options?: CallOptions): Promise<DefineResult>;

  /** Closes connections and sessions. Idempotent; later calls reconnect. */
  close(): Promise<void>;
}
