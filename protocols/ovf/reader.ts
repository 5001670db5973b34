/**
 * Reads an OVF descriptor (DMTF DSP0243 1.x/2.x, and VMware's pre-standard 0.9) into the VM model.
 *
 * Accepted: default-namespace or prefixed envelopes; DSP8023 `envelope/1` (also with oVirt's
 * trailing slash), `envelope/2`, VMware 0.9 `…/ovf/1/envelope` with `<Section xsi:type=…>` and
 * `<Content xsi:type=…>`; `InstanceId`/`InstanceID`; every AllocationUnits spelling in the corpus;
 * gzip-compressed and chunked file references; DeploymentOptionSection with configuration-qualified
 * items; ProductSection properties (also as `${key}` in disk capacities, DSP0243 §9.1); nested
 * VirtualSystemCollections; BOM and CRLF.
 *
 * Pure: text in, `{ value, report }` out. Errors are located `OVF_…` errors.
 */
import { attr, childNamed, childrenNamed, locatedError, parseXml, type XmlElement, type XmlLimits } from '../xml/index.js';
import { normaliseMac, normaliseUuid, ReportBuilder } from '../vm/index.js';
import type { DiskBus, DiskFormat, VirtualMachine, VmCdrom, VmDisk, VmFileRef, VmGraphics, VmNic, VmProperty, WithReport } from '../vm/index.js';
import type { OvfErrorCode } from './errors.js';
import { parseAllocationUnits } from './units.js';

/** DSP8023 envelope namespaces. */
export const OVF_NS = {
  v1: 'http://schemas.dmtf.org/ovf/envelope/1',
  v2: 'http://schemas.dmtf.org/ovf/envelope/2',
  vmware09: 'http://www.vmware.com/schema/ovf/1/envelope',
  rasd: 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData',
  vssd: 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData',
  epasd: 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData',
  sasd: 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_StorageAllocationSettingData',
  vmw: 'http://www.vmware.com/schema/ovf',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

/** OVF version family of an envelope. */
export type OvfVersion = '0.9' | '1.x' | '2.x';

/** A `References/File`. */
export interface OvfFile extends VmFileRef {
  readonly id: string;
}

/** A `DeploymentOptionSection/Configuration`. */
export interface OvfDeploymentOption {
  readonly id: string;
  readonly label?: string;
  readonly default: boolean;
}

/** A whole OVF package: every virtual system (collections flattened in document order). */
export interface OvfPackage {
  readonly version: OvfVersion;
  /** `ovf:version` as written, when present (most producers omit it). */
  readonly declaredVersion?: string;
  readonly files: readonly OvfFile[];
  readonly networks: ReadonlyArray<{ readonly name: string; readonly description?: string }>;
  readonly deploymentOptions: readonly OvfDeploymentOption[];
  /** The deployment option whose items were used, when the envelope declares options. */
  readonly configuration?: string;
  /** Virtual systems in document order; `collection` names the enclosing collections. */
  readonly systems: ReadonlyArray<VirtualMachine & { readonly collection?: readonly string[] }>;
}

/** Options of {@link readOvf}. */
export interface ReadOvfOptions {
  /** Label for errors (the file name). */
  readonly source: string;
  /** Deployment option to apply; default: the one marked `ovf:default`, else the first. */
  readonly configuration?: string;
  /** Hostile-input limits. */
  readonly limits?: XmlLimits;
}

/** CIM_ResourceAllocationSettingData.ResourceType values (DSP1041 / CIM schema) the reader uses. */
const RT = {
  other: 1,
  processor: 3,
  memory: 4,
  ideController: 5,
  scsiController: 6,
  fcHba: 7,
  iscsiHba: 8,
  ethernet: 10,
  otherNetwork: 11,
  floppy: 14,
  cdDrive: 15,
  dvdDrive: 16,
  disk: 17,
  otherStorage: 20,
  serial: 21,
  parallel: 22,
  usb: 23,
  graphics: 24,
  logicalDisk: 31,
  sound: 35,
} as const;

const ENVELOPE_NS = new Set<string>([OVF_NS.v1, OVF_NS.v1 + '/', OVF_NS.v2, OVF_NS.v2 + '/', OVF_NS.vmware09]);

type Fail = (code: OvfErrorCode, el: XmlElement, problem: string) => never;

/** Disk format from an OVF `ovf:format` URI (DSP0243 §7.2; VMware/VirtualBox/qemu URIs). */
export function diskFormatFromUri(uri: string): DiskFormat | undefined {
  const u = uri.toLowerCase();
  if (u.includes('vmdk')) return u.includes('streamoptimized') ? 'vmdk-stream' : 'vmdk';
  if (u.includes('qcow')) return 'qcow2';
  if (u.includes('vhdx')) return 'vhdx';
  if (u.includes('vhd')) return 'vhd';
  if (u.includes('vdi')) return 'vdi';
  if (u.includes('iso9660') || u.endsWith('.iso')) return 'iso';
  if (u.includes('raw') || u.endsWith('/wiki/byte')) return 'raw';
  return undefined;
}

const NIC_MODELS: Record<string, string> = {
  e1000: 'e1000',
  e1000e: 'e1000e',
  vmxnet3: 'vmxnet3',
  vmxnet2: 'vmxnet2',
  vmxnet: 'vmxnet',
  pcnet32: 'pcnet',
  pcnet: 'pcnet',
  virtio: 'virtio',
  'virtio-net': 'virtio',
  rtl8139: 'rtl8139',
  ne2k_pci: 'ne2k_pci',
};

/** Reads one OVF descriptor. Throws located `OVF_…`/`OVF_XML_…` errors. */
export function readOvf(text: string, options: ReadOvfOptions): WithReport<OvfPackage> {
  const { source } = options;
  const root = parseXml(text, source, options.limits);
  const fail: Fail = (code, el, problem) => {
    throw locatedError(code, { source, line: el.line, element: el.path }, problem);
  };
  if (root.local !== 'Envelope') fail('OVF_NAMESPACE', root, `root element is '${root.local}', expected 'Envelope'`);
  const envNs = root.ns ?? '';
  if (!ENVELOPE_NS.has(envNs)) fail('OVF_NAMESPACE', root, `envelope namespace '${envNs}' is not an ovf namespace`);
  const version: OvfVersion = envNs === OVF_NS.vmware09 ? '0.9' : envNs.startsWith(OVF_NS.v2) ? '2.x' : '1.x';
  const ovfNs = [OVF_NS.v1, OVF_NS.v1 + '/', OVF_NS.v2, OVF_NS.v2 + '/', OVF_NS.vmware09];
  const report = new ReportBuilder('ovf', 'model');

  /** An OVF attribute: in any envelope namespace, or unprefixed (VirtualBox 0.9 and some tools). */
  const oattr = (el: XmlElement, local: string) => attr(el, local, [...ovfNs, null]);
  /** The section kind: element local name, or 0.9's `xsi:type="ovf:Foo_Type"`. */
  const kindOf = (el: XmlElement): string => {
    if (el.local !== 'Section' && el.local !== 'Content') return el.local;
    const t = attr(el, 'type', [OVF_NS.xsi]);
    if (t === undefined) fail('OVF_NAMESPACE', el, `'${el.local}' has no xsi:type in namespace '${OVF_NS.xsi}'`);
    return (t as string).replace(/^.*:/, '').replace(/_Type$/, '');
  };
  const sections = (el: XmlElement, kind: string) => el.children.filter((c) => kindOf(c) === kind);

  // References (DSP0243 §7.1).
  const files = new Map<string, OvfFile>();
  for (const refs of sections(root, 'References')) {
    for (const f of childrenNamed(refs, 'File')) {
      const id = oattr(f, 'id');
      const href = oattr(f, 'href');
      if (id === undefined) fail('OVF_MISSING', f, "file has no 'ovf:id'");
      if (href === undefined) fail('OVF_MISSING', f, "file has no 'ovf:href'");
      const size = oattr(f, 'size');
      const comp = oattr(f, 'compression');
      const chunk = oattr(f, 'chunkSize');
      if (comp !== undefined && comp !== 'gzip' && comp !== 'identity') fail('OVF_BAD_VALUE', f, `unsupported compression '${comp}'`);
      files.set(id as string, {
        id: id as string,
        href: href as string,
        ...(size !== undefined ? { sizeBytes: integer(size, f, 'ovf:size', fail) } : {}),
        ...(comp === 'gzip' ? { compression: 'gzip' as const } : {}),
        ...(chunk !== undefined ? { chunkSizeBytes: integer(chunk, f, 'ovf:chunkSize', fail) } : {}),
      });
    }
  }

  // Deployment options (DSP0243 §9.8).
  const deploymentOptions: OvfDeploymentOption[] = [];
  for (const sec of sections(root, 'DeploymentOptionSection')) {
    for (const c of childrenNamed(sec, 'Configuration')) {
      const id = oattr(c, 'id');
      if (id === undefined) fail('OVF_MISSING', c, "configuration has no 'ovf:id'");
      const label = childNamed(c, 'Label')?.text.trim();
      deploymentOptions.push({ id: id as string, default: oattr(c, 'default') === 'true', ...(label ? { label } : {}) });
    }
  }
  let configuration: string | undefined;
  if (options.configuration !== undefined) {
    if (!deploymentOptions.some((d) => d.id === options.configuration)) {
      throw locatedError('OVF_BAD_CONFIGURATION', { source, element: 'Envelope/DeploymentOptionSection' }, `deployment option '${options.configuration}' is not declared (have: ${deploymentOptions.map((d) => `'${d.id}'`).join(', ') || 'none'})`);
    }
    configuration = options.configuration;
  } else if (deploymentOptions.length > 0) {
    configuration = (deploymentOptions.find((d) => d.default) ?? deploymentOptions[0])?.id;
    report.note('DeploymentOptionSection', `deployment option '${configuration}' chosen by default out of ${deploymentOptions.length}`, configuration);
  }

  // Networks (DSP0243 §9.2).
  const networks: Array<{ name: string; description?: string }> = [];
  for (const sec of sections(root, 'NetworkSection')) {
    for (const n of childrenNamed(sec, 'Network')) {
      const name = oattr(n, 'name');
      if (name === undefined) fail('OVF_MISSING', n, "network has no 'ovf:name'");
      const d = childNamed(n, 'Description')?.text.trim();
      networks.push({ name: name as string, ...(d ? { description: d } : {}) });
    }
  }

  // Disks (DSP0243 §9.1), capacities resolved after properties are known.
  const diskEls = new Map<string, XmlElement>();
  for (const sec of sections(root, 'DiskSection')) {
    for (const d of childrenNamed(sec, 'Disk')) {
      const id = oattr(d, 'diskId');
      if (id === undefined) fail('OVF_MISSING', d, "disk has no 'ovf:diskId'");
      const fileRef = oattr(d, 'fileRef');
      if (fileRef !== undefined && !files.has(fileRef)) fail('OVF_BAD_REFERENCE', d, `disk '${id}' refers to file '${fileRef}' that is not in References`);
      diskEls.set(id as string, d);
    }
  }

  // Content: VirtualSystem or VirtualSystemCollection (DSP0243 §8), possibly nested.
  const systems: Array<VirtualMachine & { collection?: string[] }> = [];
  const contents = root.children.filter((c) => {
    const k = c.local === 'Content' ? kindOf(c) : c.local;
    return k === 'VirtualSystem' || k === 'VirtualSystemCollection';
  });
  if (contents.length === 0) fail('OVF_NO_CONTENT', root, 'envelope has no VirtualSystem or VirtualSystemCollection');

  const ctx: SystemContext = { source, fail, oattr, kindOf, sections, files, diskEls, configuration, report, version };
  const walk = (el: XmlElement, collection: string[], inherited: VmProperty[]) => {
    const kind = el.local === 'Content' ? kindOf(el) : el.local;
    const id = oattr(el, 'id');
    if (id === undefined) fail('OVF_MISSING', el, `${kind} has no 'ovf:id'`);
    if (kind === 'VirtualSystemCollection') {
      for (const c of el.children) {
        const k = c.local === 'Content' ? kindOf(c) : c.local;
        if (k === 'VirtualSystem' || k === 'VirtualSystemCollection') walk(c, [...collection, id as string], [...inherited, ...readProperties(el, ctx)]);
      }
      return;
    }
    const vm = readSystem(el, id as string, ctx, systems.length, inherited);
    systems.push(collection.length > 0 ? { ...vm, collection } : vm);
  };
  for (const c of contents) walk(c, [], []);

  const declaredVersion = oattr(root, 'version');
  return {
    value: {
      version,
      ...(declaredVersion !== undefined ? { declaredVersion } : {}),
      files: [...files.values()],
      networks,
      deploymentOptions,
      ...(configuration !== undefined ? { configuration } : {}),
      systems,
    },
    report: report.done(),
  };
}

interface SystemContext {
  source: string;
  fail: Fail;
  oattr: (el: XmlElement, local: string) => string | undefined;
  kindOf: (el: XmlElement) => string;
  sections: (el: XmlElement, kind: string) => XmlElement[];
  files: Map<string, OvfFile>;
  diskEls: Map<string, XmlElement>;
  configuration: string | undefined;
  report: ReportBuilder;
  version: OvfVersion;
}

function integer(raw: string, el: XmlElement, what: string, fail: Fail): number {
  const t = raw.trim();
  if (!/^\d+$/.test(t)) fail('OVF_BAD_VALUE', el, `${what} '${raw}' is not a non-negative integer${/^[A-Z_]+$|[#@$]/.test(t) ? ' (unresolved template placeholder?)' : ''}`);
  const n = Number(t);
  if (!Number.isSafeInteger(n)) fail('OVF_BAD_VALUE', el, `${what} '${raw}' is too large`);
  return n;
}

/** An Item's rasd/epasd/sasd fields by local name (InstanceId and InstanceID both accepted). */
interface Item {
  el: XmlElement;
  instanceId: string;
  type: number;
  subType?: string;
  fields: Map<string, string[]>;
}

function readItem(el: XmlElement, fail: Fail): Item {
  const fields = new Map<string, string[]>();
  for (const c of el.children) {
    const k = c.local === 'InstanceId' ? 'InstanceID' : c.local;
    const list = fields.get(k) ?? [];
    list.push(c.text.trim());
    fields.set(k, list);
  }
  const instanceId = fields.get('InstanceID')?.[0];
  if (instanceId === undefined || instanceId === '') fail('OVF_MISSING', el, 'item has no rasd:InstanceID');
  const rt = fields.get('ResourceType')?.[0];
  if (rt === undefined) fail('OVF_MISSING', el, `item '${instanceId}' has no rasd:ResourceType`);
  if (!/^\d+$/.test(rt as string)) fail('OVF_BAD_VALUE', el, `item '${instanceId}' resourcetype '${rt}' is not a number`);
  const sub = fields.get('ResourceSubType')?.[0];
  return { el, instanceId: instanceId as string, type: Number(rt), ...(sub ? { subType: sub } : {}), fields };
}

const f1 = (item: Item, k: string): string | undefined => {
  const v = item.fields.get(k)?.[0];
  return v === undefined || v === '' ? undefined : v;
};

function busOf(controller: Item | undefined): { bus: DiskBus; model?: string } | undefined {
  if (!controller) return undefined;
  const sub = controller.subType?.toLowerCase();
  switch (controller.type) {
    case RT.ideController:
      return { bus: 'ide', ...(sub ? { model: sub } : {}) };
    case RT.scsiController:
      if (sub === 'virtio' || sub === 'virtio-scsi') return { bus: 'scsi', model: 'virtio-scsi' };
      return { bus: 'scsi', ...(sub ? { model: sub === 'virtualscsi' ? 'pvscsi' : sub.split(/[ ,]/)[0] as string } : {}) };
    case RT.otherStorage:
      if (sub?.includes('nvme')) return { bus: 'nvme' };
      if (sub?.includes('virtio')) return { bus: 'virtio' };
      return { bus: 'sata', ...(sub ? { model: sub.includes('ahci') ? 'ahci' : sub } : {}) };
    case RT.usb:
      return { bus: 'usb' };
    default:
      return undefined;
  }
}

/** ProductSection properties (DSP0243 §9.5): key = [class.]key[.instance]. */
function readProperties(vs: XmlElement, ctx: SystemContext): VmProperty[] {
  const { fail, oattr, sections } = ctx;
  const properties: VmProperty[] = [];
  for (const ps of sections(vs, 'ProductSection')) {
    const cls = oattr(ps, 'class');
    const inst = oattr(ps, 'instance');
    for (const pr of childrenNamed(ps, 'Property')) {
      const key = oattr(pr, 'key');
      if (key === undefined) fail('OVF_MISSING', pr, "property has no 'ovf:key'");
      const full = [cls, key, inst].filter((x) => x !== undefined && x !== '').join('.');
      const value = oattr(pr, 'value');
      const label = childNamed(pr, 'Label')?.text.trim();
      const description = childNamed(pr, 'Description')?.text.trim();
      properties.push({
        key: full,
        type: oattr(pr, 'type') ?? 'string',
        userConfigurable: oattr(pr, 'userConfigurable') === 'true',
        ...(value !== undefined ? { value } : {}),
        ...(label ? { label } : {}),
        ...(description ? { description } : {}),
        ...(oattr(pr, 'password') === 'true' ? { password: true } : {}),
      });
    }
  }
  return properties;
}

function readSystem(vs: XmlElement, id: string, ctx: SystemContext, index: number, inherited: readonly VmProperty[]): VirtualMachine {
  const { fail, oattr, sections, report } = ctx;
  const p = `systems[${index}]`;

  const properties = readProperties(vs, ctx);
  const all = [...properties, ...inherited];
  const propValue = (key: string): string | undefined => all.find((q) => q.key === key || q.key.split('.').includes(key))?.value;

  // Hardware: the first VirtualHardwareSection; others (alternative transports/families) reported.
  const hwAll = sections(vs, 'VirtualHardwareSection');
  const hw = hwAll[0];
  if (hwAll.length > 1) report.note(`${p}`, `${hwAll.length} VirtualHardwareSections; the first one is used`);
  const systemTypes: string[] = [];
  const items: Item[] = [];
  let firmware: 'bios' | 'uefi' = 'bios';
  let secureBoot = false;
  let coresPerSocket: number | undefined;
  if (hw) {
    const sys = childNamed(hw, 'System');
    const vst = sys ? childNamed(sys, 'VirtualSystemType')?.text.trim() : undefined;
    if (vst) systemTypes.push(...vst.split(/\s+/));
    for (const c of hw.children) {
      if (c.local !== 'Item' && c.local !== 'EthernetPortItem' && c.local !== 'StorageItem') {
        // VMware extensions (vmw:Config / vmw:ExtraConfig): firmware and secure boot.
        if ((c.local === 'Config' || c.local === 'ExtraConfig') && c.ns === OVF_NS.vmw) {
          const key = attr(c, 'key', [OVF_NS.vmw]);
          const value = attr(c, 'value', [OVF_NS.vmw]);
          if (key === 'firmware' && value === 'efi') firmware = 'uefi';
          if (key === 'bootOptions.efiSecureBootEnabled' && value === 'true') secureBoot = true;
          if (key === 'uefi.secureBoot.enabled' && value === 'TRUE') secureBoot = true;
        }
        continue;
      }
      // DSP0243 §9.8: items qualified by ovf:configuration apply only in those configurations.
      const conf = oattr(c, 'configuration');
      if (conf !== undefined && (ctx.configuration === undefined || !conf.split(/\s+/).includes(ctx.configuration))) continue;
      // DSP0243 §9.4 ranges: only the "normal" bound describes the deployed VM.
      const bound = oattr(c, 'bound');
      if (bound === 'min' || bound === 'max') continue;
      const item = readItem(c, fail);
      const cps = c.children.find((x) => x.local === 'CoresPerSocket');
      if (cps && item.type === RT.processor) coresPerSocket = integer(cps.text, cps, 'CoresPerSocket', fail);
      items.push(item);
    }
  }
  // VirtualBox's own machine description carries the firmware type.
  const vboxMachine = vs.children.find((c) => c.local === 'Machine');
  const vboxFw = vboxMachine ? findDeep(vboxMachine, 'Firmware') : undefined;
  if (vboxFw && /efi/i.test(attr(vboxFw, 'type') ?? '')) firmware = 'uefi';

  const byId = new Map<string, Item>();
  for (const it of items) byId.set(it.instanceId, it);
  const parentOf = (it: Item): Item | undefined => {
    const pid = f1(it, 'Parent');
    if (pid === undefined) return undefined;
    const parent = byId.get(pid);
    if (!parent) report.note(`${p}.item[${it.instanceId}]`, `parent '${pid}' is not an item of this hardware section; controller unknown`, pid);
    return parent;
  };
  const quantity = (it: Item): number => {
    const q = f1(it, 'VirtualQuantity');
    if (q === undefined) fail('OVF_MISSING', it.el, `item '${it.instanceId}' has no rasd:VirtualQuantity`);
    return integer(q as string, it.el, 'rasd:VirtualQuantity', fail);
  };

  let cpuCount: number | undefined;
  let memoryBytes: number | undefined;
  const disks: VmDisk[] = [];
  const cdroms: VmCdrom[] = [];
  const nics: VmNic[] = [];
  const graphics: VmGraphics[] = [];
  let serialPorts = 0;
  let tpm = false;

  // oVirt's <BootOrder> inside an Item; no standard OVF 1.x element exists.
  const bootOrderOf = (it: Item): number | undefined => {
    const b = f1(it, 'BootOrder');
    return b !== undefined && /^[1-9]\d*$/.test(b) ? Number(b) : undefined;
  };
  const resolveHost = (it: Item): { kind: 'disk' | 'file'; id: string } | undefined => {
    const host = f1(it, 'HostResource');
    if (host === undefined) return undefined;
    // DSP0243 §9.1 / §7: ovf:/disk/<diskId> or ovf:/file/<fileId> (0.9: /disk/<id>).
    const m = /^(?:ovf:)?\/*(disk|file)\/(.+)$/.exec(host);
    if (m) return { kind: m[1] as 'disk' | 'file', id: m[2] as string };
    // oVirt writes `imageGroup/image` naming the disk's fileRef (or diskId).
    const last = host.split('/').pop() as string;
    for (const [id, d] of ctx.diskEls) if (id === host || oattr(d, 'fileRef') === host || id === last || oattr(d, 'fileRef') === last) return { kind: 'disk', id };
    return fail('OVF_BAD_REFERENCE', it.el, `item '${it.instanceId}' hostresource '${host}' is not ovf:/disk/… or ovf:/file/…`);
  };

  for (const it of items) {
    const ip = `${p}.item[${it.instanceId}]`;
    switch (it.type) {
      case RT.processor: {
        // oVirt writes sockets and cores per socket instead of VirtualQuantity.
        const sockets = f1(it, 'num_of_sockets');
        const perSocket = f1(it, 'cpu_per_socket');
        if (f1(it, 'VirtualQuantity') === undefined && sockets !== undefined && perSocket !== undefined) {
          const s = integer(sockets, it.el, 'rasd:num_of_sockets', fail);
          const c = integer(perSocket, it.el, 'rasd:cpu_per_socket', fail);
          cpuCount = s * c;
          coresPerSocket = c;
        } else {
          cpuCount = quantity(it);
        }
        break;
      }
      case RT.memory: {
        const q = quantity(it);
        const unitsRaw = f1(it, 'AllocationUnits') ?? f1(it, 'VirtualQuantityUnits');
        let factor = 1;
        if (unitsRaw === undefined) {
          // DSP0243 leaves the unit to AllocationUnits; producers that omit it (oVirt) mean MB.
          factor = 1024 ** 2;
          report.note(`${ip}`, 'memory item has no allocationunits; megabytes assumed');
        } else {
          const u = parseAllocationUnits(unitsRaw);
          if (!u || u.base !== 'byte') fail('OVF_BAD_VALUE', it.el, `memory allocationunits '${unitsRaw}' is not a byte unit`);
          factor = (u as { factor: number }).factor;
        }
        memoryBytes = q * factor;
        break;
      }
      case RT.disk:
      case RT.logicalDisk: {
        const host = resolveHost(it);
        const ctrl = busOf(parentOf(it));
        if (!ctrl) report.note(ip, `disk '${f1(it, 'ElementName') ?? it.instanceId}' has no known controller; ide assumed`);
        const base = { bus: ctrl?.bus ?? ('ide' as DiskBus), ...(ctrl?.model ? { controllerModel: ctrl.model } : {}) };
        if (host === undefined) {
          fail('OVF_MISSING', it.el, `disk item '${it.instanceId}' has no rasd:HostResource`);
        } else if (host.kind === 'disk') {
          const d = ctx.diskEls.get(host.id);
          if (!d) fail('OVF_BAD_REFERENCE', it.el, `item '${it.instanceId}' refers to disk '${host.id}' that is not in DiskSection`);
          const boot = bootOrderOf(it);
          // oVirt names the bus on the Disk (ovf:disk-interface).
          const iface = oattr(d as XmlElement, 'disk-interface')?.toLowerCase();
          const bus = iface === 'virtio' ? { bus: 'virtio' as DiskBus } : iface === 'ide' ? { bus: 'ide' as DiskBus } : iface === 'virtio_scsi' ? { bus: 'scsi' as DiskBus, controllerModel: 'virtio-scsi' } : base;
          disks.push({ ...diskFromElement(d as XmlElement, ctx, propValue), ...bus, ...(boot ? { bootOrder: boot } : {}) });
        } else {
          const f = ctx.files.get(host.id);
          if (!f) fail('OVF_BAD_REFERENCE', it.el, `item '${it.instanceId}' refers to file '${host.id}' that is not in References`);
          const { id: _id, ...file } = f as OvfFile;
          disks.push({ capacityBytes: file.sizeBytes ?? 0, file, ...base });
          report.note(ip, `disk '${host.id}' refers to a file directly; capacity taken from the file size`);
        }
        break;
      }
      case RT.cdDrive:
      case RT.dvdDrive: {
        const host = resolveHost(it);
        const ctrl = busOf(parentOf(it));
        let file: VmFileRef | undefined;
        if (host?.kind === 'file') {
          const f = ctx.files.get(host.id);
          if (!f) fail('OVF_BAD_REFERENCE', it.el, `item '${it.instanceId}' refers to file '${host.id}' that is not in References`);
          const { id: _id, ...rest } = f as OvfFile;
          file = rest;
        } else if (host?.kind === 'disk') {
          const d = ctx.diskEls.get(host.id);
          if (!d) fail('OVF_BAD_REFERENCE', it.el, `item '${it.instanceId}' refers to disk '${host.id}' that is not in DiskSection`);
          file = diskFromElement(d as XmlElement, ctx, propValue).file;
        }
        cdroms.push({ bus: ctrl?.bus ?? 'ide', ...(file ? { file } : {}) });
        break;
      }
      case RT.ethernet:
      case RT.otherNetwork: {
        const conn = f1(it, 'Connection');
        const addr = f1(it, 'Address') ?? f1(it, 'MACAddress');
        let mac: string | undefined;
        if (addr !== undefined) {
          mac = normaliseMac(addr);
          if (mac === undefined) fail('OVF_BAD_VALUE', it.el, `nic '${it.instanceId}' address '${addr}' is not a mac address`);
        }
        // oVirt numbers its NIC types: 0 rtl8139_virtio, 1 rtl8139, 2 e1000, 3 pv (virtio).
        const sub = ({ '1': 'rtl8139', '2': 'e1000', '3': 'virtio' } as Record<string, string>)[it.subType ?? ''] ?? it.subType?.toLowerCase().split(/[ ,]/)[0];
        const model = sub === undefined ? undefined : (NIC_MODELS[sub.replace(/^virtual/, '')] ?? it.subType);
        const boot = bootOrderOf(it);
        nics.push({ attachment: 'network', ...(mac ? { mac } : {}), ...(model ? { model } : {}), ...(conn ? { network: conn } : {}), ...(boot ? { bootOrder: boot } : {}) });
        break;
      }
      case RT.serial:
        serialPorts++;
        break;
      case RT.graphics:
        graphics.push({ type: 'vga' });
        break;
      case RT.ideController:
      case RT.scsiController:
      case RT.otherStorage:
        break;
      case RT.other:
        if (it.subType === 'vmware.vtpm') {
          tpm = true;
          break;
        }
        report.loss(ip, `item of resourcetype 1 ('${it.subType ?? f1(it, 'ElementName') ?? ''}') has no place in the vm model`);
        break;
      default:
        report.loss(ip, `item '${f1(it, 'ElementName') ?? it.instanceId}' of resourcetype ${it.type} has no place in the vm model`, f1(it, 'ResourceSubType'));
    }
  }

  if (cpuCount === undefined) {
    cpuCount = 1;
    report.note(`${p}.cpu`, 'no processor item; 1 vcpu assumed');
  }
  if (memoryBytes === undefined) {
    memoryBytes = 1024 ** 3;
    report.note(`${p}.memoryBytes`, 'no memory item; 1 gib assumed');
  }

  // OperatingSystemSection (DSP0243 §9.6): CIM OsType id, VMware's osType.
  const osEl = sections(vs, 'OperatingSystemSection')[0];
  const osIdRaw = osEl ? oattr(osEl, 'id') : undefined;
  const osName = osEl ? (attr(osEl, 'osType', [OVF_NS.vmw]) ?? childNamed(osEl, 'Description')?.text.trim()) : undefined;
  const os = osEl ? { ...(osIdRaw && /^\d+$/.test(osIdRaw) ? { cimId: Number(osIdRaw) } : {}), ...(osName ? { name: osName } : {}) } : undefined;
  const annotation = sections(vs, 'AnnotationSection')[0];
  const description = annotation ? childNamed(annotation, 'Annotation')?.text.trim() : undefined;
  const name = childNamed(vs, 'Name')?.text.trim() || id;
  // VirtualBox and oVirt carry the VM UUID in the System's VirtualSystemIdentifier or vbox:Machine uuid.
  const vsi = hw ? childNamed(childNamed(hw, 'System') ?? hw, 'VirtualSystemIdentifier')?.text.trim() : undefined;
  const uuidRaw = (vboxMachine ? attr(vboxMachine, 'uuid') : undefined) ?? vsi;
  const uuid = uuidRaw ? normaliseUuid(uuidRaw) : undefined;
  const topology = coresPerSocket !== undefined && coresPerSocket > 0 && cpuCount % coresPerSocket === 0
    ? { sockets: cpuCount / coresPerSocket, cores: coresPerSocket, threads: 1 }
    : undefined;
  // OVF has no architecture field; a 64-bit guest OS type (VMware `…64Guest`) implies x86_64.
  const arch = osName && /64/.test(osName) ? 'x86_64' : undefined;
  if (arch) report.note(`${p}.arch`, `architecture inferred from os type '${osName}'`, arch);

  return {
    name,
    ...(uuid ? { uuid } : {}),
    ...(description ? { description } : {}),
    ...(os && Object.keys(os).length > 0 ? { os } : {}),
    ...(arch ? { arch } : {}),
    firmware,
    ...(secureBoot ? { secureBoot } : {}),
    cpu: { count: cpuCount, ...(topology ? { topology } : {}) },
    memoryBytes,
    disks,
    cdroms,
    nics,
    ...(graphics.length ? { graphics } : {}),
    ...(serialPorts ? { serialPorts } : {}),
    ...(tpm ? { tpm } : {}),
    ...(properties.length ? { properties } : {}),
    origin: { format: 'ovf', version: ctx.version, ...(systemTypes.length ? { systemTypes } : {}) },
  };
}

function findDeep(el: XmlElement, local: string): XmlElement | undefined {
  for (const c of el.children) {
    if (c.local === local) return c;
    const d = findDeep(c, local);
    if (d) return d;
  }
  return undefined;
}

function diskFromElement(d: XmlElement, ctx: SystemContext, propValue: (key: string) => string | undefined): Omit<VmDisk, 'bus'> {
  const { fail, oattr } = ctx;
  let capRaw = oattr(d, 'capacity');
  if (capRaw === undefined) {
    // VirtualBox 2.x omitted capacity; the image's own virtual size applies.
    ctx.report.note(d.path, "disk has no 'ovf:capacity'; capacity 0 (unknown, take the image's virtual size)");
    capRaw = '0';
  }
  // DSP0243 §9.1: capacity may be `${property}` naming a ProductSection property.
  const ref = /^\$\{([^}]+)\}$/.exec((capRaw as string).trim());
  if (ref) {
    const v = propValue(ref[1] as string);
    if (v === undefined) fail('OVF_BAD_REFERENCE', d, `capacity '${capRaw}' names property '${ref[1]}' that has no default value`);
    ctx.report.note(d.path, `capacity '${capRaw}' resolved from its property default`, v);
    capRaw = v;
  }
  const units = oattr(d, 'capacityAllocationUnits');
  let factor = 1;
  if (units !== undefined) {
    const u = parseAllocationUnits(units);
    if (!u || u.base !== 'byte') fail('OVF_BAD_VALUE', d, `capacityallocationunits '${units}' is not a byte unit`);
    factor = (u as { factor: number }).factor;
  }
  const capacityBytes = integer(capRaw as string, d, 'ovf:capacity', fail) * factor;
  const fileRef = oattr(d, 'fileRef');
  const formatUri = oattr(d, 'format');
  const format = formatUri ? diskFormatFromUri(formatUri) : undefined;
  if (formatUri && !format) ctx.report.note(d.path, `disk format uri '${formatUri}' is not one the model names`, formatUri);
  const populated = oattr(d, 'populatedSize');
  let file: VmFileRef | undefined;
  if (fileRef !== undefined) {
    const { id: _id, ...rest } = ctx.files.get(fileRef) as OvfFile;
    file = rest;
  }
  return {
    capacityBytes,
    ...(format ? { format } : {}),
    ...(file ? { file } : {}),
    ...(populated !== undefined && /^\d+$/.test(populated) && Number(populated) > 0 ? { populatedBytes: Number(populated) } : {}),
  };
}

