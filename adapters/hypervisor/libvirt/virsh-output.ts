/**
 * Pure readers of what `virsh` and `qemu-img` print (libvirt 9 / QEMU 7 as in Debian 12).
 * Each throws `LIBVIRT_OUTPUT_INVALID` on output it cannot read, rather than guessing.
 */
import { attr, childNamed, childText, parseXml } from '../../../protocols/xml/index.js';
import type { DiskExtent, VmPowerState } from '../contract.js';
import { hvError } from '../errors.js';

function invalid(what: string, text: string): never {
  throw hvError('LIBVIRT_OUTPUT_INVALID', `cannot read the output of '${what}'`, { details: { output: text.slice(0, 2000) } });
}

/** `Key: value` lines (nodeinfo, pool-info, dominfo) into a map with trimmed keys. */
export function keyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

/** `virsh list --name`: one name per line. */
export function parseNames(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

/**
 * `virsh domstate NAME` → power state. libvirt's virDomainState names (libvirt.h):
 * running, blocked, paused, shutdown (in progress), shut off, crashed, pmsuspended.
 */
export function parseDomstate(text: string): VmPowerState {
  const s = text.trim().split('\n')[0]?.trim();
  switch (s) {
    case 'running':
    case 'blocked':
    case 'in shutdown':
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'paused';
    case 'shut off':
    case 'crashed':
      return 'stopped';
    default:
      return 'other';
  }
}

function int(v: string | undefined, what: string, text: string): number {
  const m = v === undefined ? null : /^(\d+)/.exec(v);
  if (!m) invalid(what, text);
  return Number(m[1]);
}

/** `virsh nodeinfo` → CPUs and memory (printed in KiB). */
export function parseNodeinfo(text: string): { cpus: number; memoryBytes: number } {
  const kv = keyValues(text);
  return { cpus: int(kv.get('CPU(s)'), 'virsh nodeinfo', text), memoryBytes: int(kv.get('Memory size'), 'virsh nodeinfo', text) * 1024 };
}

/** `virsh nodememstats` → total and available memory (free + buffers + cached, in KiB). */
export function parseNodememstats(text: string): { totalBytes: number; freeBytes: number } {
  const kv = keyValues(text);
  const total = int(kv.get('total'), 'virsh nodememstats', text);
  const free = int(kv.get('free'), 'virsh nodememstats', text);
  const buffers = kv.has('buffers') ? int(kv.get('buffers'), 'virsh nodememstats', text) : 0;
  const cached = kv.has('cached') ? int(kv.get('cached'), 'virsh nodememstats', text) : 0;
  return { totalBytes: total * 1024, freeBytes: (free + buffers + cached) * 1024 };
}

/** `virsh pool-info --bytes POOL` → capacity and available bytes. */
export function parsePoolInfo(text: string): { capacityBytes: number; availableBytes: number } {
  const kv = keyValues(text);
  return { capacityBytes: int(kv.get('Capacity'), 'virsh pool-info', text), availableBytes: int(kv.get('Available'), 'virsh pool-info', text) };
}

/** `virsh domstats --vcpu` → the sum of `vcpu.current` over the listed domains. */
export function sumDomstatsVcpus(text: string): number {
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*vcpu\.current=(\d+)\s*$/.exec(line);
    if (m) n += Number(m[1]);
  }
  return n;
}

/** `virsh vol-list --pool P` table (with or without its header) → name and path of each volume. */
export function parseVolList(text: string): Array<{ name: string; path: string }> {
  const out: Array<{ name: string; path: string }> = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+(\/\S.*?)\s*$/.exec(line);
    if (m) out.push({ name: m[1]!, path: m[2]! });
  }
  return out;
}

/**
 * `virsh pool-dumpxml P` → the pool's directory when it is a `dir` pool (libvirt's storage pool
 * XML, `<pool type='dir'><target><path>`), else `undefined`.
 */
export function parseDirPoolPath(xml: string): string | undefined {
  let pool;
  try {
    pool = parseXml(xml, 'virsh pool-dumpxml');
  } catch (err) {
    throw hvError('LIBVIRT_OUTPUT_INVALID', "cannot read the output of 'virsh pool-dumpxml'", { cause: err, details: { output: xml.slice(0, 2000) } });
  }
  if (pool.local !== 'pool') invalid('virsh pool-dumpxml', xml);
  if (attr(pool, 'type') !== 'dir') return undefined;
  const target = childNamed(pool, 'target');
  const path = target ? childText(target, 'path') : undefined;
  return path?.startsWith('/') ? path : undefined;
}

/**
 * `qemu-img map --output=json` → extents. With `-f raw` the map is of the file's own bytes
 * (SEEK_DATA/SEEK_HOLE), which is what is stored and sent; adjacent runs of the same kind merge.
 */
export function parseQemuImgMap(text: string): DiskExtent[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw hvError('LIBVIRT_OUTPUT_INVALID', `cannot read the output of 'qemu-img map'`, { cause: err, details: { output: text.slice(0, 2000) } });
  }
  if (!Array.isArray(raw)) invalid('qemu-img map', text);
  const out: DiskExtent[] = [];
  let next = 0;
  for (const e of raw as Array<Record<string, unknown>>) {
    const { start, length, data } = e;
    if (typeof start !== 'number' || typeof length !== 'number' || typeof data !== 'boolean' || start !== next) invalid('qemu-img map', text);
    next = start + length;
    const last = out[out.length - 1];
    if (last && last.data === data) out[out.length - 1] = { ...last, length: last.length + length };
    else out.push({ offset: start, length, data });
  }
  return out;
}

/** `qemu-img info --output=json` → format and virtual size. */
export function parseQemuImgInfo(text: string): { format: string; virtualSizeBytes: number } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw hvError('LIBVIRT_OUTPUT_INVALID', `cannot read the output of 'qemu-img info'`, { cause: err, details: { output: text.slice(0, 2000) } });
  }
  const r = raw as Record<string, unknown>;
  if (typeof r['format'] !== 'string' || typeof r['virtual-size'] !== 'number') invalid('qemu-img info', text);
  return { format: r['format'], virtualSizeBytes: r['virtual-size'] };
}

/** `virsh vol-info --bytes --physical` → the file's length in bytes. */
export function parsePhysical(text: string): number {
  return int(keyValues(text).get('Physical'), 'virsh vol-info --physical', text);
}

/** Extents cut at `size` (qemu-img reports whole 512-byte sectors past a file's end). */
export function clipExtents(extents: readonly DiskExtent[], size: number): DiskExtent[] {
  const out: DiskExtent[] = [];
  for (const e of extents) {
    if (e.offset >= size) break;
    out.push(e.offset + e.length > size ? { ...e, length: size - e.offset } : e);
  }
  return out;
}

/** One image of `qemu-img info --backing-chain --output=json` (top first). */
export interface QemuImgChainEntry {
  readonly filename: string;
  readonly format: string;
  readonly virtualSizeBytes: number;
}

/** `qemu-img info --backing-chain --output=json PATH` → the chain, top first. */
export function parseQemuImgChain(text: string): QemuImgChainEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw hvError('LIBVIRT_OUTPUT_INVALID', `cannot read the output of 'qemu-img info --backing-chain'`, { cause: err, details: { output: text.slice(0, 2000) } });
  }
  if (!Array.isArray(raw) || raw.length === 0) invalid('qemu-img info --backing-chain', text);
  return (raw as Array<Record<string, unknown>>).map((r) => {
    if (typeof r['filename'] !== 'string' || typeof r['format'] !== 'string' || typeof r['virtual-size'] !== 'number') invalid('qemu-img info --backing-chain', text);
    return { filename: r['filename'], format: r['format'], virtualSizeBytes: r['virtual-size'] };
  });
}

/**
 * What `qemu-img info -f FMT --output=json` says about the files an image refers to: its backing
 * file (`backing-filename`) and, for qcow2, an external data file (`format-specific.data.data-file`).
 */
export function parseImageReferences(text: string): { format: string; virtualSizeBytes: number; backingFile?: string; backingFormat?: string; dataFile?: string } {
  const { format, virtualSizeBytes } = parseQemuImgInfo(text);
  const r = JSON.parse(text) as Record<string, unknown>;
  const backing = r['backing-filename'];
  const backingFormat = r['backing-filename-format'];
  const spec = r['format-specific'] as { data?: Record<string, unknown> } | undefined;
  const data = spec?.data?.['data-file'];
  return {
    format, virtualSizeBytes,
    ...(typeof backing === 'string' ? { backingFile: backing } : {}),
    ...(typeof backingFormat === 'string' ? { backingFormat } : {}),
    ...(typeof data === 'string' ? { dataFile: data } : {}),
  };
}

/**
 * `qemu-img info --output=json` → the image's backing file as qemu resolves it
 * (`full-backing-filename`, else `backing-filename`) and the format the image declares for it
 * (`backing-filename-format`, absent when qemu would probe it); undefined without one.
 */
export function parseBackingFile(text: string): { file: string; format?: string } | undefined {
  parseQemuImgInfo(text);
  const r = JSON.parse(text) as Record<string, unknown>;
  const full = r['full-backing-filename'];
  const named = r['backing-filename'];
  const file = typeof full === 'string' ? full : typeof named === 'string' ? named : undefined;
  if (file === undefined) return undefined;
  const format = r['backing-filename-format'];
  return { file, ...(typeof format === 'string' ? { format } : {}) };
}

/** `virsh version` → the running hypervisor's version (`Running hypervisor: QEMU 7.2.19`), if printed. */
export function parseHypervisorVersion(text: string): string | undefined {
  const v = keyValues(text).get('Running hypervisor');
  const m = v === undefined ? null : /(\d+(?:\.\d+)*)\s*$/.exec(v);
  return m ? m[1] : undefined;
}
