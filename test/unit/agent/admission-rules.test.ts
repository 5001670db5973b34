/**
 * Offer admission as pure functions (issue 13; the rules of issue 12): every rule on its own,
 * no server, no clock, no trust area — the signer is given as verified.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RESERVATION_TTL_MS, ReservationBook, admitOffer, createDefaultPolicy, createOfferAdmission, screenOffer, type NegotiationPolicy,
} from '../../../agent/admission/index.js';
import type { OfferSender, StorageWorkload, VerifiedSigner } from '../../../protocols/xmpp/index.js';
import { sampleOffer, sampleStorageOffer } from '../xmpp/fixtures.js';

const T0 = Date.parse('2026-11-25T13:01:00.000Z');
const DOMAIN = 'intercloud.test';
const A: OfferSender = { local: 'cloud-a', domain: DOMAIN, jid: 'cloud-a@intercloud.test/gateway' };
const signerA: VerifiedSigner = { cloudId: 'cloud-a', certificateSha256: 'a'.repeat(64) };
const open = createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 });
const total = { vcpus: 16, memoryMiB: 32768, diskGiB: 500, objectStorageGiB: 0 };

const screen = (over: { offer?: ReturnType<typeof sampleOffer>; sender?: OfferSender; now?: number; policy?: NegotiationPolicy; maxClockSkewMs?: number } = {}) =>
  screenOffer({
    offer: over.offer ?? sampleOffer(), sender: over.sender ?? A, gatewayDomains: [DOMAIN], now: over.now ?? T0, policy: over.policy ?? open,
    ...(over.maxClockSkewMs === undefined ? {} : { maxClockSkewMs: over.maxClockSkewMs }),
  });

const admit = (book: ReservationBook, over: { offer?: ReturnType<typeof sampleOffer>; signer?: VerifiedSigner; now?: number; policy?: NegotiationPolicy; id?: string } = {}) =>
  admitOffer({
    offer: over.offer ?? sampleOffer(), signer: over.signer ?? signerA, sender: A, now: over.now ?? T0, book, policy: over.policy ?? open,
    reservationId: over.id ?? 'r-new', reservationTtlMs: 60_000,
  });

describe('screening an offer, before its signature is looked at', () => {
  it('lets a well-formed offer of the sending cloud through', () => {
    expect(screen()).toBeUndefined();
  });

  it('refuses an offer that claims another cloud than the sending jid: untrusted', () => {
    expect(screen({ sender: { ...A, local: 'cloud-c', jid: 'cloud-c@intercloud.test/gateway' } })).toMatchObject({ verdict: 'reject', reason: 'untrusted' });
  });

  it('refuses a sender of another xmpp domain, even with the claimed local part: untrusted', () => {
    expect(screen({ sender: { ...A, domain: 'elsewhere.example', jid: 'cloud-a@elsewhere.example/gateway' } })).toMatchObject({ reason: 'untrusted' });
  });

  it('takes a gateway of a federated Root, and still refuses one of a Root we do not read (issue 13)', () => {
    const onRoot2 = { ...A, domain: 'root2.test', jid: 'cloud-a@root2.test/gateway' };
    expect(screen({ sender: onRoot2 })).toMatchObject({ reason: 'untrusted' });
    expect(screenOffer({ offer: sampleOffer(), sender: onRoot2, gatewayDomains: [DOMAIN, 'root2.test'], now: T0, policy: open })).toBeUndefined();
    expect(screenOffer({ offer: sampleOffer(), sender: { ...onRoot2, domain: 'root3.test' }, gatewayDomains: [DOMAIN, 'root2.test'], now: T0, policy: open }))
      .toMatchObject({ reason: 'untrusted' });
  });

  it('refuses a cloud the allow-list does not name: policy, whatever else the offer is', () => {
    const only = createDefaultPolicy({ acceptFrom: ['cloud-b'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 });
    expect(screen({ policy: only })).toMatchObject({ reason: 'policy' });
    // The allow-list is asked before the times: an expired offer of a refused cloud is refused by policy.
    expect(screen({ policy: only, now: T0 + 3_600_000 })).toMatchObject({ reason: 'policy' });
    expect(screen({ policy: createDefaultPolicy({ acceptFrom: ['cloud-a'], maxVcpusPerVm: 1, maxMemoryMiBPerVm: 1 }) })).toBeUndefined();
  });

  it('refuses an offer issued in our future beyond the skew bound: clock-skew', () => {
    const issued = Date.parse(sampleOffer().issued);
    expect(screen({ now: issued - 2_000 })).toBeUndefined();
    expect(screen({ now: issued - 2_001 })).toMatchObject({ reason: 'clock-skew' });
    expect(screen({ now: issued - 400, maxClockSkewMs: 300 })).toMatchObject({ reason: 'clock-skew' });
  });

  it('refuses an offer at or past its expiry: expired', () => {
    const expires = Date.parse(sampleOffer().expires);
    expect(screen({ now: expires - 1 })).toBeUndefined();
    expect(screen({ now: expires })).toMatchObject({ reason: 'expired' });
  });
});

describe('admitting a verified offer', () => {
  it('accepts with a typed reservation: the id given, the sender, the demand and an expiry of now + ttl', () => {
    const book = new ReservationBook(total);
    const v = admit(book);
    expect(v).toEqual({
      verdict: 'accept', fresh: true,
      reservation: {
        reservationId: 'r-new', offer: sampleOffer(), senderCloud: 'cloud-a', senderJid: A.jid,
        demand: { vcpus: 2, memoryMiB: 2048, diskGiB: 10, objectStorageGiB: 0 }, expiresAt: T0 + 60_000, used: false,
      },
    });
    // Deciding records nothing: the caller records once its handlers agreed.
    expect(book.size(T0)).toBe(0);
  });

  it('holds a reservation for the default 10 minutes when no ttl is given', () => {
    const v = admitOffer({ offer: sampleOffer(), signer: signerA, sender: A, now: T0, book: new ReservationBook(total), policy: open, reservationId: 'x' });
    expect(v).toMatchObject({ reservation: { expiresAt: T0 + DEFAULT_RESERVATION_TTL_MS } });
  });

  it('answers the same offer id from the same cloud with the reservation it holds, not a second one', () => {
    const book = new ReservationBook(total);
    const first = admit(book, { id: 'r1' });
    if (first.verdict !== 'accept') throw new Error('expected an accept');
    book.record(first.reservation);
    expect(admit(book, { id: 'r2', now: T0 + 1_000 })).toEqual({ verdict: 'accept', reservation: first.reservation, fresh: false });
    // Another cloud's offer of the same id is its own.
    const signerC = { cloudId: 'cloud-c', certificateSha256: 'c'.repeat(64) };
    expect(admit(book, { id: 'r3', signer: signerC })).toMatchObject({ fresh: true, reservation: { reservationId: 'r3', senderCloud: 'cloud-c' } });
  });

  it('gives a new reservation once the old one for that offer id lapsed', () => {
    const book = new ReservationBook(total);
    const first = admit(book, { id: 'r1' });
    if (first.verdict !== 'accept') throw new Error('expected an accept');
    book.record(first.reservation);
    expect(admit(book, { id: 'r2', now: T0 + 60_000 })).toMatchObject({ fresh: true, reservation: { reservationId: 'r2' } });
  });

  it('refuses a vm beyond the per-vm vcpu or memory limit: policy', () => {
    const vm = sampleOffer().workload;
    if (vm.type !== 'vm') throw new Error('sample is a vm');
    const book = new ReservationBook({ ...total, vcpus: 100, memoryMiB: 1 << 20 });
    expect(admit(book, { offer: sampleOffer({ workload: { ...vm, vcpus: 9 } }) })).toMatchObject({ verdict: 'reject', reason: 'policy' });
    expect(admit(book, { offer: sampleOffer({ workload: { ...vm, memoryMiB: 16385 } }) })).toMatchObject({ verdict: 'reject', reason: 'policy' });
  });

  it('refuses past the per-cloud reservation quota: policy, and only for that cloud', () => {
    const policy = createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384, quotaReservationsPerCloud: 1 });
    const book = new ReservationBook(total);
    book.add('held', sampleOffer({ offerId: 'o0' }), { cloud: 'cloud-a', jid: A.jid }, T0 + 60_000);
    expect(admit(book, { policy })).toMatchObject({ verdict: 'reject', reason: 'policy' });
    expect(admit(book, { policy, signer: { cloudId: 'cloud-c', certificateSha256: 'c'.repeat(64) } })).toMatchObject({ verdict: 'accept' });
  });

  it('refuses past the per-cloud vcpu quota: policy', () => {
    const policy = createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384, quotaVcpusPerCloud: 3 });
    const book = new ReservationBook(total);
    expect(admit(book, { policy })).toMatchObject({ verdict: 'accept' });
    book.add('held', sampleOffer({ offerId: 'o0' }), { cloud: 'cloud-a', jid: A.jid }, T0 + 60_000);
    expect(admit(book, { policy })).toMatchObject({ verdict: 'reject', reason: 'policy' });
  });

  it('refuses what does not fit in the free capacity less live reservations: no-capacity, until they lapse', () => {
    const book = new ReservationBook({ ...total, vcpus: 3 });
    expect(admit(book)).toMatchObject({ verdict: 'accept' });
    book.add('held', sampleOffer({ offerId: 'o0' }), { cloud: 'cloud-c', jid: 'cloud-c@intercloud.test/gateway' }, T0 + 60_000);
    expect(admit(book)).toMatchObject({ verdict: 'reject', reason: 'no-capacity' });
    expect(admit(book, { now: T0 + 60_000 })).toMatchObject({ verdict: 'accept' });
    // A reservation marked used (its job runs) does not lapse.
    book.add('used', sampleOffer({ offerId: 'o1' }), { cloud: 'cloud-c', jid: 'cloud-c@intercloud.test/gateway' }, T0 + 60_000);
    book.markUsed('used');
    expect(admit(book, { now: T0 + 120_000 })).toMatchObject({ verdict: 'reject', reason: 'no-capacity' });
  });

  it('refuses storage beyond the free object storage: no-capacity', () => {
    const book = new ReservationBook({ ...total, objectStorageGiB: 10 });
    const storage = sampleStorageOffer({ workload: { ...(sampleStorageOffer().workload as StorageWorkload), capacityGiB: 4, replicas: 3 } });
    const withStore = createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384, storage: { regions: { 'eu-west': { maxReplicas: 3 } } } });
    expect(admit(book, { offer: storage, policy: withStore })).toMatchObject({ verdict: 'reject', reason: 'no-capacity' });
  });
});

describe('the agent\'s admission for the session', () => {
  it('screens and admits with its own book and a fresh id for each reservation', () => {
    let n = 0;
    const a = createOfferAdmission({ policy: open, domain: DOMAIN, capacity: total, reservationTtlMs: 5_000, newReservationId: () => `r${++n}` });
    expect(a.screen(sampleOffer(), A, T0)).toBeUndefined();
    expect(a.screen(sampleOffer(), { ...A, domain: 'elsewhere.example' }, T0)).toMatchObject({ reason: 'untrusted' });
    const v = a.admit(sampleOffer(), signerA, A, T0);
    expect(v).toMatchObject({ verdict: 'accept', fresh: true, reservation: { reservationId: 'r1', expiresAt: T0 + 5_000 } });
    expect(a.admit(sampleOffer({ offerId: 'o2' }), signerA, A, T0)).toMatchObject({ reservation: { reservationId: 'r2' } });
  });
});
