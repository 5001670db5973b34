/**
 * Issue 12, findings 6 and 7, the pure and in-memory parts: the allow-list is asked before
 * anything else, each peer has its own bounded replay store, remembered messages live
 * minutes, and the reservation book says what live reservations hold.
 */
import { describe, expect, it } from 'vitest';
import { certificateToPem, privateKeyToPem } from '../../../protocols/trust/index.js';
import {
  MESSAGE_TYPES, SIGNED_MESSAGE_MAX_LIFETIME_MS, createTrustBinding, trustReason, type TrustBinding,
} from '../../../protocols/xmpp/index.js';
import { ReservationBook, createDefaultPolicy } from '../../../agent/admission/index.js';
import { NOW, makeGateway, makeRoot } from '../trust/fixtures.js';
import { sampleOffer } from './fixtures.js';

const root = makeRoot();
const rootPem = certificateToPem(root.certificate.der);
const ids = Object.fromEntries(['cloud-a', 'cloud-b', 'cloud-c'].map((c) => [c, makeGateway(root, c)]));

function binding(cloud: string, now: () => number, extra: { replayEntriesPerPeer?: number; replayPeers?: number } = {}): TrustBinding {
  const g = ids[cloud]!;
  return createTrustBinding({ certificatePem: certificateToPem(g.certificate.der), privateKeyPem: privateKeyToPem(g.privateKey), rootsPem: rootPem, now, ...extra });
}

const clock = { t: NOW.getTime() };
const now = (): number => clock.t;
const expect1 = (cloud: string, payload: Record<string, unknown>) => ({
  type: MESSAGE_TYPES.MIGRATION_REQUEST, payload, cloudId: cloud, jid: `${cloud}@intercloud.test`, replay: true,
});

describe('the default policy', () => {
  const policy = createDefaultPolicy({ acceptFrom: ['cloud-a'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 });

  it('answers the allow-list question alone, before any signature is looked at', () => {
    expect(policy.admitsSender('cloud-a')).toEqual({ accept: true });
    expect(policy.admitsSender('cloud-c')).toMatchObject({ accept: false, reason: 'policy' });
    expect(createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 1, maxMemoryMiBPerVm: 1 }).admitsSender('cloud-c')).toEqual({ accept: true });
    expect(createDefaultPolicy({ acceptFrom: [], maxVcpusPerVm: 1, maxMemoryMiBPerVm: 1 }).admitsSender('cloud-a')).toMatchObject({ accept: false });
  });

  it('enforces the per-cloud reservation quota with reason policy', () => {
    const p = createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384, quotaReservationsPerCloud: 2 });
    const b = new ReservationBook({ vcpus: 100, memoryMiB: 1 << 20, diskGiB: 1000, objectStorageGiB: 0 });
    b.add('c1', sampleOffer({ offerId: 'c1' }), { cloud: 'cloud-c', jid: 'cloud-c@intercloud.test' }, 10_000);
    b.add('c2', sampleOffer({ offerId: 'c2' }), { cloud: 'cloud-c', jid: 'cloud-c@intercloud.test' }, 10_000);
    const ctx = (cloud: string) => ({ offer: sampleOffer(), senderCloud: cloud, free: b.free(0), senderUsage: b.usage(cloud, 0) });
    expect(p.evaluate(ctx('cloud-c'))).toMatchObject({ accept: false, reason: 'policy' });
    expect(p.evaluate(ctx('cloud-a'))).toEqual({ accept: true });
  });
});

describe('the reservation book', () => {
  it('says what all live reservations hold, and forgets released and lapsed ones', () => {
    const b = new ReservationBook({ vcpus: 16, memoryMiB: 32768, diskGiB: 500, objectStorageGiB: 0 });
    b.add('r1', sampleOffer({ offerId: 'o1' }), { cloud: 'cloud-a', jid: 'cloud-a@intercloud.test' }, 1000);
    b.add('r2', sampleOffer({ offerId: 'o2' }), { cloud: 'cloud-c', jid: 'cloud-c@intercloud.test' }, 1000);
    expect(b.held(0)).toEqual({ vcpus: 4, memoryMiB: 4096, diskGiB: 20, objectStorageGiB: 0 });
    b.markUsed('r2');
    b.release('r1');
    expect(b.held(5000)).toEqual({ vcpus: 2, memoryMiB: 2048, diskGiB: 10, objectStorageGiB: 0 });
    b.release('r2');
    expect(b.held(5000)).toEqual({ vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 0 });
  });
});

describe('the trust binding\'s replay stores', () => {
  it('keeps one bounded store per peer: a peer that fills its own is refused, the others go on', async () => {
    const b = binding('cloud-b', now, { replayEntriesPerPeer: 5 });
    const a = binding('cloud-a', now);
    const c = binding('cloud-c', now);
    for (let i = 0; i < 5; i++) {
      await b.verify(await c.sign(MESSAGE_TYPES.MIGRATION_REQUEST, { i }, 60_000), expect1('cloud-c', { i }));
    }
    const full = await b.verify(await c.sign(MESSAGE_TYPES.MIGRATION_REQUEST, { i: 5 }, 60_000), expect1('cloud-c', { i: 5 })).catch((e: unknown) => e);
    expect(full).toMatchObject({ code: 'TRUST_REPLAY_CACHE_FULL' });
    expect(trustReason('TRUST_REPLAY_CACHE_FULL')).toBe('policy');
    // cloud-a is not affected by cloud-c's flood.
    await expect(b.verify(await a.sign(MESSAGE_TYPES.MIGRATION_REQUEST, { x: 1 }, 60_000), expect1('cloud-a', { x: 1 }))).resolves.toMatchObject({ cloudId: 'cloud-a' });
    // Once cloud-c's messages can no longer be accepted, its store has room again.
    clock.t += 120_000;
    await expect(b.verify(await c.sign(MESSAGE_TYPES.MIGRATION_REQUEST, { i: 6 }, 60_000), expect1('cloud-c', { i: 6 }))).resolves.toMatchObject({ cloudId: 'cloud-c' });
  });

  it('still refuses a replay, per peer', async () => {
    const b = binding('cloud-b', now);
    const sig = await binding('cloud-a', now).sign(MESSAGE_TYPES.MIGRATION_REQUEST, { r: 1 }, 60_000);
    await b.verify(sig, expect1('cloud-a', { r: 1 }));
    await expect(b.verify(sig, expect1('cloud-a', { r: 1 }))).rejects.toMatchObject({ code: 'TRUST_MESSAGE_REPLAYED' });
  });

  it('bounds the number of peers with live nonces', async () => {
    const b = binding('cloud-b', now, { replayPeers: 2 });
    await b.verify(await binding('cloud-a', now).sign(MESSAGE_TYPES.MIGRATION_REQUEST, { p: 1 }, 60_000), expect1('cloud-a', { p: 1 }));
    await b.verify(await binding('cloud-b', now).sign(MESSAGE_TYPES.MIGRATION_REQUEST, { p: 2 }, 60_000), expect1('cloud-b', { p: 2 }));
    await expect(b.verify(await binding('cloud-c', now).sign(MESSAGE_TYPES.MIGRATION_REQUEST, { p: 3 }, 60_000), expect1('cloud-c', { p: 3 })))
      .rejects.toMatchObject({ code: 'TRUST_REPLAY_CACHE_FULL' });
    // After the first two peers' nonces lapse their stores are dropped and a new peer fits.
    clock.t += 120_000;
    await expect(b.verify(await binding('cloud-c', now).sign(MESSAGE_TYPES.MIGRATION_REQUEST, { p: 4 }, 60_000), expect1('cloud-c', { p: 4 })))
      .resolves.toMatchObject({ cloudId: 'cloud-c' });
  });

  it('refuses a remembered message that lives longer than minutes, but not a catalog entry signed for hours', async () => {
    const b = binding('cloud-b', now);
    const a = binding('cloud-a', now);
    const long = await a.sign(MESSAGE_TYPES.OFFER, { o: 1 }, SIGNED_MESSAGE_MAX_LIFETIME_MS + 1000);
    await expect(b.verify(long, { ...expect1('cloud-a', { o: 1 }), type: MESSAGE_TYPES.OFFER })).rejects.toMatchObject({ code: 'TRUST_MESSAGE_MALFORMED' });
    const ok = await a.sign(MESSAGE_TYPES.OFFER, { o: 2 }, SIGNED_MESSAGE_MAX_LIFETIME_MS);
    await expect(b.verify(ok, { ...expect1('cloud-a', { o: 2 }), type: MESSAGE_TYPES.OFFER })).resolves.toMatchObject({ cloudId: 'cloud-a' });
    const entry = await a.sign(MESSAGE_TYPES.CATALOG, { e: 1 }, 6 * 3_600_000);
    await expect(b.verify(entry, { ...expect1('cloud-a', { e: 1 }), type: MESSAGE_TYPES.CATALOG, replay: false })).resolves.toMatchObject({ cloudId: 'cloud-a' });
  });
});
