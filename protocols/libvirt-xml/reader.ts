/**
 * Reads a libvirt domain XML document (https://libvirt.org/formatdomain.html) into the VM model.
 * Pure: text in, `{ value, report }` out; errors are located `OVF_XML_…`/`OVF_LIBVIRT_…` errors.
 */
import './errors.js';
import { attr, childNamed, childText, childrenNamed, locatedError, parseXml, type XmlElement, type XmlLimits } from '../xml/index.js';
import { normaliseMac, normaliseUuid, ReportBuilder } from '../vm/index.js';
import type { DiskBus, DiskFormat, NicAttachment, VirtualMachine, VmCdrom, VmDisk, VmFileRef, VmGraphics, VmNic, WithReport } from '../vm/index.js';

/** Options of {@link readLibvirtDomain}. */
export interface ReadLibvirtOptions {
  /** Label for errors (the file name). */
  readonly source: string;
  readonly limits?: XmlLimits;
}

/** libvirt's memory units (formatdomain.html#memory-allocation): default KiB. */
const MEM_UNITS: Record<string, number> = {
  b: 1, bytes: 1,
  kb: 1000, k: 1024, kib: 1024,
  mb: 1000 ** 2, m: 1024 ** 2, mib: 1024 ** 2,
  gb: 1000 ** 3, g: 1024 ** 3, gib: 1024 ** 3,
  tb: 1000 ** 4, t: 1024 ** 4, tib: 1024 ** 4,
};

/** libvirt disk `<driver type>` → model format. */
const FORMATS: Record<string, DiskFormat> = { raw: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', vdi: 'vdi', vpc: 'vhd', vhdx: 'vhdx', iso: 'iso' };

const BUSES = new Set<DiskBus>(['ide', 'sata', 'scsi', 'virtio', 'nvme', 'usb', 'xen', 'fdc']);

/** Devices the model deliberately leaves to the target hypervisor's defaults. */
const DEFAULTED_DEVICES = new Set(['emulator', 'controller', 'input', 'video', 'memballoon', 'console', 'channel', 'sound', 'redirdev', 'rng', 'watchdog', 'panic', 'audio']);

/** Reads one `<domain>`. Accepts a test-driver `<node>` wrapper holding exactly one domain. */
export function readLibvirtDomain(text: string, options: ReadLibvirtOptions): WithReport<VirtualMachine> {
  const { source } = options;
  let root = parseXml(text, source, options.limits);
  const fail = (el: XmlElement, problem: string): never => {
    throw locatedError('OVF_LIBVIRT_INVALID', { source, line: el.line, element: el.path }, problem);
  };
  const report = new ReportBuilder('libvirt', 'model');
  if (root.local === 'node') {
    const domains = childrenNamed(root, 'domain');
    if (domains.length !== 1) fail(root, `test-driver <node> holds ${domains.length} domains, expected 1`);
    report.note('node', 'test-driver <node> wrapper: its host description is ignored');
    root = domains[0] as XmlElement;
  }
  if (root.local !== 'domain' || root.ns !== undefined) fail(root, `root element is '${root.ns ? `{${root.ns}}` : ''}${root.local}', expected 'domain' in no namespace`);
  const domainType = attr(root, 'type');
  if (domainType === undefined) fail(root, "domain has no 'type'");

  const nameEl = childNamed(root, 'name');
  const name = nameEl?.text.trim();
  if (!name) fail(root, 'domain has no <name>');
  const uuidRaw = childText(root, 'uuid');
  let uuid: string | undefined;
  if (uuidRaw === '') report.note('uuid', 'empty <uuid>: treated as absent');
  if (uuidRaw !== undefined && uuidRaw !== '') {
    uuid = normaliseUuid(uuidRaw);
    if (uuid === undefined) fail(childNamed(root, 'uuid') as XmlElement, `uuid '${uuidRaw}' is not a uuid`);
  }
  const description = childText(root, 'description') || childText(root, 'title') || undefined;

  const bytesOf = (el: XmlElement, what: string): number => {
    const unit = (attr(el, 'unit') ?? 'KiB').toLowerCase();
    const factor = MEM_UNITS[unit];
    if (factor === undefined) fail(el, `${what} unit '${attr(el, 'unit')}' is not a libvirt unit`);
    const t = el.text.trim();
    if (!/^\d+$/.test(t)) fail(el, `${what} '${t}' is not a non-negative integer`);
    return Number(t) * (factor as number);
  };
  const memEl = childNamed(root, 'memory') ?? childNamed(root, 'currentMemory');
  if (!memEl) fail(root, 'domain has no <memory>');
  const memoryBytes = bytesOf(memEl as XmlElement, 'memory');
  if (childNamed(root, 'maxMemory')) report.loss('maxMemory', 'memory hotplug (maxMemory) is not in the vm model');

  // vCPUs and topology (formatdomain.html#cpu-allocation, #cpu-model-and-topology).
  const vcpuEl = childNamed(root, 'vcpu');
  let count = 1;
  if (vcpuEl) {
    const t = vcpuEl.text.trim();
    if (!/^[1-9]\d*$/.test(t)) fail(vcpuEl, `vcpu '${t}' is not a positive integer`);
    count = Number(t);
    const current = attr(vcpuEl, 'current');
    if (current !== undefined && current !== t) report.loss('cpu.count', `vcpu current='${current}' of ${t}: the model keeps the maximum`, current);
  } else {
    report.note('cpu.count', 'no <vcpu>; 1 assumed (libvirt default)');
  }
  let topology: { sockets: number; cores: number; threads: number } | undefined;
  const cpuEl = childNamed(root, 'cpu');
  const topoEl = cpuEl ? childNamed(cpuEl, 'topology') : undefined;
  if (topoEl) {
    const num = (k: string, dflt: number) => {
      const v = attr(topoEl, k);
      if (v === undefined) return dflt;
      if (!/^[1-9]\d*$/.test(v)) fail(topoEl, `topology ${k} '${v}' is not a positive integer`);
      return Number(v);
    };
    const dies = num('dies', 1);
    const clusters = num('clusters', 1);
    const t = { sockets: num('sockets', 1) * dies * clusters, cores: num('cores', 1), threads: num('threads', 1) };
    if (dies > 1 || clusters > 1) report.note('cpu.topology', 'dies/clusters folded into sockets');
    if (t.sockets * t.cores * t.threads === count) topology = t;
    else report.loss('cpu.topology', `topology ${t.sockets}x${t.cores}x${t.threads} does not match vcpu ${count}; dropped`);
  }

  // Firmware (formatdomain.html#bios-bootloader): os@firmware, or a pflash loader.
  const os = childNamed(root, 'os');
  let firmware: 'bios' | 'uefi' = 'bios';
  let secureBoot = false;
  let arch: string | undefined;
  const legacyBoot: string[] = [];
  if (os) {
    if (attr(os, 'firmware') === 'efi') firmware = 'uefi';
    const loader = childNamed(os, 'loader');
    if (loader && (attr(loader, 'type') === 'pflash' || /ovmf|efi|aavmf|uefi/i.test(loader.text))) firmware = 'uefi';
    if (loader && attr(loader, 'secure') === 'yes') secureBoot = true;
    const fwEl = childNamed(os, 'firmware');
    for (const f of fwEl ? childrenNamed(fwEl, 'feature') : []) {
      if (attr(f, 'name') === 'secure-boot' && attr(f, 'enabled') === 'yes') secureBoot = true;
    }
    const typeEl = childNamed(os, 'type');
    arch = typeEl ? attr(typeEl, 'arch') : undefined;
    for (const b of childrenNamed(os, 'boot')) legacyBoot.push(attr(b, 'dev') ?? '');
    if (childNamed(os, 'kernel')) report.loss('os.kernel', 'direct kernel boot is not in the vm model', childText(os, 'kernel'));
    if (os.children.some((c) => c.local === 'init')) report.loss('os.init', 'container init is not in the vm model', childText(os, 'init'));
  }

  const devices = childNamed(root, 'devices');
  const disks: Array<{ -readonly [K in keyof VmDisk]: VmDisk[K] } & { legacy?: string }> = [];
  const cdroms: Array<VmCdrom & { legacy?: string }> = [];
  const nics: Array<VmNic & { legacy?: string }> = [];
  const graphics: VmGraphics[] = [];
  let serialPorts = 0;
  let tpm = false;
  const scsiModels = new Map<string, string>();
  const bootOrderOf = (el: XmlElement): number | undefined => {
    const b = childNamed(el, 'boot');
    const o = b ? attr(b, 'order') : undefined;
    if (o === undefined) return undefined;
    if (!/^[1-9]\d*$/.test(o)) fail(b as XmlElement, `boot order '${o}' is not a positive integer`);
    return Number(o);
  };
  for (const dev of devices?.children ?? []) {
    if (dev.local === 'controller' && attr(dev, 'type') === 'scsi') scsiModels.set(attr(dev, 'index') ?? '0', attr(dev, 'model') ?? '');
  }
  const skipped = new Map<string, number>();
  for (const dev of devices?.children ?? []) {
    const path = dev.path.replace(/^domain\//, '');
    switch (dev.local) {
      case 'disk': {
        const device = attr(dev, 'device') ?? 'disk';
        const type = attr(dev, 'type') ?? 'file';
        const src = childNamed(dev, 'source');
        const target = childNamed(dev, 'target');
        const drv = childNamed(dev, 'driver');
        const targetDev = target ? attr(target, 'dev') : undefined;
        let bus = target ? (attr(target, 'bus') as DiskBus | undefined) : undefined;
        if (bus === undefined && targetDev) bus = /^vd/.test(targetDev) ? 'virtio' : /^sd/.test(targetDev) ? 'scsi' : /^xvd/.test(targetDev) ? 'xen' : /^fd/.test(targetDev) ? 'fdc' : 'ide';
        if (bus === undefined) bus = 'ide';
        if (!BUSES.has(bus)) {
          report.loss(`${path}.bus`, `disk bus '${bus}' is not in the vm model; ide used`, bus);
          bus = 'ide';
        }
        const fmtRaw = drv ? attr(drv, 'type') : undefined;
        const format = fmtRaw ? FORMATS[fmtRaw] : undefined;
        if (fmtRaw && !format) report.loss(`${path}.format`, `disk format '${fmtRaw}' is not in the vm model`, fmtRaw);
        let file: VmFileRef | undefined;
        let nonFile: string | undefined;
        if (src) {
          if (type === 'file' && attr(src, 'file')) file = { href: attr(src, 'file') as string };
          else if (type === 'block' && attr(src, 'dev')) nonFile = `block:${attr(src, 'dev')}`;
          else if (type === 'network') nonFile = `network:${attr(src, 'protocol') ?? ''}:${attr(src, 'name') ?? ''}`;
          else if (type === 'volume') nonFile = `volume:${attr(src, 'pool') ?? ''}/${attr(src, 'volume') ?? ''}`;
          else if (type === 'dir') nonFile = `dir:${attr(src, 'dir') ?? ''}`;
        }
        const bootOrder = bootOrderOf(dev);
        const readonly = childNamed(dev, 'readonly') !== undefined;
        const legacy = device === 'cdrom' ? 'cdrom' : device === 'floppy' ? 'fd' : 'hd';
        if (device === 'cdrom') {
          cdroms.push({ bus, ...(file ? { file } : {}), ...(targetDev ? { targetDev } : {}), ...(bootOrder ? { bootOrder } : {}), legacy });
          if (nonFile) report.loss(`${path}.source`, 'cd-rom with non-file media is not in the vm model', nonFile);
        } else if (device === 'floppy') {
          report.loss(path, 'floppy drives are not in the vm model', file?.href ?? nonFile);
        } else {
          const ctrlModel = bus === 'scsi' ? scsiModels.get(childNamed(dev, 'address') ? (attr(childNamed(dev, 'address') as XmlElement, 'controller') ?? '0') : '0') : undefined;
          disks.push({
            capacityBytes: 0,
            bus,
            ...(format ? { format } : {}),
            ...(file ? { file } : {}),
            ...(nonFile ? { source: nonFile } : {}),
            ...(ctrlModel ? { controllerModel: ctrlModel } : {}),
            ...(targetDev ? { targetDev } : {}),
            ...(bootOrder ? { bootOrder } : {}),
            ...(readonly ? { readonly } : {}),
            legacy,
          });
        }
        break;
      }
      case 'interface': {
        const type = attr(dev, 'type') ?? 'network';
        const macEl = childNamed(dev, 'mac');
        const macRaw = macEl ? attr(macEl, 'address') : undefined;
        let mac: string | undefined;
        if (macRaw !== undefined) {
          mac = normaliseMac(macRaw);
          if (mac === undefined) fail(macEl as XmlElement, `mac address '${macRaw}' is not a mac address`);
        }
        const src = childNamed(dev, 'source');
        const network = src ? (attr(src, 'network') ?? attr(src, 'bridge') ?? attr(src, 'dev')) : undefined;
        const modelEl = childNamed(dev, 'model');
        const model = modelEl ? attr(modelEl, 'type') : undefined;
        const attachment: NicAttachment = type === 'network' || type === 'bridge' || type === 'direct' || type === 'user' ? type : 'other';
        if (attachment === 'other') report.loss(`${path}.type`, `interface type '${type}' is not in the vm model`, type);
        const bootOrder = bootOrderOf(dev);
        nics.push({ attachment, ...(mac ? { mac } : {}), ...(model ? { model } : {}), ...(network ? { network } : {}), ...(bootOrder ? { bootOrder } : {}), legacy: 'network' });
        break;
      }
      case 'graphics':
        graphics.push({ type: attr(dev, 'type') ?? 'vnc' });
        break;
      case 'serial':
        serialPorts++;
        break;
      case 'tpm':
        tpm = true;
        break;
      default:
        if (!DEFAULTED_DEVICES.has(dev.local)) report.loss(path, `device <${dev.local}> is not in the vm model`);
        else skipped.set(dev.local, (skipped.get(dev.local) ?? 0) + 1);
    }
  }
  if (skipped.size > 0) report.note('devices', `left to the target's defaults: ${[...skipped.keys()].join(', ')}`);

  // Legacy <os><boot dev=…/> (formatdomain.html#bios-bootloader): the first device of each kind, in order.
  const anyPerDevice = [...disks, ...cdroms, ...nics].some((d) => d.bootOrder !== undefined);
  let order = 1;
  const withBoot = <T extends { legacy?: string; bootOrder?: number }>(list: T[]): T[] => list;
  if (!anyPerDevice && legacyBoot.length > 0) {
    for (const dev of legacyBoot) {
      const pool: Array<{ legacy?: string; bootOrder?: number }> = dev === 'hd' ? disks : dev === 'cdrom' ? cdroms : dev === 'network' ? nics : [];
      const first = pool.find((d) => d.bootOrder === undefined);
      if (first) first.bootOrder = order++;
      else report.loss(`os.boot[${dev}]`, `boot device '${dev}' has no matching device`, dev);
    }
  }
  const strip = <T extends { legacy?: string }>(list: T[]): Array<Omit<T, 'legacy'>> => withBoot(list).map(({ legacy: _l, ...rest }) => rest);

  // Our own <metadata> (written by writeLibvirtDomain): guest OS and disk capacities.
  const icVm = childNamed(root, 'metadata')?.children.find((c) => c.local === 'vm' && c.ns === 'urn:intercloud:vm:1');
  let osMeta: { cimId?: number; name?: string } | undefined;
  if (icVm) {
    const o = childNamed(icVm, 'os');
    if (o) {
      const cim = attr(o, 'cim');
      const n = attr(o, 'name');
      osMeta = { ...(cim && /^\d+$/.test(cim) ? { cimId: Number(cim) } : {}), ...(n ? { name: n } : {}) };
    }
    for (const d of childrenNamed(icVm, 'disk')) {
      const i = Number(attr(d, 'index'));
      const cap = attr(d, 'capacity');
      const target = disks[i];
      if (target && cap && /^\d+$/.test(cap)) target.capacityBytes = Number(cap);
      const fmt = attr(d, 'format');
      if (target && fmt === 'vmdk-stream' && target.format === 'vmdk') target.format = 'vmdk-stream';
    }
  } else if (disks.length > 0) {
    report.note('disks', 'libvirt domain xml has no disk capacity; 0 (unknown, the image carries it)');
  }
  if (childNamed(root, 'features')) report.note('features', 'cpu/platform features are left to the target (acpi, apic …)');
  if (childNamed(root, 'numatune') || (cpuEl && childNamed(cpuEl, 'numa'))) report.loss('numa', 'numa layout is not in the vm model');

  return {
    value: {
      name: name as string,
      ...(uuid ? { uuid } : {}),
      ...(description ? { description } : {}),
      ...(osMeta && Object.keys(osMeta).length ? { os: osMeta } : {}),
      ...(arch ? { arch } : {}),
      firmware,
      ...(secureBoot ? { secureBoot } : {}),
      cpu: { count, ...(topology ? { topology } : {}) },
      memoryBytes,
      disks: strip(disks),
      cdroms: strip(cdroms),
      nics: strip(nics),
      ...(graphics.length ? { graphics } : {}),
      ...(serialPorts ? { serialPorts } : {}),
      ...(tpm ? { tpm } : {}),
      origin: { format: 'libvirt', version: domainType as string, ...(os && childText(os, 'type') ? { systemTypes: [childText(os, 'type') as string] } : {}) },
    },
    report: report.done(),
  };
}
