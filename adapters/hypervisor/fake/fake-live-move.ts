/**
 * The fake's live-move capabilities, in memory, with the libvirt adapter's semantics: a round
 * puts an empty overlay on every disk; an overlay's stored bytes are a small serialisation of the
 * writes it took (`FAKE-OVERLAY` + JSON), so it can be read, sent and written elsewhere like any
 * image; the saved state is the VM's model and its guest session (`FAKE-STATE` + JSON).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { vmNameProblem, type VirtualMachine } from '../../../protocols/vm/index.js';
import type {
  ChainImage, ChainImport, ChangeTracking, PrecopyRound, ReceivedImage, RestoreOptions, RestoreRequest, RestoreResult, RestoreTarget,
  SavedState, SaveStateOptions, StateCapture, StateRequirements, StateRestore,
} from '../capabilities.js';
import type { CallOptions, DiskRef, ReadDiskOptions, VmPowerState } from '../contract.js';
import { hvError, throwIfAborted } from '../errors.js';

const OVERLAY_MAGIC = 'FAKE-OVERLAY\n';
const STATE_MAGIC = 'FAKE-STATE\n';
/** The one machine type the fake runs. */
export const FAKE_MACHINE = { arch: 'x86_64', machine: 'fake-1' } as const;

/** A stored image of the fake. */
export interface FakeImage {
  format: 'raw' | 'qcow2' | 'vmdk' | 'vmdk-stream' | 'vdi' | 'vhd' | 'vhdx' | 'iso';
  capacityBytes: number;
  bytes: Buffer;
  /** For an overlay: the image below it. */
  backing?: string;
}

/** A VM of the fake, as its live-move code sees it. */
export interface FakeVmRecord {
  vm: VirtualMachine;
  state: VmPowerState;
  /** Each disk's top image. */
  hrefs: string[];
  /** The running guest: a new session at each boot, kept across save and restore. */
  session?: string;
  /** Restored and not defined yet (`RestoreOptions.transient`): gone once it stops. */
  transient?: boolean;
}

/** What the fake lends its live-move code. */
export interface FakeStore {
  readonly prefix: string;
  readonly vms: Map<string, FakeVmRecord>;
  readonly disks: Map<string, FakeImage>;
}

interface OverlayWrites {
  writes: Array<[number, string]>;
}

/** Reads an overlay's writes; `undefined` when the bytes are not a fake overlay. */
function decodeOverlay(bytes: Buffer): OverlayWrites | undefined {
  const text = bytes.toString('utf8');
  if (!text.startsWith(OVERLAY_MAGIC)) return undefined;
  try {
    const v = JSON.parse(text.slice(OVERLAY_MAGIC.length)) as unknown;
    const w = (v as OverlayWrites).writes;
    if (!Array.isArray(w) || !w.every((x) => Array.isArray(x) && Number.isSafeInteger(x[0]) && x[0] >= 0 && typeof x[1] === 'string')) return undefined;
    return { writes: w };
  } catch (err) {
    // Not JSON: not an overlay of ours (the caller refuses it with a coded error).
    void err;
    return undefined;
  }
}

function encodeOverlay(o: OverlayWrites): Buffer {
  return Buffer.from(OVERLAY_MAGIC + JSON.stringify(o));
}

/** The fake implementation of change tracking, state capture and state restore. */
export class FakeLiveMove implements ChangeTracking, StateCapture, StateRestore, ChainImport {
  constructor(private readonly s: FakeStore) {}

  private vm(name: string): FakeVmRecord {
    const v = this.s.vms.get(name);
    if (!v) throw hvError('HV_VM_NOT_FOUND', `${this.s.prefix}: no vm '${name}'`, { details: { vm: name } });
    return v;
  }

  private invalid(name: string, op: string, state: string): Error {
    return hvError('HV_INVALID_STATE', `${this.s.prefix}: cannot ${op} vm '${name}' while it is '${state}'`, { details: { vm: name, state } });
  }

  /** A disk's chain, base first. */
  private chainOf(top: string): string[] {
    const out: string[] = [];
    for (let h: string | undefined = top; h !== undefined; h = this.s.disks.get(h)?.backing) out.unshift(h);
    return out;
  }

  /** What the guest sees on the disk whose top image is `top`: the image below with this one's writes, in order. */
  view(top: string): Buffer {
    const img = this.s.disks.get(top);
    if (!img) return Buffer.alloc(0);
    if (img.backing === undefined) return Buffer.from(img.bytes);
    let out = this.view(img.backing);
    for (const [offset, b64] of decodeOverlay(img.bytes)?.writes ?? []) {
      const data = Buffer.from(b64, 'base64');
      if (out.length < offset + data.length) out = Buffer.concat([out, Buffer.alloc(offset + data.length - out.length)]);
      data.copy(out, offset);
    }
    return out;
  }

  /** A guest write (tests): into the disk's top image, as the running guest would. */
  guestWrite(name: string, diskId: string, offset: number, data: Buffer): void {
    const v = this.vm(name);
    if (v.state !== 'running') throw this.invalid(name, 'write to the disk of', v.state);
    const top = v.hrefs[Number(diskId)];
    const img = top === undefined ? undefined : this.s.disks.get(top);
    if (!img) throw hvError('HV_DISK_NOT_FOUND', `${this.s.prefix}: vm '${name}' has no disk '${diskId}'`, { details: { vm: name, diskId } });
    if (img.backing === undefined) {
      if (img.bytes.length < offset + data.length) img.bytes = Buffer.concat([img.bytes, Buffer.alloc(offset + data.length - img.bytes.length)]);
      data.copy(img.bytes, offset);
      return;
    }
    const o = decodeOverlay(img.bytes) ?? { writes: [] };
    o.writes.push([offset, data.toString('base64')]);
    img.bytes = encodeOverlay(o);
  }

  private image(diskId: string, depth: number, href: string): ChainImage {
    const img = this.s.disks.get(href)!;
    const n = img.bytes.length;
    return { diskId, depth, href, format: img.format, sizeBytes: n, extents: n ? [{ offset: 0, length: n, data: true }] : [] };
  }

  private setTop(v: FakeVmRecord, i: number, href: string): void {
    v.hrefs[i] = href;
    const disks = v.vm.disks.map((d, k) => (k === i ? { ...d, file: { href } } : d));
    v.vm = { ...v.vm, disks };
  }

  // ---- change tracking ----------------------------------------------------------------------

  async startRound(name: string, options: CallOptions = {}): Promise<PrecopyRound> {
    throwIfAborted(this.s.prefix, 'startRound', options.signal);
    const v = this.vm(name);
    if (v.state !== 'running' && v.state !== 'paused') throw this.invalid(name, 'start a pre-copy round of', v.state);
    const round = Math.max(1, ...v.hrefs.map((h) => this.chainOf(h).length));
    const frozen: ChainImage[] = [];
    const overlays: DiskRef[] = [];
    v.hrefs.forEach((top, i) => {
      frozen.push(this.image(String(i), this.chainOf(top).length - 1, top));
      const href = `fake:${name}-disk${i}.ovl${round}`;
      const below = this.s.disks.get(top)!;
      this.s.disks.set(href, { format: 'qcow2', capacityBytes: below.capacityBytes, bytes: encodeOverlay({ writes: [] }), backing: top });
      this.setTop(v, i, href);
      overlays.push({ id: String(i), href, format: 'qcow2', capacityBytes: below.capacityBytes });
    });
    return { round, frozen, overlays };
  }

  async chain(name: string, options: CallOptions = {}): Promise<ChainImage[][]> {
    throwIfAborted(this.s.prefix, 'chain', options.signal);
    const v = this.vm(name);
    return v.hrefs.map((top, i) => this.chainOf(top).map((h, depth) => this.image(String(i), depth, h)));
  }

  async readImage(name: string, href: string, options: ReadDiskOptions = {}): Promise<Readable> {
    throwIfAborted(this.s.prefix, 'readImage', options.signal);
    const v = this.vm(name);
    const top = v.hrefs.find((t) => this.chainOf(t).includes(href));
    if (top === undefined) throw hvError('HV_DISK_NOT_FOUND', `${this.s.prefix}: '${href}' is not an image of vm '${name}'`, { details: { vm: name, href } });
    if (top === href && v.state !== 'stopped' && v.state !== 'paused') throw this.invalid(name, `read the image the guest writes to ('${href}') of`, v.state);
    const bytes = this.s.disks.get(href)!.bytes;
    const start = options.offset ?? 0;
    const end = options.length === undefined ? bytes.length : Math.min(bytes.length, start + options.length);
    return Readable.from([Buffer.from(bytes.subarray(start, end))]);
  }

  private merge(name: string, op: string): void {
    const v = this.vm(name);
    if (v.hrefs.every((h) => this.s.disks.get(h)?.backing === undefined)) return;
    if (v.state !== 'running' && v.state !== 'paused') throw this.invalid(name, `${op} (merge the disk chain of)`, v.state);
    v.hrefs.forEach((top, i) => {
      const chain = this.chainOf(top);
      if (chain.length === 1) return;
      const base = this.s.disks.get(chain[0]!)!;
      base.bytes = this.view(top);
      for (const h of chain.slice(1)) this.s.disks.delete(h);
      this.setTop(v, i, chain[0]!);
    });
  }

  async abortTracking(name: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.s.prefix, 'abortTracking', options.signal);
    this.merge(name, 'abortTracking');
  }

  // ---- state capture --------------------------------------------------------------------------

  private stateHref(name: string): string {
    return `fake:${name}.state`;
  }

  async stateRequirements(name: string, options: CallOptions = {}): Promise<StateRequirements> {
    throwIfAborted(this.s.prefix, 'stateRequirements', options.signal);
    const v = this.vm(name);
    return { hypervisor: 'fake', arch: v.vm.arch ?? FAKE_MACHINE.arch, machine: FAKE_MACHINE.machine };
  }

  async pause(name: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.s.prefix, 'pause', options.signal);
    const v = this.vm(name);
    if (v.state === 'running') v.state = 'paused';
    else if (v.state !== 'paused' && !(v.state === 'stopped' && this.s.disks.has(this.stateHref(name)))) throw this.invalid(name, 'pause', v.state);
  }

  async saveState(name: string, options: SaveStateOptions = {}): Promise<SavedState> {
    throwIfAborted(this.s.prefix, 'saveState', options.signal);
    const v = this.vm(name);
    const href = this.stateHref(name);
    if (v.state === 'stopped') {
      const f = this.s.disks.get(href);
      if (!f) throw this.invalid(name, 'save the state of', v.state);
      return { href, sizeBytes: f.bytes.length };
    }
    const bytes = Buffer.from(STATE_MAGIC + JSON.stringify({ name, vm: v.vm, session: v.session ?? null }));
    this.s.disks.set(href, { format: 'raw', capacityBytes: bytes.length, bytes });
    // Whole before the VM is stopped, as a hypervisor that tears the VM down after writing it.
    options.onWritten?.({ href, sizeBytes: bytes.length });
    v.state = 'stopped';
    return { href, sizeBytes: bytes.length };
  }

  async readState(name: string, options: ReadDiskOptions = {}): Promise<Readable> {
    throwIfAborted(this.s.prefix, 'readState', options.signal);
    this.vm(name);
    const f = this.s.disks.get(this.stateHref(name));
    if (!f) throw hvError('HV_STATE_NOT_FOUND', `${this.s.prefix}: vm '${name}' has no saved state`, { details: { vm: name } });
    const start = options.offset ?? 0;
    const end = options.length === undefined ? f.bytes.length : Math.min(f.bytes.length, start + options.length);
    return Readable.from([Buffer.from(f.bytes.subarray(start, end))]);
  }

  async resumeFromState(name: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.s.prefix, 'resumeFromState', options.signal);
    const v = this.vm(name);
    if (v.state === 'stopped') {
      if (!this.s.disks.has(this.stateHref(name))) throw hvError('HV_STATE_NOT_FOUND', `${this.s.prefix}: vm '${name}' has no saved state to resume from`, { details: { vm: name } });
      v.state = 'running';
    } else if (v.state === 'paused') v.state = 'running';
    this.s.disks.delete(this.stateHref(name));
  }

  async discardState(name: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.s.prefix, 'discardState', options.signal);
    this.s.disks.delete(this.stateHref(name));
  }

  // ---- state restore ----------------------------------------------------------------------------

  async restoreTarget(options: CallOptions = {}): Promise<RestoreTarget> {
    throwIfAborted(this.s.prefix, 'restoreTarget', options.signal);
    return { hypervisor: 'fake', version: '1', machines: [{ ...FAKE_MACHINE }] };
  }

  async restoreVm(req: RestoreRequest, options: RestoreOptions = {}): Promise<RestoreResult> {
    throwIfAborted(this.s.prefix, 'restoreVm', options.signal);
    const { name } = req;
    const problem = vmNameProblem(name);
    if (problem !== undefined) throw hvError('HV_VM_NAME_INVALID', `${this.s.prefix}: vm name ${JSON.stringify(name)} ${problem}`, { details: { vm: name } });
    const existing = this.s.vms.get(name);
    if (existing !== undefined) {
      // Only the domain an earlier attempt of the caller made (its UUID, never resumed) is taken away.
      if (options.replacing === undefined || existing.state === 'running' || existing.vm.uuid !== options.replacing) {
        throw hvError('HV_VM_EXISTS', `${this.s.prefix}: a vm named '${name}' already exists`, { details: { vm: name } });
      }
      this.s.vms.delete(name);
    }
    const refuse = (why: string, details: Record<string, unknown> = {}): never => {
      throw hvError('HV_STATE_INVALID', `${this.s.prefix}: cannot restore '${name}': ${why}`, { details: { vm: name, ...details } });
    };
    this.checkChains(req.disks, refuse, [req.state]);
    const text = this.s.disks.get(req.state)!.bytes.toString('utf8');
    let saved: { name: string; vm: VirtualMachine; session: string | null };
    try {
      if (!text.startsWith(STATE_MAGIC)) throw new Error('no state header');
      saved = JSON.parse(text.slice(STATE_MAGIC.length)) as typeof saved;
    } catch (err) {
      throw hvError('HV_STATE_INVALID', `${this.s.prefix}: cannot restore '${name}': the state file cannot be read`, { cause: err, details: { vm: name } });
    }
    if (saved.name !== name || saved.vm?.name !== name) refuse(`the state is of vm ${JSON.stringify(saved.name)}`, { named: saved.name });
    if (saved.vm.disks.length !== req.disks.length) refuse(`the vm has ${saved.vm.disks.length} disks, ${req.disks.length} were sent`);
    // A saved vm without a UUID gets one derived from its state: a real domain (and so its
    // saved state) always carries one, the same on every restore of that state.
    const uuid = saved.vm.uuid ?? uuidOf(text);
    await options.beforeRestore?.(uuid);
    const tops = this.link(req.disks);
    const vm: VirtualMachine = { ...saved.vm, uuid, disks: saved.vm.disks.map((d, i) => ({ ...d, file: { href: tops[i]! } })) };
    this.s.vms.set(name, {
      vm, state: options.paused ? 'paused' : 'running', hrefs: tops, ...(saved.session ? { session: saved.session } : {}), ...(options.transient ? { transient: true } : {}),
    });
    return {
      name, uuid,
      disks: tops.map((href, i) => ({ id: String(i), href, format: this.s.disks.get(href)!.format, capacityBytes: vm.disks[i]!.capacityBytes })),
    };
  }

  /** Refuses chains of files not written here, named twice (also among `others`), or overlays that are not. */
  private checkChains(disks: ReadonlyArray<readonly ReceivedImage[]>, refuse: (why: string, details?: Record<string, unknown>) => never, others: readonly string[] = []): void {
    const seen = new Set<string>();
    for (const href of [...others, ...disks.flat().map((p) => p.href)]) {
      if (!this.s.disks.has(href)) refuse(`'${href}' was not written here`, { href });
      if (seen.has(href)) refuse(`'${href}' is named twice`, { href });
      seen.add(href);
    }
    if (disks.some((c) => c.length === 0)) refuse('a disk has an empty chain');
    disks.forEach((chain, i) => chain.forEach((p, depth) => {
      if (depth === 0 && p.format !== 'raw' && p.format !== 'qcow2') refuse(`the base of disk ${i} is declared '${p.format}'`, { diskId: String(i), format: p.format });
      if (depth > 0 && (p.format !== 'qcow2' || decodeOverlay(this.s.disks.get(p.href)!.bytes) === undefined)) refuse(`image ${depth} of disk ${i} is not an overlay`, { diskId: String(i), depth });
    }));
  }

  /** Links each overlay onto the image written below it (whatever the peer had below it); the tops. */
  private link(disks: ReadonlyArray<readonly ReceivedImage[]>): string[] {
    for (const chain of disks) {
      chain.forEach((p, depth) => {
        const img = this.s.disks.get(p.href)!;
        img.format = p.format;
        if (depth === 0) delete img.backing;
        else img.backing = chain[depth - 1]!.href;
      });
    }
    return disks.map((c) => c[c.length - 1]!.href);
  }

  // ---- chain import ------------------------------------------------------------------------------

  async linkChains(disks: ReadonlyArray<readonly ReceivedImage[]>, options: CallOptions = {}): Promise<DiskRef[]> {
    throwIfAborted(this.s.prefix, 'linkChains', options.signal);
    this.checkChains(disks, (why, details = {}) => {
      throw hvError('HV_STATE_INVALID', `${this.s.prefix}: cannot link the received chains: ${why}`, { details });
    });
    const tops = this.link(disks);
    return tops.map((href, i) => {
      const capacityBytes = this.s.disks.get(disks[i]![0]!.href)!.capacityBytes;
      return { id: String(i), href, format: this.s.disks.get(href)!.format, capacityBytes };
    });
  }

  async resumeRestored(uuid: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.s.prefix, 'resumeRestored', options.signal);
    const v = [...this.s.vms.values()].find((x) => x.vm.uuid === uuid);
    if (v === undefined) throw hvError('HV_VM_NOT_FOUND', `${this.s.prefix}: no vm has uuid '${uuid}'`, { details: { uuid } });
    if (v.state === 'paused') v.state = 'running';
    else if (v.state !== 'running') throw this.invalid(v.vm.name, 'resume', v.state);
  }

  async persistRestored(uuid: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.s.prefix, 'persistRestored', options.signal);
    const v = [...this.s.vms.values()].find((x) => x.vm.uuid === uuid);
    if (v === undefined) throw hvError('HV_VM_NOT_FOUND', `${this.s.prefix}: no vm has uuid '${uuid}'`, { details: { uuid } });
    delete v.transient;
  }

  async flattenDisks(name: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.s.prefix, 'flattenDisks', options.signal);
    this.merge(name, 'flattenDisks');
  }

  /** Every image of a VM's chains and its state file (for `undefineVm` with `removeStorage`). */
  storageOf(name: string): string[] {
    const v = this.s.vms.get(name);
    return [...(v?.hrefs.flatMap((t) => this.chainOf(t)) ?? []), this.stateHref(name)];
  }

  /** A new guest session (a boot). */
  static newSession(): string {
    return randomUUID();
  }
}

/** A UUID-shaped name derived from `text` (the same text, the same UUID). */
function uuidOf(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
