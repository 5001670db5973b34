/**
 * The VMware adapter: the vSphere SOAP API (vim25) over `node:https` — property collector
 * listings, `CreateVM_Task`, power operations, `Destroy_Task`/`UnregisterVM`, and disk bytes
 * through datastore HTTP access (`/folder`, GET with Range / PUT), streamed.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VirtualMachine } from '../../../protocols/vm/index.js';
import { el } from '../../../protocols/xml/index.js';
import { writeOvf } from '../../../protocols/ovf/index.js';
import type {
  CallOptions, DefineResult, DiskInfo, DiskRef, HostCapacity, Hypervisor, ImportDisk, NewDisk,
  ReadDiskOptions, ShutdownOptions, ShutdownResult, UndefineOptions, VmDescription, VmListing,
  VmPowerState,
} from '../contract.js';
import { abortedError, hvError, throwIfAborted } from '../errors.js';
import { cleanup, importByParts } from '../import-by-parts.js';
import { ExactLength, isSafeDiskName } from '../streams.js';
import { fromValue, list, moRef, moRefNode, obj, text } from './soap.js';
import type { MoRef, SoapObject } from './soap.js';
import { configSpec, parseDatastorePath, vmFromConfig } from './vm-mapping.js';
import { prop, VsphereClient } from './vsphere-client.js';
import type { VsphereEndpoint } from './vsphere-client.js';

/** Resolved settings of the VMware adapter. */
export interface VmwareSettings {
  /** The cloud id, for messages (`vmware(cloud-c): …`). */
  name: string;
  endpoint: VsphereEndpoint;
  datacenter: string;
  datastore: string;
  /** Compute resource (cluster or standalone host) new VMs go to; the first one when absent. */
  computeResource?: string;
  /** Network for NICs whose network does not exist here. */
  network: string;
  /** How often to poll the power state while waiting for a shutdown (ms). */
  pollMs: number;
  /**
   * How `importVm` brings disks in: `datastore` (default) uploads the flat vmdk pairs through
   * `/folder` then `CreateVM_Task`; `nfc` is vSphere's OVF import (`CreateImportSpec` →
   * `ImportVApp` → NFC upload), see {@link VmwareHypervisor.importVApp}.
   */
  importVia: 'datastore' | 'nfc';
}

interface Inventory {
  datacenter: MoRef;
  vmFolder: MoRef;
  datastore: MoRef;
  resourcePool: MoRef;
  computeResource: MoRef;
  networks: string[];
}

function powerState(v: string): VmPowerState {
  return v === 'poweredOn' ? 'running' : v === 'poweredOff' ? 'stopped' : v === 'suspended' ? 'paused' : 'other';
}

/** The VMware {@link Hypervisor}. */
export class VmwareHypervisor implements Hypervisor {
  readonly kind = 'vmware';
  private readonly prefix: string;
  private readonly client: VsphereClient;
  private inventory: Inventory | undefined;

  constructor(private readonly settings: VmwareSettings) {
    this.prefix = `vmware(${settings.name})`;
    this.client = new VsphereClient(settings.endpoint, this.prefix);
  }

  private async inv(signal?: AbortSignal): Promise<Inventory> {
    if (this.inventory) return this.inventory;
    const s = this.settings;
    const [dcs, dss, crs, nets] = await Promise.all([
      this.client.retrieve('Datacenter', ['name', 'vmFolder'], undefined, signal),
      this.client.retrieve('Datastore', ['name'], undefined, signal),
      this.client.retrieve('ComputeResource', ['name', 'resourcePool'], undefined, signal),
      this.client.retrieve('Network', ['name'], undefined, signal),
    ]);
    const config = (what: string, name: string): never => {
      throw hvError('HV_CONFIG_INVALID', `${this.prefix}: no ${what} named '${name}' (set the adapter's ${what})`, { details: { [what]: name } });
    };
    const dc = dcs.find((d) => text(d.props['name']) === s.datacenter) ?? config('datacenter', s.datacenter);
    const ds = dss.find((d) => text(d.props['name']) === s.datastore) ?? config('datastore', s.datastore);
    const cr = s.computeResource === undefined ? crs[0] : crs.find((c) => text(c.props['name']) === s.computeResource);
    if (!cr) return config('computeResource', s.computeResource ?? '(any)');
    this.inventory = {
      datacenter: dc.obj,
      vmFolder: moRef(dc.props['vmFolder'])!,
      datastore: ds.obj,
      resourcePool: moRef(cr.props['resourcePool'])!,
      computeResource: cr.obj,
      networks: nets.map((n) => text(n.props['name'])),
    };
    return this.inventory;
  }

  private async findVm(name: string, signal?: AbortSignal): Promise<{ ref: MoRef; state: VmPowerState } | undefined> {
    const all = await this.client.retrieve('VirtualMachine', ['name', 'runtime.powerState'], undefined, signal);
    const hit = all.find((v) => text(v.props['name']) === name);
    return hit ? { ref: hit.obj, state: powerState(text(hit.props['runtime.powerState'])) } : undefined;
  }

  private async mustFind(name: string, signal?: AbortSignal): Promise<{ ref: MoRef; state: VmPowerState }> {
    const vm = await this.findVm(name, signal);
    if (!vm) throw hvError('HV_VM_NOT_FOUND', `${this.prefix}: no vm '${name}'`, { details: { vm: name } });
    return vm;
  }

  async listVms(options: CallOptions = {}): Promise<VmListing[]> {
    const all = await this.client.retrieve('VirtualMachine', ['name', 'runtime.powerState', 'config.uuid'], undefined, options.signal);
    return all
      .map((v) => {
        const uuid = text(v.props['config.uuid']);
        return { name: text(v.props['name']), state: powerState(text(v.props['runtime.powerState'])), ...(uuid ? { uuid } : {}) };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async vmState(name: string, options: CallOptions = {}): Promise<VmPowerState | 'absent'> {
    return (await this.findVm(name, options.signal))?.state ?? 'absent';
  }

  async describeVm(name: string, options: CallOptions = {}): Promise<VmDescription> {
    const found = await this.mustFind(name, options.signal);
    const [v] = await this.client.retrieve('VirtualMachine', ['config', 'runtime.powerState'], [found.ref], options.signal);
    if (!v) throw hvError('HV_VM_NOT_FOUND', `${this.prefix}: no vm '${name}'`, { details: { vm: name } });
    const vm = vmFromConfig(name, prop(v, 'config'));
    const disks = vm.disks.map((d, i): DiskRef => ({ id: String(i), href: d.file?.href ?? '', format: 'vmdk', capacityBytes: d.capacityBytes }));
    return { vm, state: powerState(text(v.props['runtime.powerState'])), disks };
  }

  async hostCapacity(options: CallOptions = {}): Promise<HostCapacity> {
    const inv = await this.inv(options.signal);
    const [cr] = await this.client.retrieve('ComputeResource', ['host'], [inv.computeResource], options.signal);
    const hostRefs = list(cr?.props['host'] !== undefined ? obj(cr.props['host'])['ManagedObjectReference'] : undefined).map(moRef).filter((r): r is MoRef => r !== undefined);
    const hosts = hostRefs.length > 0 ? await this.client.retrieve('HostSystem', ['summary.hardware', 'summary.quickStats', 'vm'], hostRefs, options.signal) : [];
    let vcpus = 0;
    let mem = 0;
    let memUsed = 0;
    const vmRefs: MoRef[] = [];
    for (const h of hosts) {
      const hw = prop(h, 'summary.hardware');
      vcpus += Number(text(hw['numCpuThreads'])) || 0;
      mem += Number(text(hw['memorySize'])) || 0;
      memUsed += (Number(text(prop(h, 'summary.quickStats')['overallMemoryUsage'])) || 0) * 1024 * 1024;
      vmRefs.push(...list(obj(h.props['vm'])['ManagedObjectReference']).map(moRef).filter((r): r is MoRef => r !== undefined));
    }
    let vcpuUsed = 0;
    if (vmRefs.length > 0) {
      for (const v of await this.client.retrieve('VirtualMachine', ['runtime.powerState', 'config.hardware.numCPU'], vmRefs, options.signal)) {
        if (text(v.props['runtime.powerState']) === 'poweredOn') vcpuUsed += Number(text(v.props['config.hardware.numCPU'])) || 0;
      }
    }
    const [ds] = await this.client.retrieve('Datastore', ['summary'], [inv.datastore], options.signal);
    const sum = prop(ds, 'summary');
    return {
      vcpusTotal: vcpus,
      vcpusFree: vcpus - vcpuUsed,
      memoryBytesTotal: mem,
      memoryBytesFree: mem - memUsed,
      diskBytesTotal: Number(text(sum['capacity'])) || 0,
      diskBytesFree: Number(text(sum['freeSpace'])) || 0,
    };
  }

  async defineVm(vm: VirtualMachine, options: CallOptions = {}): Promise<DefineResult> {
    const { signal } = options;
    throwIfAborted(this.prefix, 'defineVm', signal);
    const inv = await this.inv(signal);
    if (await this.findVm(vm.name, signal)) {
      throw hvError('HV_VM_EXISTS', `${this.prefix}: a vm named '${vm.name}' already exists`, { details: { vm: vm.name } });
    }
    for (const [i, d] of vm.disks.entries()) {
      if (d.file && !(await this.fileSize(d.file.href, signal))) {
        throw hvError('HV_MODEL_INVALID', `${this.prefix}: disk ${i} of '${vm.name}' refers to '${d.file.href}', which is not a datastore file`, { details: { path: `disks[${i}].file.href` } });
      }
    }
    const { spec, entries } = configSpec(vm, { datastore: this.settings.datastore, networks: inv.networks, defaultNetwork: this.settings.network });
    try {
      const task = moRef(await this.client.call('CreateVM_Task', inv.vmFolder, [spec, moRefNode('pool', inv.resourcePool)], signal));
      if (!task) throw hvError('VMWARE_RESPONSE_INVALID', `${this.prefix}: CreateVM_Task returned no task`, { details: { vm: vm.name } });
      await this.client.waitTask(task, `define '${vm.name}'`, signal);
      const desc = await this.describeVm(vm.name, {});
      return { name: vm.name, ...(desc.vm.uuid ? { uuid: desc.vm.uuid } : {}), disks: desc.disks, report: { from: 'model', to: 'vmware', entries } };
    } catch (err) {
      // A define cut short (abort, task error after registering) must leave nothing behind.
      if (await this.findVm(vm.name)) await this.undefineVm(vm.name, { removeStorage: vm.disks.every((d) => !d.file) });
      throw err;
    }
  }

  private async powerTask(method: string, ref: MoRef, what: string, signal?: AbortSignal): Promise<void> {
    const task = moRef(await this.client.call(method, ref, [], signal));
    if (!task) throw hvError('VMWARE_RESPONSE_INVALID', `${this.prefix}: ${method} returned no task`, { details: { vm: ref.value } });
    await this.client.waitTask(task, what, signal);
  }

  async startVm(name: string, options: CallOptions = {}): Promise<void> {
    const vm = await this.mustFind(name, options.signal);
    if (vm.state === 'running') return;
    await this.powerTask('PowerOnVM_Task', vm.ref, `start '${name}'`, options.signal);
  }

  async shutdownVm(name: string, options: ShutdownOptions): Promise<ShutdownResult> {
    const { signal } = options;
    const vm = await this.mustFind(name, signal);
    if (vm.state === 'stopped') return { alreadyStopped: true, forced: false };
    let asked = true;
    try {
      // Guest OS shutdown through VMware Tools; refused (e.g. ToolsUnavailable) → force-off below.
      await this.client.call('ShutdownGuest', vm.ref, [], signal);
    } catch (err) {
      if ((err as { code?: string }).code !== 'VMWARE_FAULT') throw err;
      asked = false;
    }
    const deadline = Date.now() + options.timeoutMs;
    while (asked && Date.now() < deadline) {
      if ((await this.vmState(name, { ...(signal ? { signal } : {}) })) !== 'running') return { alreadyStopped: false, forced: false };
      await sleep(this.settings.pollMs, undefined, signal ? { signal } : {}).catch(() => {
        throw abortedError(this.prefix, 'shutdownVm', signal);
      });
    }
    const now = await this.vmState(name, signal ? { signal } : {});
    if (now !== 'running') return { alreadyStopped: false, forced: false };
    await this.powerTask('PowerOffVM_Task', vm.ref, `force off '${name}'`, signal);
    return { alreadyStopped: false, forced: true };
  }

  async undefineVm(name: string, options: UndefineOptions = {}): Promise<{ existed: boolean }> {
    const { signal } = options;
    const vm = await this.findVm(name, signal);
    if (!vm) return { existed: false };
    if (vm.state === 'running' || vm.state === 'paused') await this.powerTask('PowerOffVM_Task', vm.ref, `force off '${name}'`, signal);
    if (options.removeStorage) {
      const disks = (await this.describeVm(name, signal ? { signal } : {})).disks;
      await this.powerTask('Destroy_Task', vm.ref, `destroy '${name}'`, signal);
      // Destroy removes the VM's folder; attached disks elsewhere on the datastore go too.
      for (const d of disks) await this.removeDisk(d.href, signal ? { signal } : {});
    } else {
      await this.client.call('UnregisterVM', vm.ref, [], signal);
    }
    return { existed: true };
  }

  // ---- datastore files ----------------------------------------------------------------------
  // A disk is a VMFS "flat" pair: `x.vmdk` (a small text descriptor) and `x-flat.vmdk` (the bytes).
  // Disk bytes are read from and written to the `-flat` extent; the descriptor names it.

  private folder(href: string): string {
    const p = parseDatastorePath(href);
    if (!p) throw hvError('HV_DISK_NOT_FOUND', `${this.prefix}: '${href}' is not a datastore path`, { details: { href } });
    return this.client.folderPath(p.datastore, this.settings.datacenter, p.path);
  }

  /** Size of a disk's data extent, or undefined when there is none. */
  private async fileSize(href: string, signal?: AbortSignal): Promise<number | undefined> {
    await this.client.session(signal);
    const res = await this.client.request('HEAD', this.folder(flatOf(href)), { signal });
    res.resume();
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw hvError('VMWARE_HTTP', `${this.prefix}: HEAD '${href}' answered http ${res.statusCode}`, { details: { httpStatus: res.statusCode, href } });
    return Number(res.headers['content-length'] ?? 0);
  }

  private async disk(name: string, diskId: string, signal?: AbortSignal): Promise<DiskRef> {
    const desc = await this.describeVm(name, signal ? { signal } : {});
    const ref = /^\d+$/.test(diskId) ? desc.disks[Number(diskId)] : undefined;
    if (!ref) throw hvError('HV_DISK_NOT_FOUND', `${this.prefix}: vm '${name}' has no disk '${diskId}'`, { details: { vm: name, diskId } });
    return ref;
  }

  async statDisk(name: string, diskId: string, options: CallOptions = {}): Promise<DiskInfo> {
    const ref = await this.disk(name, diskId, options.signal);
    const size = await this.fileSize(ref.href, options.signal);
    if (size === undefined) throw hvError('HV_DISK_NOT_FOUND', `${this.prefix}: the file '${ref.href}' of vm '${name}' is missing`, { details: { vm: name, diskId, href: ref.href } });
    // Datastore HTTP access does not tell which ranges are allocated: no extents.
    return { ...ref, sizeBytes: size };
  }

  async readDisk(name: string, diskId: string, options: ReadDiskOptions = {}): Promise<Readable> {
    const ref = await this.disk(name, diskId, options.signal);
    if (options.length === 0) return Readable.from([]);
    const headers: Record<string, string> = {};
    if (options.offset !== undefined || options.length !== undefined) {
      const start = options.offset ?? 0;
      headers['Range'] = options.length !== undefined ? `bytes=${start}-${start + options.length - 1}` : `bytes=${start}-`;
    }
    const res = await this.client.request('GET', this.folder(flatOf(ref.href)), { headers, signal: options.signal });
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      res.resume();
      throw hvError(res.statusCode === 404 ? 'HV_DISK_NOT_FOUND' : 'VMWARE_HTTP', `${this.prefix}: GET '${ref.href}' answered http ${res.statusCode}`, { details: { httpStatus: res.statusCode, href: ref.href } });
    }
    return res;
  }

  private async put(href: string, body: string | Readable, length: number, signal?: AbortSignal): Promise<void> {
    const res = await this.client.request('PUT', this.folder(href), {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': length },
      body,
      signal,
    });
    res.resume();
    if ((res.statusCode ?? 500) >= 300) {
      throw hvError('VMWARE_HTTP', `${this.prefix}: PUT '${href}' answered http ${res.statusCode}`, { details: { httpStatus: res.statusCode, href } });
    }
  }

  async writeDisk(disk: NewDisk, source: Readable, options: CallOptions = {}): Promise<DiskRef> {
    const { signal } = options;
    throwIfAborted(this.prefix, 'writeDisk', signal);
    if (!isSafeDiskName(disk.name)) {
      source.destroy();
      throw hvError('HV_MODEL_INVALID', `${this.prefix}: '${disk.name}' is not a valid file name (letters, digits, '._-')`, { details: { name: disk.name } });
    }
    const inv = await this.inv(signal);
    const stem = disk.name.replace(/\.[A-Za-z0-9-]+$/, '');
    const href = `[${this.settings.datastore}] ${stem}.vmdk`;
    if ((await this.fileSize(href, signal)) !== undefined) {
      source.destroy();
      throw hvError('HV_DISK_EXISTS', `${this.prefix}: '${href}' already exists`, { details: { href } });
    }
    const [ds] = await this.client.retrieve('Datastore', ['summary.freeSpace'], [inv.datastore], signal);
    const free = Number(text(ds?.props['summary.freeSpace'])) || 0;
    if (disk.sizeBytes > free) {
      source.destroy();
      throw hvError('HV_NO_SPACE', `${this.prefix}: datastore '${this.settings.datastore}' has ${free} bytes free, disk '${disk.name}' needs ${disk.sizeBytes}`, {
        details: { datastore: this.settings.datastore, free, needed: disk.sizeBytes },
      });
    }
    const guard = new ExactLength(disk.sizeBytes, `${this.prefix}: disk '${disk.name}'`);
    // The consumer (ssh channel, https request) attaches later: until then the guard keeps its
    // error (`guard.errored`) instead of raising an unhandled 'error' event.
    guard.on('error', () => undefined);
    source.once('error', (err) => guard.destroy(err));
    source.pipe(guard);
    try {
      await this.put(flatOf(href), guard, disk.sizeBytes, signal);
      const descriptor = flatDescriptor(`${stem}-flat.vmdk`, disk.sizeBytes);
      await this.put(href, descriptor, Buffer.byteLength(descriptor), signal);
      return { id: '0', href, format: disk.format, capacityBytes: disk.capacityBytes };
    } catch (err) {
      source.destroy();
      await cleanup(err, () => this.removeDisk(href));
      throw err;
    }
  }

  async removeDisk(href: string, options: CallOptions = {}): Promise<void> {
    const { signal } = options;
    // The extent first, then the descriptor; each only when present (a cut write may leave either).
    for (const file of [flatOf(href), href]) {
      const res = await this.client.request('HEAD', this.folder(file), { signal });
      res.resume();
      if (res.statusCode === 404) continue;
      const inv = await this.inv(signal);
      const sc = await this.client.session(signal);
      const task = moRef(await this.client.call('DeleteDatastoreFile_Task', sc.fileManager, [el('name', {}, file), moRefNode('datacenter', inv.datacenter)], signal));
      if (task) await this.client.waitTask(task, `delete '${file}'`, signal);
    }
  }

  async importVm(vm: VirtualMachine, disks: readonly ImportDisk[], options: CallOptions = {}): Promise<DefineResult> {
    if (this.settings.importVia === 'nfc') return this.importVApp(vm, disks, options);
    return importByParts(this, vm, disks, options);
  }

  /**
   * vSphere's own OVF import: the model written as OVF (`protocols/ovf`), `OvfManager.CreateImportSpec`
   * (vSphere parses and checks the descriptor), `ResourcePool.ImportVApp` (creates the VM and an
   * `HttpNfcLease`), each disk's bytes sent to its lease URL, then `HttpNfcLeaseComplete`. On any
   * failure the lease is aborted and a VM it created is destroyed. (vcsim accepts NFC uploads but
   * discards their bytes, so its disks read back empty.)
   */
  async importVApp(vm: VirtualMachine, disks: readonly ImportDisk[], options: CallOptions = {}): Promise<DefineResult> {
    const { signal } = options;
    throwIfAborted(this.prefix, 'importVm', signal);
    if (disks.length !== vm.disks.length) {
      throw hvError('HV_MODEL_INVALID', `${this.prefix}: import of '${vm.name}' has ${vm.disks.length} disks in the model but ${disks.length} streams`, { details: { vm: vm.name } });
    }
    const inv = await this.inv(signal);
    if (await this.findVm(vm.name, signal)) {
      for (const d of disks) d.source.destroy();
      throw hvError('HV_VM_EXISTS', `${this.prefix}: a vm named '${vm.name}' already exists`, { details: { vm: vm.name } });
    }
    const files = vm.disks.map((d, i) => ({ ...d, format: 'vmdk-stream' as const, file: { href: `${vm.name}-disk${i}.vmdk`, sizeBytes: disks[i]!.sizeBytes } }));
    const { value: ovf, report } = writeOvf([{ ...vm, disks: files }], { devices: 'vsphere' });
    const sc = await this.client.session(signal);
    const created = obj(await this.client.call('CreateImportSpec', sc.ovfManager, [
      el('ovfDescriptor', {}, ovf),
      moRefNode('resourcePool', inv.resourcePool),
      moRefNode('datastore', inv.datastore),
      el('cisp', {}, [el('locale', {}, ''), el('deploymentOption', {}, ''), el('entityName', {}, vm.name)]),
    ], signal));
    const problems = list(created['error']).map((e) => text(obj(e)['localizedMessage']) || obj(e)._type || 'error');
    const spec = created['importSpec'];
    if (problems.length > 0 || spec === undefined) {
      for (const d of disks) d.source.destroy();
      throw hvError('HV_MODEL_INVALID', `${this.prefix}: vsphere refused the ovf of '${vm.name}': ${problems.join('; ') || 'no import spec'}`, { details: { vm: vm.name, problems } });
    }
    const items = list(created['fileItem']).map(obj);
    let lease: MoRef | undefined;
    try {
      lease = moRef(await this.client.call('ImportVApp', inv.resourcePool, [...fromValue('spec', spec), moRefNode('folder', inv.vmFolder)], signal));
      if (!lease) throw hvError('VMWARE_RESPONSE_INVALID', `${this.prefix}: ImportVApp returned no lease`, { details: { vm: vm.name } });
      const info = await this.leaseReady(lease, signal);
      const urls = list(info['deviceUrl']).map(obj);
      for (const [i, d] of disks.entries()) {
        const item = items.find((f) => text(f['path']) === files[i]!.file.href);
        const target = urls.find((u) => text(u['importKey']) === text(item?.['deviceId']));
        if (!item || !target) throw hvError('VMWARE_RESPONSE_INVALID', `${this.prefix}: the import lease has no upload url for disk ${i}`, { details: { vm: vm.name, disk: i } });
        const url = new URL(text(target['url']).replace('://*', `://${new URL(this.settings.endpoint.url).host}`));
        const guard = new ExactLength(d.sizeBytes, `${this.prefix}: disk ${i} of '${vm.name}'`);
        guard.on('error', () => undefined);
        d.source.once('error', (err) => guard.destroy(err));
        d.source.pipe(guard);
        const res = await this.client.request('POST', `${url.pathname}${url.search}`, {
          headers: { 'Content-Type': 'application/x-vnd.vmware-streamVmdk', 'Content-Length': d.sizeBytes },
          body: guard,
          signal,
        });
        res.resume();
        if ((res.statusCode ?? 500) >= 300) throw hvError('VMWARE_HTTP', `${this.prefix}: nfc upload of disk ${i} answered http ${res.statusCode}`, { details: { httpStatus: res.statusCode, vm: vm.name } });
      }
      await this.client.call('HttpNfcLeaseComplete', lease, [], signal);
    } catch (err) {
      for (const d of disks) d.source.destroy();
      const l = lease;
      if (l) await cleanup(err, () => this.client.call('HttpNfcLeaseAbort', l, []));
      await cleanup(err, () => this.undefineVm(vm.name, { removeStorage: true }));
      throw err;
    }
    const desc = await this.describeVm(vm.name, signal ? { signal } : {});
    return { name: vm.name, ...(desc.vm.uuid ? { uuid: desc.vm.uuid } : {}), disks: desc.disks, report: { from: 'model', to: 'vmware', entries: report.entries } };
  }

  /** Waits for an import lease to be ready; returns its `info` (HttpNfcLeaseInfo). */
  private async leaseReady(lease: MoRef, signal?: AbortSignal): Promise<SoapObject> {
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      const [l] = await this.client.retrieve('HttpNfcLease', ['state', 'info', 'error'], [lease], signal);
      const state = text(l?.props['state']);
      if (state === 'ready') return obj(l?.props['info']);
      if (state === 'error') {
        const e = obj(l?.props['error']);
        throw hvError('VMWARE_TASK_FAILED', `${this.prefix}: the import lease failed: ${text(e['localizedMessage'])}`, { details: { faultName: obj(e['fault'])._type ?? 'Unknown' } });
      }
      await sleep(delay, undefined, signal ? { signal } : {}).catch(() => {
        throw abortedError(this.prefix, 'importVm', signal);
      });
    }
  }

  async close(): Promise<void> {
    this.inventory = undefined;
    await this.client.close();
  }
}

/** The data extent of a flat vmdk: `[ds] dir/x.vmdk` → `[ds] dir/x-flat.vmdk`. */
export function flatOf(href: string): string {
  return href.replace(/(-flat)?\.vmdk$/, '-flat.vmdk');
}

/** A VMFS flat-disk descriptor naming `extent` (VMware Virtual Disk Format 5.0, "monolithicFlat"/"vmfs"). */
export function flatDescriptor(extent: string, sizeBytes: number): string {
  const sectors = Math.ceil(sizeBytes / 512);
  return [
    '# Disk DescriptorFile', 'version=1', 'CID=fffffffe', 'parentCID=ffffffff', 'createType="vmfs"', '',
    '# Extent description', `RW ${sectors} VMFS "${extent}"`, '',
    '# The Disk Data Base', 'ddb.adapterType = "lsilogic"', 'ddb.virtualHWVersion = "13"', '',
  ].join('\n');
}
