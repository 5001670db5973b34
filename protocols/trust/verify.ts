/**
 * Certificate path validation for Intercloud peers (a profile of RFC 5280 §6): chain to a
 * trusted root (optionally through intermediates), signatures, validity windows at an
 * injected `now`, basicConstraints/keyUsage/extKeyUsage, critical extensions, revocation
 * by CRL, and the peer's identity (cloud id from the `intercloud://` URI SAN, JID from
 * id-on-xmppAddr). Pure: no clock, no files.
 */
import { isIntercloudError } from '../errors/index.js';
import { parseCertificateDer, parseCertificatesPem, type Certificate, type KeyUsage } from './certificate.js';
import type { Crl } from './crl.js';
import { trustError } from './errors.js';
import { algorithmMatchesKey, spkiKeyType, verifyBytes } from './keys.js';
import { OID } from './oids.js';

/** What a verified peer certificate says about the peer. */
export interface PeerIdentity {
  /** From the single `intercloud://<id>` URI SAN; undefined for a server certificate. */
  cloudId?: string;
  /** From the single id-on-xmppAddr SAN; undefined when absent. */
  jid?: string;
  /** dNSName SANs. */
  dns: string[];
  /** SHA-256 of the certificate DER, lowercase hex. */
  fingerprint256: string;
  serial: string;
  subject: string;
  notAfter: Date;
  /** Fingerprint of the root the chain ends at. */
  rootFingerprint256: string;
}

/** Options of {@link verifyCertificate}. */
export interface VerifyOptions {
  /** Trust anchors (self-signed CA certificates). */
  roots: readonly Certificate[];
  /** Untrusted CA certificates that may complete the chain. */
  intermediates?: readonly Certificate[];
  /** CRLs; each one whose issuer is in the chain is checked (signature, window, entries). */
  crls?: readonly Crl[];
  /** The time to validate at (the caller's clock, possibly corrected by measured offset). */
  now: Date;
  /** The leaf must allow this extKeyUsage purpose. */
  purpose?: 'serverAuth' | 'clientAuth';
  /** The peer must be this cloud (URI SAN `intercloud://<id>`). */
  expectCloudId?: string;
  /** The peer must be this JID (id-on-xmppAddr SAN). */
  expectJid?: string;
  /** The peer must carry this DNS SAN. */
  expectDns?: string;
  /** Fail (TRUST_CRL_INVALID) when no CRL covers an issuer in the chain. */
  requireCrl?: boolean;
  /** Allowance for clocks that disagree, applied to certificate and CRL validity windows (default 0). */
  clockSkewMs?: number;
}

const MAX_CHAIN = 5;
const rootChecked = new WeakMap<Certificate, true>();
const crlChecked = new WeakMap<Crl, Certificate>();

function signedBy(tbs: Buffer, algorithm: Buffer, signature: Buffer, issuer: Certificate): boolean {
  return algorithmMatchesKey(algorithm, issuer.publicKey) && verifyBytes(tbs, signature, issuer.publicKey);
}

function describe(cert: Certificate, depth: number): Record<string, unknown> {
  return { depth, subject: cert.subject.text, serial: cert.serial, fingerprint256: cert.fingerprint256 };
}

function checkWindow(cert: Certificate, now: Date, depth: number, skewMs: number): void {
  if (now.getTime() + skewMs < cert.notBefore.getTime()) {
    throw trustError('TRUST_NOT_YET_VALID', `certificate '${cert.subject.text}' is not valid before '${cert.notBefore.toISOString()}'`, {
      details: { ...describe(cert, depth), notBefore: cert.notBefore.toISOString(), now: now.toISOString() },
    });
  }
  if (now.getTime() - skewMs > cert.notAfter.getTime()) {
    throw trustError('TRUST_EXPIRED', `certificate '${cert.subject.text}' expired at '${cert.notAfter.toISOString()}'`, {
      details: { ...describe(cert, depth), notAfter: cert.notAfter.toISOString(), now: now.toISOString() },
    });
  }
}

function checkCritical(cert: Certificate, depth: number): void {
  // RFC 5280 §4.2: a critical extension that is not recognised must cause rejection.
  if (cert.unknownCritical.length > 0) {
    throw trustError('TRUST_UNKNOWN_CRITICAL_EXTENSION', `certificate '${cert.subject.text}' has unknown critical extension '${cert.unknownCritical[0]}'`, {
      details: { ...describe(cert, depth), extensions: cert.unknownCritical },
    });
  }
}

function hasUsage(cert: Certificate, usage: KeyUsage): boolean {
  return cert.keyUsage === undefined || cert.keyUsage.has(usage);
}

function checkCa(ca: Certificate, depth: number, below: number): void {
  // RFC 5280 §6.1.4 (k), (l), (n): an issuer is a CA, within its pathLen, allowed to sign certificates.
  if (ca.basicConstraints?.ca !== true || !hasUsage(ca, 'keyCertSign')) {
    throw trustError('TRUST_NOT_CA', `issuer '${ca.subject.text}' is not a certificate authority (basicConstraints/keyUsage)`, { details: describe(ca, depth) });
  }
  const pathLen = ca.basicConstraints.pathLen;
  if (pathLen !== undefined && below > pathLen) {
    throw trustError('TRUST_NOT_CA', `issuer '${ca.subject.text}' allows ${pathLen} intermediate(s) below it, found ${below}`, { details: describe(ca, depth) });
  }
}

function isSelfSigned(cert: Certificate): boolean {
  if (!cert.issuerName.equals(cert.subjectName)) return false;
  if (cert.authorityKeyId && cert.subjectKeyId && !cert.authorityKeyId.equals(cert.subjectKeyId)) return false;
  return signedBy(cert.tbs, cert.signatureAlgorithm, cert.signature, cert);
}

function checkRoot(root: Certificate, now: Date, depth: number, skewMs: number): void {
  if (!rootChecked.has(root)) {
    checkCritical(root, depth);
    if (!isSelfSigned(root)) {
      throw trustError('TRUST_BAD_SIGNATURE', `trust anchor '${root.subject.text}' is not a valid self-signed certificate`, { details: describe(root, depth) });
    }
    rootChecked.set(root, true);
  }
  checkWindow(root, now, depth, skewMs);
}

function findIssuer(cert: Certificate, pool: readonly Certificate[], depth: number): Certificate | undefined {
  let nameMatched: Certificate | undefined;
  for (const candidate of pool) {
    if (!candidate.subjectName.equals(cert.issuerName)) continue;
    if (cert.authorityKeyId && candidate.subjectKeyId && !cert.authorityKeyId.equals(candidate.subjectKeyId)) continue;
    nameMatched = candidate;
    if (signedBy(cert.tbs, cert.signatureAlgorithm, cert.signature, candidate)) return candidate;
  }
  if (nameMatched) {
    throw trustError('TRUST_BAD_SIGNATURE', `certificate '${cert.subject.text}' signature does not verify with issuer '${nameMatched.subject.text}'`, {
      details: describe(cert, depth),
    });
  }
  return undefined;
}

/**
 * The root among `roots` that issued and signed `crl` (RFC 5280 §6.3.3 (f), (g): issuer name,
 * authority key id, cRLSign usage, signature). Throws `TRUST_CRL_INVALID` when none did — for
 * a CRL file that is about to replace the one in force.
 */
export function crlIssuer(crl: Crl, roots: readonly Certificate[]): Certificate {
  for (const root of roots) {
    if (!crl.issuerName.equals(root.subjectName)) continue;
    if (crl.authorityKeyId && root.subjectKeyId && !crl.authorityKeyId.equals(root.subjectKeyId)) continue;
    if (hasUsage(root, 'cRLSign') && signedBy(crl.tbs, crl.signatureAlgorithm, crl.signature, root)) return root;
  }
  throw trustError('TRUST_CRL_INVALID', `crl #${crl.crlNumber ?? '?'} is not signed by a trusted root`, { details: { crlNumber: crl.crlNumber } });
}

function checkRevocation(cert: Certificate, issuer: Certificate, options: VerifyOptions, depth: number): void {
  let covered = false;
  for (const crl of options.crls ?? []) {
    if (!crl.issuerName.equals(issuer.subjectName)) continue;
    if (crl.authorityKeyId && issuer.subjectKeyId && !crl.authorityKeyId.equals(issuer.subjectKeyId)) continue;
    if (crlChecked.get(crl) !== issuer) {
      // RFC 5280 §6.3.3 (f), (g): the CRL is signed by the certificate's issuer, which may sign CRLs.
      if (!hasUsage(issuer, 'cRLSign') || !signedBy(crl.tbs, crl.signatureAlgorithm, crl.signature, issuer)) {
        throw trustError('TRUST_CRL_INVALID', `crl of '${issuer.subject.text}' is not signed by it`, { details: { ...describe(issuer, depth + 1), crlNumber: crl.crlNumber } });
      }
      if (crl.unknownCritical.length > 0) {
        throw trustError('TRUST_CRL_INVALID', `crl of '${issuer.subject.text}' has unknown critical extension '${crl.unknownCritical[0]}'`, { details: { crlNumber: crl.crlNumber } });
      }
      crlChecked.set(crl, issuer);
    }
    // RFC 5280 §6.3.3 (a): the CRL must be current.
    const skew = options.clockSkewMs ?? 0;
    if (crl.thisUpdate.getTime() > options.now.getTime() + skew || (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < options.now.getTime() - skew)) {
      throw trustError('TRUST_CRL_INVALID', `crl #${crl.crlNumber ?? '?'} of '${issuer.subject.text}' is not current (thisUpdate '${crl.thisUpdate.toISOString()}', nextUpdate '${crl.nextUpdate?.toISOString() ?? 'none'}')`, {
        details: { crlNumber: crl.crlNumber, thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate?.toISOString(), now: options.now.toISOString() },
      });
    }
    covered = true;
    const revokedAt = crl.revoked.get(cert.serial);
    if (revokedAt !== undefined) {
      throw trustError('TRUST_REVOKED', `certificate '${cert.subject.text}' serial '${cert.serial}' was revoked at '${revokedAt.toISOString()}'`, {
        details: { ...describe(cert, depth), revokedAt: revokedAt.toISOString(), crlNumber: crl.crlNumber },
      });
    }
  }
  if (!covered && options.requireCrl) {
    throw trustError('TRUST_CRL_INVALID', `no crl of '${issuer.subject.text}' was given`, { details: describe(issuer, depth + 1) });
  }
}

function cloudIdsOf(cert: Certificate): string[] {
  return cert.subjectAltNames.uris.filter((u) => u.startsWith('intercloud://')).map((u) => u.slice('intercloud://'.length));
}

function checkIdentity(leaf: Certificate, options: VerifyOptions): void {
  const mismatch = (what: string, expected: string, found: readonly string[]): never => {
    throw trustError('TRUST_IDENTITY_MISMATCH', `certificate '${leaf.subject.text}' does not name ${what} '${expected}' (it names ${found.length ? found.map((f) => `'${f}'`).join(', ') : 'none'})`, {
      details: { expected, found, kind: what, fingerprint256: leaf.fingerprint256 },
    });
  };
  if (options.expectCloudId !== undefined) {
    const ids = cloudIdsOf(leaf);
    if (ids.length !== 1 || ids[0] !== options.expectCloudId) mismatch('cloud', options.expectCloudId, ids);
  }
  if (options.expectJid !== undefined) {
    const want = options.expectJid.toLowerCase();
    if (!leaf.subjectAltNames.xmppAddrs.some((j) => j.toLowerCase() === want)) mismatch('jid', options.expectJid, leaf.subjectAltNames.xmppAddrs);
  }
  if (options.expectDns !== undefined) {
    const want = options.expectDns.toLowerCase();
    if (!leaf.subjectAltNames.dns.some((d) => d.toLowerCase() === want)) mismatch('dns name', options.expectDns, leaf.subjectAltNames.dns);
  }
}

/**
 * Verifies an end-entity certificate and returns the peer identity it proves, or throws an
 * IntercloudError: TRUST_SELF_SIGNED_LEAF, TRUST_UNKNOWN_ISSUER, TRUST_BAD_SIGNATURE,
 * TRUST_NOT_YET_VALID, TRUST_EXPIRED, TRUST_KEY_USAGE, TRUST_NOT_CA,
 * TRUST_UNKNOWN_CRITICAL_EXTENSION, TRUST_CRL_INVALID, TRUST_REVOKED or
 * TRUST_IDENTITY_MISMATCH.
 */
export function verifyCertificate(leaf: Certificate, options: VerifyOptions): PeerIdentity {
  checkCritical(leaf, 0);
  // The key policy (ECDSA P-256 or RSA >= 2048), else TRUST_UNSUPPORTED_ALGORITHM.
  spkiKeyType(leaf.spki);
  if (options.roots.some((r) => r.fingerprint256 === leaf.fingerprint256) || isSelfSigned(leaf)) {
    throw trustError('TRUST_SELF_SIGNED_LEAF', `certificate '${leaf.subject.text}' is self-signed and cannot identify a peer`, { details: describe(leaf, 0) });
  }
  // RFC 5280 §4.2.1.9: an end entity is not a CA; §4.2.1.3/§4.2.1.12: it may sign and is meant for the purpose.
  if (leaf.basicConstraints?.ca === true) {
    throw trustError('TRUST_KEY_USAGE', `certificate '${leaf.subject.text}' is a ca certificate, not a peer identity`, { details: describe(leaf, 0) });
  }
  if (!hasUsage(leaf, 'digitalSignature')) {
    throw trustError('TRUST_KEY_USAGE', `certificate '${leaf.subject.text}' keyUsage lacks digitalSignature`, { details: { ...describe(leaf, 0), keyUsage: [...(leaf.keyUsage ?? [])] } });
  }
  if (options.purpose && leaf.extKeyUsage && !leaf.extKeyUsage.includes(OID[options.purpose]) && !leaf.extKeyUsage.includes('2.5.29.37.0')) {
    throw trustError('TRUST_KEY_USAGE', `certificate '${leaf.subject.text}' extKeyUsage does not allow '${options.purpose}'`, { details: { ...describe(leaf, 0), extKeyUsage: leaf.extKeyUsage } });
  }

  let current = leaf;
  let anchor: Certificate | undefined;
  const path: Certificate[] = [leaf];
  while (anchor === undefined) {
    const depth = path.length - 1;
    const root = findIssuer(current, options.roots, depth);
    const issuer = root ?? findIssuer(current, (options.intermediates ?? []).filter((c) => !path.includes(c)), depth);
    if (!issuer) {
      throw trustError('TRUST_UNKNOWN_ISSUER', `no trusted issuer '${current.issuer.text}' for certificate '${current.subject.text}'`, {
        details: { ...describe(current, depth), issuer: current.issuer.text },
      });
    }
    checkWindow(current, options.now, depth, options.clockSkewMs ?? 0);
    checkCa(issuer, depth + 1, depth);
    if (!root) checkCritical(issuer, depth + 1);
    checkRevocation(current, issuer, options, depth);
    if (root) {
      checkRoot(root, options.now, depth + 1, options.clockSkewMs ?? 0);
      anchor = root;
      continue;
    }
    path.push(issuer);
    current = issuer;
    if (path.length > MAX_CHAIN) {
      throw trustError('TRUST_UNKNOWN_ISSUER', `no trusted root within ${MAX_CHAIN} certificates of '${leaf.subject.text}'`, { details: describe(leaf, 0) });
    }
  }
  checkIdentity(leaf, options);
  const ids = cloudIdsOf(leaf);
  return {
    cloudId: ids.length === 1 ? ids[0] : undefined,
    jid: leaf.subjectAltNames.xmppAddrs.length === 1 ? leaf.subjectAltNames.xmppAddrs[0] : undefined,
    dns: [...leaf.subjectAltNames.dns],
    fingerprint256: leaf.fingerprint256,
    serial: leaf.serial,
    subject: leaf.subject.text,
    notAfter: leaf.notAfter,
    rootFingerprint256: anchor.fingerprint256,
  };
}

/** Verifies a DER certificate, e.g. `tlsSocket.getPeerCertificate().raw`. */
export function verifyCertificateDer(der: Uint8Array, options: VerifyOptions): PeerIdentity {
  return verifyCertificate(parseCertificateDer(der), options);
}

/**
 * Verifies a PEM certificate (the first block; later blocks are taken as intermediates),
 * mapping undecodable input to TRUST_MALFORMED_PEM / TRUST_MALFORMED_CERT.
 */
export function verifyCertificatePem(pem: string, options: VerifyOptions): PeerIdentity {
  const [leaf, ...chain] = parseCertificatesPem(pem);
  return verifyCertificate(leaf!, chain.length === 0 ? options : { ...options, intermediates: [...(options.intermediates ?? []), ...chain] });
}

/** True when `err` is a verification verdict (a trust code), as opposed to a bug. */
export function isTrustRejection(err: unknown): boolean {
  return isIntercloudError(err) && err.code.startsWith('TRUST_');
}

/** The audit event of one trust decision: who, which certificate, the verdict and its code. */
export interface TrustDecisionEvent {
  type: 'trust.verify';
  /** What was being verified, e.g. `xmpp-peer`, `amqp-peer`, `signed-message`. */
  context: string;
  verdict: 'good' | 'rejected';
  cloudId?: string;
  fingerprint256?: string;
  code?: string;
  message?: string;
  [field: string]: unknown;
}

/**
 * Builds the audit event for a verification outcome (an identity, or the error it threw),
 * so every area records trust decisions the same way: `audit.append(trustDecisionEvent(…))`.
 */
export function trustDecisionEvent(context: string, outcome: PeerIdentity | unknown, extra: Record<string, unknown> = {}): TrustDecisionEvent {
  if (outcome !== null && typeof outcome === 'object' && 'fingerprint256' in outcome && 'rootFingerprint256' in outcome) {
    const id = outcome as PeerIdentity;
    return { type: 'trust.verify', context, verdict: 'good', ...(id.cloudId ? { cloudId: id.cloudId } : {}), fingerprint256: id.fingerprint256, serial: id.serial, ...extra };
  }
  if (isIntercloudError(outcome)) {
    const fp = outcome.details['fingerprint256'];
    return { type: 'trust.verify', context, verdict: 'rejected', code: outcome.code, message: outcome.message, ...(typeof fp === 'string' ? { fingerprint256: fp } : {}), ...extra };
  }
  return { type: 'trust.verify', context, verdict: 'rejected', code: 'UNEXPECTED', message: outcome instanceof Error ? outcome.message : String(outcome), ...extra };
}
