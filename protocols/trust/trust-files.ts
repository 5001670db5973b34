/**
 * Loading trust material from files (I/O) for the daemon and the CLI: root certificates and
 * CRLs as PEM bundles, and a gateway's own certificate and key.
 */
import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { parseCertificatesPem, type Certificate } from './certificate.js';
import { parseCrlsPem, type Crl } from './crl.js';
import { trustError } from './errors.js';
import { privateKeyFromPem, signBytes, verifyBytes } from './keys.js';

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw trustError('TRUST_CA_STATE', `cannot read ${what} '${path}'`, { cause: err });
  }
}

/** Roots and CRLs, ready for `verifyCertificate` / `verifySignedPayload`. */
export interface TrustMaterial {
  roots: Certificate[];
  crls: Crl[];
}

/** Reads root bundles and CRL files. */
export async function loadTrustMaterial(files: { roots: string[]; crls?: string[] }): Promise<TrustMaterial> {
  const roots = (await Promise.all(files.roots.map((f) => readText(f, 'root certificate')))).flatMap(parseCertificatesPem);
  const crls = (await Promise.all((files.crls ?? []).map((f) => readText(f, 'crl')))).flatMap(parseCrlsPem);
  return { roots, crls };
}

/** A gateway's identity as files: its certificate (first PEM block; later ones are its chain) and key. */
export interface GatewayIdentity {
  certificate: Certificate;
  chain: Certificate[];
  privateKey: KeyObject;
  /** The PEM texts, for TLS options (`cert`, `key`). */
  certificatePem: string;
  keyPem: string;
}

/** Reads `cert.pem` + `cert.key` (as `intercloud ca issue --out` writes them). */
export async function loadGatewayIdentity(certFile: string, keyFile: string): Promise<GatewayIdentity> {
  const certificatePem = await readText(certFile, 'certificate');
  const keyPem = await readText(keyFile, 'private key');
  const [certificate, ...chain] = parseCertificatesPem(certificatePem) as [Certificate, ...Certificate[]];
  const privateKey = privateKeyFromPem(keyPem);
  const probe = Buffer.from(`intercloud key check ${certificate.fingerprint256}`);
  if (!verifyBytes(probe, signBytes(probe, privateKey), certificate.publicKey)) {
    throw trustError('TRUST_KEY_MISMATCH', `key '${keyFile}' does not belong to certificate '${certFile}'`);
  }
  return { certificate, chain, privateKey, certificatePem, keyPem };
}
