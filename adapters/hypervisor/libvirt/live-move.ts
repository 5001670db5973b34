/**
 * The libvirt adapter's capabilities for moving a running VM (`../capabilities.ts`), with only
 * `virsh` and `qemu-img` on each host (libvirt virsh(1): snapshot-create-as, blockcommit, save,
 * restore, save-image-dumpxml; qemu-img(1): info, map, rebase):
 *
 * - change tracking: each round is an external disk-only snapshot of every disk at once
 *   (`snapshot-create-as --disk-only --atomic --no-metadata`), new overlays in the pool's
 *   directory named `VM-diskI.ovlK.qcow2`; abort is `blockcommit --active --pivot` into the base;
 * - state capture: `virsh suspend` (the cut-over pauses first), `virsh save --bypass-cache` to `VM.state` in the pool's directory, `virsh restore`
 *   to resume here;
 * - state restore: the received chain linked with `qemu-img rebase -u` onto this host's files, the
 *   saved description rewritten (`saved-domain.ts`) and `virsh restore --xml`, then `virsh define`.
 */
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { DiskFormat } from '../../../protocols/vm/index.js';
import type {
  ChainImage, ChainImport, ChangeTracking, LinkOptions, PrecopyRound, ReceivedImage, RestoreOptions, RestoreRequest, RestoreResult, RestoreTarget, SavedState,
  SaveStateOptions, StateCapture, StateRequirements, StateRestore,
} from '../capabilities.js';
import type { CallOptions, DiskRef, ReadDiskOptions, VmPowerState } from '../contract.js';
import { hvError, throwIfAborted } from '../errors.js';
import { cleanup } from '../import-by-parts.js';
import type { CommandResult, RunOptions } from './command-runner.js';
import { isLibvirtdAway, onceLibvirtdAnswers } from './daemon-back.js';
import type { LibvirtSettings } from './libvirt-hypervisor.js';
import {
  domainUuid, parseDomainDisks, parseRemovableTargets, parseStateRequirements, parseCapabilityMachines, rewriteSavedDomain,
} from './saved-domain.js';
import {
  clipExtents, parseDirPoolPath, parseDomstate, parseHypervisorVersion, parseNames, parseImageReferences, parseQemuImgChain, parseQemuImgMap,
} from './virsh-output.js';

/** What the adapter lends its live-move capabilities (its own command helpers). */
export interface LibvirtOps {
  readonly prefix: string;
  readonly settings: LibvirtSettings;
  virsh(args: readonly string[], options?: RunOptions): Promise<string>;
  virshRaw(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  qemuImg(args: readonly string[], options?: RunOptions): Promise<string>;
  /** Runs another command on the host (stat, rm); the caller reads the exit status. */
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
  checkName(name: string): void;
  vmState(name: string, options?: CallOptions): Promise<VmPowerState | 'absent'>;
  volumes(options: CallOptions): Promise<Array<{ name: string; path: string }>>;
  removeDisk(href: string, options?: CallOptions): Promise<void>;
  undefineVm(name: string, options?: CallOptions): Promise<{ existed: boolean }>;
  streamFile(href: string, options: ReadDiskOptions): Readable;
}

const FORMATS: Record<string, DiskFormat> = { raw: 'raw', qcow2: 'qcow2' };

/** Each guest disk's target and its chain of images, the top (the one written) first. */
type DiskChains = Array<{ target: string; chain: Array<{ path: string; format: string }> }>;
/** Each disk's chain, each image's `qemu-img info` answer as it comes ({@link LibvirtLiveMove.lookAtImages}). */
type ImageLooks = ReadonlyArray<ReadonlyArray<Promise<ReturnType<typeof parseImageReferences>>>>;

/** A watch on a state file being written ({@link LibvirtLiveMove.watchStateFile}). */
interface StateWatch {
  /** The file's length once whole; `undefined` when stopped first or given up. */
  readonly written: Promise<number | undefined>;
  readonly stop: AbortController;
}

/** What the adapter knows of a VM's cut-over, from its pause to the end of its save. */
interface CutOver {
  /** The pause removed the state file: no earlier save's file is there. */
  readonly cleared: boolean;
  /** The watch on the state file (started at the pause when cleared, else by the save). */
  watch?: StateWatch;
  /** The save, while it runs. */
  saving?: Promise<SavedState>;
  /** Chains were answered from {@link LibvirtLiveMove}'s `#chainsSeen` during the save. */
  lent?: boolean;
}

/** A domain UUID as libvirt writes it: lowercase, with dashes. */
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A domain UUID as virsh prints and takes it. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** How long the pool's directory, once read, is used without asking libvirt again. */
const POOL_DIR_TTL_MS = 60_000;

/**
 * Waits on the host until a state file `virsh save` writes is whole: libvirt writes its header
 * with the magic `LibvirtQemudPart`, then QEMU's stream, then the magic `LibvirtQemudSave` as
 * its last write (`qemu_saveimage.c`), and only then tears the VM's QEMU down (a second or more).
 * `$1` the file, `$2` 1 when no earlier save's file can be there (removed before this save
 * began), else only a file seen absent or partial first counts. Prints a dot per look (a closed
 * channel ends it at the next one) and the file's length last; gives up after 3,000 looks (a
 * minute or more): the save's own answer comes later, and nothing is lost but time.
 */
export const STATE_WRITTEN_WATCH = [
  'f=$1; seen=$2; i=0',
  'while [ $i -lt 3000 ]; do',
  '  m=$(head -c 16 -- "$f" 2>/dev/null)',
  '  if [ "$m" = LibvirtQemudSave ]; then',
  '    if [ "$seen" = 1 ]; then printf "\\n"; stat -L -c %s -- "$f"; exit 0; fi',
  '  else seen=1; fi',
  '  printf .; sleep 0.02; i=$((i+1))',
  'done',
  'exit 3',
].join('\n');

/** virsh `--diskspec` values separate fields with commas; a literal comma is doubled (virsh(1)). */
function diskspecValue(v: string): string {
  return v.replaceAll(',', ',,');
}

/** The libvirt implementation of change tracking, state capture and state restore. */
export class LibvirtLiveMove implements ChangeTracking, StateCapture, StateRestore, ChainImport {
  /** {@link poolDir}'s last answer. */
  #poolDir: { dir: string; at: number } | undefined;
  /**
   * The chains {@link stateAndChains} last read of each running or paused VM: what it answers
   * while this adapter saves the VM, when libvirt's save job holds every description of the
   * domain (`dumpxml`) until the save ends, a second or more after the state file is whole. A
   * round, a merge, a resume or the save's end forgets them; a save that lent them checks them
   * against the domain's chains once it ends.
   */
  readonly #chainsSeen = new Map<string, DiskChains>();
  /** Each VM's cut-over, from its {@link pause} to the end of its {@link saveState}. */
  readonly #cutOver = new Map<string, CutOver>();
  /** The state file this adapter's last save of each VM left (a resume or a discard forgets it). */
  readonly #saved = new Map<string, SavedState>();
  /**
   * Why a save failed after its file was reported whole (or its lent chains were not the
   * domain's): every later save of the VM answers with it, so that no caller takes the file that
   * save left, until the VM is resumed here or its state discarded.
   */
  readonly #failed = new Map<string, unknown>();

  constructor(private readonly ops: LibvirtOps) {}

  private o(options: CallOptions): RunOptions {
    return options.signal ? { signal: options.signal } : {};
  }

  private async state(name: string, options: CallOptions): Promise<VmPowerState> {
    this.ops.checkName(name);
    const s = await this.ops.vmState(name, options);
    if (s === 'absent') throw hvError('HV_VM_NOT_FOUND', `${this.ops.prefix}: no vm '${name}'`, { details: { vm: name } });
    return s;
  }

  private invalidState(name: string, op: string, state: string): Error {
    return hvError('HV_INVALID_STATE', `${this.ops.prefix}: cannot ${op} vm '${name}' while it is '${state}'`, { details: { vm: name, state } });
  }

  /**
   * The pool's directory, where overlays and state files go; only `dir` pools can hold them.
   * Read again after {@link POOL_DIR_TTL_MS}: a move asks in every round and at the cut-over, where
   * the guest is paused and the save waits for the answer (a round trip to the host, 0.3 s loaded).
   * libvirt changes an active pool's path only by redefining it.
   */
  private async poolDir(options: CallOptions): Promise<string> {
    const seen = this.#poolDir;
    if (seen !== undefined && Date.now() - seen.at < POOL_DIR_TTL_MS) return seen.dir;
    const dir = parseDirPoolPath(await this.ops.virsh(['pool-dumpxml', this.ops.settings.pool], this.o(options)));
    if (dir === undefined) {
      this.#poolDir = undefined;
      throw hvError('HV_TRACKING_UNSUPPORTED', `${this.ops.prefix}: pool '${this.ops.settings.pool}' is not a directory pool: overlays and saved states need one`, { details: { pool: this.ops.settings.pool } });
    }
    const clean = dir.replace(/\/+$/, '');
    this.#poolDir = { dir: clean, at: Date.now() };
    return clean;
  }

  private async domainXml(name: string, state: VmPowerState, options: CallOptions): Promise<string> {
    return this.ops.virsh(state === 'stopped' ? ['dumpxml', '--inactive', name] : ['dumpxml', name], this.o(options));
  }

  /** Length of a file on the host, or `undefined` when it is not there. */
  private async fileSize(path: string, options: CallOptions): Promise<number | undefined> {
    const r = await this.ops.run(['stat', '-L', '-c', '%s', path], this.o(options));
    if (r.exitStatus !== 0) return undefined;
    const n = Number(r.stdout.toString('utf8').trim());
    if (!Number.isSafeInteger(n)) throw hvError('LIBVIRT_OUTPUT_INVALID', `${this.ops.prefix}: cannot read the size of '${path}'`, { details: { output: r.stdout.toString('utf8') } });
    return n;
  }

  private async image(diskId: string, depth: number, path: string, format: string, options: CallOptions): Promise<ChainImage> {
    const [size, map] = await Promise.all([
      this.fileSize(path, options),
      this.ops.qemuImg(['map', '-U', '-f', 'raw', '--output=json', path], this.o(options)),
    ]);
    if (size === undefined) throw hvError('HV_DISK_NOT_FOUND', `${this.ops.prefix}: image '${path}' of disk ${diskId} is gone`, { details: { diskId, href: path } });
    return { diskId, depth, href: path, format: FORMATS[format] ?? 'raw', sizeBytes: size, extents: clipExtents(parseQemuImgMap(map), size) };
  }

  /**
   * The VM's state and each guest disk's chain, both asked at once: `virsh dumpxml` describes a
   * running or paused domain as it runs, a stopped one as defined (what `--inactive` gives).
   */
  private async stateAndChains(name: string, options: CallOptions): Promise<[VmPowerState, DiskChains]> {
    const cut = this.#cutOver.get(name);
    const seen = cut?.saving !== undefined ? this.#chainsSeen.get(name) : undefined;
    if (seen !== undefined) {
      cut!.lent = true;
      return ['paused', seen];
    }
    const [state, chains] = await this.askStateAndChains(name, options);
    if (state === 'running' || state === 'paused') this.#chainsSeen.set(name, chains);
    else this.#chainsSeen.delete(name);
    return [state, chains];
  }

  /** {@link stateAndChains} asked of libvirt. */
  private async askStateAndChains(name: string, options: CallOptions): Promise<[VmPowerState, DiskChains]> {
    const [state, xml] = await Promise.all([this.state(name, options), this.ops.virsh(['dumpxml', name], this.o(options))]);
    return [state, await this.chains(name, xml, options)];
  }

  /** Each guest disk's target and chain (top first), from the domain's description `xml` and `qemu-img info --backing-chain`. */
  private async chains(name: string, xml: string, options: CallOptions): Promise<DiskChains> {
    const disks = parseDomainDisks(xml);
    return Promise.all(disks.map(async (d, i) => {
      const top = d.chain[0];
      if (d.type !== 'file' || top === undefined) {
        throw hvError('HV_TRACKING_UNSUPPORTED', `${this.ops.prefix}: disk ${i} of '${name}' is not a file image (type '${d.type}')`, { details: { vm: name, diskId: String(i) } });
      }
      const info = parseQemuImgChain(await this.ops.qemuImg(['info', '-U', '--backing-chain', '--output=json', '-f', top.format, top.path], this.o(options)));
      return { target: d.target, chain: info.map((e) => ({ path: e.filename, format: e.format })) };
    }));
  }

  // ---- change tracking ------------------------------------------------------------------------

  async startRound(name: string, options: CallOptions = {}): Promise<PrecopyRound> {
    throwIfAborted(this.ops.prefix, 'startRound', options.signal);
    this.#chainsSeen.delete(name);
    const state = await this.state(name, options);
    if (state !== 'running' && state !== 'paused') throw this.invalidState(name, 'start a pre-copy round of', state);
    const xml = await this.domainXml(name, state, options);
    const chains = await this.chains(name, xml, options);
    const dir = await this.poolDir(options);
    const round = Math.max(...chains.map((c) => c.chain.length), 1);
    const taken = new Set((await this.ops.volumes(options)).map((v) => v.path));
    const overlays = chains.map((_c, i) => `${dir}/${name}-disk${i}.ovl${round}.qcow2`);
    for (const p of overlays) {
      if (taken.has(p) || (await this.fileSize(p, options)) !== undefined) {
        throw hvError('HV_DISK_EXISTS', `${this.ops.prefix}: overlay '${p}' already exists (left by an earlier move?)`, { details: { href: p } });
      }
    }
    const args = ['snapshot-create-as', name, '--disk-only', '--atomic', '--no-metadata'];
    chains.forEach((c, i) => args.push('--diskspec', `${diskspecValue(c.target)},snapshot=external,driver=qcow2,file=${diskspecValue(overlays[i]!)}`));
    for (const t of parseRemovableTargets(xml)) args.push('--diskspec', `${diskspecValue(t)},snapshot=no`);
    throwIfAborted(this.ops.prefix, 'startRound', options.signal);
    await this.ops.virsh(args, this.o(options));
    const frozen = await Promise.all(chains.map((c, i) => this.image(String(i), c.chain.length - 1, c.chain[0]!.path, c.chain[0]!.format, options)));
    const capacities = await Promise.all(overlays.map(async (p) => parseQemuImgChain(await this.ops.qemuImg(['info', '-U', '--output=json', '--backing-chain', '-f', 'qcow2', p], this.o(options)))[0]!.virtualSizeBytes));
    return {
      round,
      frozen,
      overlays: overlays.map((href, i): DiskRef => ({ id: String(i), href, format: 'qcow2', capacityBytes: capacities[i]! })),
    };
  }

  async chain(name: string, options: CallOptions = {}): Promise<ChainImage[][]> {
    const [state, chains] = await this.stateAndChains(name, options);
    return Promise.all(chains.map((c, i) => {
      const n = c.chain.length;
      return Promise.all([...c.chain].reverse().map((e, depth) => (depth === n - 1 && state === 'running'
        // The image the guest writes to: its length now, no map (it changes while read).
        ? this.fileSize(e.path, options).then((size): ChainImage => ({ diskId: String(i), depth, href: e.path, format: FORMATS[e.format] ?? 'raw', sizeBytes: size ?? 0 }))
        : this.image(String(i), depth, e.path, e.format, options))));
    }));
  }

  async readImage(name: string, href: string, options: ReadDiskOptions = {}): Promise<Readable> {
    throwIfAborted(this.ops.prefix, 'readImage', options.signal);
    const [state, chains] = await this.stateAndChains(name, options);
    const c = chains.find((x) => x.chain.some((e) => e.path === href));
    if (!c) throw hvError('HV_DISK_NOT_FOUND', `${this.ops.prefix}: '${href}' is not an image of vm '${name}'`, { details: { vm: name, href } });
    if (c.chain[0]!.path === href && state !== 'stopped' && state !== 'paused') throw this.invalidState(name, `read the image the guest writes to ('${href}') of`, state);
    return this.ops.streamFile(href, options);
  }

  /** Merges every disk's chain into its base while the VM runs, then removes the merged overlays. */
  private async commitAll(name: string, op: string, options: CallOptions): Promise<void> {
    throwIfAborted(this.ops.prefix, op, options.signal);
    this.#chainsSeen.delete(name);
    const [state, chains] = await this.stateAndChains(name, options);
    if (chains.every((c) => c.chain.length === 1)) return;
    if (state === 'stopped' || state === 'other') throw this.invalidState(name, `${op} (merge the disk chain of)`, state);
    for (const c of chains) {
      if (c.chain.length === 1) continue;
      throwIfAborted(this.ops.prefix, op, options.signal);
      // The whole chain into the base (the default base is the deepest image), the guest then runs on it.
      try {
        await this.ops.virsh(['blockcommit', name, c.target, '--active', '--pivot', '--wait'], this.o(options));
      } catch (err) {
        // libvirtd lost mid-commit may have pivoted: asked once it answers again. A retry would
        // find this disk on its base and no longer know the overlays to remove.
        if (!isLibvirtdAway(err)) throw err;
        const back = { pollMs: this.ops.settings.pollMs, prefix: this.ops.prefix, op, ...(options.signal ? { signal: options.signal } : {}) };
        const merged = async (): Promise<boolean> => {
          const [, now] = await onceLibvirtdAnswers(() => this.askStateAndChains(name, options), back);
          return now.find((d) => d.target === c.target)?.chain.length === 1;
        };
        if (!(await merged())) {
          // The commit job outlives virsh (QEMU runs it, libvirtd takes it back), but the pivot was
          // virsh's to ask: a job that is ready is pivoted now; any other is aborted (the chain
          // stays whole and usable), so the caller's retry starts a commit of its own instead of
          // failing on "block copy still active".
          const pivot = await this.ops.virshRaw(['blockjob', name, c.target, '--pivot'], this.o(options));
          if (pivot.exitStatus !== 0 || !(await merged())) {
            await this.ops.virshRaw(['blockjob', name, c.target, '--abort'], this.o(options));
            throw err;
          }
        }
      }
      // Its overlays are no longer the guest's: removed now, so that another disk's failure leaves none behind.
      for (const e of c.chain.slice(0, -1)) await this.ops.removeDisk(e.path, options);
    }
  }

  async abortTracking(name: string, options: CallOptions = {}): Promise<void> {
    await this.commitAll(name, 'abortTracking', options);
  }

  /**
   * The files a move made for VM `name` that libvirt's `undefine --remove-all-storage` (which
   * removes each disk's top image only) leaves behind: the overlays of its pre-copy rounds, the
   * image they were stacked on (the VM's own disk before the first round, found as the first
   * overlay's backing file) and its saved state. For `undefineVm` with `removeStorage`.
   */
  async leftoverStorage(name: string, options: CallOptions = {}): Promise<string[]> {
    const vols = await this.ops.volumes(options);
    const dir = parseDirPoolPath(await this.ops.virsh(['pool-dumpxml', this.ops.settings.pool], this.o(options)));
    if (dir === undefined) return [];
    const out: string[] = [];
    for (const v of vols) {
      const m = v.name.startsWith(`${name}-disk`) ? /^-disk(\d+)\.ovl(\d+)\.qcow2$/.exec(v.name.slice(name.length)) : null;
      if (!m) continue;
      out.push(v.path);
      if (m[2] === '1') {
        const refs = parseImageReferences(await this.ops.qemuImg(['info', '-U', '-f', 'qcow2', '--output=json', v.path], this.o(options)));
        if (refs.backingFile !== undefined && vols.some((x) => x.path === refs.backingFile)) out.push(refs.backingFile);
      }
    }
    const state = `${dir.replace(/\/+$/, '')}/${name}.state`;
    if (vols.some((v) => v.path === state)) out.push(state);
    return out;
  }

  // ---- state capture ----------------------------------------------------------------------------

  private async statePath(name: string, options: CallOptions): Promise<string> {
    return `${await this.poolDir(options)}/${name}.state`;
  }

  async stateRequirements(name: string, options: CallOptions = {}): Promise<StateRequirements> {
    const state = await this.state(name, options);
    return parseStateRequirements(await this.domainXml(name, state, options));
  }

  async pause(name: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.ops.prefix, 'pause', options.signal);
    const state = await this.state(name, options);
    if (state === 'paused') return;
    if (state === 'running') {
      // QEMU drains and flushes the disks when it stops the vCPUs: the images are whole on disk.
      // A running VM has no saved state: a file of that name is an earlier move's, removed now so
      // that the save's own file counts as whole as soon as it says so; the watch for it starts
      // now, so that it is looking when the save begins.
      const path = await this.statePath(name, options);
      this.endCutOver(name);
      this.#saved.delete(name);
      this.#failed.delete(name);
      const [, removed] = await Promise.all([
        this.ops.virsh(['suspend', name], this.o(options)),
        this.ops.run(['rm', '-f', '--', path], this.o(options)),
      ]);
      const cleared = removed.exitStatus === 0;
      this.#cutOver.set(name, { cleared, ...(cleared ? { watch: this.watchStateFile(path, true) } : {}) });
      return;
    }
    // Stopped: fine only once its state is saved (a repeat after the save).
    if (state === 'stopped' && (await this.fileSize(await this.statePath(name, options), options)) !== undefined) return;
    throw this.invalidState(name, 'pause', state);
  }

  /** Forgets VM `name`'s cut-over and stops its watch. */
  private endCutOver(name: string): void {
    this.#cutOver.get(name)?.watch?.stop.abort();
    this.#cutOver.delete(name);
  }

  /**
   * Watches the state file at `path` on the host ({@link STATE_WRITTEN_WATCH}) until it is whole:
   * its length then, or `undefined` (stopped, or gave up). `cleared`: no earlier save's file is there.
   */
  private watchStateFile(path: string, cleared: boolean): StateWatch {
    const stop = new AbortController();
    const written = this.ops.run(['sh', '-c', STATE_WRITTEN_WATCH, 'sh', path, cleared ? '1' : '0'], { signal: stop.signal }).then((r) => {
      const size = Number(r.stdout.toString('utf8').trim().split('\n').at(-1));
      return r.exitStatus === 0 && Number.isSafeInteger(size) && size > 0 ? size : undefined;
    }, () => undefined);
    return { written, stop };
  }

  /**
   * Saves at once (the guest is paused for the cut-over, and the save is most of its time). A call
   * while this adapter saves the VM answers with that save. With `onWritten`, the state file is
   * watched while libvirt writes it: whole about a second before `virsh save` returns.
   */
  saveState(name: string, options: SaveStateOptions = {}): Promise<SavedState> {
    throwIfAborted(this.ops.prefix, 'saveState', options.signal);
    this.ops.checkName(name);
    const cut = this.#cutOver.get(name) ?? { cleared: false };
    if (cut.saving !== undefined) return cut.saving;
    if (this.#failed.has(name)) return Promise.reject(this.#failed.get(name));
    const last = this.#saved.get(name);
    if (last !== undefined) return this.savedAlready(name, last, options);
    this.#cutOver.set(name, cut);
    cut.saving = this.save(name, cut, options).then((saved) => {
      this.#saved.set(name, saved);
      return saved;
    }).finally(() => {
      if (this.#cutOver.get(name) === cut) this.endCutOver(name);
      this.#chainsSeen.delete(name);
    });
    return cut.saving;
  }

  /** A repeat after this adapter's save: one look that the VM is still stopped (else saved again). */
  private async savedAlready(name: string, last: SavedState, options: SaveStateOptions): Promise<SavedState> {
    if ((await this.state(name, options)) === 'stopped') return last;
    this.#saved.delete(name);
    return this.saveState(name, options);
  }

  private async save(name: string, cut: CutOver, options: SaveStateOptions): Promise<SavedState> {
    const path = await this.statePath(name, options);
    const watch = options.onWritten === undefined ? undefined : (cut.watch ??= this.watchStateFile(path, cut.cleared));
    const stopWatch = (): void => watch?.stop.abort();
    options.signal?.addEventListener('abort', stopWatch, { once: true });
    let reported: number | undefined;
    const told = watch?.written.then((size) => {
      if (size === undefined) return;
      reported = size;
      options.onWritten!({ href: path, sizeBytes: size });
    });
    try {
      let result: SavedState;
      try {
        result = await this.saveToFile(name, path, options);
      } catch (err) {
        // A file already reported whole may be on its way: it is not this VM's saved state.
        if (reported !== undefined) this.#failed.set(name, err);
        throw err;
      }
      // Whatever the watch saw arrives before the answer; a file read early must be the file saved.
      watch?.stop.abort();
      await told;
      if (reported !== undefined && reported !== result.sizeBytes) {
        throw this.failSave(name, hvError('HV_STATE_INVALID', `${this.ops.prefix}: the state of '${name}' was ${reported} bytes when whole, ${result.sizeBytes} once saved`, { details: { vm: name, href: path } }));
      }
      // Chains lent during the save (#chainsSeen) must be the domain's.
      if (cut.lent) {
        const seen = this.#chainsSeen.get(name);
        const [, now] = await this.askStateAndChains(name, options);
        if (JSON.stringify(now) !== JSON.stringify(seen)) {
          throw this.failSave(name, hvError('HV_INVALID_STATE', `${this.ops.prefix}: the disk chains of '${name}' changed during its cut-over`, { details: { vm: name, state: 'saved' } }));
        }
      }
      return result;
    } finally {
      watch?.stop.abort();
      options.signal?.removeEventListener('abort', stopWatch);
    }
  }

  /** Records that VM `name`'s save must not be taken ({@link #failed}); answers `err`. */
  private failSave(name: string, err: Error): Error {
    this.#failed.set(name, err);
    return err;
  }

  /** `virsh save`; the domain's state is asked only when it fails: a repeat after the save finds it stopped. */
  private async saveToFile(name: string, path: string, options: CallOptions): Promise<SavedState> {
    try {
      await this.ops.virsh(['save', name, path, '--bypass-cache'], this.o(options));
    } catch (err) {
      const state = await this.state(name, options);
      if (state !== 'stopped') throw err;
      const size = await this.fileSize(path, options);
      if (size === undefined) throw this.invalidState(name, 'save the state of', state);
      return { href: path, sizeBytes: size };
    }
    const size = await this.fileSize(path, options);
    if (size === undefined) throw hvError('HV_STATE_NOT_FOUND', `${this.ops.prefix}: 'virsh save' of '${name}' left no '${path}'`, { details: { vm: name, href: path } });
    return { href: path, sizeBytes: size };
  }

  async readState(name: string, options: ReadDiskOptions = {}): Promise<Readable> {
    throwIfAborted(this.ops.prefix, 'readState', options.signal);
    await this.state(name, options);
    const path = await this.statePath(name, options);
    if ((await this.fileSize(path, options)) === undefined) throw hvError('HV_STATE_NOT_FOUND', `${this.ops.prefix}: vm '${name}' has no saved state`, { details: { vm: name } });
    return this.ops.streamFile(path, options);
  }

  async resumeFromState(name: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.ops.prefix, 'resumeFromState', options.signal);
    this.endCutOver(name);
    this.#saved.delete(name);
    this.#failed.delete(name);
    this.#chainsSeen.delete(name);
    const state = await this.state(name, options);
    const path = await this.statePath(name, options);
    if (state === 'stopped') {
      if ((await this.fileSize(path, options)) === undefined) throw hvError('HV_STATE_NOT_FOUND', `${this.ops.prefix}: vm '${name}' has no saved state to resume from`, { details: { vm: name } });
      await this.ops.virsh(['restore', path, '--running'], this.o(options));
    } else if (state === 'paused') {
      // Paused for the cut-over, never saved (or its save undone): it goes on where it is.
      await this.ops.virsh(['resume', name], this.o(options));
    }
    await this.discardState(name, options);
  }

  async discardState(name: string, options: CallOptions = {}): Promise<void> {
    this.ops.checkName(name);
    this.endCutOver(name);
    this.#saved.delete(name);
    this.#failed.delete(name);
    const path = await this.statePath(name, options);
    await this.ops.removeDisk(path, options);
    if ((await this.fileSize(path, options)) !== undefined) {
      const r = await this.ops.run(['rm', '-f', '--', path], this.o(options));
      if (r.exitStatus !== 0) throw hvError('LIBVIRT_COMMAND_FAILED', `${this.ops.prefix}: cannot remove '${path}': ${r.stderr}`, { details: { tool: 'rm', args: ['-f', path], exitStatus: r.exitStatus, stderr: r.stderr } });
    }
  }

  // ---- state restore -----------------------------------------------------------------------------

  async restoreTarget(options: CallOptions = {}): Promise<RestoreTarget> {
    const o = this.o(options);
    const [caps, version] = await Promise.all([this.ops.virsh(['capabilities'], o), this.ops.virsh(['version'], o)]);
    const v = parseHypervisorVersion(version);
    return { hypervisor: 'qemu', ...(v ? { version: v } : {}), machines: parseCapabilityMachines(caps, this.ops.settings.domainType) };
  }

  async restoreVm(req: RestoreRequest, options: RestoreOptions = {}): Promise<RestoreResult> {
    throwIfAborted(this.ops.prefix, 'restoreVm', options.signal);
    const { name } = req;
    this.ops.checkName(name);
    const refuse = (why: string, details: Record<string, unknown>): never => {
      throw hvError('HV_STATE_INVALID', `${this.ops.prefix}: cannot restore '${name}': ${why}`, { details: { vm: name, ...details } });
    };
    const o = this.o(options);
    // The name's domain is asked while the files are checked; once they are this pool's own, the
    // chains are linked while the saved description is read (each call a round trip to the host,
    // and the guest is stopped at the source meanwhile).
    const prepare = async (): Promise<string> => {
      // Once the paths and formats passed, what only reads (each image's header, the saved
      // description) starts with the check on the host, and counts only once that passed too:
      // nothing is written, and no answer is used, for a file that is not this pool's own volume.
      const paths = this.checkPaths(req.disks, refuse, [req.state]);
      const looks = this.lookAtImages(req.disks, o);
      const dumped = this.ops.virsh(['save-image-dumpxml', req.state], o);
      dumped.catch(() => undefined);
      await this.checkOnHost(paths, refuse, options);
      // Both run to their end; an image refused is the answer before anything libvirt says of the state.
      const [dump, linked] = await Promise.allSettled([dumped, this.linkImages(req.disks, refuse, options, looks)]);
      if (linked.status === 'rejected') throw linked.reason;
      if (dump.status === 'rejected') throw dump.reason;
      return dump.value;
    };
    // The name is expected free: one listing says so (a domain's state, asked first, is two
    // commands when there is none).
    const taken = async (): Promise<VmPowerState | 'absent'> => {
      const names = parseNames(await this.ops.virsh(['list', '--all', '--name'], o));
      return names.includes(name) ? this.ops.vmState(name, options) : 'absent';
    };
    const [named, first] = await Promise.allSettled([taken(), prepare()]);
    let read = first;
    // A name taken is the answer first, whatever the files are.
    if (named.status === 'rejected') throw named.reason;
    const existing = named.value;
    if (existing !== 'absent') {
      // Only the domain an earlier attempt of the caller made (its UUID, never resumed) is taken away.
      const uuid = options.replacing === undefined || existing === 'running' ? undefined : (await this.ops.virsh(['domuuid', name], this.o(options))).trim();
      if (uuid === undefined || uuid !== options.replacing) {
        throw hvError('HV_VM_EXISTS', `${this.ops.prefix}: a vm named '${name}' already exists`, { details: { vm: name } });
      }
      await this.ops.undefineVm(name, options);
      // Its QEMU held the images (a link meanwhile could not take their lock): linked again now.
      [read] = await Promise.allSettled([prepare()]);
    }
    if (read.status === 'rejected') throw read.reason;
    const xml = rewriteSavedDomain(read.value, {
      name,
      disks: req.disks.map((c) => c.map((p) => ({ path: p.href, format: p.format }))),
      ...(this.ops.settings.consoleLogDir ? { consoleLogDir: this.ops.settings.consoleLogDir } : {}),
      ...(this.ops.settings.nicTarget ? { nicTarget: this.ops.settings.nicTarget } : {}),
    });
    const uuid = domainUuid(xml);
    // libvirt writes it lowercase with dashes; any other spelling would not match this side's
    // records of the domain (found by UUID later), and is the peer's doing.
    if (uuid === undefined || !CANONICAL_UUID.test(uuid)) refuse(`the saved description carries ${uuid === undefined ? 'no uuid' : `the uuid '${uuid}', not as libvirt writes one`}`, {});
    throwIfAborted(this.ops.prefix, 'restoreVm', options.signal);
    await options.beforeRestore?.(uuid!);
    const disks = req.disks.map((c, i): DiskRef => ({ id: String(i), href: c[c.length - 1]!.href, format: c[c.length - 1]!.format, capacityBytes: 0 }));
    let capacities: number[];
    try {
      // The disks' sizes are read while the state is restored.
      const sizes = Promise.all(disks.map(async (d) => parseImageReferences(await this.ops.qemuImg(['info', '-U', '-f', d.format, '--output=json', d.href], {})).virtualSizeBytes));
      sizes.catch(() => undefined);
      await this.ops.virsh(['restore', req.state, '--xml', '/dev/stdin', options.paused ? '--paused' : '--running'], { ...o, stdin: xml });
      // The restored domain is transient: the same description makes it persistent, unless the
      // caller does that later (persistRestored).
      [, capacities] = await Promise.all([options.transient ? undefined : this.ops.virsh(['define', '/dev/stdin'], { ...o, stdin: xml }), sizes]);
    } catch (err) {
      // Only the domain this call made (its UUID): a domain of the name made meanwhile is another's.
      await cleanup(err, async () => {
        const r = await this.ops.virshRaw(['domuuid', name], {});
        if (r.exitStatus === 0 && r.stdout.toString('utf8').trim() === uuid) await this.ops.undefineVm(name, {});
      });
      throw err;
    }
    return { name, uuid: uuid!, disks: disks.map((d, i) => ({ ...d, capacityBytes: capacities[i]! })) };
  }

  async resumeRestored(uuid: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.ops.prefix, 'resumeRestored', options.signal);
    // virsh takes a UUID-shaped argument as a UUID first; no VM name may have that shape
    // (vmNameProblem), so it names this domain or none.
    if (!UUID.test(uuid)) throw hvError('HV_INVALID_STATE', `${this.ops.prefix}: '${uuid}' is not a uuid`, { details: { uuid } });
    const o = this.o(options);
    const resumed = await this.ops.virshRaw(['resume', uuid], o);
    if (resumed.exitStatus === 0) return;
    // Not paused (running already: a repeat), or not there.
    const st = await this.ops.virshRaw(['domstate', uuid], o);
    if (st.exitStatus !== 0) throw hvError('HV_VM_NOT_FOUND', `${this.ops.prefix}: no vm has uuid '${uuid}'`, { details: { uuid, stderr: st.stderr } });
    const state = parseDomstate(st.stdout.toString('utf8'));
    if (state !== 'running') throw hvError('HV_INVALID_STATE', `${this.ops.prefix}: cannot resume vm '${uuid}' while it is '${state}': ${resumed.stderr.split('\n')[0] ?? ''}`, { details: { uuid, state } });
  }

  async persistRestored(uuid: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.ops.prefix, 'persistRestored', options.signal);
    if (!UUID.test(uuid)) throw hvError('HV_INVALID_STATE', `${this.ops.prefix}: '${uuid}' is not a uuid`, { details: { uuid } });
    const o = this.o(options);
    // The running description, without what only its process has (`--migratable`), defined as is.
    const r = await this.ops.virshRaw(['dumpxml', '--migratable', uuid], o);
    if (r.exitStatus !== 0) throw hvError('HV_VM_NOT_FOUND', `${this.ops.prefix}: no vm has uuid '${uuid}'`, { details: { uuid, stderr: r.stderr } });
    const xml = r.stdout.toString('utf8');
    if (domainUuid(xml) !== uuid.toLowerCase()) throw hvError('HV_VM_NOT_FOUND', `${this.ops.prefix}: no vm has uuid '${uuid}'`, { details: { uuid } });
    await this.ops.virsh(['define', '/dev/stdin'], { ...o, stdin: xml });
  }

  /**
   * The first half of the volume check, asked of nothing: every image (and `others`) is named
   * as a file right in a directory, not hidden, once; each chain is not empty and each image is
   * declared in a format it may have (a held base, issue 16, only as the raw base of a chain
   * with an overlay). Answers the paths {@link checkOnHost} must find in the pool.
   */
  private checkPaths(
    disks: ReadonlyArray<readonly ReceivedImage[]>, refuse: (why: string, details: Record<string, unknown>) => never,
    others: readonly string[], heldBases: readonly string[] = [],
  ): Set<string> {
    // A held base (issue 16): the first image of a chain, declared raw, never written, maybe shared.
    const held = new Set(heldBases);
    for (const [i, chain] of disks.entries()) {
      for (const [depth, part] of chain.entries()) {
        if (held.has(part.href) && (depth !== 0 || part.format !== 'raw' || chain.length < 2)) {
          refuse(`held base '${part.href}' may only be the raw base of a chain with an overlay (disk ${i}, image ${depth})`, { diskId: String(i), depth, href: part.href });
        }
      }
    }
    // Only this pool's volumes, each used once: nothing else on the host is opened. A volume of a
    // directory pool is a regular file right in its directory, not hidden (libvirt lists no
    // others): checked by path here, then on the host ({@link checkOnHost}; a symbolic link is none).
    const seen = new Set<string>();
    for (const href of [...others, ...disks.flat().map((p) => p.href)]) {
      if (held.has(href) && !others.includes(href)) continue;
      if (posix.normalize(href) !== href || href.endsWith('/') || posix.basename(href).startsWith('.')
        || /[\u0000-\u001f\u007f]/.test(href)) this.notVolume(href, refuse);
      if (seen.has(href)) refuse(`'${href}' is named twice`, { href });
      seen.add(href);
    }
    if (disks.some((c) => c.length === 0)) refuse('a disk has an empty chain', {});
    for (const [i, chain] of disks.entries()) {
      for (const [depth, part] of chain.entries()) {
        if (depth === 0 ? part.format !== 'raw' && part.format !== 'qcow2' : part.format !== 'qcow2') {
          refuse(`image ${depth} of disk ${i} is declared '${part.format}' (a base is raw or qcow2, an overlay qcow2)`, { diskId: String(i), depth, format: part.format });
        }
      }
    }
    return seen;
  }

  private notVolume(href: string, refuse: (why: string, details: Record<string, unknown>) => never): never {
    return refuse(`'${href}' is not a volume of pool '${this.ops.settings.pool}'`, { href });
  }

  /**
   * The second half of the volume check: each of `paths` ({@link checkPaths}) is a regular file
   * right in the pool's directory. The pool's directory and the files' kinds are asked at once
   * (a `stat` reads nothing of a file): two round trips to the host would be one more wait of
   * the paused guest's.
   */
  private async checkOnHost(paths: ReadonlySet<string>, refuse: (why: string, details: Record<string, unknown>) => never, options: CallOptions): Promise<void> {
    if (paths.size === 0) return;
    // One line per file found, its kind then its name (a missing one has none).
    const stat = this.ops.run(['env', 'LC_ALL=C', 'stat', '-c', '%F\t%n', '--', ...paths], this.o(options));
    stat.catch(() => undefined);
    const dir = await this.poolDir(options);
    for (const href of paths) if (posix.dirname(href) !== dir) this.notVolume(href, refuse);
    const kinds = new Map((await stat).stdout.toString('utf8').split('\n').map((line) => {
      const tab = line.indexOf('\t');
      return [line.slice(tab + 1), line.slice(0, tab)] as const;
    }));
    for (const href of paths) {
      const kind = kinds.get(href);
      if (kind !== 'regular file' && kind !== 'regular empty file') this.notVolume(href, refuse);
    }
  }

  /**
   * Each image's references (`qemu-img info` in the declared format, never a probe: a raw
   * image's bytes are not read as a header), all asked at once; a failed look is its own
   * promise's rejection, awaited by whoever uses it.
   */
  private lookAtImages(disks: ReadonlyArray<readonly ReceivedImage[]>, o: RunOptions): ImageLooks {
    return disks.map((chain) => chain.map((part) => {
      const look = this.ops.qemuImg(['info', '-U', '-f', part.format, '--output=json', part.href], o).then(parseImageReferences);
      look.catch(() => undefined);
      return look;
    }));
  }

  /**
   * The link itself, on images the volume check ({@link checkPaths}, {@link checkOnHost}) passed: no image names a data
   * file, no base a backing file, and each overlay is linked onto the image below it (metadata
   * only). The images are independent: all are looked at and linked at once.
   */
  private async linkImages(
    disks: ReadonlyArray<readonly ReceivedImage[]>, refuse: (why: string, details: Record<string, unknown>) => never, options: CallOptions,
    looks: ImageLooks = this.lookAtImages(disks, this.o(options)),
  ): Promise<void> {
    const o = this.o(options);
    // Every image's look runs to its end (nothing is still being linked once this answers); the
    // first refusal, in chain order, is the answer.
    const looked = await Promise.allSettled([...disks.entries()].flatMap(([i, chain]) => [...chain.entries()].map(async ([depth, part]) => {
      const before = await looks[i]![depth]!;
      if (before.dataFile !== undefined) refuse(`image ${depth} of disk ${i} refers to a data file ('${before.dataFile}')`, { diskId: String(i), depth, dataFile: before.dataFile });
      if (depth === 0) {
        if (before.backingFile !== undefined) refuse(`the base of disk ${i} refers to a backing file ('${before.backingFile}')`, { diskId: String(i), backingFile: before.backingFile });
        return;
      }
      // The peer's backing reference is replaced by the image written below it (metadata only),
      // unless an earlier link did so already (the image names exactly that file, in its format).
      const below = chain[depth - 1]!;
      if (before.backingFile === below.href && before.backingFormat === below.format) return;
      await this.ops.qemuImg(['rebase', '-u', '-f', 'qcow2', '-F', below.format, '-b', below.href, part.href], o);
      const after = parseImageReferences(await this.ops.qemuImg(['info', '-U', '-f', 'qcow2', '--output=json', part.href], o));
      if (after.backingFile !== below.href || after.dataFile !== undefined) refuse(`image ${depth} of disk ${i} could not be linked onto '${below.href}'`, { diskId: String(i), depth });
    })));
    const refused = looked.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (refused) throw refused.reason;
  }

  // ---- chain import ------------------------------------------------------------------------------

  async linkChains(disks: ReadonlyArray<readonly ReceivedImage[]>, options: LinkOptions = {}): Promise<DiskRef[]> {
    throwIfAborted(this.ops.prefix, 'linkChains', options.signal);
    const refuse = (why: string, details: Record<string, unknown>): never => {
      throw hvError('HV_STATE_INVALID', `${this.ops.prefix}: cannot link the received chains: ${why}`, { details });
    };
    // As restoreVm: the images are looked at while the host is asked about them, once their
    // paths and formats passed; the looks count once the volumes did.
    const paths = this.checkPaths(disks, refuse, [], options.heldBases);
    const looks = this.lookAtImages(disks, this.o(options));
    await this.checkOnHost(paths, refuse, options);
    await this.linkImages(disks, refuse, options, looks);
    // Each disk's size is its top image's, as looked at before the link (a link changes only
    // the image's backing reference).
    return Promise.all(disks.map(async (c, i): Promise<DiskRef> => {
      const top = c[c.length - 1]!;
      const { virtualSizeBytes } = await looks[i]![c.length - 1]!;
      return { id: String(i), href: top.href, format: top.format, capacityBytes: virtualSizeBytes };
    }));
  }

  async flattenDisks(name: string, options: CallOptions = {}): Promise<void> {
    await this.commitAll(name, 'flattenDisks', options);
  }
}
