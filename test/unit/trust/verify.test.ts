import type { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IntercloudError } from '../../../protocols/errors/index.js';
import {
  buildCertificate, certificateToPem, createRootCertificate, generateKeyPair, issueServerCertificate,
  parseCertificateDer, parseCertificatePem, randomSerial, spkiKeyType, verifyCertificate, verifyCertificatePem, type VerifyOptions,
} from '../../../protocols/trust/index.js';
import { DAY, NOW, codeOf, flipByte, makeCrl, makeGateway, makeRoot } from './fixtures.js';

const root = makeRoot();
const gatewayA = makeGateway(root, 'cloud-a');
const base: VerifyOptions = { roots: [root.certificate], now: NOW };

describe('verifyCertificate accepts', () => {
  it('a gateway certificate from the root and returns its identity', () => {
    const id = verifyCertificate(gatewayA.certificate, { ...base, expectCloudId: 'cloud-a', expectJid: 'cloud-a@intercloud.test', purpose: 'clientAuth' });
    expect(id).toMatchObject({
      cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test', dns: ['cloud-a.intercloud.test'],
      fingerprint256: gatewayA.certificate.fingerprint256, rootFingerprint256: root.certificate.fingerprint256,
    });
    expect(id.notAfter.getTime()).toBe(gatewayA.certificate.notAfter.getTime());
  });

  it('an RSA-3072 root with an RSA gateway, and a JID compared case-insensitively', () => {
    const rsaRoot = makeRoot('rsa');
    const gw = makeGateway(rsaRoot, 'cloud-r', { keyType: 'rsa' });
    expect(gw.certificate.keyUsage?.has('keyEncipherment')).toBe(true);
    expect(verifyCertificate(gw.certificate, { roots: [rsaRoot.certificate], now: NOW, expectJid: 'Cloud-R@intercloud.test' }).cloudId).toBe('cloud-r');
  });

  it('a server certificate with its DNS name, and a good certificate next to a CRL that does not list it', () => {
    const keys = generateKeyPair();
    const server = issueServerCertificate(root, { dns: ['intercloud.test', 'localhost'], ips: ['127.0.0.1'], publicKey: keys.publicKey, now: NOW });
    const crl = makeCrl(root, [makeGateway(root, 'cloud-x').certificate]);
    const id = verifyCertificate(server, { ...base, crls: [crl], requireCrl: true, expectDns: 'localhost', purpose: 'serverAuth' });
    expect(id.cloudId).toBeUndefined();
    expect(id.subject).toBe('O=Intercloud, CN=intercloud.test');
  });

  it('a chain through an intermediate CA given in the PEM bundle', () => {
    const interKeys = generateKeyPair();
    const inter = parseCertificateDer(buildCertificate({
      serial: randomSerial(), subject: { commonName: 'Intercloud Region CA' }, issuerName: root.certificate.subjectName,
      issuerKeyId: root.certificate.subjectKeyId, notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + DAY),
      publicKey: interKeys.publicKey, signingKey: root.privateKey, basicConstraints: { ca: true, pathLen: 0 }, keyUsage: ['keyCertSign', 'cRLSign'],
    }));
    const leaf = makeGateway({ certificate: inter, privateKey: interKeys.privateKey }, 'cloud-i');
    const bundle = certificateToPem(leaf.certificate.der) + certificateToPem(inter.der);
    expect(verifyCertificatePem(bundle, { ...base, expectCloudId: 'cloud-i' }).cloudId).toBe('cloud-i');
    expect(codeOf(() => verifyCertificate(leaf.certificate, base))).toBe('TRUST_UNKNOWN_ISSUER');
  });
});

describe('verifyCertificate rejects', () => {
  it('an expired certificate (TRUST_EXPIRED)', () => {
    const old = makeGateway(root, 'cloud-a', { issuedAt: new Date(NOW.getTime() - 20 * DAY), days: 10 });
    expect(codeOf(() => verifyCertificate(old.certificate, base))).toBe('TRUST_EXPIRED');
  });

  it('a not-yet-valid certificate (TRUST_NOT_YET_VALID)', () => {
    const future = makeGateway(root, 'cloud-a', { issuedAt: new Date(NOW.getTime() + 2 * DAY) });
    expect(codeOf(() => verifyCertificate(future.certificate, base))).toBe('TRUST_NOT_YET_VALID');
  });

  it('a certificate from another root, even one with the same name (TRUST_UNKNOWN_ISSUER)', () => {
    const other = makeRoot('ec');
    expect(other.certificate.subject.text).toBe(root.certificate.subject.text);
    const foreign = makeGateway(other, 'cloud-a');
    expect(codeOf(() => verifyCertificate(foreign.certificate, base))).toBe('TRUST_UNKNOWN_ISSUER');
    const otherName = makeRoot('ec', 'Rogue Root');
    expect(codeOf(() => verifyCertificate(makeGateway(otherName, 'cloud-a').certificate, base))).toBe('TRUST_UNKNOWN_ISSUER');
  });

  it('a revoked certificate (TRUST_REVOKED) with the CRL number in details', () => {
    const crl = makeCrl(root, [gatewayA.certificate]);
    try {
      verifyCertificate(gatewayA.certificate, { ...base, crls: [crl] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(IntercloudError);
      expect((err as IntercloudError).code).toBe('TRUST_REVOKED');
      expect((err as IntercloudError).details).toMatchObject({ serial: gatewayA.certificate.serial, crlNumber: 7 });
    }
  });

  it('a CRL not signed by the root, or out of date (TRUST_CRL_INVALID)', () => {
    const forged = makeCrl(root, [], { signingKey: makeRoot().privateKey });
    expect(codeOf(() => verifyCertificate(gatewayA.certificate, { ...base, crls: [forged] }))).toBe('TRUST_CRL_INVALID');
    const stale = makeCrl(root, [], { thisUpdate: new Date(NOW.getTime() - 10 * DAY), nextUpdate: new Date(NOW.getTime() - DAY) });
    expect(codeOf(() => verifyCertificate(gatewayA.certificate, { ...base, crls: [stale] }))).toBe('TRUST_CRL_INVALID');
    expect(codeOf(() => verifyCertificate(gatewayA.certificate, { ...base, requireCrl: true }))).toBe('TRUST_CRL_INVALID');
  });

  it('a certificate naming another cloud, JID or DNS name (TRUST_IDENTITY_MISMATCH)', () => {
    expect(codeOf(() => verifyCertificate(gatewayA.certificate, { ...base, expectCloudId: 'cloud-b' }))).toBe('TRUST_IDENTITY_MISMATCH');
    expect(codeOf(() => verifyCertificate(gatewayA.certificate, { ...base, expectJid: 'cloud-b@intercloud.test' }))).toBe('TRUST_IDENTITY_MISMATCH');
    expect(codeOf(() => verifyCertificate(gatewayA.certificate, { ...base, expectDns: 'cloud-b.intercloud.test' }))).toBe('TRUST_IDENTITY_MISMATCH');
  });

  it('a self-signed leaf carrying a gateway identity (TRUST_SELF_SIGNED_LEAF)', () => {
    const keys = generateKeyPair();
    const self = parseCertificateDer(buildCertificate({
      serial: randomSerial(), subject: { commonName: 'cloud-a' }, notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + DAY),
      publicKey: keys.publicKey, signingKey: keys.privateKey, basicConstraints: { ca: false }, keyUsage: ['digitalSignature'],
      subjectAltNames: { uris: ['intercloud://cloud-a'], xmppAddrs: ['cloud-a@intercloud.test'] },
    }));
    expect(codeOf(() => verifyCertificate(self, { ...base, expectCloudId: 'cloud-a' }))).toBe('TRUST_SELF_SIGNED_LEAF');
    expect(codeOf(() => verifyCertificate(root.certificate, base))).toBe('TRUST_SELF_SIGNED_LEAF');
  });

  it('a root used as an identity when it is not itself trusted (TRUST_KEY_USAGE / TRUST_SELF_SIGNED_LEAF)', () => {
    const other = makeRoot();
    expect(codeOf(() => verifyCertificate(other.certificate, base))).toBe('TRUST_SELF_SIGNED_LEAF');
  });

  it('a CA certificate presented as a peer, a wrong EKU, and a leaf without digitalSignature (TRUST_KEY_USAGE)', () => {
    const keys = generateKeyPair();
    const common = {
      serial: randomSerial(), issuerName: root.certificate.subjectName, issuerKeyId: root.certificate.subjectKeyId,
      notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + DAY), publicKey: keys.publicKey, signingKey: root.privateKey,
    };
    const subCa = parseCertificateDer(buildCertificate({ ...common, subject: { commonName: 'sub' }, basicConstraints: { ca: true }, keyUsage: ['keyCertSign'] }));
    expect(codeOf(() => verifyCertificate(subCa, base))).toBe('TRUST_KEY_USAGE');
    const serverOnly = parseCertificateDer(buildCertificate({ ...common, subject: { commonName: 'x' }, basicConstraints: { ca: false }, keyUsage: ['digitalSignature'], extKeyUsage: ['1.3.6.1.5.5.7.3.1'] }));
    expect(codeOf(() => verifyCertificate(serverOnly, { ...base, purpose: 'clientAuth' }))).toBe('TRUST_KEY_USAGE');
    const noSign = parseCertificateDer(buildCertificate({ ...common, subject: { commonName: 'y' }, basicConstraints: { ca: false }, keyUsage: ['keyAgreement'] }));
    expect(codeOf(() => verifyCertificate(noSign, base))).toBe('TRUST_KEY_USAGE');
  });

  it('a leaf issued by an end-entity certificate (TRUST_NOT_CA)', () => {
    const leafIssued = makeGateway({ certificate: gatewayA.certificate, privateKey: gatewayA.privateKey }, 'cloud-z');
    expect(codeOf(() => verifyCertificate(leafIssued.certificate, { ...base, intermediates: [gatewayA.certificate] }))).toBe('TRUST_NOT_CA');
  });

  it('a tampered certificate: a changed subject byte or signature byte (TRUST_BAD_SIGNATURE)', () => {
    const der = gatewayA.certificate.der;
    const cn = der.indexOf(Buffer.from('cloud-a'));
    const renamed = flipByte(der, cn + 6, 'a'.charCodeAt(0) ^ 'b'.charCodeAt(0));
    const parsed = parseCertificateDer(renamed);
    expect(parsed.subject.commonName).toBe('cloud-b');
    expect(codeOf(() => verifyCertificate(parsed, base))).toBe('TRUST_BAD_SIGNATURE');
    const badSig = parseCertificateDer(flipByte(der, der.length - 3));
    expect(codeOf(() => verifyCertificate(badSig, base))).toBe('TRUST_BAD_SIGNATURE');
  });

  it('a tampered certificate whose DER no longer parses (TRUST_MALFORMED_CERT)', () => {
    const der = gatewayA.certificate.der;
    expect(codeOf(() => parseCertificateDer(flipByte(der, 1, 0x7f)))).toBe('TRUST_MALFORMED_CERT');
    expect(codeOf(() => parseCertificateDer(der.subarray(0, der.length - 10)))).toBe('TRUST_MALFORMED_CERT');
  });

  it('malformed PEM: no block, a body that is not base64, an empty body (TRUST_MALFORMED_PEM)', () => {
    const pem = certificateToPem(gatewayA.certificate.der);
    expect(codeOf(() => verifyCertificatePem('hello', base))).toBe('TRUST_MALFORMED_PEM');
    expect(codeOf(() => parseCertificatePem(pem.replace('MII', 'M*I')))).toBe('TRUST_MALFORMED_PEM');
    expect(codeOf(() => parseCertificatePem('-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n'))).toBe('TRUST_MALFORMED_PEM');
    expect(codeOf(() => parseCertificatePem(pem.replace('-----END CERTIFICATE-----', '')))).toBe('TRUST_MALFORMED_PEM');
    expect(codeOf(() => parseCertificatePem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'))).toBe('TRUST_MALFORMED_CERT');
  });

  it('an expired root (TRUST_EXPIRED at depth 1)', () => {
    const keys = generateKeyPair();
    const shortRoot = { certificate: createRootCertificate({ ...keys, now: new Date(NOW.getTime() - 10 * DAY), days: 5 }), privateKey: keys.privateKey };
    const gw = makeGateway(shortRoot, 'cloud-a', { issuedAt: new Date(NOW.getTime() - 2 * DAY) });
    try {
      verifyCertificate(gw.certificate, { roots: [shortRoot.certificate], now: NOW });
      expect.unreachable();
    } catch (err) {
      expect((err as IntercloudError).code).toBe('TRUST_EXPIRED');
      expect((err as IntercloudError).details['depth']).toBe(1);
    }
  });
});

describe('key policy', () => {
  it('a leaf with a P-384 key is TRUST_UNSUPPORTED_ALGORITHM', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const cert = parseCertificateDer(buildCertificate({
      serial: randomSerial(), subject: { commonName: 'cloud-p' }, issuerName: root.certificate.subjectName, issuerKeyId: root.certificate.subjectKeyId,
      notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + DAY), publicKey: p384.publicKey, signingKey: root.privateKey,
      basicConstraints: { ca: false }, keyUsage: ['digitalSignature'],
    }));
    expect(codeOf(() => verifyCertificate(cert, base))).toBe('TRUST_UNSUPPORTED_ALGORITHM');
  });
});

describe('spkiKeyType', () => {
  it('reads the key policy from DER: P-256 and RSA >= 2048 pass, RSA-1024 does not', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const spki = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });
    expect(spkiKeyType(spki(generateKeyPair('ec').publicKey))).toBe('ec');
    expect(spkiKeyType(spki(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey))).toBe('rsa');
    expect(codeOf(() => spkiKeyType(spki(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)))).toBe('TRUST_UNSUPPORTED_ALGORITHM');
    expect(codeOf(() => spkiKeyType(spki(generateKeyPairSync('ed25519').publicKey)))).toBe('TRUST_UNSUPPORTED_ALGORITHM');
  });
});
