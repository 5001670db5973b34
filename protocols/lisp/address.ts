/**
 * IPv4/IPv6 addresses and prefixes as LISP carries them (AFI 1 and 2). Pure functions:
 * text ⇄ bytes, prefix masking and containment.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { AFI } from './constants.js';
import { lispError } from './errors.js';

/** The AFI of a LISP address we handle. */
export type IpAfi = typeof AFI.ipv4 | typeof AFI.ipv6;

/** An EID prefix: an address and a mask length (RFC 9301 §5.2 "EID mask-len"). */
export interface EidPrefix {
  /** Canonical text of the (masked) address: dotted quad or RFC 5952 IPv6. */
  address: string;
  /** 0–32 for IPv4, 0–128 for IPv6. */
  maskLength: number;
}

/** The AFI of `address`, or a LISP_BAD_ADDRESS error. */
export function afiOf(address: string): IpAfi {
  if (isIPv4(address)) return AFI.ipv4;
  if (isIPv6(address)) return AFI.ipv6;
  throw lispError('LISP_BAD_ADDRESS', `'${address}' is not an ipv4 or ipv6 address`, { details: { address } });
}

/** Bits in an address of `afi`. */
export function addressBits(afi: IpAfi): 32 | 128 {
  return afi === AFI.ipv4 ? 32 : 128;
}

/** The 4 or 16 bytes of an IPv4/IPv6 address. */
export function addressToBytes(address: string): Buffer {
  const afi = afiOf(address);
  if (afi === AFI.ipv4) return Buffer.from(address.split('.').map(Number));
  let text = address;
  const out = Buffer.alloc(16);
  // An embedded dotted quad is the last 32 bits (RFC 4291 §2.2 form 3): rewrite it as two groups.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const [a = 0, b = 0, c = 0, d = 0] = text.slice(lastColon + 1).split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? text.split('::', 2) as [string, string] : [text, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  let groups: string[];
  if (rest === undefined) {
    groups = headGroups;
  } else {
    const fill = 8 - headGroups.length - restGroups.length;
    groups = [...headGroups, ...Array<string>(fill).fill('0'), ...restGroups];
  }
  groups.map((g) => parseInt(g, 16)).forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** Canonical text of 4 (IPv4) or 16 (IPv6, RFC 5952) address bytes. */
export function bytesToAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero groups, the first one on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** The canonical text of an address (`::ffff:1.2.3.4` → `::ffff:102:304`, upper → lower case). */
export function canonicalAddress(address: string): string {
  return bytesToAddress(addressToBytes(address));
}

/** Parses `a.b.c.d/len` or `x::y/len` (no mask: a host prefix) into a masked {@link EidPrefix}. */
export function parsePrefix(text: string): EidPrefix {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const afi = afiOf(address);
  const bits = addressBits(afi);
  const maskLength = slash < 0 ? bits : Number(text.slice(slash + 1));
  if (!Number.isInteger(maskLength) || maskLength < 0 || maskLength > bits || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))) {
    throw lispError('LISP_BAD_ADDRESS', `'${text}' has an invalid mask length (0–${bits})`, { details: { prefix: text } });
  }
  return { address: bytesToAddress(maskBytes(addressToBytes(address), maskLength)), maskLength };
}

/** `address/maskLength`. */
export function formatPrefix(prefix: EidPrefix): string {
  return `${prefix.address}/${prefix.maskLength}`;
}

/** A copy of `bytes` with every bit past `maskLength` cleared. */
export function maskBytes(bytes: Uint8Array, maskLength: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, maskLength - i * 8));
    out[i] = (out[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** True when `inner` (address or prefix) lies inside `outer` (same family, longer or equal mask). */
export function prefixContains(outer: EidPrefix, inner: EidPrefix): boolean {
  const a = addressToBytes(outer.address);
  const b = addressToBytes(inner.address);
  if (a.length !== b.length || inner.maskLength < outer.maskLength) return false;
  return maskBytes(b, outer.maskLength).equals(maskBytes(a, outer.maskLength));
}

/** A host prefix (/32 or /128) for a VM address. */
export function hostPrefix(address: string): EidPrefix {
  return parsePrefix(`${address}/${addressBits(afiOf(address))}`);
}

/** True when two prefixes share an address (one contains the other). */
export function prefixesOverlap(a: EidPrefix, b: EidPrefix): boolean {
  return prefixContains(a, b) || prefixContains(b, a);
}

/**
 * The prefix a negative Map-Reply for `eid` covers (RFC 9301 §8.1, RFC 6833 §6.1: "the
 * least-specific prefix that both matches the original query and does not match any
 * EID-Prefix known to exist"): the shortest prefix containing `eid` that overlaps no
 * prefix in `known`. `within`, when given, bounds it from above (e.g. the site's configured
 * prefix the EID lies in, so a reply never covers space with another meaning). Returns the
 * host prefix when every shorter one overlaps.
 */
export function negativePrefix(eid: EidPrefix, known: readonly EidPrefix[], within?: EidPrefix): EidPrefix {
  const start = within && prefixContains(within, eid) ? within.maskLength : 0;
  const sameFamily = known.filter((k) => afiOf(k.address) === afiOf(eid.address));
  for (let len = start; len <= eid.maskLength; len++) {
    const candidate = { address: bytesToAddress(maskBytes(addressToBytes(eid.address), len)), maskLength: len };
    if (!sameFamily.some((k) => prefixesOverlap(k, candidate))) return candidate;
  }
  return eid;
}
