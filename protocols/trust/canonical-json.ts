/**
 * Canonical JSON for signatures: the JSON Canonicalization Scheme (RFC 8785) restricted
 * to JSON data — object members sorted by their UTF-16 code units (§3.2.3), no
 * whitespace, strings and numbers serialised as ECMAScript's JSON.stringify does
 * (§3.2.2.2, §3.2.2.3). The npm `canonicalize` package does the same in ~30 lines; a
 * dependency for that was not worth it. Values that are not JSON data (undefined,
 * functions, bigint, NaN/Infinity, Dates, class instances) are rejected, not coerced.
 */
import { trustError } from './errors.js';

function serialise(value: unknown, path: string, out: string[]): void {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') {
    out.push(JSON.stringify(value));
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw trustError('TRUST_MESSAGE_MALFORMED', `value at '${path}' is not a finite number`);
    out.push(JSON.stringify(value));
    return;
  }
  if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i > 0) out.push(',');
      serialise(item, `${path}[${i}]`, out);
    });
    out.push(']');
    return;
  }
  if (typeof value === 'object' && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)) {
    const record = value as Record<string, unknown>;
    // RFC 8785 §3.2.3: sort by UTF-16 code units, which is what the default sort compares.
    const keys = Object.keys(record).sort();
    out.push('{');
    keys.forEach((key, i) => {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(key), ':');
      serialise(record[key], `${path}.${key}`, out);
    });
    out.push('}');
    return;
  }
  throw trustError('TRUST_MESSAGE_MALFORMED', `value at '${path}' is not json data (${value === undefined ? 'undefined' : typeof value})`);
}

/** The canonical JSON text of `value` (RFC 8785 for JSON data). */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  serialise(value, '$', out);
  return out.join('');
}

/** The canonical JSON of `value` as UTF-8 bytes (what is signed). */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}
