/**
 * Between the shared VM model and vim25 `VirtualMachineConfigInfo` / `VirtualMachineConfigSpec`:
 * pure functions. What vSphere cannot hold is reported (`loss`), what we chose is noted (`note`).
 * Device types: vSphere API reference, `VirtualDevice` and its subtypes.
 */
import type { DiskBus, NicModel, ReportEntry, VirtualMachine, VmCdrom, VmDisk, VmNic } from '../../../protocols/vm/index.js';
import { normaliseMac, normaliseUuid } from '../../../protocols/vm/index.js';
import { el } from '../../../protocols/xml/index.js';
import type { XmlNode } from '../../../protocols/xml/index.js';
import { list, obj, text, typed } from './soap.js';
import type { SoapObject, SoapValue } from './soap.js';

const MiB = 1024 * 1024;

/** vSphere controller types → the model's bus and controller model. */
const CONTROLLERS: Record<string, { bus: DiskBus; model?: string }> = {
  VirtualIDEController: { bus: 'ide' },
  VirtualAHCIController: { bus: 'sata', model: 'ahci' },
  VirtualLsiLogicController: { bus: 'scsi', model: 'lsilogic' },
  VirtualLsiLogicSASController: { bus: 'scsi', model: 'lsisas1068' },
  ParaVirtualSCSIController: { bus: 'scsi', model: 'pvscsi' },
  VirtualBusLogicController: { bus: 'scsi', model: 'buslogic' },
  VirtualNVMEController: { bus: 'nvme' },
};

/** vSphere NIC device types ↔ the model's NIC models (libvirt's names). */
const NIC_TYPES: Record<string, NicModel> = {
  VirtualE1000: 'e1000', VirtualE1000e: 'e1000e', VirtualVmxnet3: 'vmxnet3', VirtualVmxnet2: 'vmxnet2',
  VirtualVmxnet: 'vmxnet', VirtualPCNet32: 'pcnet',
};
const NIC_DEVICE: Record<string, string> = Object.fromEntries(Object.entries(NIC_TYPES).map(([k, v]) => [v, k]));

function num(v: SoapValue | undefined): number {
  const n = Number(text(v));
  return Number.isFinite(n) ? n : 0;
}

/** The model of a VM from its `config` (VirtualMachineConfigInfo) and name. */
export function vmFromConfig(name: string, config: SoapObject): VirtualMachine {
  const hw = obj(config['hardware']);
  const devices = list(hw['device']).map(obj);
  const byKey = new Map(devices.map((d) => [text(d['key']), d]));
  const count = num(hw['numCPU']) || 1;
  const cores = num(hw['numCoresPerSocket']) || 1;
  const disks: VmDisk[] = [];
  const cdroms: VmCdrom[] = [];
  const nics: VmNic[] = [];
  for (const d of devices) {
    const type = d._type ?? '';
    const ctl = CONTROLLERS[byKey.get(text(d['controllerKey']))?._type ?? ''];
    const backing = obj(d['backing']);
    if (type === 'VirtualDisk') {
      const bytes = num(d['capacityInBytes']) || num(d['capacityInKB']) * 1024;
      disks.push({
        capacityBytes: bytes,
        format: 'vmdk',
        file: { href: text(backing['fileName']) },
        bus: ctl?.bus ?? 'scsi',
        ...(ctl?.model ? { controllerModel: ctl.model } : {}),
      });
    } else if (type === 'VirtualCdrom') {
      const iso = backing._type === 'VirtualCdromIsoBackingInfo' ? text(backing['fileName']) : '';
      cdroms.push({ bus: ctl?.bus ?? 'ide', ...(iso ? { file: { href: iso } } : {}) });
    } else if (NIC_TYPES[type] !== undefined) {
      const mac = normaliseMac(text(d['macAddress']));
      const network = text(backing['deviceName']) || text(obj(backing['port'])['portgroupKey']);
      nics.push({ model: NIC_TYPES[type], attachment: 'network', ...(mac ? { mac } : {}), ...(network ? { network } : {}) });
    }
  }
  const uuid = normaliseUuid(text(config['uuid']));
  const annotation = text(config['annotation']);
  return {
    name,
    ...(uuid ? { uuid } : {}),
    ...(annotation ? { description: annotation } : {}),
    firmware: text(config['firmware']) === 'efi' ? 'uefi' : 'bios',
    cpu: cores > 1 && count % cores === 0 ? { count, topology: { sockets: count / cores, cores, threads: 1 } } : { count },
    memoryBytes: num(hw['memoryMB']) * MiB,
    disks,
    cdroms,
    nics,
    origin: { format: 'model', systemTypes: [text(config['guestId'])].filter((s) => s !== '') },
  };
}

/** Where a VM's files and devices go. */
export interface SpecTarget {
  datastore: string;
  /** Network names that exist; others map to `defaultNetwork`. */
  networks: readonly string[];
  defaultNetwork: string;
}

/** A disk's datastore path: its `file.href` when it has one, else a new file in the VM's folder. */
export function diskPath(vm: VirtualMachine, i: number, datastore: string): { path: string; create: boolean } {
  const d = vm.disks[i]!;
  return d.file ? { path: d.file.href, create: false } : { path: `[${datastore}] ${vm.name}/${vm.name}-disk${i}.vmdk`, create: true };
}

/**
 * The `config` argument of `CreateVM_Task` (VirtualMachineConfigSpec, elements in WSDL order) and
 * the report of what vSphere cannot hold.
 */
export function configSpec(vm: VirtualMachine, target: SpecTarget): { spec: XmlNode; entries: ReportEntry[] } {
  const entries: ReportEntry[] = [];
  const loss = (path: string, message: string, value?: string): void => {
    entries.push({ severity: 'loss', path, message, ...(value !== undefined ? { value } : {}) });
  };
  const note = (path: string, message: string, value?: string): void => {
    entries.push({ severity: 'note', path, message, ...(value !== undefined ? { value } : {}) });
  };
  const changes: XmlNode[] = [];
  const add = (device: XmlNode, fileOp?: 'create'): void => {
    changes.push(el('deviceChange', {}, [el('operation', {}, 'add'), fileOp ? el('fileOperation', {}, fileOp) : undefined, device]));
  };
  // Controllers are created as needed; keys are negative (vSphere assigns real ones).
  const controllers = new Map<string, { key: number; next: number }>();
  const controllerFor = (bus: DiskBus, model: string | undefined, path: string): { key: number; unit: number } => {
    let type: string;
    if (bus === 'scsi') {
      type = model === 'lsisas1068' ? 'VirtualLsiLogicSASController' : model === 'buslogic' ? 'VirtualBusLogicController' : model === 'lsilogic' ? 'VirtualLsiLogicController' : 'ParaVirtualSCSIController';
      if (model !== undefined && !['lsisas1068', 'buslogic', 'lsilogic', 'pvscsi'].includes(model)) note(`${path}.controllerModel`, `scsi controller '${model}' does not exist on vsphere: pvscsi is used`, model);
    } else if (bus === 'sata') type = 'VirtualAHCIController';
    else if (bus === 'nvme') type = 'VirtualNVMEController';
    else if (bus === 'ide') type = 'VirtualIDEController';
    else {
      note(`${path}.bus`, `bus '${bus}' does not exist on vsphere: the device goes on a pvscsi controller`, bus);
      type = 'ParaVirtualSCSIController';
    }
    let c = controllers.get(type);
    if (!c) {
      c = { key: -100 - controllers.size, next: 0 };
      controllers.set(type, c);
      const children: XmlNode[] = [el('key', {}, c.key), el('busNumber', {}, 0)];
      if (type.endsWith('SCSIController') || type.includes('LsiLogic') || type.includes('BusLogic')) children.push(el('sharedBus', {}, 'noSharing'));
      add(typed('device', type, children));
    }
    const unit = c.next++;
    // SCSI unit 7 is the controller itself.
    if (type.includes('SCSI') || type.includes('LsiLogic') || type.includes('BusLogic')) {
      if (unit >= 7) c.next++;
      return { key: c.key, unit: unit >= 7 ? unit + 1 : unit };
    }
    return { key: c.key, unit };
  };

  vm.disks.forEach((d, i) => {
    const p = `disks[${i}]`;
    const { key, unit } = controllerFor(d.bus, d.controllerModel, p);
    const { path, create } = diskPath(vm, i, target.datastore);
    if (d.source) loss(`${p}.source`, 'vsphere disks are datastore files: the non-file source is dropped', d.source);
    if (d.targetDev) loss(`${p}.targetDev`, 'vsphere has no guest device names', d.targetDev);
    if (d.bootOrder !== undefined) loss(`${p}.bootOrder`, 'boot order is not set on vsphere by this adapter', String(d.bootOrder));
    if (d.format !== undefined && d.format !== 'vmdk' && d.format !== 'vmdk-stream') note(`${p}.format`, `vsphere keeps disks as vmdk; the image is '${d.format}' and is attached as it is`, d.format);
    if (d.readonly) loss(`${p}.readonly`, 'read-only disks are not set on vsphere by this adapter');
    if (create) note(`${p}.file`, 'a blank thin-provisioned vmdk was created', path);
    add(typed('device', 'VirtualDisk', [
      el('key', {}, -1 - i),
      typed('backing', 'VirtualDiskFlatVer2BackingInfo', [el('fileName', {}, path), el('diskMode', {}, 'persistent'), el('thinProvisioned', {}, 'true')]),
      el('controllerKey', {}, key),
      el('unitNumber', {}, unit),
      el('capacityInKB', {}, Math.ceil(d.capacityBytes / 1024)),
      el('capacityInBytes', {}, d.capacityBytes),
    ]), create ? 'create' : undefined);
  });
  vm.cdroms.forEach((_c, i) => loss(`cdroms[${i}]`, 'cd-rom drives are not defined on vsphere by this adapter'));
  vm.nics.forEach((n, i) => {
    const p = `nics[${i}]`;
    let type = n.model !== undefined ? NIC_DEVICE[n.model] : undefined;
    if (!type) {
      type = 'VirtualVmxnet3';
      note(`${p}.model`, `nic model '${n.model ?? '(none)'}' does not exist on vsphere: vmxnet3 is used`, n.model);
    }
    let network = n.network ?? target.defaultNetwork;
    if (!target.networks.includes(network)) {
      note(`${p}.network`, `network '${network}' does not exist here: '${target.defaultNetwork}' is used`, network);
      network = target.defaultNetwork;
    }
    if (n.bootOrder !== undefined) loss(`${p}.bootOrder`, 'boot order is not set on vsphere by this adapter', String(n.bootOrder));
    add(typed('device', type, [
      el('key', {}, -200 - i),
      typed('backing', 'VirtualEthernetCardNetworkBackingInfo', [el('deviceName', {}, network)]),
      el('addressType', {}, n.mac ? 'manual' : 'generated'),
      n.mac ? el('macAddress', {}, n.mac) : undefined,
    ]));
  });
  if (vm.secureBoot) loss('secureBoot', 'secure boot is not set on vsphere by this adapter');
  if (vm.graphics?.length) loss('graphics', 'display devices are vsphere defaults');
  if (vm.serialPorts) loss('serialPorts', 'serial ports are not defined on vsphere by this adapter', String(vm.serialPorts));
  if (vm.tpm) loss('tpm', 'a virtual tpm is not defined on vsphere by this adapter');
  if (vm.properties?.length) loss('properties', 'deploy-time properties need an ovf import (vapp), not a define');
  if (vm.os) note('os', "the guest os is recorded as 'otherGuest64'", vm.os.name ?? String(vm.os.cimId ?? ''));
  if (vm.arch && vm.arch !== 'x86_64' && vm.arch !== 'i686') loss('arch', `vsphere runs x86 guests only, not '${vm.arch}'`, vm.arch);
  const topo = vm.cpu.topology;
  if (topo && topo.threads !== 1) loss('cpu.topology.threads', 'vsphere has no threads per core', String(topo.threads));
  const spec = el('config', {}, [
    el('name', {}, vm.name),
    vm.uuid ? el('uuid', {}, vm.uuid) : undefined,
    el('guestId', {}, 'otherGuest64'),
    vm.description ? el('annotation', {}, vm.description) : undefined,
    el('files', {}, [el('vmPathName', {}, `[${target.datastore}]`)]),
    el('numCPUs', {}, vm.cpu.count),
    topo ? el('numCoresPerSocket', {}, topo.cores * topo.threads) : undefined,
    el('memoryMB', {}, Math.ceil(vm.memoryBytes / MiB)),
    ...changes,
    el('firmware', {}, vm.firmware === 'uefi' ? 'efi' : 'bios'),
  ]);
  if (vm.memoryBytes % MiB !== 0) note('memoryBytes', 'vsphere counts memory in MiB: rounded up', String(vm.memoryBytes));
  return { spec, entries };
}

/** `[ds] path/to/file` → its datastore and path. */
export function parseDatastorePath(href: string): { datastore: string; path: string } | undefined {
  const m = /^\[([^\]]+)\]\s*(.+)$/.exec(href);
  return m ? { datastore: m[1]!, path: m[2]! } : undefined;
}
