/** PEM armour (RFC 7468) via node-forge, with a strict check of the base64 body. */
import forge from 'node-forge';
import { toBinary, fromBinary } from './der.js';
import { trustError } from './errors.js';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const BASE64_LINES = /^[A-Za-z0-9+/=\r\n\t ]*$/;

/**
 * Decodes every PEM block labelled `label` in `text` (RFC 7468 §2), in order.
 * Text with no such block, a body that is not base64 or an empty body is TRUST_MALFORMED_PEM.
 */
export function decodePem(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] !== label) continue;
    const body = m[2] ?? '';
    if (!BASE64_LINES.test(body) || body.trim() === '') {
      throw trustError('TRUST_MALFORMED_PEM', `pem block '${label}' has a body that is not base64`);
    }
    let decoded: forge.pem.ObjectPEM[];
    try {
      decoded = forge.pem.decode(m[0]);
    } catch (err) {
      throw trustError('TRUST_MALFORMED_PEM', `cannot decode pem block '${label}'`, { cause: err });
    }
    const first = decoded[0];
    if (!first || first.body.length === 0) throw trustError('TRUST_MALFORMED_PEM', `pem block '${label}' is empty`);
    out.push(fromBinary(first.body));
  }
  if (out.length === 0) throw trustError('TRUST_MALFORMED_PEM', `no pem block '${label}' found`);
  return out;
}

/** Decodes exactly one PEM block labelled `label`. */
export function decodeOnePem(text: string, label: string): Buffer {
  const all = decodePem(text, label);
  return all[0]!;
}

/** Encodes DER as a PEM block labelled `label` (64-column base64, RFC 7468 §2). */
export function encodePem(der: Uint8Array, label: string): string {
  return forge.pem.encode({ type: label, body: toBinary(der) }, { maxline: 64 }).replace(/\r\n/g, '\n');
}
