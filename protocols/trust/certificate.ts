/**
 * X.509 v3 certificates (RFC 5280 §4.1): building a TBSCertificate and signing it, and
 * parsing a certificate into the fields verification needs.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bits, bool, children, content, ctx, decode, encode, isUniversal, octets, oid, readOid, readTime, readUintHex,
  seq, set, smallInt, splitSigned, time, TYPE, uint, utf8, type Asn1,
} from './der.js';
import { trustError } from './errors.js';
import { keyIdentifier, publicKeyFromSpki, signatureAlgorithmFor, signBytes, spkiDer, spkiNode } from './keys.js';
import { OID } from './oids.js';
import { decodePem, encodePem } from './pem.js';

/** A distinguished name as the trust area writes it: CN and optional O. */
export interface DistinguishedName {
  commonName: string;
  organization?: string;
}

/** Subject alternative names (RFC 5280 §4.2.1.6) the trust area writes and reads. */
export interface SubjectAltNames {
  /** uniformResourceIdentifier, e.g. `intercloud://cloud-a`. */
  uris: string[];
  /** dNSName. */
  dns: string[];
  /** iPAddress, as text. */
  ips: string[];
  /** otherName id-on-xmppAddr (RFC 6120 §13.7.1.4), e.g. `cloud-a@intercloud.test`. */
  xmppAddrs: string[];
}

/** Named keyUsage bits, in bit order (RFC 5280 §4.2.1.3). */
export const KEY_USAGE_BITS = [
  'digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement',
  'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly',
] as const;

/** One keyUsage bit. */
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

/** What to put in a certificate. */
export interface CertificateSpec {
  /** Serial number, unsigned big-endian (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
  serial: Uint8Array;
  subject: DistinguishedName;
  /** The issuer's subject name DER (copied byte for byte); omitted for a self-signed certificate. */
  issuerName?: Uint8Array;
  /** The issuer's subject key identifier, for the authorityKeyIdentifier extension. */
  issuerKeyId?: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** The subject's public key. */
  publicKey: KeyObject;
  /** The issuer's private key (the subject's own for a self-signed certificate). */
  signingKey: KeyObject;
  /** basicConstraints: `ca: true` for a CA (with an optional pathLenConstraint). */
  basicConstraints: { ca: boolean; pathLen?: number };
  keyUsage: KeyUsage[];
  /** extKeyUsage purposes as OIDs; omitted when empty. */
  extKeyUsage?: string[];
  /** subjectAltName; omitted when every list is empty. */
  subjectAltNames?: Partial<SubjectAltNames>;
}

/** DER of a Name with CN (and O) as UTF8String (RFC 5280 §4.1.2.4). */
export function encodeName(name: DistinguishedName): Buffer {
  const rdns: Asn1[] = [];
  if (name.organization !== undefined) rdns.push(set(seq(oid(OID.organizationName), utf8(name.organization))));
  rdns.push(set(seq(oid(OID.commonName), utf8(name.commonName))));
  return encode(seq(...rdns));
}

/** One Extension (RFC 5280 §4.1): id, critical flag (only when true, DER default), OCTET STRING of the value. */
export function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(id)];
  if (critical) parts.push(bool(true));
  parts.push(octets(encode(value)));
  return seq(...parts);
}

function keyUsageBits(usages: KeyUsage[]): Asn1 {
  const bytes = Buffer.alloc(2);
  for (const u of usages) {
    const i = KEY_USAGE_BITS.indexOf(u);
    bytes[i >> 3]! |= 0x80 >> (i & 7);
  }
  // DER (X.690 §11.2.2): no trailing zero bits in a named bit list.
  let used = bytes[1] === 0 ? bytes.subarray(0, 1) : bytes;
  if (used[0] === 0 && used.length === 1) used = Buffer.alloc(0);
  if (used.length === 0) return bits(Buffer.alloc(0), 0);
  const last = used[used.length - 1]!;
  let unused = 0;
  while (((last >> unused) & 1) === 0) unused++;
  return bits(used, unused);
}

/** Text IPv4/IPv6 → 4/16 octets for an iPAddress GeneralName. */
export function ipToBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6) throw trustError('TRUST_BAD_ARGUMENT', `'${ip}' is not an ip address`);
  let text = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a = 0, b = 0, c = 0, d = 0] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const h = head === '' ? [] : head.split(':').map((x) => parseInt(x, 16));
  const r = rest === undefined || rest === '' ? [] : rest.split(':').map((x) => parseInt(x, 16));
  const groups = rest === undefined ? h : [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

function bytesToIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // RFC 5952 §4.2: '::' replaces the longest run (first if tied) of two or more zero groups.
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

function sanNode(san: Partial<SubjectAltNames>): Asn1 | undefined {
  const names: Asn1[] = [];
  // RFC 6120 §13.7.1.4: otherName [0] { id-on-xmppAddr, [0] EXPLICIT UTF8String }
  for (const jid of san.xmppAddrs ?? []) names.push(ctx(0, true, [oid(OID.xmppAddr), ctx(0, true, [utf8(jid)])]));
  for (const d of san.dns ?? []) names.push(ctx(2, false, d));
  for (const u of san.uris ?? []) names.push(ctx(6, false, u));
  for (const ip of san.ips ?? []) names.push(ctx(7, false, ipToBytes(ip).toString('latin1')));
  return names.length === 0 ? undefined : seq(...names);
}

/** Builds and signs a certificate; returns its DER. */
export function buildCertificate(spec: CertificateSpec): Buffer {
  if (spec.serial.length === 0 || spec.serial.length > 20) throw trustError('TRUST_BAD_ARGUMENT', 'serial must be 1 to 20 octets');
  const subject = encodeName(spec.subject);
  const issuer = spec.issuerName ? Buffer.from(spec.issuerName) : subject;
  const spki = spkiDer(spec.publicKey);
  const ski = keyIdentifier(spki);
  const algorithm = signatureAlgorithmFor(spec.signingKey);

  const bc: Asn1[] = [];
  if (spec.basicConstraints.ca) bc.push(bool(true));
  if (spec.basicConstraints.ca && spec.basicConstraints.pathLen !== undefined) bc.push(smallInt(spec.basicConstraints.pathLen));
  // RFC 5280 §4.2.1.9: basicConstraints critical in CA certificates; we mark it critical in every one.
  const exts: Asn1[] = [extension(OID.basicConstraints, true, seq(...bc))];
  exts.push(extension(OID.keyUsage, true, keyUsageBits(spec.keyUsage)));
  if (spec.extKeyUsage && spec.extKeyUsage.length > 0) exts.push(extension(OID.extKeyUsage, false, seq(...spec.extKeyUsage.map(oid))));
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(ski)));
  const aki = spec.issuerKeyId ?? (spec.issuerName ? undefined : ski);
  if (aki) exts.push(extension(OID.authorityKeyIdentifier, false, seq(ctx(0, false, Buffer.from(aki).toString('latin1')))));
  const san = spec.subjectAltNames ? sanNode(spec.subjectAltNames) : undefined;
  if (san) exts.push(extension(OID.subjectAltName, false, san));

  // RFC 5280 §4.1.2: TBSCertificate
  const tbs = seq(
    ctx(0, true, [smallInt(2)]),
    uint(spec.serial),
    algorithm,
    decode(issuer, 'issuer name'),
    seq(time(spec.notBefore), time(spec.notAfter)),
    decode(subject, 'subject name'),
    spkiNode(spec.publicKey),
    ctx(3, true, [seq(...exts)]),
  );
  const tbsDer = encode(tbs);
  const signature = signBytes(tbsDer, spec.signingKey);
  return encode(seq(decode(tbsDer, 'tbs certificate'), algorithm, bits(signature)));
}

/** basicConstraints as read. */
export interface BasicConstraints {
  ca: boolean;
  pathLen?: number;
}

/** A parsed certificate: the fields verification and the CLI use. */
export interface Certificate {
  der: Buffer;
  /** DER of the TBSCertificate (the signed bytes). */
  tbs: Buffer;
  /** DER of the outer signatureAlgorithm. */
  signatureAlgorithm: Buffer;
  signature: Buffer;
  /** Serial as lowercase hex without leading zero octets. */
  serial: string;
  issuerName: Buffer;
  subjectName: Buffer;
  subject: NameFields;
  issuer: NameFields;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  /** basicConstraints; undefined when absent (then not a CA). */
  basicConstraints?: BasicConstraints;
  /** keyUsage bits; undefined when the extension is absent (then unrestricted). */
  keyUsage?: ReadonlySet<KeyUsage>;
  /** extKeyUsage OIDs; undefined when absent. */
  extKeyUsage?: readonly string[];
  subjectAltNames: SubjectAltNames;
  subjectKeyId?: Buffer;
  authorityKeyId?: Buffer;
  /** OIDs of critical extensions this parser does not process. */
  unknownCritical: string[];
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint256: string;
  /** The subject public key (loaded on first use). */
  readonly publicKey: KeyObject;
}

/** The attributes of a Name the trust area cares about, plus a readable form. */
export interface NameFields {
  commonName?: string;
  organization?: string;
  /** RFC 4514-like text, most significant first (`O=Intercloud, CN=cloud-a`). */
  text: string;
}

/** X.690 universal tags of the string types a Name may use (20 = TeletexString). */
const STRING_TYPES = new Set<number>([TYPE.UTF8, TYPE.PRINTABLESTRING, TYPE.IA5STRING, 20]);

function parseName(node: Asn1 | undefined): NameFields {
  const out: NameFields = { text: '' };
  const parts: string[] = [];
  for (const rdn of children(node, 'name')) {
    for (const atv of children(rdn, 'relative distinguished name')) {
      const [type, value] = children(atv, 'attribute');
      const id = readOid(type, 'attribute type');
      let text: string;
      if (value && STRING_TYPES.has(value.type) && value.tagClass === 0) text = content(value, 'attribute value').toString(value.type === TYPE.UTF8 ? 'utf8' : 'latin1');
      else text = '#' + encode(value!).toString('hex');
      if (id === OID.commonName) out.commonName = text;
      if (id === OID.organizationName) out.organization = text;
      parts.push(`${id === OID.commonName ? 'CN' : id === OID.organizationName ? 'O' : id}=${text}`);
    }
  }
  out.text = parts.join(', ');
  return out;
}

function parseSan(node: Asn1): SubjectAltNames {
  const san: SubjectAltNames = { uris: [], dns: [], ips: [], xmppAddrs: [] };
  for (const gn of children(node, 'subjectAltName')) {
    if (gn.tagClass !== 0x80) throw trustError('TRUST_MALFORMED_CERT', 'subjectAltName entry is not a context-specific GeneralName');
    switch (gn.type) {
      case 0: {
        const [type, wrapped] = children(gn, 'otherName');
        if (readOid(type, 'otherName type') === OID.xmppAddr) {
          const inner = children(wrapped, 'otherName value')[0];
          if (!isUniversal(inner, TYPE.UTF8)) throw trustError('TRUST_MALFORMED_CERT', 'xmppAddr is not a UTF8String');
          san.xmppAddrs.push(content(inner, 'xmppAddr').toString('utf8'));
        }
        break;
      }
      case 2:
        san.dns.push(content(gn, 'dNSName').toString('latin1'));
        break;
      case 6:
        san.uris.push(content(gn, 'uniformResourceIdentifier').toString('latin1'));
        break;
      case 7: {
        const b = content(gn, 'iPAddress');
        if (b.length !== 4 && b.length !== 16) throw trustError('TRUST_MALFORMED_CERT', 'iPAddress is not 4 or 16 octets');
        san.ips.push(bytesToIp(b));
        break;
      }
      default:
        break;
    }
  }
  return san;
}

function parseKeyUsage(node: Asn1): Set<KeyUsage> {
  const b = content(node, 'keyUsage');
  const set = new Set<KeyUsage>();
  KEY_USAGE_BITS.forEach((name, i) => {
    const byte = b[1 + (i >> 3)];
    if (byte !== undefined && (byte & (0x80 >> (i & 7))) !== 0) set.add(name);
  });
  return set;
}

class ParsedCertificate implements Certificate {
  der!: Buffer;
  tbs!: Buffer;
  signatureAlgorithm!: Buffer;
  signature!: Buffer;
  serial!: string;
  issuerName!: Buffer;
  subjectName!: Buffer;
  subject!: NameFields;
  issuer!: NameFields;
  notBefore!: Date;
  notAfter!: Date;
  spki!: Buffer;
  basicConstraints?: BasicConstraints;
  keyUsage?: ReadonlySet<KeyUsage>;
  extKeyUsage?: readonly string[];
  subjectAltNames: SubjectAltNames = { uris: [], dns: [], ips: [], xmppAddrs: [] };
  subjectKeyId?: Buffer;
  authorityKeyId?: Buffer;
  unknownCritical: string[] = [];
  fingerprint256!: string;
  #publicKey: KeyObject | undefined;

  get publicKey(): KeyObject {
    this.#publicKey ??= publicKeyFromSpki(this.spki);
    return this.#publicKey;
  }
}

/** Parses a DER certificate (RFC 5280 §4.1); structural errors are TRUST_MALFORMED_CERT. */
export function parseCertificateDer(der: Uint8Array): Certificate {
  const buf = Buffer.from(der);
  const parts = splitSigned(buf, 'certificate');
  const cert = new ParsedCertificate();
  cert.der = buf;
  cert.tbs = parts.tbs;
  cert.signatureAlgorithm = parts.algorithm;
  cert.signature = parts.signature;
  cert.fingerprint256 = createHash('sha256').update(buf).digest('hex');

  const fields = children(decode(parts.tbs, 'tbs certificate'), 'tbs certificate');
  let i = 0;
  const first = fields[0];
  if (first && first.tagClass === 0x80 && first.type === 0) {
    const version = content(children(first, 'version')[0], 'version');
    if (version.length !== 1 || version[0] !== 2) throw trustError('TRUST_MALFORMED_CERT', 'certificate is not x.509 v3');
    i = 1;
  } else {
    throw trustError('TRUST_MALFORMED_CERT', 'certificate is not x.509 v3');
  }
  cert.serial = readUintHex(fields[i], 'serial number');
  const innerAlg = fields[i + 1];
  if (!innerAlg || !encode(innerAlg).equals(parts.algorithm)) {
    // RFC 5280 §4.1.1.2: the outer and inner signature algorithms must be the same.
    throw trustError('TRUST_MALFORMED_CERT', 'signature algorithm inside and outside the tbs certificate differ');
  }
  cert.issuerName = encode(fields[i + 2]!);
  cert.issuer = parseName(fields[i + 2]);
  const validity = children(fields[i + 3], 'validity');
  cert.notBefore = readTime(validity[0], 'notBefore');
  cert.notAfter = readTime(validity[1], 'notAfter');
  cert.subjectName = encode(fields[i + 4]!);
  cert.subject = parseName(fields[i + 4]);
  if (!fields[i + 5]) throw trustError('TRUST_MALFORMED_CERT', 'certificate has no subject public key info');
  cert.spki = encode(fields[i + 5]!);
  for (const f of fields.slice(i + 6)) {
    if (f.tagClass !== 0x80 || f.type !== 3) continue;
    for (const ext of children(children(f, 'extensions')[0], 'extensions')) {
      const e = children(ext, 'extension');
      const id = readOid(e[0], 'extension id');
      const critical = isUniversal(e[1], TYPE.BOOLEAN) && content(e[1], 'critical')[0] !== 0;
      const valueNode = e[isUniversal(e[1], TYPE.BOOLEAN) ? 2 : 1];
      const value = decode(content(valueNode, 'extension value'), `extension ${id}`);
      switch (id) {
        case OID.basicConstraints: {
          const bc = children(value, 'basicConstraints');
          const ca = isUniversal(bc[0], TYPE.BOOLEAN) && content(bc[0], 'cA')[0] !== 0;
          const lenNode = bc.find((n) => isUniversal(n, TYPE.INTEGER));
          cert.basicConstraints = lenNode ? { ca, pathLen: parseInt(readUintHex(lenNode, 'pathLen'), 16) } : { ca };
          break;
        }
        case OID.keyUsage:
          cert.keyUsage = parseKeyUsage(value);
          break;
        case OID.extKeyUsage:
          cert.extKeyUsage = children(value, 'extKeyUsage').map((n) => readOid(n, 'key purpose'));
          break;
        case OID.subjectAltName:
          cert.subjectAltNames = parseSan(value);
          break;
        case OID.subjectKeyIdentifier:
          cert.subjectKeyId = content(value, 'subjectKeyIdentifier');
          break;
        case OID.authorityKeyIdentifier: {
          const kid = children(value, 'authorityKeyIdentifier').find((n) => n.tagClass === 0x80 && n.type === 0);
          if (kid) cert.authorityKeyId = content(kid, 'keyIdentifier');
          break;
        }
        default:
          if (critical) cert.unknownCritical.push(id);
      }
    }
  }
  return cert;
}

/** Parses every certificate in PEM text (a bundle gives several). */
export function parseCertificatesPem(pem: string): Certificate[] {
  return decodePem(pem, 'CERTIFICATE').map(parseCertificateDer);
}

/** Parses the first certificate in PEM text. */
export function parseCertificatePem(pem: string): Certificate {
  return parseCertificatesPem(pem)[0]!;
}

/** PEM of a DER certificate. */
export function certificateToPem(der: Uint8Array): string {
  return encodePem(der, 'CERTIFICATE');
}
