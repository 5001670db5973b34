/**
 * Reads a virt-image descriptor (`image.xml`, virt-image(5) from virt-manager) into the VM model.
 * One `<boot>` element is chosen (option `boot`: index or type; default the first `hvm`, else the
 * first); the others are reported. Storage `size` is in MiB, `<memory>` in KiB (virt-image(5)).
 * Pure: text in, `{ value, report }` out.
 */
import { attr, childNamed, childText, childrenNamed, locatedError, parseXml, type XmlElement, type XmlLimits } from '../xml/index.js';
import { ReportBuilder } from '../vm/index.js';
import type { DiskBus, DiskFormat, VirtualMachine, VmDisk, VmNic, WithReport } from '../vm/index.js';
import './errors.js';

/** Options of {@link readVirtImage}. */
export interface ReadVirtImageOptions {
  /** Label for errors (the file name). */
  readonly source: string;
  /** Which `<boot>` to use: its 0-based index or its `type` (`hvm`, `xen`). */
  readonly boot?: number | string;
  /** Name to use when the image has none (virt-image takes it from the command line). */
  readonly name?: string;
  readonly limits?: XmlLimits;
}

const FORMATS: Record<string, DiskFormat> = { raw: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', vdi: 'vdi', vpc: 'vhd', iso: 'iso' };

function busOfTarget(target: string): DiskBus {
  if (target.startsWith('xvd')) return 'xen';
  if (target.startsWith('vd')) return 'virtio';
  if (target.startsWith('sd')) return 'scsi';
  if (target.startsWith('fd')) return 'fdc';
  return 'ide';
}

/** Reads one virt-image descriptor. */
export function readVirtImage(text: string, options: ReadVirtImageOptions): WithReport<VirtualMachine> {
  const { source } = options;
  const root = parseXml(text, source, options.limits);
  const fail = (el: XmlElement, problem: string): never => {
    throw locatedError('OVF_VIRTIMAGE_INVALID', { source, line: el.line, element: el.path }, problem);
  };
  if (root.local !== 'image' || root.ns !== undefined) fail(root, `root element is '${root.local}', expected 'image'`);
  const report = new ReportBuilder('virt-image', 'model');
  const name = childText(root, 'name') || options.name;
  if (!name) fail(root, 'image has no <name> and none was given');
  const description = childText(root, 'description') || childText(root, 'label') || undefined;
  const domain = childNamed(root, 'domain');
  if (!domain) fail(root, 'image has no <domain>');
  const boots = childrenNamed(domain as XmlElement, 'boot');
  if (boots.length === 0) fail(domain as XmlElement, 'domain has no <boot>');
  let bootIndex: number;
  if (typeof options.boot === 'number') bootIndex = options.boot;
  else if (typeof options.boot === 'string') bootIndex = boots.findIndex((b) => attr(b, 'type') === options.boot);
  else bootIndex = Math.max(0, boots.findIndex((b) => attr(b, 'type') === 'hvm'));
  const boot = boots[bootIndex];
  if (!boot) fail(domain as XmlElement, `no <boot> '${String(options.boot)}' (have ${boots.map((b) => `'${attr(b, 'type')}'`).join(', ')})`);
  boots.forEach((b, i) => {
    if (i !== bootIndex) report.loss(`boot[${i}]`, `alternative boot descriptor '${attr(b, 'type')}' not used`, attr(b, 'type'));
  });
  const b = boot as XmlElement;
  const bootType = attr(b, 'type');
  const guest = childNamed(b, 'guest');
  const arch = guest ? childText(guest, 'arch') : undefined;
  const os = childNamed(b, 'os');
  if (os && childNamed(os, 'kernel')) report.loss('os.kernel', 'direct kernel boot is not in the vm model', childText(os, 'kernel'));
  if (os && childText(os, 'loader') === 'pygrub') report.loss('os.loader', "xen bootloader 'pygrub' is not in the vm model");

  // Storage (virt-image(5) STORAGE): disks by id or file; size in MiB.
  const storage = childNamed(root, 'storage');
  const byRef = new Map<string, XmlElement>();
  for (const d of storage ? childrenNamed(storage, 'disk') : []) {
    const id = attr(d, 'id');
    const file = attr(d, 'file');
    if (id) byRef.set(id, d);
    if (file) byRef.set(file, d);
  }
  const disks: VmDisk[] = [];
  const cdroms: Array<{ bus: DiskBus; targetDev?: string; file?: { href: string } }> = [];
  for (const drv of childrenNamed(b, 'drive')) {
    const ref = attr(drv, 'disk');
    const target = attr(drv, 'target');
    if (!ref) fail(drv, "drive has no 'disk'");
    const d = byRef.get(ref as string);
    if (!d) fail(drv, `drive refers to disk '${ref}' that is not in <storage>`);
    const dk = d as XmlElement;
    const file = attr(dk, 'file');
    if (!file) fail(dk, `disk '${ref}' has no 'file' (partitioned disks are not supported)`);
    const fmtRaw = attr(dk, 'format') ?? 'raw';
    const format = FORMATS[fmtRaw];
    if (!format) report.loss(`disks[${disks.length}].format`, `disk format '${fmtRaw}' is not in the vm model`, fmtRaw);
    const sizeRaw = attr(dk, 'size');
    if (sizeRaw !== undefined && !/^\d+$/.test(sizeRaw)) fail(dk, `disk size '${sizeRaw}' is not a whole number of mib`);
    const bus = target ? busOfTarget(target) : bootType === 'xen' ? 'xen' : 'ide';
    if (attr(dk, 'use') === 'cdrom' || format === 'iso') {
      cdroms.push({ bus, ...(target ? { targetDev: target } : {}), file: { href: file as string } });
      continue;
    }
    disks.push({
      capacityBytes: sizeRaw === undefined ? 0 : Number(sizeRaw) * 1024 * 1024,
      bus,
      ...(format ? { format } : {}),
      file: { href: file as string },
      ...(target ? { targetDev: target } : {}),
      ...(disks.length === 0 ? { bootOrder: 1 } : {}),
    });
    if (sizeRaw === undefined) report.note(`disks[${disks.length - 1}].capacityBytes`, 'no size; 0 (unknown, the image carries it)');
  }

  const devices = childNamed(domain as XmlElement, 'devices');
  const vcpuRaw = devices ? childText(devices, 'vcpu') : undefined;
  const memRaw = devices ? childText(devices, 'memory') : undefined;
  if (vcpuRaw !== undefined && !/^[1-9]\d*$/.test(vcpuRaw)) fail(childNamed(devices as XmlElement, 'vcpu') as XmlElement, `vcpu '${vcpuRaw}' is not a positive integer`);
  if (memRaw !== undefined && !/^[1-9]\d*$/.test(memRaw)) fail(childNamed(devices as XmlElement, 'memory') as XmlElement, `memory '${memRaw}' is not a positive integer (kib)`);
  if (vcpuRaw === undefined) report.note('cpu.count', 'no <vcpu>; 1 assumed');
  if (memRaw === undefined) report.note('memoryBytes', 'no <memory>; 256 mib assumed');
  const nics: VmNic[] = (devices ? childrenNamed(devices, 'interface') : []).map(() => ({ attachment: 'network' as const }));
  const graphics = devices && childNamed(devices, 'graphics') ? [{ type: 'vnc' }] : [];
  const pae = guest ? childNamed(childNamed(guest, 'features') ?? guest, 'pae') : undefined;
  if (pae) report.note('features.pae', 'pae is left to the target (on by default for i686 hvm guests)');

  return {
    value: {
      name: name as string,
      ...(description ? { description } : {}),
      ...(arch ? { arch } : {}),
      firmware: 'bios',
      cpu: { count: vcpuRaw === undefined ? 1 : Number(vcpuRaw) },
      memoryBytes: memRaw === undefined ? 256 * 1024 * 1024 : Number(memRaw) * 1024,
      disks,
      cdroms,
      nics,
      ...(graphics.length ? { graphics } : {}),
      origin: { format: 'virt-image', ...(bootType ? { systemTypes: [bootType] } : {}) },
    },
    report: report.done(),
  };
}
