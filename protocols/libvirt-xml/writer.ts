/**
 * Writes the VM model as a libvirt domain XML document (https://libvirt.org/formatdomain.html).
 * What libvirt cannot hold natively (disk capacity, guest OS id) goes into an Intercloud
 * `<metadata>` element so that a model → libvirt → model round trip keeps it; what it cannot hold
 * at all is listed in the report.
 */
import { el, renderXml, type XmlNode } from '../xml/index.js';
import { ReportBuilder } from '../vm/index.js';
import type { ConversionReport, DiskBus, VirtualMachine, VmDisk, VmNic, WithReport } from '../vm/index.js';

/** Namespace of the Intercloud `<metadata>` child (formatdomain.html#general-metadata). */
export const INTERCLOUD_METADATA_NS = 'urn:intercloud:vm:1';

/** How a NIC is attached on the target host. */
export interface NicTarget {
  readonly type: 'network' | 'bridge' | 'direct' | 'user';
  /** Network, bridge or host device name (unused for `user`). */
  readonly name?: string;
}

/** Options of {@link writeLibvirtDomain}. */
export interface WriteLibvirtOptions {
  /** `<domain type>`; default `kvm` (use `qemu` under TCG, `test` for the test driver). */
  readonly domainType?: string;
  /** `<os><type machine>`; default: none (libvirt picks). */
  readonly machine?: string;
  /**
   * Directory the disk images will be in on the target host; relative hrefs (OVF, virt-image) are
   * placed there by base name. Default `/var/lib/libvirt/images`.
   */
  readonly imageDir?: string;
  /** Where disk `index` will be; overrides `imageDir` (e.g. a converted qcow2 path). */
  readonly diskPath?: (disk: VmDisk, index: number) => string | undefined;
  /** How NIC `index` attaches; default: libvirt network named after `nic.network`, else `default`. */
  readonly nicTarget?: (nic: VmNic, index: number) => NicTarget;
  /** Report to continue (e.g. the OVF reader's), so one report covers the whole conversion. */
  readonly report?: ConversionReport;
  /**
   * Directory on the target host where libvirt copies each serial console's output
   * (`<log file='DIR/NAME-serialN.log'/>` on the pty), so the guest's console can be read
   * without attaching to it. Default: no log.
   */
  readonly serialLogDir?: string;
  /** Whether the target host can emulate a TPM (swtpm installed); default true. When false the TPM is reported as lost. */
  readonly tpm?: boolean;
}

const PREFIX: Record<DiskBus, string> = { virtio: 'vd', scsi: 'sd', sata: 'sd', usb: 'sd', ide: 'hd', xen: 'xvd', fdc: 'fd', nvme: 'nvme' };

/** Device name for the n-th (0-based) device with that prefix: a…z, aa…(libvirt's virDiskNameParse). */
function devName(prefix: string, n: number): string {
  if (prefix === 'nvme') return `nvme0n${n + 1}`;
  let s = '';
  let k = n;
  do {
    s = String.fromCharCode(97 + (k % 26)) + s;
    k = Math.floor(k / 26) - 1;
  } while (k >= 0);
  return prefix + s;
}

function basename(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

/** libvirt disk `<driver type>` for a model format. */
const DRIVER_TYPE: Record<string, string> = { raw: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', 'vmdk-stream': 'vmdk', vdi: 'vdi', vhd: 'vpc', vhdx: 'vhdx', iso: 'raw' };

/** Graphics types libvirt knows (formatdomain.html#graphical-framebuffers). */
const GRAPHICS = new Set(['vnc', 'spice', 'sdl', 'rdp', 'desktop', 'egl-headless', 'dbus']);

/** Writes one domain; returns the XML text and the report. */
export function writeLibvirtDomain(vm: VirtualMachine, options: WriteLibvirtOptions = {}): WithReport<string> {
  const report = new ReportBuilder(options.report?.from ?? vm.origin?.format ?? 'model', 'libvirt');
  if (options.report) report.merge(options.report);
  const imageDir = (options.imageDir ?? '/var/lib/libvirt/images').replace(/\/+$/, '');
  const arch = vm.arch ?? 'x86_64';
  if (!vm.arch) report.note('arch', "guest architecture unknown; 'x86_64' written");

  // Device names: keep the source's when it fits the bus, else assign in order per prefix.
  const used = new Set<string>();
  for (const d of [...vm.disks, ...vm.cdroms]) {
    if (d.targetDev && d.targetDev.startsWith(PREFIX[d.bus])) used.add(d.targetDev);
  }
  const counters = new Map<string, number>();
  const nextDev = (bus: DiskBus, wanted?: string): string => {
    const prefix = PREFIX[bus];
    if (wanted && wanted.startsWith(prefix)) return wanted;
    for (;;) {
      const n = counters.get(prefix) ?? 0;
      counters.set(prefix, n + 1);
      const name = devName(prefix, n);
      if (!used.has(name)) {
        used.add(name);
        return name;
      }
    }
  };
  const boot = (order?: number) => (order !== undefined ? el('boot', { order }) : undefined);

  const diskNodes: XmlNode[] = [];
  const meta: XmlNode[] = [];
  vm.disks.forEach((d, i) => {
    const target = nextDev(d.bus, d.targetDev);
    if (d.targetDev && d.targetDev !== target) report.note(`disks[${i}].targetDev`, `device name '${d.targetDev}' does not fit bus '${d.bus}'; '${target}' written`, d.targetDev);
    let source: XmlNode | undefined;
    let type = 'file';
    const chosen = options.diskPath?.(d, i);
    if (chosen !== undefined) {
      source = el('source', { file: chosen });
    } else if (d.file) {
      const href = d.file.href;
      let path = href.startsWith('/') ? href : `${imageDir}/${basename(href)}`;
      if (d.file.compression === 'gzip') {
        path = path.replace(/\.gz$/, '');
        report.note(`disks[${i}].file`, `file '${href}' is gzip-compressed; the image must be decompressed to '${path}'`, href);
      }
      if (d.file.chunkSizeBytes !== undefined) report.note(`disks[${i}].file`, `file '${href}' is chunked; the chunks must be joined into '${path}'`, href);
      if (path !== href) report.note(`disks[${i}].file`, `relative file '${href}' placed at '${path}'`, href);
      source = el('source', { file: path });
    } else if (d.source) {
      const [kind, ...rest] = d.source.split(':');
      const detail = rest.join(':');
      if (kind === 'block') {
        type = 'block';
        source = el('source', { dev: detail });
      } else {
        const path = `${imageDir}/${vm.name}-disk${i + 1}.img`;
        report.loss(`disks[${i}].source`, `non-file storage '${d.source}' is not written; a file '${path}' is used instead`, d.source);
        source = el('source', { file: path });
      }
    } else {
      const path = `${imageDir}/${vm.name}-disk${i + 1}.${d.format === 'qcow2' ? 'qcow2' : 'img'}`;
      report.note(`disks[${i}].file`, `blank disk: a new image '${path}' of ${d.capacityBytes} bytes must be created`, path);
      source = el('source', { file: path });
    }
    const driverType = d.format ? DRIVER_TYPE[d.format] : undefined;
    if (d.format === 'vmdk-stream') report.note(`disks[${i}].format`, 'streamOptimized vmdk cannot be run in place; convert it (qemu-img) before starting', d.format);
    if (d.controllerModel && d.bus !== 'scsi') report.loss(`disks[${i}].controllerModel`, `controller model '${d.controllerModel}' of a ${d.bus} disk is left to libvirt`, d.controllerModel);
    if (d.populatedBytes !== undefined) report.loss(`disks[${i}].populatedBytes`, 'populated size has no place in libvirt domain xml', String(d.populatedBytes));
    diskNodes.push(
      el('disk', { type, device: 'disk' }, [
        el('driver', { name: 'qemu', type: driverType }),
        source,
        el('target', { dev: target, bus: d.bus }),
        d.readonly ? el('readonly') : undefined,
        boot(d.bootOrder),
      ]),
    );
    // Capacity lives in the storage volume, not the domain: keep it in our metadata.
    meta.push(el('ic:disk', { index: i, capacity: d.capacityBytes, format: d.format }));
  });
  vm.cdroms.forEach((c, i) => {
    const target = nextDev(c.bus, c.targetDev);
    const href = c.file?.href;
    const path = href === undefined ? undefined : href.startsWith('/') ? href : `${imageDir}/${basename(href)}`;
    if (href !== undefined && path !== href) report.note(`cdroms[${i}].file`, `relative file '${href}' placed at '${path}'`, href);
    diskNodes.push(
      el('disk', { type: 'file', device: 'cdrom' }, [
        el('driver', { name: 'qemu', type: 'raw' }),
        path !== undefined ? el('source', { file: path }) : undefined,
        el('target', { dev: target, bus: c.bus }),
        el('readonly'),
        boot(c.bootOrder),
      ]),
    );
  });

  // SCSI controllers: one per distinct model, in first-use order (formatdomain.html#controllers).
  const controllerNodes: XmlNode[] = [];
  const scsiModel = vm.disks.find((d) => d.bus === 'scsi' && d.controllerModel)?.controllerModel;
  if (scsiModel !== undefined) {
    // libvirt's SCSI controller models (qemu): map VMware/VirtualBox names.
    // QEMU has no BusLogic HBA: the guest gets the closest LSI Logic one (reported).
    const model = ({ 'virtio-scsi': 'virtio-scsi', virtio: 'virtio-scsi', lsilogic: 'lsilogic', lsilogicsas: 'lsisas1068', buslogic: 'lsilogic', pvscsi: 'vmpvscsi' } as Record<string, string>)[scsiModel];
    if (scsiModel === 'buslogic') report.loss('disks.controllerModel', "qemu has no buslogic scsi controller; 'lsilogic' written (the guest needs its driver)", scsiModel);
    if (model) controllerNodes.push(el('controller', { type: 'scsi', index: 0, model }));
    else report.loss('disks.controllerModel', `scsi controller model '${scsiModel}' has no libvirt name; libvirt's default used`, scsiModel);
    const others = new Set(vm.disks.filter((d) => d.bus === 'scsi' && d.controllerModel && d.controllerModel !== scsiModel).map((d) => d.controllerModel));
    if (others.size > 0) report.loss('disks.controllerModel', `only one scsi controller model is written; dropped ${[...others].map((m) => `'${m}'`).join(', ')}`);
  }

  const nicNodes = vm.nics.map((n, i) => {
    const t = options.nicTarget?.(n, i) ?? defaultNicTarget(n);
    if (!options.nicTarget && !n.network && t.type === 'network') report.note(`nics[${i}].network`, "nic names no network; libvirt network 'default' written");
    const src = t.type === 'network' ? el('source', { network: t.name }) : t.type === 'bridge' ? el('source', { bridge: t.name }) : t.type === 'direct' ? el('source', { dev: t.name, mode: 'bridge' }) : undefined;
    if (!n.mac) report.note(`nics[${i}].mac`, 'no mac address; libvirt will generate one');
    return el('interface', { type: t.type }, [n.mac ? el('mac', { address: n.mac }) : undefined, src, n.model ? el('model', { type: n.model }) : undefined, boot(n.bootOrder)]);
  });

  const graphicsNodes: XmlNode[] = [];
  for (const [i, g] of (vm.graphics ?? []).entries()) {
    if (GRAPHICS.has(g.type)) graphicsNodes.push(el('graphics', { type: g.type, ...(g.type === 'vnc' || g.type === 'spice' ? { autoport: 'yes' } : {}) }));
    else if (g.type === 'vga') graphicsNodes.push(el('video', {}, [el('model', { type: 'vga' })]));
    else report.loss(`graphics[${i}]`, `graphics type '${g.type}' has no libvirt equivalent`, g.type);
  }
  const serialLogDir = options.serialLogDir?.replace(/\/+$/, '');
  const serialNodes = Array.from({ length: vm.serialPorts ?? 0 }, (_, i) => el('serial', { type: 'pty' }, [
    ...(serialLogDir ? [el('log', { file: `${serialLogDir}/${vm.name}-serial${i}.log`, append: 'on' })] : []),
    el('target', { port: i }),
  ]));
  if (vm.tpm && options.tpm === false) report.loss('tpm', 'the target host has no tpm emulator; the vtpm is not written');
  const tpmNode = vm.tpm && options.tpm !== false ? el('tpm', { model: 'tpm-crb' }, [el('backend', { type: 'emulator', version: '2.0' })]) : undefined;

  for (const [i, p] of (vm.properties ?? []).entries()) {
    report.loss(`properties[${i}]`, `product property '${p.key}' has no place in libvirt domain xml`, p.value);
  }

  const t = vm.cpu.topology;
  const osAttrs = vm.firmware === 'uefi' ? { firmware: 'efi' } : {};
  const osNode = el('os', osAttrs, [
    el('type', { arch, machine: options.machine }, 'hvm'),
    vm.firmware === 'uefi' && vm.secureBoot ? el('firmware', {}, [el('feature', { enabled: 'yes', name: 'secure-boot' })]) : undefined,
  ]);
  const memKiB = Math.ceil(vm.memoryBytes / 1024);
  if (memKiB * 1024 !== vm.memoryBytes) report.note('memoryBytes', `memory ${vm.memoryBytes} bytes rounded up to ${memKiB} KiB`);
  const osMeta = vm.os ? el('ic:os', { cim: vm.os.cimId, name: vm.os.name }) : undefined;

  const domain = el('domain', { type: options.domainType ?? 'kvm' }, [
    el('name', {}, vm.name),
    vm.uuid ? el('uuid', {}, vm.uuid) : undefined,
    vm.description ? el('description', {}, vm.description) : undefined,
    el('metadata', {}, [el('ic:vm', { 'xmlns:ic': INTERCLOUD_METADATA_NS }, [osMeta, ...meta])]),
    el('memory', { unit: 'KiB' }, memKiB),
    el('vcpu', {}, vm.cpu.count),
    osNode,
    el('features', {}, [el('acpi'), el('apic')]),
    t ? el('cpu', {}, [el('topology', { sockets: t.sockets, dies: 1, cores: t.cores, threads: t.threads })]) : undefined,
    el('devices', {}, [...diskNodes, ...controllerNodes, ...nicNodes, ...graphicsNodes, ...serialNodes, tpmNode]),
  ]);
  return { value: renderXml(domain, false), report: report.done() };
}

function defaultNicTarget(n: VmNic): NicTarget {
  switch (n.attachment) {
    case 'bridge':
      return { type: 'bridge', name: n.network ?? 'br0' };
    case 'direct':
      return { type: 'direct', name: n.network ?? 'eth0' };
    case 'user':
      return { type: 'user' };
    default:
      return { type: 'network', name: n.network ?? 'default' };
  }
}
