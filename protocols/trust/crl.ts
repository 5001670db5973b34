/**
 * X.509 v2 certificate revocation lists (RFC 5280 §5): building the root's CRL and
 * parsing one for revocation checks.
 */
import type { KeyObject } from 'node:crypto';
import { extension, type Certificate } from './certificate.js';
import {
  bits, children, content, ctx, decode, encode, isUniversal, readOid, readTime, readUintHex, seq, smallInt,
  splitSigned, time, TYPE, uint, type Asn1,
} from './der.js';
import { trustError } from './errors.js';
import { signatureAlgorithmFor, signBytes } from './keys.js';
import { OID } from './oids.js';
import { decodePem, encodePem } from './pem.js';

/** One revoked certificate. */
export interface RevokedEntry {
  /** Serial as lowercase hex (as {@link Certificate.serial}). */
  serial: string;
  revokedAt: Date;
}

/** What to put in a CRL. */
export interface CrlSpec {
  issuer: Certificate;
  signingKey: KeyObject;
  revoked: RevokedEntry[];
  /** cRLNumber (RFC 5280 §5.2.3), increasing with every CRL the issuer publishes. */
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** Builds and signs a v2 CRL; returns its DER. */
export function buildCrl(spec: CrlSpec): Buffer {
  const algorithm = signatureAlgorithmFor(spec.signingKey);
  const exts: Asn1[] = [];
  // RFC 5280 §5.2.1 and §5.2.3: conforming CRL issuers include AKI and cRLNumber.
  if (spec.issuer.subjectKeyId) exts.push(extension(OID.authorityKeyIdentifier, false, seq(ctx(0, false, spec.issuer.subjectKeyId.toString('latin1')))));
  exts.push(extension(OID.cRLNumber, false, smallInt(spec.crlNumber)));
  const fields: Asn1[] = [
    smallInt(1),
    algorithm,
    decode(spec.issuer.subjectName, 'issuer name'),
    time(spec.thisUpdate),
    time(spec.nextUpdate),
  ];
  // RFC 5280 §5.1.2.6: when there are no revoked certificates the list is absent.
  if (spec.revoked.length > 0) {
    fields.push(seq(...spec.revoked.map((r) => seq(uint(Buffer.from(r.serial.length % 2 ? `0${r.serial}` : r.serial, 'hex')), time(r.revokedAt)))));
  }
  fields.push(ctx(0, true, [seq(...exts)]));
  const tbsDer = encode(seq(...fields));
  return encode(seq(decode(tbsDer, 'tbs cert list'), algorithm, bits(signBytes(tbsDer, spec.signingKey))));
}

/** A parsed CRL. */
export interface Crl {
  der: Buffer;
  tbs: Buffer;
  signatureAlgorithm: Buffer;
  signature: Buffer;
  issuerName: Buffer;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: number;
  authorityKeyId?: Buffer;
  /** Revoked serials (lowercase hex) with their revocation dates. */
  revoked: ReadonlyMap<string, Date>;
  /** OIDs of critical CRL extensions this parser does not process (then the CRL cannot be used). */
  unknownCritical: string[];
}

/** Parses a DER CRL (RFC 5280 §5.1); structural errors are TRUST_MALFORMED_CERT. */
export function parseCrlDer(der: Uint8Array): Crl {
  const buf = Buffer.from(der);
  const parts = splitSigned(buf, 'crl');
  const f = children(decode(parts.tbs, 'tbs cert list'), 'tbs cert list');
  let i = 0;
  if (isUniversal(f[0], TYPE.INTEGER)) {
    if (readUintHex(f[0], 'crl version') !== '01') throw trustError('TRUST_MALFORMED_CERT', 'crl is not version 2');
    i = 1;
  }
  if (!f[i] || !encode(f[i]!).equals(parts.algorithm)) throw trustError('TRUST_MALFORMED_CERT', 'crl signature algorithms differ');
  const issuerName = encode(f[i + 1] ?? seq());
  const thisUpdate = readTime(f[i + 2], 'thisUpdate');
  let j = i + 3;
  let nextUpdate: Date | undefined;
  if (isUniversal(f[j], TYPE.UTCTIME) || isUniversal(f[j], TYPE.GENERALIZEDTIME)) nextUpdate = readTime(f[j++], 'nextUpdate');
  const revoked = new Map<string, Date>();
  const unknownCritical: string[] = [];
  if (isUniversal(f[j], TYPE.SEQUENCE)) {
    for (const entry of children(f[j++], 'revokedCertificates')) {
      const e = children(entry, 'revoked certificate');
      revoked.set(readUintHex(e[0], 'revoked serial'), readTime(e[1], 'revocationDate'));
    }
  }
  let crlNumber: number | undefined;
  let authorityKeyId: Buffer | undefined;
  const extsNode = f[j];
  if (extsNode && extsNode.tagClass === 0x80 && extsNode.type === 0) {
    for (const ext of children(children(extsNode, 'crl extensions')[0], 'crl extensions')) {
      const e = children(ext, 'extension');
      const id = readOid(e[0], 'extension id');
      const critical = isUniversal(e[1], TYPE.BOOLEAN) && content(e[1], 'critical')[0] !== 0;
      const value = decode(content(e[isUniversal(e[1], TYPE.BOOLEAN) ? 2 : 1], 'extension value'), `crl extension ${id}`);
      if (id === OID.cRLNumber) crlNumber = parseInt(readUintHex(value, 'cRLNumber'), 16);
      else if (id === OID.authorityKeyIdentifier) {
        const kid = children(value, 'authorityKeyIdentifier').find((n) => n.tagClass === 0x80 && n.type === 0);
        if (kid) authorityKeyId = content(kid, 'keyIdentifier');
      } else if (critical) unknownCritical.push(id);
    }
  }
  return {
    der: buf, tbs: parts.tbs, signatureAlgorithm: parts.algorithm, signature: parts.signature,
    issuerName, thisUpdate, nextUpdate, crlNumber, authorityKeyId, revoked, unknownCritical,
  };
}

/** Parses every `X509 CRL` block in PEM text. */
export function parseCrlsPem(pem: string): Crl[] {
  return decodePem(pem, 'X509 CRL').map(parseCrlDer);
}

/** PEM of a DER CRL. */
export function crlToPem(der: Uint8Array): string {
  return encodePem(der, 'X509 CRL');
}

