import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  certificateToPem, crlToPem, loadGatewayIdentity, loadTrustMaterial, privateKeyToPem, trustDecisionEvent,
  verifyCertificate, verifyCertificateDer,
} from '../../../protocols/trust/index.js';
import { DAY, NOW, codeOf, makeCrl, makeGateway, makeRoot } from './fixtures.js';

const root = makeRoot();
const gw = makeGateway(root, 'cloud-a');

describe('trust material from files', () => {
  it('loads roots, CRLs and a gateway identity, and refuses a key of another certificate (TRUST_KEY_MISMATCH)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trust-files-'));
    writeFileSync(join(dir, 'root.pem'), certificateToPem(root.certificate.der));
    writeFileSync(join(dir, 'crl.pem'), crlToPem(makeCrl(root, []).der));
    writeFileSync(join(dir, 'gw.pem'), certificateToPem(gw.certificate.der));
    writeFileSync(join(dir, 'gw.key'), privateKeyToPem(gw.privateKey));
    writeFileSync(join(dir, 'other.key'), privateKeyToPem(makeGateway(root, 'cloud-b').privateKey));
    const material = await loadTrustMaterial({ roots: [join(dir, 'root.pem')], crls: [join(dir, 'crl.pem')] });
    const identity = await loadGatewayIdentity(join(dir, 'gw.pem'), join(dir, 'gw.key'));
    expect(verifyCertificate(identity.certificate, { ...material, now: NOW, requireCrl: true }).cloudId).toBe('cloud-a');
    await expect(loadGatewayIdentity(join(dir, 'gw.pem'), join(dir, 'other.key'))).rejects.toMatchObject({ code: 'TRUST_KEY_MISMATCH' });
    await expect(loadTrustMaterial({ roots: [join(dir, 'missing.pem')] })).rejects.toMatchObject({ code: 'TRUST_CA_STATE' });
  });
});

describe('verification helpers', () => {
  it('verifyCertificateDer takes the raw DER of a TLS peer certificate', () => {
    expect(verifyCertificateDer(gw.certificate.der, { roots: [root.certificate], now: NOW }).jid).toBe('cloud-a@intercloud.test');
  });

  it('clockSkewMs widens the validity window and nothing else', () => {
    const justExpired = new Date(gw.certificate.notAfter.getTime() + 10_000);
    expect(codeOf(() => verifyCertificate(gw.certificate, { roots: [root.certificate], now: justExpired }))).toBe('TRUST_EXPIRED');
    expect(verifyCertificate(gw.certificate, { roots: [root.certificate], now: justExpired, clockSkewMs: 30_000 }).cloudId).toBe('cloud-a');
    expect(codeOf(() => verifyCertificate(gw.certificate, { roots: [root.certificate], now: new Date(justExpired.getTime() + DAY), clockSkewMs: 30_000 }))).toBe('TRUST_EXPIRED');
  });

  it('trustDecisionEvent records good and rejected verdicts with the code', () => {
    const good = verifyCertificate(gw.certificate, { roots: [root.certificate], now: NOW });
    expect(trustDecisionEvent('xmpp-peer', good)).toEqual({
      type: 'trust.verify', context: 'xmpp-peer', verdict: 'good', cloudId: 'cloud-a', fingerprint256: gw.certificate.fingerprint256, serial: gw.certificate.serial,
    });
    let rejection: unknown;
    try {
      verifyCertificate(gw.certificate, { roots: [root.certificate], now: NOW, expectCloudId: 'cloud-b' });
    } catch (err) {
      rejection = err;
    }
    expect(trustDecisionEvent('amqp-peer', rejection, { peer: '127.0.0.1' })).toMatchObject({
      type: 'trust.verify', context: 'amqp-peer', verdict: 'rejected', code: 'TRUST_IDENTITY_MISMATCH', fingerprint256: gw.certificate.fingerprint256, peer: '127.0.0.1',
    });
  });
});
