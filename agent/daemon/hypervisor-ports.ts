/**
 * The migration's hypervisor ports on top of an adapter ({@link Hypervisor}): the source
 * describes its VM as OVF and stops, starts or removes it; the target imports the VM from
 * the OVF and the received disk files. No backend detail is visible here: only the contract.
 */
import { execFile } from 'node:child_process';
import { createReadStream, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { chainImport, changeTracking, stateCapture, stateRestore, type Hypervisor, type SavedState, type VmPowerState } from '../../adapters/hypervisor/index.js';
import { promisify } from 'node:util';
import { IntercloudError, isIntercloudError, messageOf } from '../../protocols/errors/index.js';
import { readOvf, writeOvf } from '../../protocols/ovf/index.js';
import { imageSha256, type BaseImageStore } from '../base-images/index.js';
import type { TransferSource } from '../../protocols/amqp/index.js';
import { fileSource, streamSource } from '../../protocols/amqp/index.js';
import {
  localVmModel, parseImageInfo, sourceModeSupport, type HypervisorPort, type ImageInfo, type LocalVmRef, type NetworkPolicy, type PrecopyPort,
  type TargetHypervisorPort, type VmSummary,
} from '../migration/index.js';

const execFileAsync = promisify(execFile);

const stateOf = (s: VmPowerState | 'absent'): 'running' | 'stopped' | 'absent' =>
  s === 'absent' ? 'absent' : s === 'running' || s === 'paused' ? 'running' : 'stopped';

/** The source side's hypervisor port. */
export function sourceHypervisorPort(hv: Hypervisor, opts: { shutdownTimeoutMs: number }): HypervisorPort {
  return {
    async describe(vm, signal) {
      // The adapter reports disk sizes from the images themselves (domain XML has none).
      const { vm: model, disks } = await hv.describeVm(vm, { signal });
      const { value: descriptor } = writeOvf([model]);
      const bases = await Promise.all(disks.map((d) => (d.format === 'qcow2' ? overlayBaseOf(hv, vm, d.id, signal) : undefined)));
      const summary: VmSummary = {
        name: model.name,
        vcpus: model.cpu.count,
        memoryBytes: model.memoryBytes,
        macs: model.nics.flatMap((n) => (n.mac ? [n.mac] : [])),
        disks: model.disks.map((x, i) => ({ id: String(i), capacityBytes: x.capacityBytes, ...(bases[i] === undefined ? {} : { base: bases[i] }) })),
        addresses: [],
      };
      return { summary, descriptor };
    },
    state: async (vm, signal) => stateOf(await hv.vmState(vm, { signal })),
    stop: async (vm, signal) => { await hv.shutdownVm(vm, { timeoutMs: opts.shutdownTimeoutMs, signal }); },
    start: async (vm, signal) => hv.startVm(vm, { signal }),
    remove: async (vm, signal) => { await hv.undefineVm(vm, { removeStorage: true, signal }); },
  };
}

/**
 * Issue 16: the content hash of the raw base that disk `diskId` of `vm` is a qcow2 overlay on,
 * offered so that a target holding that base gets the overlay only. Only for an overlay in the
 * hypervisor's local storage directory (read and, if need be, flattened here) whose base this
 * machine can read ({@link imageSha256}, saved beside the base); otherwise undefined: the disk
 * goes flattened.
 */
async function overlayBaseOf(hv: Hypervisor, vm: string, diskId: string, signal: AbortSignal): Promise<string | undefined> {
  const [info, local] = await Promise.all([hv.statDisk(vm, diskId, { signal }), localStorageDirOf(hv, signal)]);
  if (info.backing === undefined || info.backing.format !== 'raw' || local === undefined || dirname(info.href) !== local) return undefined;
  try {
    return (await imageSha256(info.backing.href, { signal })).sha256;
  } catch (err) {
    // A base this machine cannot read or hash: the flattened disk goes instead.
    if (isIntercloudError(err, 'BASE_IO')) return undefined;
    throw err;
  }
}

/**
 * The source's pre-copy port (issue 15) on the adapter's optional capabilities; `undefined`
 * when the adapter cannot track disk changes (its VMs move cold only). State capture is asked
 * for only by a live move, which the negotiation chose only if the adapter has it.
 */
export function sourcePrecopyPort(hv: Hypervisor): PrecopyPort | undefined {
  const track = changeTracking(hv);
  if (track === undefined) return undefined;
  const capture = (): NonNullable<ReturnType<typeof stateCapture>> => {
    const c = stateCapture(hv);
    if (c === undefined) throw new IntercloudError('MIGRATE_MODE_UNSUPPORTED', 'this cloud\'s hypervisor cannot save a vm\'s state', { retryable: false });
    return c;
  };
  return {
    support: (vm, signal) => sourceModeSupport(hv, vm, { signal }),
    startRound: async (vm, signal) => ({ round: (await track.startRound(vm, { signal })).round }),
    chain: async (vm, signal) => (await track.chain(vm, { signal })).map((c) => c.map((i) => ({ diskId: i.diskId, depth: i.depth, sizeBytes: i.sizeBytes }))),
    pause: async (vm, signal) => capture().pause(vm, { signal }),
    saveState: async (vm, signal) => ({ sizeBytes: (await capture().saveState(vm, { signal })).sizeBytes }),
    async resumeFromState(vm, signal) {
      const c = stateCapture(hv);
      // Nothing saved (never saved, or resumed already): a running VM stays as it is.
      if (c !== undefined && (await hv.vmState(vm, { signal })) !== 'running') await c.resumeFromState(vm, { signal });
    },
    abortTracking: (vm, signal) => track.abortTracking(vm, { signal }),
    discardState: async (vm, signal) => { await stateCapture(hv)?.discardState(vm, { signal }); },
  };
}

/**
 * Saves the paused VM's memory and device state (a live cut-over): `written` resolves as soon as
 * the state file is whole, which may be a second or more before `saved` (the VM stopped here:
 * the hypervisor tears it down after the last byte), or with `saved` when the adapter cannot
 * tell earlier. A file sent on `written` is the file saved only once `saved` resolves with the
 * same length. Idempotent: a VM already saved resolves both with its file.
 */
export function saveVmState(hv: Hypervisor, vm: string, signal: AbortSignal): { written: Promise<SavedState>; saved: Promise<SavedState> } {
  const capture = stateCapture(hv);
  if (capture === undefined) {
    const err = new IntercloudError('MIGRATE_MODE_UNSUPPORTED', 'this cloud\'s hypervisor cannot save a vm\'s state', { retryable: false });
    return { written: Promise.reject(err), saved: Promise.reject(err) };
  }
  let early!: (s: SavedState) => void;
  const whole = new Promise<SavedState>((resolve) => { early = resolve; });
  const saved = capture.saveState(vm, { signal, onWritten: (s) => early(s) });
  return { written: Promise.race([whole, saved]), saved };
}

/**
 * A saved state file as a transfer source: read through the adapter (`readState`), reopened at
 * an offset for re-sends; read here as a file when it lies in the hypervisor's local storage.
 */
export async function savedStateSource(hv: Hypervisor, vm: string, saved: SavedState, signal: AbortSignal): Promise<TransferSource> {
  const capture = stateCapture(hv);
  if (capture === undefined) throw new IntercloudError('MIGRATE_MODE_UNSUPPORTED', 'this cloud\'s hypervisor cannot save a vm\'s state', { retryable: false });
  const size = saved.sizeBytes;
  return localOrStreamed(hv, saved.href, size, (offset) => capture.readState(vm, { offset, length: size - offset, signal }), signal);
}

/**
 * An image of a running VM's chain (issue 15) as a transfer source: read through the adapter
 * (`readImage`), reopened at an offset for re-sends; read here as a file when it lies in the
 * hypervisor's local storage.
 */
export async function chainImageSource(hv: Hypervisor, vm: string, image: { diskId: string; depth: number }, signal: AbortSignal): Promise<TransferSource> {
  const track = changeTracking(hv);
  if (track === undefined) throw new IntercloudError('MIGRATE_MODE_UNSUPPORTED', 'this cloud\'s hypervisor cannot pre-copy a vm', { retryable: false });
  const found = (await track.chain(vm, { signal }))[Number(image.diskId)]?.find((i) => i.depth === image.depth);
  if (found === undefined) {
    throw new IntercloudError('MIGRATE_BAD_IMAGES', `vm '${vm}' has no image ${image.depth} of disk '${image.diskId}'`, { retryable: false });
  }
  const size = found.sizeBytes;
  return localOrStreamed(hv, found.href, size, (offset) => track.readImage(vm, found.href, { offset, length: size - offset, signal }), signal);
}

/** `href` read as a file here when it lies in the hypervisor's local storage directory, else streamed by `open`. */
async function localOrStreamed(hv: Hypervisor, href: string, size: number, open: (offset: number) => Promise<Readable>, signal: AbortSignal): Promise<TransferSource> {
  // In the hypervisor's local storage directory: read as a file here (no hop through the adapter).
  const local = await localStorageDirOf(hv, signal);
  if (local !== undefined && dirname(href) === local) return fileSource(href);
  return adapterStreamSource(size, open);
}

/** A transfer source of `size` bytes read through the adapter: `open(offset)` again for each re-send; `extents` the data. */
function adapterStreamSource(size: number, open: (offset: number) => Promise<Readable>, extents?: Array<{ offset: number; length: number }>): TransferSource {
  return streamSource({
    size,
    ...(extents ? { extents } : {}),
    open: (offset: number): Readable => {
      const out = new PassThrough();
      open(offset).then(
        (s) => { s.on('error', (err) => out.destroy(err)); s.pipe(out); },
        (err: unknown) => out.destroy(err as Error),
      );
      return out;
    },
  });
}

const LOCAL_STORAGE_TTL_MS = 60_000;
/** Longest an answer older than {@link LOCAL_STORAGE_TTL_MS} is still given while it is probed again. */
const LOCAL_STORAGE_STALE_MS = 600_000;
const localStorageSeen = new WeakMap<Hypervisor, { dir: string | undefined; at: number; probing?: Promise<unknown> }>();

/**
 * {@link Hypervisor.localStorageDir} of `hv`, remembered: the probe costs two hypervisor commands
 * (over SSH, a round trip each, 0.3–1 s on a loaded host), and a migration asks on the receive,
 * the define and each image's send — a live move's within its cut-over. Fresh for a minute; up to
 * ten, an older answer is given at once while it is probed again for the next caller. `undefined`
 * when the adapter has no local storage.
 */
export async function localStorageDirOf(hv: Hypervisor, signal: AbortSignal): Promise<string | undefined> {
  if (!hv.localStorageDir) return undefined;
  const probe = hv.localStorageDir.bind(hv);
  const seen = localStorageSeen.get(hv);
  const age = seen === undefined ? Infinity : Date.now() - seen.at;
  if (seen && age < LOCAL_STORAGE_TTL_MS) return seen.dir;
  if (seen && age < LOCAL_STORAGE_STALE_MS) {
    seen.probing ??= probe({}).then(
      (dir) => { localStorageSeen.set(hv, { dir, at: Date.now() }); },
      () => { seen.probing = undefined; },
    );
    return seen.dir;
  }
  const dir = await probe({ signal });
  localStorageSeen.set(hv, { dir, at: Date.now() });
  return dir;
}

/**
 * A disk of a stopped VM as a transfer source: bytes streamed from the adapter (reopened at
 * an offset for re-sends), holes known from its allocation map are never read. An image in
 * the hypervisor's local storage directory ({@link Hypervisor.localStorageDir}) is read as a
 * file here, sparing the adapter's hop (over SSH: one more encryption of every byte).
 */
export async function diskTransferSource(
  hv: Hypervisor, vm: string, diskId: string, signal: AbortSignal, flat?: FlattenOptions, options: { overlay?: boolean } = {},
): Promise<TransferSource> {
  const [info, local] = await Promise.all([hv.statDisk(vm, diskId, { signal }), localStorageDirOf(hv, signal)]);
  // `overlay`: the target holds the base (issue 16): the overlay's own bytes go, as stored.
  if (info.backing !== undefined && options.overlay !== true) {
    // An overlay's own bytes name a backing file the target does not have (and refuses):
    // the disk goes flattened, as the raw image the guest sees (issue 16).
    if (flat === undefined || local === undefined || dirname(info.href) !== local) {
      throw new IntercloudError('MIGRATE_OVERLAY_UNSENDABLE',
        `disk '${diskId}' of vm '${vm}' overlays '${info.backing.href}' and is not in this hypervisor's local storage directory: it cannot be flattened here`,
        { retryable: false, details: { vm, diskId } });
    }
    return flattenedSource(info.href, flat, signal);
  }
  const extents = info.extents?.filter((e) => e.data).map((e) => ({ offset: e.offset, length: e.length }));
  if (local !== undefined && dirname(info.href) === local) return fileSource(info.href, extents);
  return adapterStreamSource(info.sizeBytes, (offset) => hv.readDisk(vm, diskId, { offset, length: info.sizeBytes - offset, signal }), extents);
}

/** Where {@link diskTransferSource} flattens an overlay disk: a scratch directory of this agent and a key unique to the transfer. */
export interface FlattenOptions {
  scratchDir: string;
  /** Names the flattened file (letters, digits, `-`): the transfer's id. */
  key: string;
}

/**
 * The flattened raw image of the overlay at `path` (`qemu-img convert -O raw`, sparse), written
 * once to `scratchDir/KEY.flat.raw` (through a `.part` file renamed) with the overlay's mtime,
 * so a re-sent transfer, even after a restart, finds a source of the same identity. Closing the
 * source removes the file.
 */
async function flattenedSource(path: string, o: FlattenOptions, signal: AbortSignal): Promise<TransferSource> {
  if (!/^[A-Za-z0-9-]+$/.test(o.key)) throw new IntercloudError('MIGRATE_OVERLAY_UNSENDABLE', `bad scratch key '${o.key}'`, { retryable: false });
  const out = join(o.scratchDir, `${o.key}.flat.raw`);
  const st = await fs.stat(path);
  const mtime = new Date(Math.trunc(st.mtimeMs));
  const have = await fs.stat(out).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err; });
  if (have === undefined || Math.trunc(have.mtimeMs) !== mtime.getTime()) {
    const part = `${out}.part`;
    try {
      await fs.mkdir(o.scratchDir, { recursive: true, mode: 0o750 });
      await fs.rm(part, { force: true });
      // -U: the VM is stopped, but a lock left by its hypervisor must not stop a read.
      await execFileAsync('qemu-img', ['convert', '-U', '-O', 'raw', path, part], { signal, maxBuffer: 1024 * 1024 });
      await fs.utimes(part, mtime, mtime);
      await fs.rename(part, out);
    } catch (err) {
      await fs.rm(part, { force: true });
      // A cancelled step is a cancel, not a disk that cannot be sent.
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : err;
      throw new IntercloudError('MIGRATE_OVERLAY_UNSENDABLE', `cannot flatten '${path}': ${messageOf(err)}`, { cause: err, retryable: false });
    }
  }
  const source = await fileSource(out);
  return {
    size: source.size,
    identity: source.identity,
    read: (offset, length, into, intoOffset) => source.read(offset, length, into, intoOffset),
    async close() {
      await source.close();
      await fs.rm(out, { force: true });
    },
  };
}

/** Reads what one received image file is (format, size, files it names); see {@link probeImageFile}. */
export type ImageProbe = (path: string, signal: AbortSignal) => Promise<ImageInfo>;

/**
 * What a received file is, read from the file itself with this machine's `qemu-img info
 * --output=json` (the files are received here; `info` opens the image without its backing
 * chain, so a hostile image does not make it open other files).
 */
export const probeImageFile: ImageProbe = async (path, signal) => {
  try {
    const { stdout } = await execFileAsync('qemu-img', ['info', '-U', '--output=json', path], { signal, maxBuffer: 4 * 1024 * 1024 });
    return parseImageInfo(stdout, path);
  } catch (err) {
    if (isIntercloudError(err)) throw err;
    throw new IntercloudError('MIGRATE_BAD_DISK', `received file '${path}': qemu-img info failed: ${messageOf(err)}`, { cause: err });
  }
};

/** Options of {@link targetHypervisorPort}. */
export interface TargetHypervisorOptions {
  shutdownTimeoutMs: number;
  /** How the peer's network names map to local networks. */
  networks: NetworkPolicy;
  /** Reads received image files (default {@link probeImageFile}). */
  probe?: ImageProbe;
  /**
   * Issue 16: this cloud's base images by content (`migration.baseImages`), to link a received
   * overlay onto. Absent: no base is held (an overlay named as held is refused).
   */
  baseImages?: Pick<BaseImageStore, 'resolve'>;
}

/**
 * The target side's hypervisor port. The VM is built from the received files and the
 * descriptor's hardware only ({@link localVmModel}), defined on the received files when they
 * lie in the hypervisor's local storage (received there directly), else imported with them
 * (the adapter streams them into its storage). Every later call goes by the VM's name and the
 * UUID the job chose: a domain of that name with another UUID is not ours and is never
 * adopted, started, stopped or removed.
 */
export function targetHypervisorPort(hv: Hypervisor, opts: TargetHypervisorOptions): TargetHypervisorPort {
  const probe = opts.probe ?? probeImageFile;
  /** Whose domain carries `ref.name`: nobody's, ours (our UUID), or another's. */
  const ownerOf = async (ref: LocalVmRef, signal: AbortSignal): Promise<{ owner: 'absent' | 'ours' | 'other'; state: VmPowerState | 'absent' }> => {
    // One call: the description carries the state (a live move's resume waits on this).
    let d;
    try {
      d = await hv.describeVm(ref.name, { signal });
    } catch (err) {
      if (isIntercloudError(err, 'HV_VM_NOT_FOUND')) return { owner: 'absent', state: 'absent' };
      throw err;
    }
    return { owner: d.vm.uuid === ref.uuid ? 'ours' : 'other', state: d.state };
  };
  const notOurs = (ref: LocalVmRef): IntercloudError => new IntercloudError('MIGRATE_NOT_OURS',
    `vm '${ref.name}' here is not the one this migration defined (uuid '${ref.uuid}'): it is left alone`, { details: { vm: ref.name, uuid: ref.uuid } });
  /** The descriptor's one virtual system, named as the offer (`MIGRATE_BAD_DESCRIPTOR` otherwise). */
  const describedOf = (descriptor: string, ref: LocalVmRef): NonNullable<ReturnType<typeof readOvf>['value']['systems'][number]> => {
    const { value: pkg } = readOvf(descriptor, { source: 'instantiate request' });
    const described = pkg.systems[0];
    if (!described || pkg.systems.length !== 1) {
      throw new IntercloudError('MIGRATE_BAD_DESCRIPTOR', `the descriptor holds ${pkg.systems.length} virtual systems, not one`);
    }
    if (described.name !== ref.name) {
      throw new IntercloudError('MIGRATE_BAD_DESCRIPTOR', `the descriptor names vm ${JSON.stringify(described.name)}, the offer '${ref.name}'`);
    }
    return described;
  };
  /**
   * Links each received overlay whose base this side said it holds (`hash`) onto this side's
   * own file of that content, looked up again here (never a path from the peer), and answers
   * what each linked image now is: a qcow2 of the disk's virtual size over this host's base.
   * The base stays outside the VM's storage (the adapter never writes it).
   */
  const linkHeldBases = async (
    disks: ReadonlyArray<{ path: string; hash: string | undefined }>, local: string | undefined, signal: AbortSignal,
  ): Promise<Array<ImageInfo | undefined>> => {
    const wanted = disks.flatMap((d, i) => (d.hash === undefined ? [] : [{ ...d, hash: d.hash, i }]));
    if (wanted.length === 0) return [];
    const link = chainImport(hv);
    const unlinkable = (why: string, cause?: unknown): IntercloudError => new IntercloudError('MIGRATE_BASE_UNLINKABLE',
      `a received overlay cannot be linked onto this cloud's base: ${why}`, { retryable: false, ...(cause === undefined ? {} : { cause }) });
    if (link === undefined || local === undefined) throw unlinkable('the hypervisor cannot link images in a local storage directory');
    if (opts.baseImages === undefined) throw unlinkable('this cloud lists no base images');
    const chains = [];
    for (const d of wanted) {
      if (dirname(d.path) !== local) throw unlinkable(`'${d.path}' is not in the hypervisor's local storage`);
      const base = await opts.baseImages.resolve(d.hash);
      if (base === undefined) throw unlinkable(`the base of content '${d.hash}' is no longer held here`);
      chains.push({ base: base.path, overlay: d.path });
    }
    let tops;
    try {
      tops = await link.linkChains(chains.map((c) => [{ href: c.base, format: 'raw' as const }, { href: c.overlay, format: 'qcow2' as const }]),
        { heldBases: [...new Set(chains.map((c) => c.base))], signal });
    } catch (err) {
      if (isIntercloudError(err, 'HV_STATE_INVALID')) throw new IntercloudError('MIGRATE_BAD_DISK', `a received overlay may not be used: ${messageOf(err)}`, { cause: err, retryable: false });
      throw err;
    }
    const out: Array<ImageInfo | undefined> = [];
    for (const [k, d] of wanted.entries()) out[d.i] = { format: 'qcow2', virtualSizeBytes: tops[k]!.capacityBytes };
    return out;
  };
  return {
    nameInUse: async (name, signal) => (await hv.vmState(name, { signal })) !== 'absent',
    ...(chainImport(hv) === undefined ? {} : {
      async link(chains: ReadonlyArray<ReadonlyArray<{ path: string; format: 'raw' | 'qcow2' }>>, signal: AbortSignal) {
        await chainImport(hv)!.linkChains(chains.map((c) => c.map((i) => ({ href: i.path, format: i.format }))), { signal });
      },
      async defineOnChain({ descriptor, disks: chains, vm: ref, offer }: Parameters<NonNullable<TargetHypervisorPort['defineOnChain']>>[0], signal: AbortSignal) {
        const described = describedOf(descriptor, ref);
        const found = await ownerOf(ref, signal);
        if (found.owner === 'other') {
          throw new IntercloudError('MIGRATE_NAME_TAKEN', `a vm named '${ref.name}' exists in this cloud and is not this migration's: it is left alone`, { details: { vm: ref.name } });
        }
        const volumes = chains.flat().map((i) => i.path);
        // Defined by an earlier attempt of this job (a crash before its result was journaled).
        if (found.owner === 'ours') return { vm: ref.name, uuid: ref.uuid, volumes, losses: [] };
        // Each overlay onto the received file below it (formats declared, never a reference the peer chose).
        const tops = await chainImport(hv)!.linkChains(chains.map((c) => c.map((i) => ({ href: i.path, format: i.format }))), { signal });
        // The model sees each top as the image it now is: the declared format and its virtual
        // size, with no file it names beyond the linked chain (checked by the adapter).
        const files = tops.map((t) => ({ path: t.href, image: { format: t.format, virtualSizeBytes: t.capacityBytes } }));
        const { vm, losses } = localVmModel({ described, offer, uuid: ref.uuid, files, networks: opts.networks });
        const r = await hv.defineVm(vm, { signal });
        return { vm: ref.name, uuid: ref.uuid, volumes, losses: [...losses, ...r.report.entries] };
      },
    }),
    async define({ descriptor, disks, vm: ref, offer, bases = {} }, signal) {
      // Before anything is looked up by the peer's name: it must be the offer's.
      const described = describedOf(descriptor, ref);
      const found = await ownerOf(ref, signal);
      if (found.owner === 'other') {
        throw new IntercloudError('MIGRATE_NAME_TAKEN', `a vm named '${ref.name}' exists in this cloud and is not this migration's: it is left alone`, { details: { vm: ref.name } });
      }
      if (found.owner === 'ours') {
        // Defined by an earlier attempt of this job (a crash before its result was journaled).
        const desc = await hv.describeVm(ref.name, { signal });
        return { vm: ref.name, uuid: ref.uuid, volumes: desc.disks.map((d) => d.href).filter((h) => h !== ''), losses: [] };
      }
      const paths = offer.disks.map((d, i) => {
        const path = disks[d.id] ?? disks[String(i)];
        if (path === undefined) throw new IntercloudError('MIGRATE_BAD_DESCRIPTOR', `vm '${ref.name}': no received file for disk '${d.id}'`);
        return path;
      });
      const local = await localStorageDirOf(hv, signal);
      // Issue 16: the overlays of bases this side holds, each linked onto its own base first.
      const linked = await linkHeldBases(offer.disks.map((d, i) => ({ path: paths[i]!, hash: bases[d.id] })), local, signal);
      const images = await Promise.all(paths.map(async (path, i) => ({ path, image: linked[i] ?? await probe(path, signal) })));
      const { vm, losses } = localVmModel({ described, offer, uuid: ref.uuid, files: images, networks: opts.networks });
      // Received straight into the hypervisor's storage: define the VM on those files.
      if (local !== undefined && paths.every((p) => dirname(p) === local)) {
        const sized = await Promise.all(vm.disks.map(async (d) => ({ ...d, file: { href: d.file!.href, sizeBytes: (await fs.stat(d.file!.href)).size } })));
        const r = await hv.defineVm({ ...vm, disks: sized }, { signal });
        return { vm: ref.name, uuid: ref.uuid, volumes: [...paths], losses: [...losses, ...r.report.entries] };
      }
      const parts = await Promise.all(vm.disks.map(async (d) => {
        const st = await fs.stat(d.file!.href);
        return { source: createReadStream(d.file!.href), sizeBytes: st.size, format: d.format ?? 'raw' };
      }));
      let r;
      try {
        r = await hv.importVm({ ...vm, disks: vm.disks.map(({ file: _file, ...d }) => d) }, parts, { signal });
      } finally {
        for (const p of parts) p.source.destroy();
      }
      // The hypervisor holds its own copy now: the staged files go (a crash before this line
      // leaves them to the offer's discard, which only a compensation runs).
      await Promise.all(paths.map((p) => fs.rm(p, { force: true })));
      return { vm: ref.name, uuid: ref.uuid, volumes: r.disks.map((d) => d.href), losses: [...losses, ...r.report.entries] };
    },
    async start(ref, signal) {
      if ((await ownerOf(ref, signal)).owner !== 'ours') throw notOurs(ref);
      await hv.startVm(ref.name, { signal });
    },
    async stop(ref, signal) {
      const found = await ownerOf(ref, signal);
      if (found.owner !== 'ours') return { touched: false };
      await hv.shutdownVm(ref.name, { timeoutMs: opts.shutdownTimeoutMs, signal });
      return { touched: true };
    },
    async state(ref, signal) {
      const found = await ownerOf(ref, signal);
      return found.owner === 'ours' ? stateOf(found.state) : 'absent';
    },
    ...(stateRestore(hv) === undefined ? {} : {
      async restore(req: Parameters<NonNullable<TargetHypervisorPort['restore']>>[0], signal: AbortSignal) {
        const r = await stateRestore(hv)!.restoreVm({
          name: req.vm,
          state: req.state,
          disks: req.disks.map((c) => c.map((i) => ({ href: i.path, format: i.format }))),
        }, { paused: true, transient: true, signal, ...(req.beforeRestore ? { beforeRestore: req.beforeRestore } : {}), ...(req.replacing ? { replacing: req.replacing } : {}) });
        if (r.uuid === undefined) throw new IntercloudError('MIGRATE_FAILED', `vm '${req.vm}' was restored without a uuid`);
        return { vm: r.name, uuid: r.uuid, volumes: [req.state, ...req.disks.flat().map((i) => i.path)], losses: [] };
      },
      async persist(ref: LocalVmRef, signal: AbortSignal) {
        await stateRestore(hv)!.persistRestored(ref.uuid, { signal });
      },
      async resume(ref: LocalVmRef, signal: AbortSignal) {
        // By UUID: only the domain this move restored (its name is not asked: one call).
        await stateRestore(hv)!.resumeRestored(ref.uuid, { signal });
      },
      async flatten(ref: LocalVmRef, discard: readonly string[], signal: AbortSignal) {
        if ((await ownerOf(ref, signal)).owner !== 'ours') throw notOurs(ref);
        await stateRestore(hv)!.flattenDisks(ref.name, { signal });
        for (const path of discard) await hv.removeDisk(path, { signal });
      },
    }),
    async remove(ref, volumes, signal) {
      const found = await ownerOf(ref, signal);
      // Never `removeStorage`: the definition may name storage this offer did not make.
      if (found.owner === 'ours') await hv.undefineVm(ref.name, { signal });
      for (const v of volumes) await hv.removeDisk(v, { signal });
      return { undefined: found.owner === 'ours' };
    },
  };
}
