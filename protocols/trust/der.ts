/**
 * DER building and reading for X.509 structures (ITU-T X.690 §10), on top of node-forge's
 * ASN.1 codec. node-forge 1.4 builds and parses RSA certificates only (no ECDSA keys or
 * signatures, no CRL writer), so the trust area assembles TBSCertificate / TBSCertList /
 * CertificationRequestInfo itself with `forge.asn1` and signs them with Node's `crypto`.
 */
import forge from 'node-forge';
import { trustError } from './errors.js';

const { asn1 } = forge;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;

/** A node of forge's ASN.1 tree. */
export type Asn1 = forge.asn1.Asn1;

/** Buffer → forge binary string. */
export function toBinary(buf: Uint8Array): string {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1');
}

/** forge binary string → Buffer. */
export function fromBinary(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** Encodes an ASN.1 node to DER. */
export function encode(node: Asn1): Buffer {
  return fromBinary(asn1.toDer(node).getBytes());
}

/** Decodes DER into forge's tree; a decode failure is TRUST_MALFORMED_CERT. */
export function decode(der: Uint8Array, what: string): Asn1 {
  try {
    // @types/node-forge declares only the old boolean `strict` argument; forge 1.4 takes options.
    const fromDer = asn1.fromDer as unknown as (bytes: string, options: Record<string, boolean>) => Asn1;
    return fromDer(toBinary(der), { strict: true, decodeBitStrings: false, parseAllBytes: true });
  } catch (err) {
    throw trustError('TRUST_MALFORMED_CERT', `cannot decode ${what} as der`, { cause: err });
  }
}

/** SEQUENCE of `items`. */
export function seq(...items: Asn1[]): Asn1 {
  return asn1.create(U, T.SEQUENCE, true, items);
}

/** SET of `items`. */
export function set(...items: Asn1[]): Asn1 {
  return asn1.create(U, T.SET, true, items);
}

/** OBJECT IDENTIFIER. */
export function oid(dotted: string): Asn1 {
  return asn1.create(U, T.OID, false, asn1.oidToDer(dotted).getBytes());
}

/** BOOLEAN. */
export function bool(v: boolean): Asn1 {
  return asn1.create(U, T.BOOLEAN, false, v ? '\xff' : '\x00');
}

/** NULL. */
export function nul(): Asn1 {
  return asn1.create(U, T.NULL, false, '');
}

/** INTEGER from unsigned big-endian bytes (a leading zero is added when the top bit is set). */
export function uint(bytes: Uint8Array): Asn1 {
  let b = Buffer.from(bytes);
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && (b[i + 1]! & 0x80) === 0) i++;
  b = b.subarray(i);
  if (b.length === 0) b = Buffer.from([0]);
  if ((b[0]! & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b]);
  return asn1.create(U, T.INTEGER, false, toBinary(b));
}

/** INTEGER from a small non-negative number. */
export function smallInt(n: number): Asn1 {
  return asn1.create(U, T.INTEGER, false, asn1.integerToDer(n).getBytes());
}

/** OCTET STRING. */
export function octets(bytes: Uint8Array): Asn1 {
  return asn1.create(U, T.OCTETSTRING, false, toBinary(bytes));
}

/** BIT STRING with `unused` trailing bits in the last byte. */
export function bits(bytes: Uint8Array, unused = 0): Asn1 {
  return asn1.create(U, T.BITSTRING, false, String.fromCharCode(unused) + toBinary(bytes));
}

/** UTF8String. */
export function utf8(s: string): Asn1 {
  return asn1.create(U, T.UTF8, false, forge.util.encodeUtf8(s));
}

/** Context-specific tag `n`, explicit (wrapping `inner`) or implicit (primitive bytes). */
export function ctx(n: number, constructed: boolean, value: Asn1[] | string): Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, constructed, value);
}

/**
 * Time per RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in
 * seconds with `Z`.
 */
export function time(d: Date): Asn1 {
  const whole = new Date(Math.floor(d.getTime() / 1000) * 1000);
  if (whole.getUTCFullYear() < 2050) return asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(whole));
  return asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(whole));
}

/** Reads a UTCTime or GeneralizedTime node. */
export function readTime(node: Asn1 | undefined, what: string): Date {
  if (node && node.tagClass === U && node.type === T.UTCTIME) return asn1.utcTimeToDate(node.value as string);
  if (node && node.tagClass === U && node.type === T.GENERALIZEDTIME) return asn1.generalizedTimeToDate(node.value as string);
  throw trustError('TRUST_MALFORMED_CERT', `${what} is not a utctime or generalizedtime`);
}

/** The children of a constructed node, or TRUST_MALFORMED_CERT. */
export function children(node: Asn1 | undefined, what: string): Asn1[] {
  if (!node || !Array.isArray(node.value)) throw trustError('TRUST_MALFORMED_CERT', `${what} is not a constructed value`);
  return node.value;
}

/** The raw content bytes of a primitive node, or TRUST_MALFORMED_CERT. */
export function content(node: Asn1 | undefined, what: string): Buffer {
  if (!node || typeof node.value !== 'string') throw trustError('TRUST_MALFORMED_CERT', `${what} is not a primitive value`);
  return fromBinary(node.value);
}

/** Reads an OBJECT IDENTIFIER node as dotted text. */
export function readOid(node: Asn1 | undefined, what: string): string {
  if (!node || node.tagClass !== U || node.type !== T.OID) throw trustError('TRUST_MALFORMED_CERT', `${what} is not an object identifier`);
  return asn1.derToOid(node.value as string);
}

/** Reads an INTEGER node as unsigned hex (lowercase, no leading zero bytes). */
export function readUintHex(node: Asn1 | undefined, what: string): string {
  if (!node || node.tagClass !== U || node.type !== T.INTEGER) throw trustError('TRUST_MALFORMED_CERT', `${what} is not an integer`);
  const b = content(node, what);
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i).toString('hex');
}

/** True when `node` is universal `type`. */
export function isUniversal(node: Asn1 | undefined, type: number): boolean {
  return node !== undefined && node.tagClass === U && node.type === type;
}

/** forge's universal type numbers. */
export const TYPE = T;

/** A TLV's position inside a DER buffer. */
export interface Tlv {
  /** First byte of the tag. */
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

/**
 * Reads the TLV at `offset` of `der` without decoding its content (X.690 §8.1), so that a
 * signed part (TBSCertificate, TBSCertList, CertificationRequestInfo) can be sliced out
 * byte-exact for signature verification.
 */
export function readTlv(der: Uint8Array, offset: number, what: string): Tlv {
  const bad = (): never => {
    throw trustError('TRUST_MALFORMED_CERT', `${what}: bad der length at offset ${offset}`);
  };
  if (offset + 2 > der.length) bad();
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) bad();
  let len = der[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > der.length) bad();
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p + i]!;
    p += n;
  }
  const end = p + len;
  if (end > der.length) bad();
  return { tag, start: offset, contentStart: p, end };
}

/** The three top-level parts of a signed structure: signed bytes, algorithm, signature bits. */
export interface SignedParts {
  /** DER of the signed part (TBSCertificate, TBSCertList, CertificationRequestInfo). */
  tbs: Buffer;
  /** DER of the AlgorithmIdentifier. */
  algorithm: Buffer;
  /** The signature value (BIT STRING content without the unused-bits byte). */
  signature: Buffer;
}

/** Splits `SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }` (RFC 5280 §4.1, RFC 2986 §4.2). */
export function splitSigned(der: Buffer, what: string): SignedParts {
  const outer = readTlv(der, 0, what);
  if (outer.tag !== 0x30 || outer.end !== der.length) {
    throw trustError('TRUST_MALFORMED_CERT', `${what}: not a single der sequence`);
  }
  const tbs = readTlv(der, outer.contentStart, what);
  const alg = readTlv(der, tbs.end, what);
  const sig = readTlv(der, alg.end, what);
  if (tbs.tag !== 0x30 || alg.tag !== 0x30 || sig.tag !== 0x03 || sig.end !== outer.end || sig.end - sig.contentStart < 2 || der[sig.contentStart] !== 0) {
    throw trustError('TRUST_MALFORMED_CERT', `${what}: not a signed sequence of tbs, algorithm and signature`);
  }
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    algorithm: der.subarray(alg.start, alg.end),
    signature: der.subarray(sig.contentStart + 1, sig.end),
  };
}
