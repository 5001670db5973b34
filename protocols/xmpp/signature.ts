/**
 * The signature element our signed payloads carry (catalog entries, offers, accepts).
 *
 * The signed bytes are {@link canonicalJson} of the payload's typed value (the same
 * fields the XML carries), so XML whitespace or attribute order never matter. The
 * element's text is the trust area's signed-message envelope, opaque to this codec
 * (it carries the signer's certificate, nonce and expiry).
 */
import { xml, type Element } from '@xmpp/client';
import { checkSize, LIMITS, malformed } from './fields.js';
import { ICNS } from './namespaces.js';

/**
 * Deterministic JSON: object keys sorted by code point, no whitespace, `undefined`
 * members left out. Two equal values always give the same string.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`cannot encode non-finite number '${value}'`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** `<signature xmlns='urn:intercloud:signature:0'>envelope</signature>`. */
export function buildSignature(envelope: string): Element {
  return xml('signature', { xmlns: ICNS.SIGNATURE }, envelope);
}

/** The envelope text of the payload's `<signature/>` child; throws `XMPP_MALFORMED` when absent. */
export function readSignature(payload: Element, path: string): string {
  const sigs = payload.getChildren('signature', ICNS.SIGNATURE);
  if (sigs.length !== 1) return malformed(`${path}/signature`, sigs.length === 0 ? 'is missing' : 'appears more than once');
  const sig = sigs[0] as Element;
  checkSize(sig, `${path}/signature`, LIMITS.signatureBytes);
  const text = sig.text().trim();
  if (text === '') return malformed(`${path}/signature`, 'is empty');
  return text;
}
