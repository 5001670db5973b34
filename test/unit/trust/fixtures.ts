/** Test PKI built in memory: a root, gateway identities and certificates with chosen defects. */
import type { KeyObject } from 'node:crypto';
import { IntercloudError } from '../../../protocols/errors/index.js';
import {
  buildCrl, createRootCertificate, generateKeyPair, issueGatewayCertificate, parseCrlDer,
  type Certificate, type Crl, type Issuer, type KeyType,
} from '../../../protocols/trust/index.js';

/** A fixed "now" so expiry tests do not depend on the machine's clock. */
export const NOW = new Date('2026-06-01T12:00:00.000Z');
export const DAY = 86_400_000;

/** A CA with its key. */
export interface TestCa extends Issuer {
  certificate: Certificate;
  privateKey: KeyObject;
}

/** A new root CA valid around {@link NOW}. */
export function makeRoot(keyType: KeyType = 'ec', commonName?: string): TestCa {
  const keys = generateKeyPair(keyType);
  return { certificate: createRootCertificate({ ...keys, now: new Date(NOW.getTime() - 30 * DAY), commonName }), privateKey: keys.privateKey };
}

/** A gateway identity with its key. */
export interface TestGateway {
  certificate: Certificate;
  privateKey: KeyObject;
}

/** A gateway certificate for `cloudId` issued by `ca`, valid from `issuedAt` for `days`. */
export function makeGateway(ca: TestCa, cloudId: string, options: { issuedAt?: Date; days?: number; keyType?: KeyType } = {}): TestGateway {
  const keys = generateKeyPair(options.keyType ?? 'ec');
  const certificate = issueGatewayCertificate(ca, {
    cloudId, publicKey: keys.publicKey, now: options.issuedAt ?? new Date(NOW.getTime() - DAY), days: options.days ?? 90,
  });
  return { certificate, privateKey: keys.privateKey };
}

/** A CRL of `ca` listing `revoked`, current at {@link NOW}. */
export function makeCrl(ca: TestCa, revoked: Certificate[], options: { thisUpdate?: Date; nextUpdate?: Date; signingKey?: KeyObject } = {}): Crl {
  return parseCrlDer(buildCrl({
    issuer: ca.certificate,
    signingKey: options.signingKey ?? ca.privateKey,
    revoked: revoked.map((c) => ({ serial: c.serial, revokedAt: new Date(NOW.getTime() - DAY) })),
    crlNumber: 7,
    thisUpdate: options.thisUpdate ?? new Date(NOW.getTime() - DAY),
    nextUpdate: options.nextUpdate ?? new Date(NOW.getTime() + 6 * DAY),
  }));
}

/** `der` with the byte at `offset` XORed with `mask`. */
export function flipByte(der: Buffer, offset: number, mask = 0x01): Buffer {
  const copy = Buffer.from(der);
  copy[offset]! ^= mask;
  return copy;
}

/** The code of the IntercloudError `fn` throws; fails the test when it throws nothing or something else. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof IntercloudError) return err.code;
    throw err;
  }
  throw new Error('expected a rejection');
}
