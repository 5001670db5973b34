/**
 * Strict readers for our own payload elements: every missing, mistyped or oversized
 * field becomes an `XMPP_MALFORMED` / `XMPP_OVERSIZED` error naming its path, so a
 * handler can answer with a precise stanza error instead of failing later.
 */
import type { Element } from '@xmpp/client';
import { xmppError } from './errors.js';

/** Size limits of payloads we accept (a peer sending more is answered `policy-violation`). */
export const LIMITS = {
  /** Serialized size of one offer, accept or catalog entry. */
  payloadBytes: 64 * 1024,
  /** Serialized size of the signature element (envelope with certificate). */
  signatureBytes: 32 * 1024,
  disks: 64,
  nics: 32,
  listItems: 64,
  textChars: 1024,
} as const;

/** A lowercase cloud id, as in certificates and JIDs (`cloud-a`). */
export const CLOUD_ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A short token: region, format, hypervisor, id. */
export const TOKEN_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** An IEEE 802 MAC address in colon form. */
export const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** XEP-0082 DateTime in UTC. */
export const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** Throws `XMPP_MALFORMED` for `path`. */
export function malformed(path: string, what: string): never {
  throw xmppError('XMPP_MALFORMED', `malformed payload: '${path}' ${what}`, { details: { path } });
}

/** A required attribute matching `re`. */
export function attr(el: Element, name: string, path: string, re?: RegExp): string {
  const v = el.attrs[name];
  if (v === undefined || v === '') return malformed(`${path}@${name}`, 'is missing');
  if (v.length > LIMITS.textChars) throw oversized(`${path}@${name}`, `is longer than ${LIMITS.textChars} characters`);
  if (re && !re.test(v)) return malformed(`${path}@${name}`, `has an invalid value '${v.slice(0, 64)}'`);
  return v;
}

/** An optional attribute matching `re`. */
export function optAttr(el: Element, name: string, path: string, re?: RegExp): string | undefined {
  return el.attrs[name] === undefined ? undefined : attr(el, name, path, re);
}

/** A required non-negative number attribute (integer unless `decimal`), within `max`. */
export function numAttr(el: Element, name: string, path: string, opts: { max?: number; decimal?: boolean; min?: number } = {}): number {
  const raw = attr(el, name, path);
  const re = opts.decimal ? /^\d{1,15}(\.\d{1,9})?$/ : /^\d{1,15}$/;
  if (!re.test(raw)) return malformed(`${path}@${name}`, `is not a non-negative ${opts.decimal ? 'number' : 'integer'} ('${raw.slice(0, 32)}')`);
  const n = Number(raw);
  if (opts.min !== undefined && n < opts.min) return malformed(`${path}@${name}`, `is below ${opts.min}`);
  if (opts.max !== undefined && n > opts.max) throw oversized(`${path}@${name}`, `exceeds ${opts.max}`);
  return n;
}

/** A required XEP-0082 DateTime attribute, as epoch milliseconds. */
export function timeAttr(el: Element, name: string, path: string): string {
  const v = attr(el, name, path, DATETIME_RE);
  if (Number.isNaN(Date.parse(v))) return malformed(`${path}@${name}`, `is not a valid date-time '${v}'`);
  return v;
}

/** Exactly one child element `name` (in the parent's namespace). */
export function child(el: Element, name: string, path: string): Element {
  const found = el.getChildren(name);
  if (found.length === 0) return malformed(`${path}/${name}`, 'is missing');
  if (found.length > 1) return malformed(`${path}/${name}`, 'appears more than once');
  return found[0] as Element;
}

/** The trimmed texts of repeated child elements `name`, each matching `re`, at most `max`. */
export function texts(el: Element, name: string, path: string, re: RegExp, max: number = LIMITS.listItems): string[] {
  const found = el.getChildren(name);
  if (found.length > max) throw oversized(`${path}/${name}`, `has more than ${max} entries`);
  return found.map((c, i) => {
    const v = c.text().trim();
    if (!re.test(v)) return malformed(`${path}/${name}[${i}]`, `has an invalid value '${v.slice(0, 64)}'`);
    return v;
  });
}

/** An `XMPP_OVERSIZED` error for `path`. */
export function oversized(path: string, what: string): Error {
  return xmppError('XMPP_OVERSIZED', `oversized payload: '${path}' ${what}`, { details: { path } });
}

/** Throws `XMPP_OVERSIZED` when the serialized element is larger than `max` bytes. */
export function checkSize(el: Element, path: string, max: number = LIMITS.payloadBytes): void {
  const bytes = Buffer.byteLength(el.toString(), 'utf8');
  if (bytes > max) throw oversized(path, `is ${bytes} bytes, more than ${max}`);
}

/**
 * A decimal as the wire carries it (at most 9 fraction digits). Values are rounded with
 * this *before* signing, so what a peer reads back from the XML is what was signed.
 */
export function decimal(n: number): number {
  return Number(n.toFixed(9));
}

/** Formats a number for an attribute without exponent notation. */
export function num(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(9)));
}
