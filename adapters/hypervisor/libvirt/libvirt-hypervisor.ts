/**
 * The libvirt adapter: drives `virsh` (and `qemu-img`) on the hypervisor host through a
 * {@link CommandRunner} — over SSH, or locally — and turns libvirt domain XML into the shared VM
 * model with the descriptors' codec. Disk bytes move as streams, never buffered whole, into and
 * out of libvirt storage volumes: with `dd` on the volume's file over the same channel (setting
 * `diskIo: 'file'`; zero blocks are written as holes) or through libvirt's storage streams
 * (`virsh vol-upload`/`vol-download`, `diskIo: 'libvirt'`).
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { vmNameProblem, type ConversionReport, type DiskFormat, type ReportEntry, type VirtualMachine } from '../../../protocols/vm/index.js';
import { readLibvirtDomain, writeLibvirtDomain } from '../../../protocols/libvirt-xml/index.js';
import type { NicTarget } from '../../../protocols/libvirt-xml/index.js';
import type {
  CallOptions, DefineResult, DiskInfo, DiskRef, HostCapacity, Hypervisor, ImportDisk, NewDisk,
  ReadDiskOptions, ShutdownOptions, ShutdownResult, UndefineOptions, VmDescription, VmListing,
  VmPowerState,
} from '../contract.js';
import { abortedError, hvError, throwIfAborted } from '../errors.js';
import { cleanup, importByParts } from '../import-by-parts.js';
import { ExactLength, isSafeDiskName } from '../streams.js';
import type { HypervisorCapabilities } from '../capabilities.js';
import { onceLibvirtdAnswers } from './daemon-back.js';
import { LibvirtLiveMove } from './live-move.js';
import { commandMissing, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, throughPipes } from './command-runner.js';
import type { CommandResult, CommandRunner, RunOptions } from './command-runner.js';
import {
  parseDomstate, parseNames, parseNodeinfo, parseNodememstats, parsePoolInfo, parseQemuImgInfo, parseBackingFile,
  clipExtents, parseDirPoolPath, parsePhysical, parseQemuImgMap, parseVolList, sumDomstatsVcpus,
} from './virsh-output.js';

/** Resolved settings of the libvirt adapter. */
export interface LibvirtSettings {
  /** The cloud id, for messages (`libvirt(cloud-a): …`). */
  name: string;
  /** libvirt connection URI passed as `virsh -c URI`. */
  uri: string;
  /** Storage pool new disks go to. */
  pool: string;
  /** Path or name of `virsh` on the host. */
  virsh: string;
  /** Path or name of `qemu-img` on the host. */
  qemuImg: string;
  /** How often to poll the domain state while waiting for a shutdown (ms). */
  pollMs: number;
  /** `<domain type>`: `kvm`, or `qemu` where there is no KVM (TCG). */
  domainType: string;
  /** How every NIC attaches on this host; absent = the libvirt network named by the NIC (else `default`). */
  nicTarget?: NicTarget;
  /** Directory on the host where serial consoles of VMs defined here are logged; absent = no log. */
  consoleLogDir?: string;
  /**
   * How disk bytes move: `file` runs `dd` on the volume's path (the SSH user must see the pool's
   * files, as on a normal host; writes keep zero blocks as holes and are fsynced); `libvirt` uses
   * `virsh vol-upload`/`vol-download` (libvirt's streams, for hosts where only libvirtd sees the
   * files). Volumes are created and deleted through libvirt either way.
   */
  diskIo: 'file' | 'libvirt';
}

const FORMAT_OF_QEMU: Record<string, DiskFormat> = { raw: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', vdi: 'vdi', vpc: 'vhd', vhdx: 'vhdx' };

/**
 * What virsh prints first, and nothing before it, when it reaches no libvirtd: its connection
 * failed before any call. Anchored to the start: a later line may quote the peer's XML.
 */
const VIRSH_NOT_CONNECTED = /^error: failed to connect to the hypervisor\n/;

/**
 * What virsh prints first when its connection to libvirtd dropped after it opened (libvirtd
 * killed or restarted mid-command): the command may or may not have taken effect. Seen on
 * Debian 12's libvirt by cutting virsh's socket after each of its writes (libvirt-faults test).
 */
const VIRSH_CONNECTION_DROPPED = /^error: (?:Disconnected from \S+ due to end of file|no valid connection|End of file while reading data|Unable to register disconnect callback)[^\n]*(?:\n|$)/;

/**
 * What libvirtd answers a `pool-refresh` while it builds a volume in that pool (another
 * transfer's `vol-create-as`, an operator's clone): a refresh then would drop the volume being
 * built, so libvirtd refuses it until the build ends. Not a failure of the caller's.
 */
const POOL_BUILDING_VOLUME = /^error: Failed to refresh pool [^\n]*\nerror: internal error: pool '[^']*' has asynchronous jobs running/;

/** True for virsh's refusal of a `pool-refresh` while libvirtd builds a volume in the pool. */
export function isPoolBuildingVolume(stderr: string): boolean {
  return POOL_BUILDING_VOLUME.test(stderr);
}

/** How long a pool refresh waits for libvirtd to finish building volumes (a clone of a large image takes minutes). */
export const POOL_BUSY_WAIT_MS = 300_000;

/**
 * The same wait for a caller that cannot cancel it (no signal: a clean-up, an undo, an error
 * path): short enough that a stopping agent (systemd's 60 s) is not held by another's build.
 */
export const POOL_BUSY_WAIT_UNCANCELLABLE_MS = 20_000;

/** The libvirt {@link Hypervisor}. */
export class LibvirtHypervisor implements Hypervisor {
  readonly kind = 'libvirt';
  /** Change tracking, state capture and state restore (`live-move.ts`). */
  readonly capabilities: HypervisorCapabilities;
  private readonly prefix: string;
  private readonly live: LibvirtLiveMove;

  constructor(
    private readonly settings: LibvirtSettings,
    private readonly runner: CommandRunner,
  ) {
    this.prefix = `libvirt(${settings.name})`;
    const live = this.live = new LibvirtLiveMove({
      prefix: this.prefix,
      settings,
      virsh: (args, o) => this.virsh(args, o),
      virshRaw: (args, o) => this.virshRaw(args, o),
      qemuImg: (args, o) => this.qemuImg(args, o),
      run: (argv, o) => this.runner.run(argv, o),
      checkName: (name) => this.checkName(name),
      vmState: (name, o) => this.vmState(name, o),
      volumes: (o) => this.volumes(o),
      removeDisk: (href, o) => this.removeDisk(href, o),
      undefineVm: (name, o) => this.undefineVm(name, o),
      streamFile: (href, o) => this.streamFile(href, o),
    });
    this.capabilities = { changeTracking: live, stateCapture: live, stateRestore: live, chainImport: live };
  }

  // ---- running virsh -------------------------------------------------------------------------

  /**
   * Runs `virsh -c URI ARGS…`; a missing virsh is `LIBVIRT_COMMAND_MISSING`. With `stdin`, virsh
   * gets it through a pipe, since the commands that take it open `/dev/stdin`.
   */
  private async virshRaw(args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const argv = [this.settings.virsh, '-q', '-c', this.settings.uri, ...args];
    const r = await this.runner.run(options.stdin === undefined ? argv : throughPipes(argv, 'in'), options);
    if (r.exitStatus === EXIT_NOT_FOUND || r.exitStatus === EXIT_NOT_EXECUTABLE) throw commandMissing(this.prefix, argv, r);
    // libvirtd not there (stopped, restarting): nothing was done, and whoever asked may try again
    // in a moment; never read as an answer about the domain ("no such vm").
    if (r.exitStatus === 1 && VIRSH_NOT_CONNECTED.test(r.stderr)) {
      throw hvError('LIBVIRT_DAEMON_UNAVAILABLE', `${this.prefix}: 'virsh ${args[0] ?? ''}' could not connect to libvirtd at '${this.settings.uri}': ${r.stderr.split('\n')[1] ?? ''}`, {
        details: { tool: 'virsh', args: [...args], exitStatus: r.exitStatus, stderr: r.stderr, where: this.runner.where },
      });
    }
    // libvirtd went away while virsh waited for its answer: not a refusal of the command, whose
    // effect is unknown — the caller's retry finds out what is there (a restore's half-made
    // domain is taken away by its UUID). Never read as an answer about the domain either.
    if (r.exitStatus === 1 && VIRSH_CONNECTION_DROPPED.test(r.stderr)) {
      throw hvError('LIBVIRT_DAEMON_LOST', `${this.prefix}: 'virsh ${args[0] ?? ''}' lost its connection to libvirtd at '${this.settings.uri}': ${r.stderr.split('\n')[0] ?? ''}`, {
        details: { tool: 'virsh', args: [...args], exitStatus: r.exitStatus, stderr: r.stderr, where: this.runner.where },
      });
    }
    return r;
  }

  /** Runs virsh and requires exit status 0, else `LIBVIRT_COMMAND_FAILED` with status and stderr. */
  private async virsh(args: readonly string[], options: RunOptions = {}): Promise<string> {
    const r = await this.virshRaw(args, options);
    if (r.exitStatus !== 0) throw this.failed('virsh', args, r);
    return r.stdout.toString('utf8');
  }

  private failed(tool: string, args: readonly string[], r: CommandResult, code: 'LIBVIRT_COMMAND_FAILED' = 'LIBVIRT_COMMAND_FAILED'): Error {
    return hvError(code, `${this.prefix}: '${tool} ${args[0] ?? ''}' exited with status ${r.exitStatus}: ${r.stderr.split('\n')[0] ?? ''}`, {
      details: { tool, args: [...args], exitStatus: r.exitStatus, stderr: r.stderr, where: this.runner.where },
    });
  }

  private async qemuImg(args: readonly string[], options: RunOptions = {}): Promise<string> {
    const argv = [this.settings.qemuImg, ...args];
    const r = await this.runner.run(argv, options);
    if (r.exitStatus === EXIT_NOT_FOUND || r.exitStatus === EXIT_NOT_EXECUTABLE) throw commandMissing(this.prefix, argv, r);
    if (r.exitStatus !== 0) throw this.failed('qemu-img', args, r);
    return r.stdout.toString('utf8');
  }

  /**
   * Every name that reaches virsh passes the project's VM-name rule first ({@link vmNameProblem}):
   * names can come from a peer, and virsh would read `-x` as an option, `7` as a domain id.
   */
  private checkName(name: string): void {
    const problem = vmNameProblem(name);
    if (problem !== undefined) {
      throw hvError('HV_VM_NAME_INVALID', `${this.prefix}: vm name ${JSON.stringify(name)} ${problem}`, { details: { vm: name } });
    }
  }

  private opts(options: CallOptions): RunOptions {
    return options.signal ? { signal: options.signal } : {};
  }

  /**
   * After a virsh command about NAME failed: is it because the domain does not exist? Decided by
   * listing the domains, not by reading virsh's error text.
   */
  private async notFoundOr(name: string, err: unknown, options: CallOptions): Promise<never> {
    if ((await this.vmState(name, options)) === 'absent') {
      throw hvError('HV_VM_NOT_FOUND', `${this.prefix}: no vm '${name}'`, { cause: err, details: { vm: name } });
    }
    throw err;
  }

  private async mustExist(name: string, options: CallOptions): Promise<VmPowerState> {
    const state = await this.vmState(name, options);
    if (state === 'absent') throw hvError('HV_VM_NOT_FOUND', `${this.prefix}: no vm '${name}'`, { details: { vm: name } });
    return state;
  }

  // ---- listing and describing ---------------------------------------------------------------

  async listVms(options: CallOptions = {}): Promise<VmListing[]> {
    const o = this.opts(options);
    const [all, running, paused] = await Promise.all([
      this.virsh(['list', '--all', '--name'], o),
      this.virsh(['list', '--name', '--state-running'], o),
      this.virsh(['list', '--name', '--state-paused'], o),
    ]);
    const run = new Set(parseNames(running));
    const pau = new Set(parseNames(paused));
    return parseNames(all)
      .sort()
      .map((name) => ({ name, state: run.has(name) ? 'running' : pau.has(name) ? 'paused' : 'stopped' }));
  }

  async vmState(name: string, options: CallOptions = {}): Promise<VmPowerState | 'absent'> {
    this.checkName(name);
    const o = this.opts(options);
    const r = await this.virshRaw(['domstate', name], o);
    if (r.exitStatus === 0) return parseDomstate(r.stdout.toString('utf8'));
    const names = parseNames(await this.virsh(['list', '--all', '--name'], o));
    if (!names.includes(name)) return 'absent';
    throw this.failed('virsh', ['domstate', name], r);
  }

  async describeVm(name: string, options: CallOptions = {}): Promise<VmDescription> {
    this.checkName(name);
    const o = this.opts(options);
    let xml: string;
    try {
      xml = await this.virsh(['dumpxml', '--inactive', name], o);
    } catch (err) {
      return this.notFoundOr(name, err, options);
    }
    const { value: read } = readLibvirtDomain(xml, { source: `${this.prefix} domain '${name}'` });
    // Domain XML carries no disk size (unless we wrote it in our metadata): ask the image. The
    // state is asked meanwhile (each a round trip to the host).
    const [disksRead, state] = await Promise.all([Promise.all(read.disks.map(async (d) => {
      if (d.capacityBytes > 0 || !d.file?.href.startsWith('/')) return d;
      const info = parseQemuImgInfo(await this.qemuImg(['info', '-U', '--output=json', d.file.href], this.opts(options)));
      return { ...d, capacityBytes: info.virtualSizeBytes, ...(d.format ? {} : { format: FORMAT_OF_QEMU[info.format] ?? 'raw' }) };
    })), this.mustExist(name, options)]);
    const vm: VirtualMachine = { ...read, disks: disksRead };
    const disks = vm.disks.map((d, i): DiskRef => ({
      id: String(i),
      href: d.file?.href ?? d.source ?? '',
      format: d.format ?? 'raw',
      capacityBytes: d.capacityBytes,
    }));
    return { vm, state, disks };
  }

  async hostCapacity(options: CallOptions = {}): Promise<HostCapacity> {
    const o = this.opts(options);
    const [nodeinfo, memstats, stats, pool] = await Promise.all([
      this.virsh(['nodeinfo'], o),
      this.virsh(['nodememstats'], o),
      this.virsh(['domstats', '--vcpu', '--list-active'], o),
      this.virsh(['pool-info', '--bytes', this.settings.pool], o),
    ]);
    const node = parseNodeinfo(nodeinfo);
    const mem = parseNodememstats(memstats);
    const p = parsePoolInfo(pool);
    return {
      vcpusTotal: node.cpus,
      vcpusFree: node.cpus - sumDomstatsVcpus(stats),
      memoryBytesTotal: mem.totalBytes,
      memoryBytesFree: mem.freeBytes,
      diskBytesTotal: p.capacityBytes,
      diskBytesFree: p.availableBytes,
    };
  }

  // ---- volumes ------------------------------------------------------------------------------

  private async volumes(options: CallOptions): Promise<Array<{ name: string; path: string }>> {
    const o = this.opts(options);
    await this.refreshPool(o, o.signal ? POOL_BUSY_WAIT_MS : POOL_BUSY_WAIT_UNCANCELLABLE_MS);
    return parseVolList(await this.virsh(['vol-list', '--pool', this.settings.pool], o));
  }

  /**
   * `pool-refresh`, so that files made outside libvirt (overlays, received chains) are volumes.
   * While libvirtd builds a volume in the pool it refuses the refresh: we ask again, backing off
   * from 100 ms to 2 s, for up to `maxWaitMs`; then the refusal is the error.
   */
  private async refreshPool(o: RunOptions, maxWaitMs: number): Promise<void> {
    const args = ['pool-refresh', this.settings.pool];
    const deadline = Date.now() + maxWaitMs;
    for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
      const r = await this.virshRaw(args, o);
      if (r.exitStatus === 0) return;
      if (!isPoolBuildingVolume(r.stderr) || Date.now() + pause > deadline) throw this.failed('virsh', args, r);
      await sleep(pause, undefined, o.signal ? { signal: o.signal } : {}).catch(() => {
        throw abortedError(this.prefix, 'pool-refresh', o.signal);
      });
    }
  }

  private async createVolume(name: string, capacityBytes: number, format: 'raw' | 'qcow2', options: CallOptions, allocationZero: boolean): Promise<string> {
    const o = this.opts(options);
    const args = ['vol-create-as', this.settings.pool, name, `${capacityBytes}b`, '--format', format];
    if (allocationZero) args.push('--allocation', '0');
    await this.virsh(args, o);
    return (await this.virsh(['vol-path', '--pool', this.settings.pool, name], o)).trim();
  }

  async removeDisk(href: string, options: CallOptions = {}): Promise<void> {
    throwIfAborted(this.prefix, 'removeDisk', options.signal);
    const vols = await this.volumes(options);
    if (!vols.some((v) => v.path === href)) return;
    // A vol-upload that was just cut may still hold the volume for a moment.
    for (let attempt = 0; ; attempt++) {
      const r = await this.virshRaw(['vol-delete', '--vol', href], this.opts(options));
      if (r.exitStatus === 0) return;
      const still = (await this.volumes(options)).some((v) => v.path === href);
      if (!still) return;
      if (attempt >= 20) throw this.failed('virsh', ['vol-delete', '--vol', href], r);
      await sleep(250);
    }
  }

  /**
   * The pool's directory when it is a `dir` pool that this process sees too: a probe file with a
   * random token, written here, must read back the same through the runner (over SSH, on the
   * hypervisor host). Anything else — another pool type, a directory missing or read-only here,
   * another machine's directory of the same name — is `undefined`.
   */
  async localStorageDir(options: CallOptions = {}): Promise<string | undefined> {
    throwIfAborted(this.prefix, 'localStorageDir', options.signal);
    const dir = parseDirPoolPath(await this.virsh(['pool-dumpxml', this.settings.pool], this.opts(options)));
    if (dir === undefined) return undefined;
    const token = randomUUID();
    const probe = join(dir, `.intercloud-probe-${token}`);
    try {
      await fs.writeFile(probe, token, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      // Not writable from here (absent, read-only, not ours): no local storage, not a failure.
      if ((err as NodeJS.ErrnoException).code !== undefined) return undefined;
      throw err;
    }
    try {
      const r = await this.runner.run(['cat', probe], this.opts(options));
      return r.exitStatus === 0 && r.stdout.toString('utf8') === token ? dir : undefined;
    } finally {
      await fs.rm(probe, { force: true });
    }
  }

  private async freeBytes(options: CallOptions): Promise<number> {
    return parsePoolInfo(await this.virsh(['pool-info', '--bytes', this.settings.pool], this.opts(options))).availableBytes;
  }

  // ---- define / start / stop / undefine -------------------------------------------------------

  async defineVm(vm: VirtualMachine, options: CallOptions = {}): Promise<DefineResult> {
    throwIfAborted(this.prefix, 'defineVm', options.signal);
    this.checkName(vm.name);
    if ((await this.vmState(vm.name, options)) !== 'absent') {
      throw hvError('HV_VM_EXISTS', `${this.prefix}: a vm named '${vm.name}' already exists`, { details: { vm: vm.name } });
    }
    const entries: ReportEntry[] = [];
    const created: string[] = [];
    let defined = false;
    try {
      const vols = await this.volumes(options);
      const disks = [];
      for (const [i, d] of vm.disks.entries()) {
        if (d.file) {
          if (!vols.some((v) => v.path === d.file!.href)) {
            throw hvError('HV_MODEL_INVALID', `${this.prefix}: disk ${i} of '${vm.name}' refers to '${d.file.href}', which is not a volume of pool '${this.settings.pool}'`, {
              details: { path: `disks[${i}].file.href`, href: d.file.href },
            });
          }
          disks.push(d);
          continue;
        }
        const path = await this.createVolume(`${vm.name}-disk${i}.qcow2`, d.capacityBytes, 'qcow2', options, false);
        created.push(path);
        entries.push({ severity: 'note', path: `disks[${i}].file`, message: 'a blank qcow2 volume was created', value: path });
        disks.push({ ...d, format: 'qcow2' as const, file: { href: path } });
      }
      const model: VirtualMachine = { ...vm, disks };
      const nicTarget = this.settings.nicTarget;
      if (nicTarget) {
        vm.nics.forEach((n, i) => {
          if (n.network !== undefined || n.attachment !== undefined) {
            entries.push({ severity: 'note', path: `nics[${i}].network`, message: `this host attaches every nic as '${nicTarget.type}${nicTarget.name ? `:${nicTarget.name}` : ''}'`, ...(n.network ? { value: n.network } : {}) });
          }
        });
      }
      const { value: xml, report } = writeLibvirtDomain(model, {
        domainType: this.settings.domainType,
        ...(nicTarget ? { nicTarget: () => nicTarget } : {}),
        ...(this.settings.consoleLogDir ? { serialLogDir: this.settings.consoleLogDir } : {}),
      });
      entries.push(...report.entries);
      throwIfAborted(this.prefix, 'defineVm', options.signal);
      // `virsh define FILE` with the XML on stdin.
      await this.virsh(['define', '/dev/stdin'], { ...this.opts(options), stdin: xml });
      defined = true;
      const desc = await this.describeVm(vm.name, {});
      const rep: ConversionReport = { from: 'model', to: 'libvirt', entries };
      return { name: vm.name, ...(desc.vm.uuid ? { uuid: desc.vm.uuid } : {}), disks: desc.disks, report: rep };
    } catch (err) {
      // Nothing half-made: the domain (only if our define got through: a domain of that name
      // that appeared meanwhile is someone else's) and new volumes go.
      await this.undo(defined ? vm.name : undefined, created, err);
      throw err;
    }
  }

  /** Removes what a failed define/write made; cleanup problems are added to the error's details. */
  private async undo(vmName: string | undefined, volumes: readonly string[], err: unknown): Promise<void> {
    if (vmName !== undefined) {
      await cleanup(err, () => this.undefineVm(vmName, {}));
    }
    for (const v of volumes) await cleanup(err, () => this.removeDisk(v, {}));
  }

  async startVm(name: string, options: CallOptions = {}): Promise<void> {
    this.checkName(name);
    const state = await this.mustExist(name, options);
    if (state === 'running') return;
    if (state === 'paused') {
      await this.virsh(['resume', name], this.opts(options));
      return;
    }
    try {
      await this.virsh(['start', name], this.opts(options));
    } catch (err) {
      // Started meanwhile by someone else: still the outcome the caller wanted.
      if ((await this.vmState(name, options)) === 'running') return;
      throw err;
    }
  }

  async shutdownVm(name: string, options: ShutdownOptions): Promise<ShutdownResult> {
    this.checkName(name);
    const o = this.opts(options);
    const state = await this.mustExist(name, options);
    if (state === 'stopped') return { alreadyStopped: true, forced: false };
    // ACPI power button (libvirt's default shutdown mode for QEMU).
    const r = await this.virshRaw(['shutdown', name], o);
    const deadline = Date.now() + options.timeoutMs;
    if (r.exitStatus === 0) {
      while (Date.now() < deadline) {
        if ((await this.vmState(name, options)) !== 'running') break;
        // Only the signal rejects the sleep.
        await sleep(this.settings.pollMs, undefined, options.signal ? { signal: options.signal } : {}).catch(() => {
          throw abortedError(this.prefix, 'shutdownVm', options.signal);
        });
      }
    }
    const now = await this.vmState(name, options);
    if (now === 'stopped' || now === 'absent') return { alreadyStopped: false, forced: false };
    const d = await this.virshRaw(['destroy', name], o);
    const after = await this.vmState(name, options);
    if (after === 'stopped' || after === 'absent') return { alreadyStopped: false, forced: true };
    throw hvError('HV_SHUTDOWN_TIMEOUT', `${this.prefix}: vm '${name}' is still '${after}' after shutdown and force-off`, {
      details: { vm: name, exitStatus: d.exitStatus, stderr: d.stderr },
    });
  }

  async undefineVm(name: string, options: UndefineOptions = {}): Promise<{ existed: boolean }> {
    this.checkName(name);
    const o = this.opts(options);
    const state = await this.vmState(name, options);
    if (state === 'absent') return { existed: false };
    // What a live move stacked under the disks (overlays, the disk below them, a saved state):
    // libvirt removes only each disk's top image.
    const leftovers = options.removeStorage ? await this.live.leftoverStorage(name, options) : [];
    if (state !== 'stopped') await this.virshRaw(['destroy', name], o);
    const args = ['undefine', name, '--nvram', '--managed-save', '--snapshots-metadata', '--checkpoints-metadata'];
    if (options.removeStorage) args.push('--remove-all-storage');
    // libvirtd lost mid-undefine may have done it: asked once it answers again, as for a refusal.
    // A retry would find the domain gone and no longer know the leftovers, which go only from here.
    const r = await this.virshRaw(args, o).catch((err: unknown) => {
      if (!isIntercloudError(err, 'LIBVIRT_DAEMON_LOST')) throw err;
      return err as Error;
    });
    if (r instanceof Error || r.exitStatus !== 0) {
      const back = { pollMs: this.settings.pollMs, prefix: this.prefix, op: 'undefineVm', ...(options.signal ? { signal: options.signal } : {}) };
      if ((await onceLibvirtdAnswers(() => this.vmState(name, options), back)) !== 'absent') throw r instanceof Error ? r : this.failed('virsh', args, r);
    }
    for (const href of leftovers) await this.removeDisk(href, options);
    return { existed: true };
  }

  // ---- disk I/O -----------------------------------------------------------------------------

  private async diskPath(name: string, diskId: string, options: CallOptions): Promise<DiskRef> {
    const desc = await this.describeVm(name, options);
    const ref = /^\d+$/.test(diskId) ? desc.disks[Number(diskId)] : undefined;
    if (!ref || !ref.href.startsWith('/')) {
      throw hvError('HV_DISK_NOT_FOUND', `${this.prefix}: vm '${name}' has no file disk '${diskId}'`, { details: { vm: name, diskId } });
    }
    return ref;
  }

  async statDisk(name: string, diskId: string, options: CallOptions = {}): Promise<DiskInfo> {
    const ref = await this.diskPath(name, diskId, options);
    const o = this.opts(options);
    // `-f raw`: the map of the stored file itself, i.e. of the bytes readDisk yields. qemu-img
    // rounds the end up to a 512-byte sector, so the length comes from libvirt (`--physical`).
    const [mapText, infoText, volText] = await Promise.all([
      this.qemuImg(['map', '-U', '-f', 'raw', '--output=json', ref.href], o),
      this.qemuImg(['info', '-U', '--output=json', ref.href], o),
      this.virsh(['vol-info', '--bytes', '--physical', '--vol', ref.href], o),
    ]);
    const sizeBytes = parsePhysical(volText);
    const extents = clipExtents(parseQemuImgMap(mapText), sizeBytes);
    const info = parseQemuImgInfo(infoText);
    const backing = parseBackingFile(infoText);
    return {
      ...ref,
      format: FORMAT_OF_QEMU[info.format] ?? ref.format,
      capacityBytes: info.virtualSizeBytes,
      sizeBytes,
      extents,
      // A base whose format the overlay does not declare is read as raw (bases are raw images).
      ...(backing === undefined ? {} : { backing: { href: backing.file, format: FORMAT_OF_QEMU[backing.format ?? 'raw'] ?? 'raw' } }),
    };
  }

  async readDisk(name: string, diskId: string, options: ReadDiskOptions = {}): Promise<Readable> {
    const ref = await this.diskPath(name, diskId, options);
    return this.streamFile(ref.href, options);
  }

  /** Streams a file of the pool (a range with `offset`/`length`) the way `diskIo` says. */
  private streamFile(href: string, options: ReadDiskOptions): Readable {
    const ref = { href };
    let argv: string[];
    let tool: string;
    let shown: string[];
    if (this.settings.diskIo === 'file') {
      // The volume's file read where it lies, one hop less than libvirt's stream (libvirtd → virsh).
      tool = 'dd';
      argv = ['dd', `if=${ref.href}`, 'bs=1M', 'status=none', 'iflag=skip_bytes,count_bytes'];
      if (options.offset !== undefined) argv.push(`skip=${options.offset}`);
      if (options.length !== undefined) argv.push(`count=${options.length}`);
      shown = argv;
    } else {
      tool = 'virsh';
      argv = [this.settings.virsh, '-q', '-c', this.settings.uri, 'vol-download', '--vol', ref.href];
      if (options.offset !== undefined) argv.push('--offset', String(options.offset));
      if (options.length !== undefined) argv.push('--length', String(options.length));
      argv.push('/dev/stdout');
      shown = argv;
      argv = throughPipes(argv, 'out');
    }
    const cmd = this.runner.spawn(argv, this.opts(options));
    cmd.done.then(
      (exit) => {
        if (exit.exitStatus === EXIT_NOT_FOUND || exit.exitStatus === EXIT_NOT_EXECUTABLE) cmd.stdout.destroy(commandMissing(this.prefix, shown, exit));
        else if (exit.exitStatus !== 0) cmd.stdout.destroy(this.failed(tool, shown.slice(1), { ...exit, stdout: Buffer.alloc(0) }));
      },
      () => undefined, // the runner already failed the stream with the coded error
    );
    return cmd.stdout;
  }

  async writeDisk(disk: NewDisk, source: Readable, options: CallOptions = {}): Promise<DiskRef> {
    throwIfAborted(this.prefix, 'writeDisk', options.signal);
    if (!isSafeDiskName(disk.name)) {
      source.destroy();
      throw hvError('HV_MODEL_INVALID', `${this.prefix}: '${disk.name}' is not a valid volume name (letters, digits, '._-')`, { details: { name: disk.name } });
    }
    const vols = await this.volumes(options);
    if (vols.some((v) => v.name === disk.name)) {
      source.destroy();
      throw hvError('HV_DISK_EXISTS', `${this.prefix}: volume '${disk.name}' already exists in pool '${this.settings.pool}'`, { details: { name: disk.name, pool: this.settings.pool } });
    }
    const free = await this.freeBytes(options);
    if (disk.sizeBytes > free) {
      source.destroy();
      throw hvError('HV_NO_SPACE', `${this.prefix}: pool '${this.settings.pool}' has ${free} bytes free, disk '${disk.name}' needs ${disk.sizeBytes}`, {
        details: { pool: this.settings.pool, free, needed: disk.sizeBytes },
      });
    }
    // A sparse raw volume of exactly the image's length, then its bytes.
    let path: string | undefined;
    try {
      path = await this.createVolume(disk.name, disk.sizeBytes, 'raw', options, true);
      const guard = new ExactLength(disk.sizeBytes, `${this.prefix}: disk '${disk.name}'`);
      // The consumer (ssh channel, https request) attaches later: until then the guard keeps its
      // error (`guard.errored`) instead of raising an unhandled 'error' event.
      guard.on('error', () => undefined);
      source.once('error', (err) => guard.destroy(err));
      source.pipe(guard);
      let tool = 'virsh';
      let args = ['vol-upload', '--vol', path, '/dev/stdin'];
      let r: CommandResult;
      if (this.settings.diskIo === 'file') {
        // Whole 1 MiB blocks (fullblock), all-zero ones skipped as holes (sparse), on disk before we answer (fsync).
        tool = 'dd';
        args = ['dd', `of=${path}`, 'bs=1M', 'iflag=fullblock', 'conv=sparse,notrunc,fsync', 'status=none'];
        r = await this.runner.run(args, { ...this.opts(options), stdin: guard });
        if (r.exitStatus === EXIT_NOT_FOUND || r.exitStatus === EXIT_NOT_EXECUTABLE) throw commandMissing(this.prefix, args, r);
      } else {
        r = await this.virshRaw(args, { ...this.opts(options), stdin: guard });
      }
      if (r.exitStatus !== 0) {
        // The pool may have filled up after our check (another writer): say so with the code.
        // A refresh libvirtd keeps refusing leaves the write's own failure as the error.
        if (!await this.refreshPool({}, POOL_BUSY_WAIT_UNCANCELLABLE_MS).then(() => true, () => false)) throw this.failed(tool, args, r);
        const left = await this.freeBytes({});
        if (left < 1024 * 1024) {
          throw hvError('HV_NO_SPACE', `${this.prefix}: pool '${this.settings.pool}' ran out of space writing '${disk.name}'`, {
            details: { pool: this.settings.pool, exitStatus: r.exitStatus, stderr: r.stderr },
          });
        }
        throw this.failed(tool, args, r);
      }
      return { id: '0', href: path, format: disk.format, capacityBytes: disk.capacityBytes };
    } catch (err) {
      source.destroy();
      if (path !== undefined) await this.undo(undefined, [path], err);
      throw err;
    }
  }

  async importVm(vm: VirtualMachine, disks: readonly ImportDisk[], options: CallOptions = {}): Promise<DefineResult> {
    return importByParts(this, vm, disks, options);
  }

  async close(): Promise<void> {
    await this.runner.close();
  }
}
