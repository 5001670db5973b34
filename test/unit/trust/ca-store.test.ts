import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CA_FILES, assertCloudIdFree, initCaDirectory, parseCertificatePem, readCaDirectory, updateCaState, verifyCertificate, withCaLock, writeFileAtomic, type IssuedRecord,
} from '../../../protocols/trust/index.js';

const now = new Date('2026-06-01T12:00:00Z');

describe('CA directory', () => {
  it('init writes a CA root (critical basicConstraints and keyUsage), a 0600 key and a state', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ca-')), 'root');
    await initCaDirectory(dir, { now });
    expect(statSync(join(dir, CA_FILES.key)).mode & 0o777).toBe(0o600);
    const root = parseCertificatePem(readFileSync(join(dir, CA_FILES.root), 'utf8'));
    expect(root.basicConstraints).toEqual({ ca: true });
    expect([...(root.keyUsage ?? [])].sort()).toEqual(['cRLSign', 'keyCertSign']);
    expect(root.subjectKeyId?.equals(root.authorityKeyId ?? Buffer.alloc(0))).toBe(true);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const ca = readCaDirectory(dir);
    expect(ca.state).toMatchObject({ version: 1, keyType: 'ec', nextCrlNumber: 1, issued: [], revoked: [], rootFingerprint256: root.fingerprint256 });
  });

  it('init refuses to overwrite a root (TRUST_CA_EXISTS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    await initCaDirectory(dir, { now });
    await expect(initCaDirectory(dir, { now })).rejects.toMatchObject({ code: 'TRUST_CA_EXISTS' });
  });

  it('reading a directory without a CA is TRUST_CA_STATE', () => {
    expect(() => readCaDirectory(mkdtempSync(join(tmpdir(), 'ca-')))).toThrowError(expect.objectContaining({ code: 'TRUST_CA_STATE' }) as Error);
  });

  it('state updates are serialised by the lock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    await initCaDirectory(dir, { now });
    await Promise.all(Array.from({ length: 5 }, () => updateCaState(dir, (ca) => { ca.state.nextCrlNumber += 1; })));
    expect(readCaDirectory(dir).state.nextCrlNumber).toBe(6);
    await withCaLock(dir, async () => {
      await expect(withCaLock(dir, () => 1, 100)).rejects.toMatchObject({ code: 'TRUST_CA_LOCKED' });
    });
  });

  it('an RSA root signs certificates that verify', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    const ca = await initCaDirectory(dir, { now, keyType: 'rsa' });
    expect(ca.issuer.certificate.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(() => verifyCertificate(ca.issuer.certificate, { roots: [ca.issuer.certificate], now })).toThrowError(expect.objectContaining({ code: 'TRUST_SELF_SIGNED_LEAF' }) as Error);
  });
});

describe('writeFileAtomic', () => {
  it('an unwritable path is TRUST_WRITE_FAILED and leaves no temporary file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    expect(() => writeFileAtomic(join(dir, 'missing', 'x.pem'), 'x')).toThrowError(expect.objectContaining({ code: 'TRUST_WRITE_FAILED' }) as Error);
    writeFileAtomic(join(dir, 'x.pem'), 'y', 0o600);
    expect(readFileSync(join(dir, 'x.pem'), 'utf8')).toBe('y');
    expect(readdirSync(dir)).toEqual(['x.pem']);
  });
});

describe('one cloud id, one JID (issue 13 review)', () => {
  const rec = (over: Partial<IssuedRecord>): IssuedRecord => ({
    serial: '01', kind: 'gateway', name: 'cloud-a', fingerprint256: 'x', notAfter: '2026-09-01T00:00:00Z', issuedAt: '2026-05-01T00:00:00Z', jid: 'cloud-a@intercloud.test', ...over,
  });

  it('refuses cloud-a on another Root while a live certificate names cloud-a@intercloud.test', () => {
    expect(() => assertCloudIdFree({ issued: [rec({})], revoked: [] }, 'cloud-a', 'cloud-a@root2.test', now))
      .toThrowError(expect.objectContaining({ code: 'TRUST_BAD_ARGUMENT' }) as Error);
  });

  it('renews on the same JID, and moves once the old certificate is revoked or expired', () => {
    expect(() => assertCloudIdFree({ issued: [rec({})], revoked: [] }, 'cloud-a', 'cloud-a@intercloud.test', now)).not.toThrow();
    expect(() => assertCloudIdFree({ issued: [rec({})], revoked: [{ serial: '01', revokedAt: '2026-05-02T00:00:00Z' }] }, 'cloud-a', 'cloud-a@root2.test', now)).not.toThrow();
    expect(() => assertCloudIdFree({ issued: [rec({ notAfter: '2026-05-31T00:00:00Z' })], revoked: [] }, 'cloud-a', 'cloud-a@root2.test', now)).not.toThrow();
    expect(() => assertCloudIdFree({ issued: [rec({ name: 'cloud-b', jid: 'cloud-b@intercloud.test' })], revoked: [] }, 'cloud-a', 'cloud-a@root2.test', now)).not.toThrow();
  });
});
