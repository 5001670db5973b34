/**
 * PKCS #10 certification requests (RFC 2986): creating one for a gateway that keeps its
 * own key, and parsing one with its self-signature checked before the CA signs anything.
 */
import type { KeyObject } from 'node:crypto';
import { bits, children, ctx, decode, encode, readUintHex, seq, smallInt, splitSigned } from './der.js';
import { encodeName, type DistinguishedName } from './certificate.js';
import { trustError } from './errors.js';
import { algorithmMatchesKey, publicKeyFromSpki, signatureAlgorithmFor, signBytes, spkiNode, verifyBytes } from './keys.js';
import { decodeOnePem, encodePem } from './pem.js';

/** A parsed, signature-checked CSR. */
export interface CertificationRequest {
  der: Buffer;
  /** The subject as the requester wrote it (the CA does not copy it: it names the cloud itself). */
  subjectName: Buffer;
  /** The requester's public key (proven: the CSR signature verifies with it). */
  publicKey: KeyObject;
}

/** Builds a CSR for `subject` signed by `privateKey` (RFC 2986 §4). */
export function createCsr(subject: DistinguishedName, publicKey: KeyObject, privateKey: KeyObject): Buffer {
  const info = seq(smallInt(0), decode(encodeName(subject), 'subject name'), spkiNode(publicKey), ctx(0, true, []));
  const infoDer = encode(info);
  const algorithm = signatureAlgorithmFor(privateKey);
  return encode(seq(decode(infoDer, 'certification request info'), algorithm, bits(signBytes(infoDer, privateKey))));
}

/** PEM of a DER CSR. */
export function csrToPem(der: Uint8Array): string {
  return encodePem(der, 'CERTIFICATE REQUEST');
}

/**
 * Parses a CSR and verifies its self-signature (RFC 2986 §3 step 3); a mismatch is
 * TRUST_CSR_SIGNATURE, so the CA never certifies a key the requester does not hold.
 */
export function parseCsrDer(der: Uint8Array): CertificationRequest {
  const buf = Buffer.from(der);
  const parts = splitSigned(buf, 'certification request');
  const fields = children(decode(parts.tbs, 'certification request info'), 'certification request info');
  if (readUintHex(fields[0], 'csr version') !== '00') throw trustError('TRUST_MALFORMED_CERT', 'certification request version is not 0');
  if (!fields[1] || !fields[2]) throw trustError('TRUST_MALFORMED_CERT', 'certification request lacks subject or public key');
  const publicKey = publicKeyFromSpki(encode(fields[2]));
  if (!algorithmMatchesKey(parts.algorithm, publicKey) || !verifyBytes(parts.tbs, parts.signature, publicKey)) {
    throw trustError('TRUST_CSR_SIGNATURE', 'certification request signature does not verify with its own public key');
  }
  return { der: buf, subjectName: encode(fields[1]), publicKey };
}

/** Parses a PEM CSR (`CERTIFICATE REQUEST`) and verifies its self-signature. */
export function parseCsrPem(pem: string): CertificationRequest {
  return parseCsrDer(decodeOnePem(pem, 'CERTIFICATE REQUEST'));
}

