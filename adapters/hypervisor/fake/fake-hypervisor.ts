/**
 * An in-memory {@link Hypervisor} for unit tests: the same contract, no backend. Disk images are
 * kept as Buffers (tests use small ones). A guest can be told to ignore graceful shutdown, to
 * exercise force-off.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DiskFormat, ReportEntry, VirtualMachine } from '../../../protocols/vm/index.js';
import type {
  CallOptions, DefineResult, DiskInfo, DiskRef, HostCapacity, Hypervisor, ImportDisk, NewDisk,
  ReadDiskOptions, ShutdownOptions, ShutdownResult, UndefineOptions, VmDescription, VmListing,
  VmPowerState,
} from '../contract.js';
import { abortedError, hvError, throwIfAborted } from '../errors.js';
import { importByParts } from '../import-by-parts.js';
import { ExactLength, isSafeDiskName } from '../streams.js';
import type { HypervisorCapabilities } from '../capabilities.js';
import { FakeLiveMove } from './fake-live-move.js';
import type { FakeImage, FakeVmRecord } from './fake-live-move.js';

/** Configuration of the fake. */
export interface FakeHypervisorConfig {
  /** Name in messages (`fake(NAME): …`). */
  name: string;
  vcpus: number;
  memoryBytes: number;
  /** Storage size: writes beyond it fail with `HV_NO_SPACE`. */
  diskBytes: number;
  /** Guests ignore ACPI shutdown, so `shutdownVm` forces them off after the timeout. */
  guestsIgnoreShutdown: boolean;
}

type FakeDisk = FakeImage & { format: DiskFormat };
type FakeVm = FakeVmRecord;

/** The in-memory hypervisor. */
export class FakeHypervisor implements Hypervisor {
  readonly kind = 'fake';
  /** Change tracking, state capture, state restore and chain import, in memory (`fake-live-move.ts`). */
  readonly capabilities: HypervisorCapabilities;
  private readonly vms = new Map<string, FakeVm>();
  private readonly disks = new Map<string, FakeDisk>();
  private readonly prefix: string;
  private readonly live: FakeLiveMove;

  constructor(private readonly config: FakeHypervisorConfig) {
    this.prefix = `fake(${config.name})`;
    this.live = new FakeLiveMove({ prefix: this.prefix, vms: this.vms, disks: this.disks });
    this.capabilities = { changeTracking: this.live, stateCapture: this.live, stateRestore: this.live, chainImport: this.live };
  }

  /** Test hook: the running guest writes `data` at `offset` of disk `diskId` (into its top image). */
  guestWrite(name: string, diskId: string, offset: number, data: Buffer): void {
    this.live.guestWrite(name, diskId, offset, data);
  }

  /** Test hook: what the guest sees on disk `diskId` (its chain applied). */
  guestView(name: string, diskId: string): Buffer {
    return this.live.view(this.get(name).hrefs[Number(diskId)] ?? '');
  }

  /** Test hook: the guest's session, new at each boot and kept across save and restore. */
  guestSession(name: string): string | undefined {
    return this.get(name).session;
  }

  private get(name: string): FakeVm {
    const v = this.vms.get(name);
    if (!v) throw hvError('HV_VM_NOT_FOUND', `${this.prefix}: no vm '${name}'`, { details: { vm: name } });
    return v;
  }

  private used(): number {
    let n = 0;
    for (const d of this.disks.values()) n += d.bytes.length;
    return n;
  }

  private refs(v: FakeVm): DiskRef[] {
    return v.hrefs.map((href, i) => {
      const d = this.disks.get(href);
      return { id: String(i), href, format: d?.format ?? 'raw', capacityBytes: d?.capacityBytes ?? 0 };
    });
  }

  async listVms(options: CallOptions = {}): Promise<VmListing[]> {
    throwIfAborted(this.prefix, 'listVms', options.signal);
    return [...this.vms.values()]
      .map((v) => ({ name: v.vm.name, state: v.state, ...(v.vm.uuid ? { uuid: v.vm.uuid } : {}) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async describeVm(name: string, options: CallOptions = {}): Promise<VmDescription> {
    throwIfAborted(this.prefix, 'describeVm', options.signal);
    const v = this.get(name);
    return { vm: structuredClone(v.vm), state: v.state, disks: this.refs(v) };
  }

  async vmState(name: string, options: CallOptions = {}): Promise<VmPowerState | 'absent'> {
    throwIfAborted(this.prefix, 'vmState', options.signal);
    return this.vms.get(name)?.state ?? 'absent';
  }

  async hostCapacity(options: CallOptions = {}): Promise<HostCapacity> {
    throwIfAborted(this.prefix, 'hostCapacity', options.signal);
    let vcpus = 0;
    let mem = 0;
    for (const v of this.vms.values()) {
      if (v.state !== 'running') continue;
      vcpus += v.vm.cpu.count;
      mem += v.vm.memoryBytes;
    }
    const used = this.used();
    return {
      vcpusTotal: this.config.vcpus,
      vcpusFree: this.config.vcpus - vcpus,
      memoryBytesTotal: this.config.memoryBytes,
      memoryBytesFree: this.config.memoryBytes - mem,
      diskBytesTotal: this.config.diskBytes,
      diskBytesFree: this.config.diskBytes - used,
    };
  }

  async defineVm(vm: VirtualMachine, options: CallOptions = {}): Promise<DefineResult> {
    throwIfAborted(this.prefix, 'defineVm', options.signal);
    if (this.vms.has(vm.name)) {
      throw hvError('HV_VM_EXISTS', `${this.prefix}: a vm named '${vm.name}' already exists`, { details: { vm: vm.name } });
    }
    const entries: ReportEntry[] = [];
    const hrefs: string[] = [];
    const created: string[] = [];
    const disks = vm.disks.map((d, i) => {
      if (d.file) {
        if (!this.disks.has(d.file.href)) {
          for (const h of created) this.disks.delete(h);
          throw hvError('HV_MODEL_INVALID', `${this.prefix}: disk ${i} of '${vm.name}' refers to '${d.file.href}', which does not exist`, { details: { path: `disks[${i}].file.href` } });
        }
        hrefs.push(d.file.href);
        return d;
      }
      const href = `fake:${vm.name}-disk${i}`;
      this.disks.set(href, { format: 'qcow2', capacityBytes: d.capacityBytes, bytes: Buffer.alloc(0) });
      created.push(href);
      hrefs.push(href);
      entries.push({ severity: 'note', path: `disks[${i}].file`, message: 'a blank disk was created', value: href });
      return { ...d, format: 'qcow2' as const, file: { href } };
    });
    const stored: VirtualMachine = structuredClone({ ...vm, disks });
    this.vms.set(vm.name, { vm: stored, state: 'stopped', hrefs });
    return { name: vm.name, ...(vm.uuid ? { uuid: vm.uuid } : {}), disks: this.refs(this.vms.get(vm.name)!), report: { from: 'model', to: 'fake', entries } };
  }

  async startVm(name: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.prefix, 'startVm', options.signal);
    const v = this.get(name);
    // A boot (from stopped) is a new guest session; a paused guest goes on with its own.
    if (v.state === 'stopped') v.session = FakeLiveMove.newSession();
    v.state = 'running';
  }

  async shutdownVm(name: string, options: ShutdownOptions): Promise<ShutdownResult> {
    throwIfAborted(this.prefix, 'shutdownVm', options.signal);
    const v = this.get(name);
    if (v.state === 'stopped') return { alreadyStopped: true, forced: false };
    if (!this.config.guestsIgnoreShutdown) {
      this.stopped(name, v);
      return { alreadyStopped: false, forced: false };
    }
    await sleep(options.timeoutMs, undefined, options.signal ? { signal: options.signal } : {}).catch((err: unknown) => {
      throw hvError('HV_ABORTED', `${this.prefix}: 'shutdownVm' was cancelled`, { cause: err });
    });
    this.stopped(name, v);
    return { alreadyStopped: false, forced: true };
  }

  /** A VM stops; one never defined (restored transient) is gone then, as in libvirt. */
  private stopped(name: string, v: FakeVmRecord): void {
    v.state = 'stopped';
    if (v.transient) this.vms.delete(name);
  }

  async undefineVm(name: string, options: UndefineOptions = {}): Promise<{ existed: boolean }> {
    throwIfAborted(this.prefix, 'undefineVm', options.signal);
    const v = this.vms.get(name);
    if (!v) return { existed: false };
    const storage = this.live.storageOf(name);
    this.vms.delete(name);
    if (options.removeStorage) for (const h of storage) this.disks.delete(h);
    return { existed: true };
  }

  private disk(name: string, diskId: string): { href: string; disk: FakeDisk } {
    const v = this.get(name);
    const href = /^\d+$/.test(diskId) ? v.hrefs[Number(diskId)] : undefined;
    const disk = href === undefined ? undefined : this.disks.get(href);
    if (!href || !disk) throw hvError('HV_DISK_NOT_FOUND', `${this.prefix}: vm '${name}' has no disk '${diskId}'`, { details: { vm: name, diskId } });
    return { href, disk };
  }

  async statDisk(name: string, diskId: string, options: CallOptions = {}): Promise<DiskInfo> {
    throwIfAborted(this.prefix, 'statDisk', options.signal);
    const { href, disk } = this.disk(name, diskId);
    const size = disk.bytes.length;
    return { id: diskId, href, format: disk.format, capacityBytes: disk.capacityBytes, sizeBytes: size, extents: size ? [{ offset: 0, length: size, data: true }] : [] };
  }

  async readDisk(name: string, diskId: string, options: ReadDiskOptions = {}): Promise<Readable> {
    throwIfAborted(this.prefix, 'readDisk', options.signal);
    const { disk } = this.disk(name, diskId);
    const start = options.offset ?? 0;
    const end = options.length === undefined ? disk.bytes.length : Math.min(disk.bytes.length, start + options.length);
    const bytes = disk.bytes.subarray(start, end);
    const chunk = 64 * 1024;
    const signal = options.signal;
    const prefix = this.prefix;
    return Readable.from((function* () {
      for (let o = 0; o < bytes.length; o += chunk) {
        if (signal?.aborted) throw hvError('HV_ABORTED', `${prefix}: 'readDisk' was cancelled`, { cause: signal.reason });
        yield bytes.subarray(o, o + chunk);
      }
    })(), { objectMode: false });
  }

  async writeDisk(disk: NewDisk, source: Readable, options: CallOptions = {}): Promise<DiskRef> {
    throwIfAborted(this.prefix, 'writeDisk', options.signal);
    if (!isSafeDiskName(disk.name)) throw hvError('HV_MODEL_INVALID', `${this.prefix}: '${disk.name}' is not a valid disk name`, { details: { name: disk.name } });
    const href = `fake:${disk.name}`;
    if (this.disks.has(href)) throw hvError('HV_DISK_EXISTS', `${this.prefix}: disk '${disk.name}' already exists`, { details: { href } });
    const free = this.config.diskBytes - this.used();
    if (disk.sizeBytes > free) {
      source.destroy();
      throw hvError('HV_NO_SPACE', `${this.prefix}: no room for '${disk.name}' (${disk.sizeBytes} bytes, ${free} free)`, { details: { needed: disk.sizeBytes, free } });
    }
    // Reserve the name while bytes arrive, so a concurrent write clashes.
    this.disks.set(href, { format: disk.format, capacityBytes: disk.capacityBytes, bytes: Buffer.alloc(0) });
    const guard = new ExactLength(disk.sizeBytes, `${this.prefix}: disk '${disk.name}'`);
    const parts: Buffer[] = [];
    const onAbort = (): void => {
      guard.destroy(abortedError(this.prefix, 'writeDisk', options.signal));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      source.on('error', (err) => guard.destroy(err));
      source.pipe(guard);
      for await (const c of guard) {
        throwIfAborted(this.prefix, 'writeDisk', options.signal);
        parts.push(c as Buffer);
      }
    } catch (err) {
      this.disks.delete(href);
      source.destroy();
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    this.disks.set(href, { format: disk.format, capacityBytes: disk.capacityBytes, bytes: Buffer.concat(parts) });
    return { id: '0', href, format: disk.format, capacityBytes: disk.capacityBytes };
  }

  async removeDisk(href: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.prefix, 'removeDisk', options.signal);
    this.disks.delete(href);
  }

  async importVm(vm: VirtualMachine, disks: readonly ImportDisk[], options: CallOptions = {}): Promise<DefineResult> {
    return importByParts(this, vm, disks, options);
  }

  /** Every disk image the fake holds (tests check that nothing was orphaned). */
  diskHrefs(): string[] {
    return [...this.disks.keys()].sort();
  }

  async close(): Promise<void> {
    // Nothing to close.
  }
}
