/**
 * Writes VM models as an OVF 1.x (DSP0243 1.1) or 2.0 (DSP0243 2.x) envelope, prefixed `ovf:`
 * elements as ovftool writes them. Sizes are written in bytes multiples with DSP0004 programmatic
 * units. What OVF cannot carry is listed in the report.
 */
import { el, renderXml, type XmlNode } from '../xml/index.js';
import { ReportBuilder } from '../vm/index.js';
import type { ConversionReport, DiskFormat, VirtualMachine, VmFileRef } from '../vm/index.js';
import type { WithReport } from '../vm/index.js';
import { OVF_NS } from './reader.js';
import { formatByteUnits } from './units.js';

/** Options of {@link writeOvf}. */
export interface WriteOvfOptions {
  /** `1.x` (default, DSP8023 envelope/1) or `2.0` (envelope/2). */
  readonly version?: '1.x' | '2.0';
  /** `vssd:VirtualSystemType`; default `vmx-10` for 1.x consumers (ovftool/vCenter) to accept it. */
  readonly virtualSystemType?: string;
  /** Report to continue (e.g. the libvirt reader's). */
  readonly report?: ConversionReport;
  /**
   * Device names: `source` (default) keeps the model's (virtio stays virtio, as oVirt and
   * VirtualBox read it); `vsphere` maps devices vSphere lacks to its nearest (virtio-scsi →
   * VirtualSCSI, virtio NIC → VmxNet3), each mapping reported as a loss.
   */
  readonly devices?: 'source' | 'vsphere';
}

/** `ovf:format` URIs (DSP0243 §7.2 recommends the producer's specification URI). */
const FORMAT_URI: Record<DiskFormat, string> = {
  'vmdk-stream': 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized',
  vmdk: 'http://www.vmware.com/interfaces/specifications/vmdk.html#sparse',
  qcow2: 'http://www.gnome.org/~markmc/qcow-image-format.html',
  raw: 'http://en.wikipedia.org/wiki/Byte',
  vdi: 'http://www.virtualbox.org/manual/ch05.html#vdidetails',
  vhd: 'http://technet.microsoft.com/en-us/virtualserver/bb676673.aspx',
  vhdx: 'https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/vhdx',
  iso: 'http://www.ecma-international.org/publications/standards/Ecma-119.htm',
};

/** rasd:ResourceSubType for NIC models, as VMware/VirtualBox write them. */
const NIC_SUBTYPE: Record<string, string> = { e1000: 'E1000', e1000e: 'E1000e', vmxnet3: 'VmxNet3', vmxnet2: 'VmxNet2', vmxnet: 'VmxNet', pcnet: 'PCNet32', virtio: 'virtio', rtl8139: 'rtl8139' };

/** Largest power-of-two unit that divides `n` exactly, for readable sizes. */
function units(n: number): { value: number; unit: string } {
  for (const exp of [30, 20, 10]) {
    const f = 2 ** exp;
    if (n > 0 && n % f === 0) return { value: n / f, unit: formatByteUnits(f) };
  }
  return { value: n, unit: 'byte' };
}

function basename(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

/**
 * Writes one envelope holding `vms` (one VirtualSystem each; more than one are wrapped in a
 * VirtualSystemCollection). File hrefs are written by base name (an OVF package is flat).
 */
export function writeOvf(vms: readonly VirtualMachine[], options: WriteOvfOptions = {}): WithReport<string> {
  const first = vms[0];
  const report = new ReportBuilder(options.report?.from ?? first?.origin?.format ?? 'model', 'ovf');
  if (options.report) report.merge(options.report);
  const v2 = options.version === '2.0';
  const vsphere = options.devices === 'vsphere';
  const files: XmlNode[] = [];
  const disks: XmlNode[] = [];
  const networks = new Map<string, XmlNode>();
  const fileIds = new Map<string, string>();
  const fileRef = (f: VmFileRef, path: string): string => {
    const href = basename(f.href);
    if (href !== f.href) report.note(path, `file '${f.href}' written by base name '${href}' (ovf packages are flat)`, f.href);
    const known = fileIds.get(href);
    if (known) return known;
    const id = `file${fileIds.size + 1}`;
    fileIds.set(href, id);
    files.push(el('ovf:File', { 'ovf:href': href, 'ovf:id': id, 'ovf:size': f.sizeBytes, 'ovf:compression': f.compression, 'ovf:chunkSize': f.chunkSizeBytes }));
    return id;
  };

  const systems = vms.map((vm, vi) => {
    const p = `systems[${vi}]`;
    let instance = 0;
    const items: XmlNode[] = [];
    const item = (fields: Array<[string, string | number | undefined]>, extra: XmlNode[] = []): string => {
      const id = String(++instance);
      const kids: XmlNode[] = [];
      // rasd elements in the schema's alphabetical order (CIM_ResourceAllocationSettingData.xsd).
      const all: Array<[string, string | number | undefined]> = [...fields, ['InstanceID', id]];
      all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      for (const [k, v] of all) if (v !== undefined) kids.push(el(`rasd:${k}`, {}, v));
      items.push(el('ovf:Item', {}, [...kids, ...extra]));
      return id;
    };
    const t = vm.cpu.topology;
    item([['AllocationUnits', 'hertz * 10^6'], ['Description', 'Number of Virtual CPUs'], ['ElementName', `${vm.cpu.count} virtual CPU(s)`], ['ResourceType', 3], ['VirtualQuantity', vm.cpu.count]],
      t ? [el('vmw:CoresPerSocket', { 'ovf:required': 'false' }, t.cores)] : []);
    if (t && t.threads > 1) report.loss(`${p}.cpu.topology.threads`, 'threads per core have no standard ovf field', String(t.threads));
    // Memory in MiB as ovftool writes it: vSphere's importer reads VirtualQuantity as MB.
    const wholeMiB = vm.memoryBytes % 2 ** 20 === 0;
    const mem = wholeMiB || vsphere ? { value: Math.ceil(vm.memoryBytes / 2 ** 20), unit: formatByteUnits(2 ** 20) } : { value: vm.memoryBytes, unit: 'byte' };
    if (!wholeMiB && vsphere) report.note(`${p}.memoryBytes`, `memory rounded up to ${mem.value} mib (vsphere counts whole mib)`);
    else if (!wholeMiB) report.note(`${p}.memoryBytes`, 'memory is not a whole number of mib; written in bytes, which vsphere misreads (use devices: vsphere)');
    item([['AllocationUnits', mem.unit], ['Description', 'Memory Size'], ['ElementName', `${mem.value} ${mem.unit} of memory`], ['ResourceType', 4], ['VirtualQuantity', mem.value]]);

    // One controller per bus in use (DSP1041 ResourceTypes 5 IDE, 6 SCSI, 20 other/SATA).
    const controllers = new Map<string, { id: string; next: number }>();
    const controllerFor = (bus: string, model: string | undefined, path: string): { id: string; next: number } => {
      const key = bus === 'virtio' ? 'scsi' : bus;
      let c = controllers.get(key);
      if (!c) {
        let id: string;
        if (key === 'ide') id = item([['Address', 0], ['Description', 'IDE Controller'], ['ElementName', 'ideController0'], ['ResourceSubType', model === undefined ? undefined : model.toUpperCase()], ['ResourceType', 5]]);
        else if (key === 'sata') id = item([['Address', 0], ['Description', 'SATA Controller'], ['ElementName', 'sataController0'], ['ResourceSubType', 'vmware.sata.ahci'], ['ResourceType', 20]]);
        else if (key === 'nvme') id = item([['Address', 0], ['Description', 'NVMe Controller'], ['ElementName', 'nvmeController0'], ['ResourceSubType', 'vmware.nvme.controller'], ['ResourceType', 20]]);
        else {
          // vSphere names (VirtualSCSI = pvscsi); it has no virtio-scsi.
          const isVirtio = model === 'virtio-scsi' || model === 'virtio';
          const sub = model === 'pvscsi' || (isVirtio && vsphere) ? 'VirtualSCSI' : isVirtio ? 'virtio' : (model ?? 'lsilogic');
          if (isVirtio && vsphere) report.loss(path, "vsphere has no virtio-scsi controller; 'VirtualSCSI' (pvscsi) written", model);
          id = item([['Address', 0], ['Description', 'SCSI Controller'], ['ElementName', 'scsiController0'], ['ResourceSubType', sub], ['ResourceType', 6]]);
        }
        c = { id, next: 0 };
        controllers.set(key, c);
      }
      if (bus === 'virtio') report.note(path, "virtio-blk has no ovf controller type; written on a scsi controller with subtype 'virtio'");
      if (bus === 'xen' || bus === 'usb' || bus === 'fdc') report.loss(path, `disk bus '${bus}' has no ovf controller type; written on scsi`, bus);
      return c;
    };

    vm.disks.forEach((d, i) => {
      const path = `${p}.disks[${i}]`;
      const diskId = `vmdisk${disks.length + 1}`;
      const cap = units(d.capacityBytes);
      if (d.capacityBytes === 0) report.note(`${path}.capacityBytes`, 'capacity unknown; 0 written (the consumer must read the image)');
      if (d.source) report.loss(`${path}.source`, `non-file storage '${d.source}' cannot be referenced from ovf`, d.source);
      if (d.format === 'qcow2' || d.format === 'raw') report.note(`${path}.format`, `format '${d.format}' is not streamOptimized vmdk; vmware consumers need a converted image`, d.format);
      disks.push(el('ovf:Disk', {
        'ovf:capacity': cap.value,
        'ovf:capacityAllocationUnits': cap.unit,
        'ovf:diskId': diskId,
        'ovf:fileRef': d.file ? fileRef(d.file, `${path}.file`) : undefined,
        'ovf:format': d.format ? FORMAT_URI[d.format] : undefined,
        'ovf:populatedSize': d.populatedBytes,
      }));
      const ctrl = controllerFor(d.bus, d.controllerModel, `${path}.bus`);
      if (d.bootOrder !== undefined) report.note(`${path}.bootOrder`, 'ovf 1.x has no boot order; disk order carries it', String(d.bootOrder));
      if (d.readonly) report.loss(`${path}.readonly`, 'read-only disks have no ovf field');
      if (d.targetDev) report.note(`${path}.targetDev`, `guest device name '${d.targetDev}' is not carried; the target derives it from the order`, d.targetDev);
      item([['AddressOnParent', ctrl.next++], ['ElementName', `disk${i}`], ['HostResource', `ovf:/disk/${diskId}`], ['Parent', ctrl.id], ['ResourceType', 17]]);
    });
    vm.cdroms.forEach((c, i) => {
      const path = `${p}.cdroms[${i}]`;
      const ctrl = controllerFor(c.bus === 'sata' ? 'sata' : c.bus === 'scsi' ? 'scsi' : 'ide', undefined, `${path}.bus`);
      item([['AddressOnParent', ctrl.next++], ['AutomaticAllocation', 'false'], ['ElementName', `cdrom${i}`], ['HostResource', c.file ? `ovf:/file/${fileRef(c.file, `${path}.file`)}` : undefined], ['Parent', ctrl.id], ['ResourceType', 15]]);
    });
    vm.nics.forEach((n, i) => {
      const path = `${p}.nics[${i}]`;
      const net = n.network ?? 'VM Network';
      if (!n.network) report.note(`${path}.network`, "nic names no network; 'VM Network' written");
      if (n.attachment && n.attachment !== 'network') report.note(`${path}.attachment`, `attachment '${n.attachment}' becomes ovf network '${net}'`, n.attachment);
      if (!networks.has(net)) networks.set(net, el('ovf:Network', { 'ovf:name': net }, [el('ovf:Description', {}, `The ${net} network`)]));
      let sub = n.model === undefined ? undefined : (NIC_SUBTYPE[n.model] ?? n.model);
      if (vsphere && n.model !== undefined && !['e1000', 'e1000e', 'vmxnet3', 'vmxnet2', 'vmxnet', 'pcnet'].includes(n.model)) {
        report.loss(`${path}.model`, `vsphere has no '${n.model}' nic; 'VmxNet3' written`, n.model);
        sub = 'VmxNet3';
      } else if (vsphere && n.model === undefined) {
        report.note(`${path}.model`, "nic model unknown; vsphere's 'E1000' written");
        sub = 'E1000';
      }
      // DSP1041: rasd:Address of an Ethernet adapter holds its MAC.
      item([['Address', n.mac], ['AddressOnParent', 7 + i], ['AutomaticAllocation', 'true'], ['Connection', net], ['ElementName', `ethernet${i}`], ['ResourceSubType', sub], ['ResourceType', 10]]);
      if (n.bootOrder !== undefined) report.loss(`${path}.bootOrder`, 'ovf 1.x has no boot order for nics', String(n.bootOrder));
    });
    for (let s = 0; s < (vm.serialPorts ?? 0); s++) item([['ElementName', `serial${s}`], ['ResourceType', 21]]);
    for (const [i, g] of (vm.graphics ?? []).entries()) {
      item([['ElementName', 'video'], ['ResourceType', 24]]);
      report.note(`${p}.graphics[${i}]`, `remote display '${g.type}' becomes a graphics controller; the protocol is the target's choice`, g.type);
    }
    if (vm.tpm) item([['ElementName', 'tpm'], ['ResourceSubType', 'vmware.vtpm'], ['ResourceType', 1]]);
    const hwExtra: XmlNode[] = [];
    if (vm.firmware === 'uefi') hwExtra.push(el('vmw:Config', { 'ovf:required': 'false', 'vmw:key': 'firmware', 'vmw:value': 'efi' }));
    if (vm.secureBoot) hwExtra.push(el('vmw:Config', { 'ovf:required': 'false', 'vmw:key': 'bootOptions.efiSecureBootEnabled', 'vmw:value': 'true' }));
    if (vm.arch && vm.arch !== 'x86_64' && vm.arch !== 'i686') report.loss(`${p}.arch`, `architecture '${vm.arch}' has no ovf field`, vm.arch);

    const props = (vm.properties ?? []).map((pr) =>
      el('ovf:Property', { 'ovf:key': pr.key, 'ovf:type': pr.type, 'ovf:userConfigurable': pr.userConfigurable ? 'true' : undefined, 'ovf:password': pr.password ? 'true' : undefined, 'ovf:value': pr.value }, [
        pr.label ? el('ovf:Label', {}, pr.label) : undefined,
        pr.description ? el('ovf:Description', {}, pr.description) : undefined,
      ]),
    );
    const osId = vm.os?.cimId ?? 1;
    if (vm.os?.cimId === undefined) report.note(`${p}.os`, "no cim os id; 'Other' (1) written");
    return el('ovf:VirtualSystem', { 'ovf:id': vm.name }, [
      el('ovf:Info', {}, 'A virtual machine'),
      el('ovf:Name', {}, vm.name),
      vm.description ? el('ovf:AnnotationSection', {}, [el('ovf:Info', {}, 'A human-readable annotation'), el('ovf:Annotation', {}, vm.description)]) : undefined,
      props.length ? el('ovf:ProductSection', {}, [el('ovf:Info', {}, 'Information about the installed software'), ...props]) : undefined,
      el('ovf:OperatingSystemSection', { 'ovf:id': osId, 'vmw:osType': vm.os?.name }, [el('ovf:Info', {}, 'The kind of installed guest operating system')]),
      el('ovf:VirtualHardwareSection', {}, [
        el('ovf:Info', {}, 'Virtual hardware requirements'),
        el('ovf:System', {}, [
          el('vssd:ElementName', {}, 'Virtual Hardware Family'),
          el('vssd:InstanceID', {}, 0),
          el('vssd:VirtualSystemIdentifier', {}, vm.uuid ?? vm.name),
          el('vssd:VirtualSystemType', {}, options.virtualSystemType ?? 'vmx-10'),
        ]),
        ...items,
        ...hwExtra,
      ]),
    ]);
  });

  const content = systems.length === 1 ? systems : [el('ovf:VirtualSystemCollection', { 'ovf:id': 'collection' }, [el('ovf:Info', {}, 'A collection of virtual machines'), el('ovf:Name', {}, 'collection'), ...systems])];
  const envelope = el('ovf:Envelope', {
    'ovf:version': v2 ? '2.0' : '1.1',
    'xmlns:ovf': v2 ? OVF_NS.v2 : OVF_NS.v1,
    'xmlns:rasd': OVF_NS.rasd,
    'xmlns:vssd': OVF_NS.vssd,
    'xmlns:vmw': OVF_NS.vmw,
    'xmlns:xsi': OVF_NS.xsi,
  }, [
    el('ovf:References', {}, files),
    el('ovf:DiskSection', {}, [el('ovf:Info', {}, 'Virtual disk information'), ...disks]),
    el('ovf:NetworkSection', {}, [el('ovf:Info', {}, 'The list of logical networks'), ...networks.values()]),
    ...content,
  ]);
  return { value: renderXml(envelope), report: report.done() };
}
