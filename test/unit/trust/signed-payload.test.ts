import { describe, expect, it } from 'vitest';
import {
  ReplayCache, buildCertificate, generateKeyPair, parseCertificateDer, randomSerial, signPayload, verifySignedPayload,
  type SignedEnvelope, type VerifyPayloadOptions,
} from '../../../protocols/trust/index.js';
import { DAY, NOW, codeOf, makeCrl, makeGateway, makeRoot } from './fixtures.js';

const root = makeRoot();
const cloudA = makeGateway(root, 'cloud-a');
const offer = { vm: 'web1', vcpus: 2, memoryMiB: 2048, disks: [{ name: 'root', bytes: 1073741824 }], region: 'eu' };

function options(extra: Partial<VerifyPayloadOptions> = {}): VerifyPayloadOptions {
  return { roots: [root.certificate], now: NOW, replayCache: new ReplayCache(), ...extra };
}

function sign(at = NOW, ttlMs = 60_000): SignedEnvelope<typeof offer> {
  return signPayload(offer, cloudA, { now: at, type: 'negotiation/offer', ttlMs });
}

describe('signed payloads', () => {
  it('verify after a JSON round trip and name the signer', () => {
    const env = JSON.parse(JSON.stringify(sign())) as unknown;
    const v = verifySignedPayload<typeof offer>(env, options({ expectCloudId: 'cloud-a', expectType: 'negotiation/offer' }));
    expect(v.payload).toEqual(offer);
    expect(v.signer.cloudId).toBe('cloud-a');
    expect(v.expiresAt.getTime() - v.issuedAt.getTime()).toBe(60_000);
  });

  it('do not depend on the order of keys in the payload', () => {
    const env = sign();
    const reordered = { ...env, payload: { region: 'eu', disks: offer.disks, memoryMiB: 2048, vcpus: 2, vm: 'web1' } };
    expect(verifySignedPayload(reordered, options()).payload).toEqual(offer);
  });

  it('an expired message is TRUST_MESSAGE_EXPIRED, but not within the clock-skew allowance', () => {
    const env = sign(new Date(NOW.getTime() - 120_000), 60_000);
    expect(codeOf(() => verifySignedPayload(env, options()))).toBe('TRUST_MESSAGE_EXPIRED');
    expect(verifySignedPayload(env, options({ clockSkewMs: 61_000 })).signer.cloudId).toBe('cloud-a');
  });

  it('a message issued in the future is TRUST_MESSAGE_NOT_YET_VALID', () => {
    expect(codeOf(() => verifySignedPayload(sign(new Date(NOW.getTime() + 600_000)), options()))).toBe('TRUST_MESSAGE_NOT_YET_VALID');
  });

  it('a replayed message is TRUST_MESSAGE_REPLAYED', () => {
    const env = sign();
    const replayCache = new ReplayCache();
    verifySignedPayload(env, options({ replayCache }));
    expect(codeOf(() => verifySignedPayload(env, options({ replayCache, now: new Date(NOW.getTime() + 1000) })))).toBe('TRUST_MESSAGE_REPLAYED');
  });

  it('a tampered payload, nonce, expiry or type is TRUST_MESSAGE_TAMPERED', () => {
    const env = sign();
    expect(codeOf(() => verifySignedPayload({ ...env, payload: { ...offer, vcpus: 64 } }, options()))).toBe('TRUST_MESSAGE_TAMPERED');
    expect(codeOf(() => verifySignedPayload({ ...env, nonce: 'AAAAAAAAAAAAAAAAAAAAAA' }, options()))).toBe('TRUST_MESSAGE_TAMPERED');
    expect(codeOf(() => verifySignedPayload({ ...env, expiresAt: new Date(NOW.getTime() + 3_600_000).toISOString() }, options()))).toBe('TRUST_MESSAGE_TAMPERED');
    expect(codeOf(() => verifySignedPayload({ ...env, type: 'negotiation/accept' }, options()))).toBe('TRUST_MESSAGE_TAMPERED');
  });

  it('a message re-signed by another cloud but claiming the first one\'s certificate is TRUST_MESSAGE_TAMPERED', () => {
    const cloudB = makeGateway(root, 'cloud-b');
    const byB = signPayload(offer, cloudB, { now: NOW, type: 'negotiation/offer' });
    const forged = { ...byB, signer: sign().signer };
    expect(codeOf(() => verifySignedPayload(forged, options()))).toBe('TRUST_MESSAGE_TAMPERED');
  });

  it('a message signed by an unknown cloud (another root, or self-signed) is TRUST_UNKNOWN_SIGNER', () => {
    const stranger = makeGateway(makeRoot(), 'cloud-a');
    const env = signPayload(offer, stranger, { now: NOW, type: 'negotiation/offer' });
    expect(codeOf(() => verifySignedPayload(env, options()))).toBe('TRUST_UNKNOWN_SIGNER');
    const keys = generateKeyPair();
    const self = parseCertificateDer(buildCertificate({
      serial: randomSerial(), subject: { commonName: 'cloud-a' }, notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + DAY),
      publicKey: keys.publicKey, signingKey: keys.privateKey, basicConstraints: { ca: false }, keyUsage: ['digitalSignature'],
      subjectAltNames: { uris: ['intercloud://cloud-a'] },
    }));
    const selfEnv = signPayload(offer, { certificate: self, privateKey: keys.privateKey }, { now: NOW, type: 'negotiation/offer' });
    expect(codeOf(() => verifySignedPayload(selfEnv, options()))).toBe('TRUST_UNKNOWN_SIGNER');
  });

  it('a message from a trusted cloud other than the expected one is TRUST_IDENTITY_MISMATCH; from a revoked one TRUST_REVOKED', () => {
    expect(codeOf(() => verifySignedPayload(sign(), options({ expectCloudId: 'cloud-b' })))).toBe('TRUST_IDENTITY_MISMATCH');
    expect(codeOf(() => verifySignedPayload(sign(), options({ crls: [makeCrl(root, [cloudA.certificate])] })))).toBe('TRUST_REVOKED');
  });

  it('a malformed envelope is TRUST_MESSAGE_MALFORMED and the nonce is not remembered', () => {
    const env = sign();
    const replayCache = new ReplayCache();
    for (const bad of [null, 'x', { ...env, v: 2 }, { ...env, nonce: 'short' }, { ...env, sig: 'not base64!' }, { ...env, signer: {} }, { ...env, issuedAt: 'yesterday' }]) {
      expect(codeOf(() => verifySignedPayload(bad, options({ replayCache })))).toBe('TRUST_MESSAGE_MALFORMED');
    }
    expect(codeOf(() => verifySignedPayload(env, options({ expectType: 'negotiation/accept' })))).toBe('TRUST_MESSAGE_MALFORMED');
    expect(replayCache.size).toBe(0);
    expect(codeOf(() => signPayload({ when: new Date() }, cloudA, { now: NOW, type: 't' }))).toBe('TRUST_MESSAGE_MALFORMED');
  });
});

describe('ReplayCache', () => {
  it('forgets a nonce once its message could no longer be accepted, and holds at most maxEntries', () => {
    const cache = new ReplayCache(2);
    cache.remember('a', 1_000, 0);
    cache.remember('b', 5_000, 0);
    expect(codeOf(() => cache.remember('c', 5_000, 500))).toBe('TRUST_REPLAY_CACHE_FULL');
    cache.remember('c', 5_000, 1_001);
    expect(cache.has('a', 1_001)).toBe(false);
    expect(cache.size).toBe(2);
    expect(codeOf(() => cache.remember('b', 6_000, 2_000))).toBe('TRUST_MESSAGE_REPLAYED');
    cache.remember('b', 9_000, 5_001);
    expect(cache.has('b', 5_001)).toBe(true);
  });
});
