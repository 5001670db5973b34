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

/*
 * What a peer's saved description may hold (formatdomain.html), by allow-list: anything not named
 * here is refused, so that what libvirt adds later reaches no host resource until it is judged.
 */
/** Top-level elements; `seclabel` and `resource` (the source host's labels and cgroup) are dropped. */
const DOMAIN_CHILDREN = new Set([
  'name', 'uuid', 'genid', 'title', 'description', 'metadata', 'maxMemory', 'memory', 'currentMemory', 'memtune', 'memoryBacking',
  'vcpu', 'vcpus', 'iothreads', 'iothreadids', 'cputune', 'numatune', 'resource', 'sysinfo', 'os', 'features', 'cpu', 'clock',
  'on_poweroff', 'on_reboot', 'on_crash', 'on_lockfailure', 'pm', 'perf', 'devices', 'seclabel', 'keywrap',
]);
/** `<os>` children: no loader, nvram, kernel, initrd, dtb or acpi table (files of the source host). */
const OS_CHILDREN = new Set(['type', 'boot', 'bootmenu', 'smbios', 'bios', 'firmware', 'cmdline']);
/** Devices; no filesystem, hostdev, shmem, smartcard, redirdev, lease, … (host resources). */
const DEVICES = new Set([
  'emulator', 'disk', 'controller', 'interface', 'input', 'graphics', 'video', 'audio', 'sound', 'watchdog', 'memballoon', 'rng',
  'panic', 'vsock', 'iommu', 'hub', 'crypto', 'tpm', 'memory', 'serial', 'console', 'parallel', 'channel',
]);
/** Per device, the `type` (or `model`) it may have where others reach the host. */
const DEVICE_TYPES: Record<string, { attr: string; allowed: ReadonlySet<string> }> = {
  // no passthrough or evdev (host input devices)
  input: { attr: 'type', allowed: new Set(['mouse', 'keyboard', 'tablet']) },
  // no direct, hostdev, vdpa, ethernet (host devices) or udp/tcp/mcast sockets to any address
  interface: { attr: 'type', allowed: new Set(['network', 'bridge', 'user']) },
  graphics: { attr: 'type', allowed: new Set(['vnc', 'spice']) },
  // no host sound devices or files
  audio: { attr: 'type', allowed: new Set(['none', 'spice']) },
  // no nvdimm or virtio-pmem (backed by a host file)
  memory: { attr: 'model', allowed: new Set(['dimm', 'virtio-mem']) },
};
/** Attributes that name a file or socket on the host; after the rewrite each must be one this host chose. */
const FILE_ATTRS = new Set(['file', 'path', 'dir', 'socket']);
/** Attributes that name a host device: never taken from a peer. */
const HOST_DEVICE_ATTRS = new Set(['rendernode', 'evdev', 'tap', 'vhost']);
/** What an rng's `random` backend may read. */
const RNG_SOURCES = new Set(['', '/dev/random', '/dev/urandom']);

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
 * source host) are removed; NICs follow `nicTarget`; graphics listen where this host says, on a
 * port it picks. Refused with `HV_STATE_INVALID`: another name, another number of disks, a disk
 * that is not a file, a cd-rom with media, anything not on the allow-lists above (top-level
 * elements, `<os>` children, devices and their types: no loader or kernel, no filesystem, hostdev,
 * passthrough input, direct or socket NIC, nvdimm, host audio, rng from another file), anything of
 * another namespace outside `<metadata>` (`qemu:commandline`), a host device attribute
 * (`rendernode`, `evdev`, …), a serial port that is not a number, and any file, path, dir or
 * socket left that this host did not choose.
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

  for (const c of root.children) if (!DOMAIN_CHILDREN.has(c.name)) refuse(`holds <${c.name}>, which this host does not take from a peer`, { element: c.name });
  // Security labels and the cgroup partition are the source host's (formatdomain.html "Security label", "Resource partitioning").
  drop(root, 'seclabel');
  drop(root, 'resource');
  const os = child(root, 'os');
  for (const c of os?.children ?? []) if (!OS_CHILDREN.has(c.name)) refuse(`boots from a file of the source host (<os><${c.name}>)`, { element: c.name });

  const devices = child(root, 'devices');
  const allowed = new Set<string>();
  let diskIndex = 0;
  for (const dev of devices?.children ?? []) {
    drop(dev, 'seclabel');
    if (!DEVICES.has(dev.name)) refuse(`uses a host device (<${dev.name}>)`, { element: dev.name });
    const typed = DEVICE_TYPES[dev.name];
    const kind = typed ? get(dev, typed.attr) ?? '' : '';
    if (typed && !typed.allowed.has(kind) && !(dev.name === 'interface' && plan.nicTarget)) {
      refuse(`has a <${dev.name} ${typed.attr}=${JSON.stringify(kind)}>, which reaches the host`, { element: dev.name, [typed.attr]: kind });
    }
    if (dev.name === 'rng') {
      const backend = child(dev, 'backend');
      const model = backend ? get(backend, 'model') ?? '' : 'builtin';
      if (model !== 'builtin' && !(model === 'random' && RNG_SOURCES.has(backend!.text.trim()))) refuse(`feeds its rng from ${JSON.stringify(`${model} ${backend!.text.trim()}`)}`, { element: 'rng', model });
    }
    if (dev.name === 'graphics') {
      // Listens where this host's libvirt says (qemu.conf), not on an address the peer chose.
      dev.attrs = dev.attrs.filter(([k]) => !['listen', 'port', 'tlsPort', 'websocket', 'autoport'].includes(k));
      dev.attrs.push(['autoport', 'yes']);
      drop(dev, 'listen');
    }
    if (dev.name === 'interface') {
      // The host tap device's name and its backend files are this host's.
      drop(dev, 'target');
      drop(dev, 'backend');
    }
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
      if (!/^\d{1,3}$/.test(port)) refuse(`numbers ${dev.name} ${JSON.stringify(port)}: not a port number`, { element: dev.name, port });
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

  // Whatever still names a host file must be one this host chose; no host device is named, and
  // nothing outside <metadata> is in another namespace (qemu:commandline would pass QEMU any argument).
  const walk = (n: Node): void => {
    if (n.name.includes(':')) refuse(`holds <${n.name}>, of a namespace this host does not take from a peer`, { element: n.name });
    for (const [k, v] of n.attrs) {
      if (k.includes(':') && !k.startsWith('xmlns:') && !k.startsWith('xml:')) refuse(`has the attribute ${k} on <${n.name}>`, { element: n.name, attribute: k });
      if (FILE_ATTRS.has(k) && !allowed.has(v)) refuse(`names a file of the source host (<${n.name} ${k}=${JSON.stringify(v)}>)`, { element: n.name, attribute: k, value: v });
      if (HOST_DEVICE_ATTRS.has(k)) refuse(`names a host device (<${n.name} ${k}=${JSON.stringify(v)}>)`, { element: n.name, attribute: k, value: v });
    }
    n.children.forEach(walk);
  };
  for (const c of root.children) if (c.name !== 'metadata') walk(c);
  return renderXml(toXmlNode(root), false);
}

/** The UUID a domain description carries (`<uuid>`, formatdomain.html "General metadata"), if any. */
export function domainUuid(xml: string): string | undefined {
  const uuid = childText(parseXml(xml, 'the domain description'), 'uuid')?.trim();
  return uuid === '' ? undefined : uuid;
}
