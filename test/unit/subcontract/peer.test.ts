/**
 * Issue 14, A's checks, pure: which peer may be offered a subcontract (from its signed catalog
 * entry), and which accept A takes.
 */
import { describe, expect, it } from 'vitest';
import { checkStorageAccept, chooseStoragePeer, type StoragePeerWant } from '../../../agent/subcontract/index.js';
import type { Accept, VerifiedSigner } from '../../../protocols/xmpp/index.js';
import { sampleEntry, sampleStorageOffer } from '../xmpp/fixtures.js';

const want: StoragePeerWant = { regions: ['eu-west'], needGiB: 300, maxPricePerGbMonth: 0.05, currency: 'EUR', self: 'cloud-a' };
const storageEntry = (cloudId: string, over: Parameters<typeof sampleEntry>[0] = {}) =>
  sampleEntry({ cloudId, jid: `${cloudId}@intercloud.test`, capabilities: ['storage-federation', 'transfer-amqp'], ...over });

describe('choosing a storage peer from signed catalog entries (issue 14)', () => {
  it('--auto takes only clouds listing an allowed region, storage federation, enough free object GiB and an acceptable price', () => {
    const entries = [
      storageEntry('cloud-a'), // ourselves
      storageEntry('cloud-c', { regions: ['us-east'] }),
      storageEntry('cloud-d', { capabilities: ['vm-hosting'] }),
      storageEntry('cloud-e', { capacity: { vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 299 } }),
      storageEntry('cloud-f', { terms: { currency: 'EUR', pricePerVcpuHour: 0, pricePerGbMonth: 0.06 } }),
      storageEntry('cloud-g', { terms: { currency: 'USD', pricePerVcpuHour: 0, pricePerGbMonth: 0.01 } }),
      storageEntry('cloud-b'),
    ];
    expect(chooseStoragePeer(entries, want).cloudId).toBe('cloud-b');
    expect(() => chooseStoragePeer(entries.filter((e) => e.cloudId !== 'cloud-b'), want)).toThrow(expect.objectContaining({ code: 'SUBCONTRACT_NO_PEER', retryable: true }));
  });

  it('--auto prefers the cheapest, then the one with most room', () => {
    const cheap = storageEntry('cloud-x', { terms: { currency: 'EUR', pricePerVcpuHour: 0, pricePerGbMonth: 0.01 } });
    const roomy = storageEntry('cloud-y', { capacity: { vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 99_999 } });
    expect(chooseStoragePeer([storageEntry('cloud-b'), roomy, cheap], want).cloudId).toBe('cloud-x');
    expect(chooseStoragePeer([storageEntry('cloud-b'), roomy], want).cloudId).toBe('cloud-y');
  });

  it('--to checks the named cloud the same way', () => {
    const entries = [storageEntry('cloud-b', { regions: ['us-east'] }), storageEntry('cloud-c')];
    expect(() => chooseStoragePeer(entries, { ...want, to: 'cloud-b' })).toThrow(expect.objectContaining({ code: 'SUBCONTRACT_PEER_UNFIT', retryable: false }));
    expect(() => chooseStoragePeer(entries, { ...want, to: 'cloud-z' })).toThrow(expect.objectContaining({ code: 'SUBCONTRACT_NO_PEER' }));
    expect(chooseStoragePeer(entries, { ...want, to: 'cloud-c' }).cloudId).toBe('cloud-c');
  });
});

describe('checking B\'s accept at A (issue 14)', () => {
  const offer = sampleStorageOffer({ constraints: { regions: ['eu-central', 'eu-west'] } });
  const signerB: VerifiedSigner = { cloudId: 'cloud-b', certificateSha256: 'b'.repeat(64) };
  const accept: Accept = {
    offerId: offer.offerId, reservationId: 'r1', by: 'cloud-b', transferUri: 'amqps://127.0.0.1:25672/intercloud', transferQueue: 'q',
    transferIdentity: 'broker.cloud-b.intercloud.test', expires: '2026-11-25T13:10:00.000Z', storage: { bucket: 'ic-cloud-a-00112233445566778899', region: 'eu-west' },
  };
  const check = (a: Accept, signer = signerB) => () => checkStorageAccept(a, signer, offer, 'cloud-b', 'intercloud.test');

  it('takes a well-formed accept and returns the checked endpoint', () => {
    expect(check(accept)()).toMatchObject({ reservationId: 'r1', transferQueue: 'q', bucket: accept.storage?.bucket, region: 'eu-west', endpoint: { host: '127.0.0.1', port: 25672, identity: 'broker.cloud-b.intercloud.test' } });
  });

  it.each([
    ['by cloud-c', { ...accept, by: 'cloud-c' }, signerB],
    ['signed by cloud-c', accept, { cloudId: 'cloud-c', certificateSha256: 'c'.repeat(64) }],
    ['for another offer', { ...accept, offerId: 'other' }, signerB],
    ['without storage', { ...accept, storage: undefined }, signerB],
    ['in a region outside the allowed set', { ...accept, storage: { bucket: 'ic-cloud-a-00112233445566778899', region: 'us-east' } }, signerB],
    ['with an ip-shaped bucket', { ...accept, storage: { bucket: '192.168.1.1', region: 'eu-west' } }, signerB],
    ['with a reserved-prefix bucket', { ...accept, storage: { bucket: 'xn--bucket', region: 'eu-west' } }, signerB],
    ['with a bucket holding ..', { ...accept, storage: { bucket: 'a..b', region: 'eu-west' } }, signerB],
    ['with another cloud\'s broker', { ...accept, transferIdentity: 'broker.cloud-c.intercloud.test' }, signerB],
    ['with no broker identity', { ...accept, transferIdentity: undefined }, signerB],
    ['with a plain amqp broker', { ...accept, transferUri: 'amqp://127.0.0.1:5672/intercloud' }, signerB],
  ])('refuses an accept %s: SUBCONTRACT_BAD_ACCEPT', (_name, a, signer) => {
    const cleaned = Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as unknown as Accept;
    expect(check(cleaned, signer)).toThrow(expect.objectContaining({ code: 'SUBCONTRACT_BAD_ACCEPT', retryable: false }));
  });
});
