/**
 * Pure readers and writers of the libvirt XML that a live move touches (libvirt 9,
 * formatdomain.html, formatcaps.html): each disk's backing chain in a domain's live description,
 * the machine a domain runs on, the machine types in `virsh capabilities`, and the rewrite of a
 * saved domain's description (`virsh save-image-dumpxml`) for the host that restores it.
 *
 * The saved description comes from a peer: everything in it that names a file on the host is
 * either replaced by a path this host chose (disks, console logs) or refused.
 */
import { attr, childNamed, childText, el, parseXml, renderXml } from '../../../protocols/xml/index.js';
import type { XmlElement, XmlNode } from '../../../protocols/xml/index.js';
import type { DiskFormat } from '../../../protocols/vm/index.js';
import type { MachineType, StateRequirements } from '../capabilities.js';
import { hvError } from '../errors.js';

/** One image of a disk's chain as libvirt describes it. */
export interface ChainEntry {
  readonly path: string;
  /** The image format libvirt opens it as (`<driver type>` / `<format type>`). */
  readonly format: string;
}

/** A guest disk (not a cd-rom or floppy) of a domain, with its chain top first. */
export interface DomainDisk {
  /** `<target dev>` (`vda`): how virsh names the disk. */
  readonly target: string;
  /** `<disk type>`: `file` for images, else a device, network or volume source. */
  readonly type: string;
  /** Top (the image the guest writes to) first, base last; empty when the source is not a file. */
  readonly chain: readonly ChainEntry[];
}

function readDomain(xml: string, source: string): XmlElement {
  let root: XmlElement;
  try {
    root = parseXml(xml, source);
  } catch (err) {
    throw hvError('LIBVIRT_OUTPUT_INVALID', `cannot read ${source}`, { cause: err, details: { output: xml.slice(0, 2000) } });
  }
  if (root.local !== 'domain') throw hvError('LIBVIRT_OUTPUT_INVALID', `${source} is not a domain description`, { details: { output: xml.slice(0, 2000) } });
  return root;
}

function isGuestDisk(disk: XmlElement): boolean {
  const device = attr(disk, 'device') ?? 'disk';
  return device !== 'cdrom' && device !== 'floppy';
}

/**
 * The guest disks of a domain description (`virsh dumpxml`), in order — disk `i` of the VM model —
 * each with its backing chain as libvirt tracks it (`<source>` then nested `<backingStore>`).
 */
export function parseDomainDisks(xml: string): DomainDisk[] {
  const root = readDomain(xml, "the output of 'virsh dumpxml'");
  const out: DomainDisk[] = [];
  for (const disk of childNamed(root, 'devices')?.children ?? []) {
    if (disk.local !== 'disk' || !isGuestDisk(disk)) continue;
    const target = attr(childNamed(disk, 'target') ?? disk, 'dev') ?? '';
    const type = attr(disk, 'type') ?? 'file';
    const chain: ChainEntry[] = [];
    const top = attr(childNamed(disk, 'source') ?? disk, 'file');
    if (type === 'file' && top !== undefined) {
      chain.push({ path: top, format: attr(childNamed(disk, 'driver') ?? disk, 'type') ?? 'raw' });
      let bs = childNamed(disk, 'backingStore');
      while (bs !== undefined && attr(bs, 'type') !== undefined) {
        const path = attr(childNamed(bs, 'source') ?? bs, 'file');
        if (attr(bs, 'type') !== 'file' || path === undefined) break;
        chain.push({ path, format: attr(childNamed(bs, 'format') ?? bs, 'type') ?? 'raw' });
        bs = childNamed(bs, 'backingStore');
      }
    }
    out.push({ target, type, chain });
  }
  return out;
}

/**
 * Targets of a domain's cd-rom and floppy drives: a disk-only snapshot must be told to leave
 * them alone (`--diskspec DEV,snapshot=no`).
 */
export function parseRemovableTargets(xml: string): string[] {
  const root = readDomain(xml, "the output of 'virsh dumpxml'");
  return (childNamed(root, 'devices')?.children ?? [])
    .filter((d) => d.local === 'disk' && !isGuestDisk(d))
    .map((d) => attr(childNamed(d, 'target') ?? d, 'dev'))
    .filter((t): t is string => t !== undefined);
}

/** What a domain's saved state needs (`<os><type arch machine>`): the hypervisor is QEMU for libvirt's QEMU driver. */
export function parseStateRequirements(xml: string): StateRequirements {
  const root = readDomain(xml, "the output of 'virsh dumpxml'");
  const type = childNamed(childNamed(root, 'os') ?? root, 'type');
  const arch = type ? attr(type, 'arch') : undefined;
  const machine = type ? attr(type, 'machine') : undefined;
  if (!arch || !machine) throw hvError('LIBVIRT_OUTPUT_INVALID', "the domain description names no arch and machine in <os><type>", { details: { output: xml.slice(0, 2000) } });
  return { hypervisor: 'qemu', arch, machine };
}

/**
 * `virsh capabilities` → the machine types of every guest architecture for `domainType`
 * (formatcaps.html: `<guest><arch name><machine canonical?>NAME</machine><domain type/>`).
 */
export function parseCapabilityMachines(xml: string, domainType: string): MachineType[] {
  let root: XmlElement;
  try {
    root = parseXml(xml, "the output of 'virsh capabilities'");
  } catch (err) {
    throw hvError('LIBVIRT_OUTPUT_INVALID', "cannot read the output of 'virsh capabilities'", { cause: err, details: { output: xml.slice(0, 2000) } });
  }
  const out = new Map<string, MachineType>();
  for (const guest of root.children.filter((c) => c.local === 'guest')) {
    const arch = childNamed(guest, 'arch');
    const archName = arch ? attr(arch, 'name') : undefined;
    if (!arch || !archName) continue;
    if (!arch.children.some((c) => c.local === 'domain' && attr(c, 'type') === domainType)) continue;
    for (const m of arch.children.filter((c) => c.local === 'machine')) {
      const text = m.text.trim();
      const canonical = attr(m, 'canonical');
      const machine = canonical ?? text;
      if (!machine) continue;
      const key = `${archName}/${machine}`;
      const prev = out.get(key);
      out.set(key, { arch: archName, machine, ...(canonical ? { alias: text } : prev?.alias ? { alias: prev.alias } : {}) });
    }
  }
  return [...out.values()].sort((a, b) => a.arch.localeCompare(b.arch) || a.machine.localeCompare(b.machine));
}

/** How the target attaches NICs (the adapter's `nicTarget`). */
export interface RewriteNicTarget {
  readonly type: string;
  readonly name?: string;
}

/** The host-specific parts a restoring host puts into a saved domain description. */
export interface SavedDomainPlan {
  /** The VM's name: the description must carry exactly this one. */
  readonly name: string;
  /** Per guest disk, its chain on this host, base first. */
  readonly disks: ReadonlyArray<ReadonlyArray<{ readonly path: string; readonly format: DiskFormat }>>;
  /** Where this host logs serial consoles; absent = no log. */
  readonly consoleLogDir?: string;
  /** How this host attaches NICs; absent = as the description says. */
  readonly nicTarget?: RewriteNicTarget;
}

/** Mutable copy of an element for rewriting. */
interface Node {
  name: string;
  attrs: Array<[string, string]>;
  children: Node[];
  text: string;
}

/** A copy of `e`, declaring each namespace prefix (and default namespace) where it first appears. */
function toNode(e: XmlElement, declared: ReadonlyMap<string, string>): Node {
  const name = e.prefix ? `${e.prefix}:${e.local}` : e.local;
  const attrs: Array<[string, string]> = [];
  const here = new Map(declared);
  const declare = (prefix: string, ns: string): void => {
    if (here.get(prefix) === ns) return;
    here.set(prefix, ns);
    attrs.push([prefix ? `xmlns:${prefix}` : 'xmlns', ns]);
  };
  if (e.ns !== undefined) declare(e.prefix ?? '', e.ns);
  for (const a of e.attributes) {
    if (a.prefix && a.ns && a.prefix !== 'xml') declare(a.prefix, a.ns);
    attrs.push([a.prefix ? `${a.prefix}:${a.local}` : a.local, a.value]);
  }
  return { name, attrs, children: e.children.map((c) => toNode(c, here)), text: e.children.length ? '' : e.text };
}

function toXmlNode(n: Node): XmlNode {
  const attrs = Object.fromEntries(n.attrs);
  if (n.children.length === 0 && n.text.trim() !== '') return el(n.name, attrs, n.text);
  return el(n.name, attrs, n.children.map(toXmlNode));
}

const get = (n: Node, k: string): string | undefined => n.attrs.find(([a]) => a === k)?.[1];
const set = (n: Node, k: string, v: string): void => {
  const i = n.attrs.findIndex(([a]) => a === k);
  if (i >= 0) n.attrs[i] = [k, v];
  else n.attrs.push([k, v]);
};
const child = (n: Node, name: string): Node | undefined => n.children.find((c) => c.name === name);
const drop = (n: Node, name: string): void => {
  n.children = n.children.filter((c) => c.name !== name);
};

/** `<os>` children that name a file on the source host (formatdomain.html "Operating system booting"). */
const OS_FILES = new Set(['loader', 'nvram', 'kernel', 'initrd', 'dtb', 'acpi']);
/** Devices that name host resources which cannot be carried to another host. */
const HOST_DEVICES = new Set(['filesystem', 'hostdev', 'shmem', 'smartcard', 'redirdev']);
/** Attributes that name a file or socket on the host; after the rewrite each must be one this host chose. */
const FILE_ATTRS = new Set(['file', 'path', 'dir', 'socket']);

function chainNode(parts: ReadonlyArray<{ path: string; format: DiskFormat }>): Node {
  // backingStore for parts[k-1] under parts[k] … down to the base, ended by an empty <backingStore/>.
  let below: Node = { name: 'backingStore', attrs: [], children: [], text: '' };
  for (const p of parts.slice(0, -1)) {
    below = {
      name: 'backingStore', attrs: [['type', 'file']], text: '',
      children: [
        { name: 'format', attrs: [['type', p.format]], children: [], text: '' },
        { name: 'source', attrs: [['file', p.path]], children: [], text: '' },
        below,
      ],
    };
  }
  return below;
}

/**
 * Rewrites a saved domain description (`virsh save-image-dumpxml`, from a peer) for this host:
 * each guest disk gets this host's chain (source, driver type, nested backingStore); serial and
 * console logs go to `consoleLogDir` (`NAME-serialN.log`, as `defineVm` names them) or are
 * dropped; pty paths, unix channel paths, `<emulator>` and security labels (all chosen by the
 * source host) are removed; NICs follow `nicTarget`. Refused with `HV_STATE_INVALID`: another
 * name, another number of disks, a disk that is not a file, a cd-rom with media, `<os>` files
 * (loader, nvram, kernel, initrd, dtb), host devices (filesystem, hostdev, shmem, …), and any
 * file, path, dir or socket left that this host did not choose.
 */
export function rewriteSavedDomain(xml: string, plan: SavedDomainPlan): string {
  const refuse = (why: string, details: Record<string, unknown> = {}): never => {
    throw hvError('HV_STATE_INVALID', `the saved state of '${plan.name}' ${why}`, { details: { vm: plan.name, ...details } });
  };
  let parsed: XmlElement;
  try {
    parsed = parseXml(xml, 'the saved domain description');
  } catch (err) {
    throw hvError('HV_STATE_INVALID', `the saved state of '${plan.name}' carries a domain description that cannot be read`, { cause: err, details: { vm: plan.name } });
  }
  if (parsed.local !== 'domain' || parsed.ns !== undefined) refuse('does not carry a domain description');
  const root = toNode(parsed, new Map());
  if (childText(parsed, 'name')?.trim() !== plan.name) refuse(`names the vm ${JSON.stringify(childText(parsed, 'name') ?? '')}`, { named: childText(parsed, 'name') ?? '' });

  // Security labels are the source host's (formatdomain.html "Security label").
  drop(root, 'seclabel');
  const os = child(root, 'os');
  for (const c of os?.children ?? []) if (OS_FILES.has(c.name)) refuse(`boots from a file of the source host (<os><${c.name}>)`, { element: c.name });

  const devices = child(root, 'devices');
  const allowed = new Set<string>();
  let diskIndex = 0;
  for (const dev of devices?.children ?? []) {
    drop(dev, 'seclabel');
    if (HOST_DEVICES.has(dev.name)) refuse(`uses a host device (<${dev.name}>)`, { element: dev.name });
    if (dev.name === 'disk') {
      const device = get(dev, 'device') ?? 'disk';
      if (device === 'cdrom' || device === 'floppy') {
        if (child(dev, 'source')) refuse(`has media in its ${device} drive`, { element: 'disk' });
        continue;
      }
      const chain = plan.disks[diskIndex];
      if (!chain || chain.length === 0) refuse(`has more disks than were sent (${plan.disks.length})`, { disks: plan.disks.length });
      if ((get(dev, 'type') ?? 'file') !== 'file') refuse(`has disk ${diskIndex} of type '${get(dev, 'type')}', not a file`, { disk: diskIndex });
      const top = chain![chain!.length - 1]!;
      for (const p of chain!) allowed.add(p.path);
      dev.children = dev.children.filter((c) => c.name !== 'source' && c.name !== 'backingStore');
      const driver = child(dev, 'driver');
      if (driver) set(driver, 'type', top.format);
      else dev.children.unshift({ name: 'driver', attrs: [['name', 'qemu'], ['type', top.format]], children: [], text: '' });
      const at = dev.children.findIndex((c) => c.name === 'driver') + 1;
      dev.children.splice(at, 0, { name: 'source', attrs: [['file', top.path]], children: [], text: '' }, chainNode(chain!));
      diskIndex++;
      continue;
    }
    if (dev.name === 'serial' || dev.name === 'console' || dev.name === 'parallel' || dev.name === 'channel') {
      const type = get(dev, 'type') ?? 'pty';
      const target = child(dev, 'target');
      const port = target ? get(target, 'port') ?? '0' : '0';
      const log = plan.consoleLogDir ? `${plan.consoleLogDir.replace(/\/+$/, '')}/${plan.name}-serial${port}.log` : undefined;
      if (log) allowed.add(log);
      const logNode = child(dev, 'log');
      if (logNode && log) set(logNode, 'file', log);
      else if (logNode) drop(dev, 'log');
      if (type === 'pty' || type === 'unix') {
        // A pty is allocated at start; a unix channel's socket path is generated when absent.
        const src = child(dev, 'source');
        if (src) src.attrs = src.attrs.filter(([k]) => k !== 'path');
        if (src && src.attrs.length === 0) drop(dev, 'source');
      } else if (type === 'file') {
        const src = child(dev, 'source');
        if (!log) refuse(`logs ${dev.name} ${port} to a file, and this host keeps no console logs`, { element: dev.name });
        if (src) set(src, 'path', log!);
      } else if (type !== 'null' && type !== 'vc' && child(dev, 'source')) {
        refuse(`connects ${dev.name} ${port} to a host resource (type '${type}')`, { element: dev.name, type });
      }
      continue;
    }
    if (dev.name === 'interface' && plan.nicTarget) {
      set(dev, 'type', plan.nicTarget.type);
      dev.children = dev.children.filter((c) => c.name !== 'source' && c.name !== 'target');
      const key = plan.nicTarget.type === 'network' ? 'network' : plan.nicTarget.type === 'bridge' ? 'bridge' : undefined;
      if (key && plan.nicTarget.name) dev.children.push({ name: 'source', attrs: [[key, plan.nicTarget.name]], children: [], text: '' });
    }
  }
  if (devices) devices.children = devices.children.filter((c) => c.name !== 'emulator');
  if (diskIndex !== plan.disks.length) refuse(`has ${diskIndex} disks, but ${plan.disks.length} were sent`, { disks: diskIndex, sent: plan.disks.length });

  // Whatever still names a host file must be one this host chose.
  const walk = (n: Node): void => {
    for (const [k, v] of n.attrs) {
      if (FILE_ATTRS.has(k) && !allowed.has(v)) refuse(`names a file of the source host (<${n.name} ${k}=${JSON.stringify(v)}>)`, { element: n.name, attribute: k, value: v });
    }
    n.children.forEach(walk);
  };
  walk(root);
  return renderXml(toXmlNode(root), false);
}

/** The UUID a domain description carries (`<uuid>`, formatdomain.html "General metadata"), if any. */
export function domainUuid(xml: string): string | undefined {
  const uuid = childText(parseXml(xml, 'the domain description'), 'uuid')?.trim();
  return uuid === '' ? undefined : uuid;
}
