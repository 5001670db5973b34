/**
 * Issue 14: what B takes as a storage subcontractor — only a region it has an object store
 * configured for, only as many replicas as that store keeps, only what fits beside the storage
 * already reserved — and the bucket B names for A (never the offer's). Pure: no server, no clock.
 */
import { describe, expect, it } from 'vitest';
import {
  ReservationBook, admitOffer, chooseStorageRegion, createDefaultPolicy, createOfferAdmission, screenOffer, type NegotiationPolicy, type StoragePolicy,
} from '../../../agent/admission/index.js';
import { subcontractBucketName } from '../../../agent/subcontract/index.js';
import { validateBucketName } from '../../../adapters/storage/index.js';
import type { Offer, OfferSender, StorageWorkload, VerifiedSigner } from '../../../protocols/xmpp/index.js';
import { sampleStorageOffer } from '../xmpp/fixtures.js';

const T0 = Date.parse('2026-11-25T13:01:00.000Z');
const DOMAIN = 'intercloud.test';
const A: OfferSender = { local: 'cloud-a', domain: DOMAIN, jid: 'cloud-a@intercloud.test/gateway' };
const signerA: VerifiedSigner = { cloudId: 'cloud-a', certificateSha256: 'a'.repeat(64) };
const storage: StoragePolicy = { regions: { 'eu-west': { maxReplicas: 3 }, 'us-east': { maxReplicas: 1 } }, maxObjectsPerSubcontract: 1_000_000, maxDurationMs: 90 * 86_400_000 };
const policy = createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384, storage });
const total = { vcpus: 16, memoryMiB: 32768, diskGiB: 500, objectStorageGiB: 1000 };

function offer(w: Partial<StorageWorkload> = {}, over: Partial<Offer> = {}): Offer {
  return sampleStorageOffer({ workload: { ...(sampleStorageOffer().workload as StorageWorkload), ...w }, ...over });
}

const admit = (book: ReservationBook, o: Offer, over: { policy?: NegotiationPolicy; now?: number; id?: string; signer?: VerifiedSigner } = {}) =>
  admitOffer({ offer: o, signer: over.signer ?? signerA, sender: A, now: over.now ?? T0, book, policy: over.policy ?? policy, reservationId: over.id ?? 'r-1', reservationTtlMs: 60_000 });

describe('storage admission at B (issue 14)', () => {
  it('accepts an offer in a region B has a store for, with the placement the accept names', () => {
    const v = admit(new ReservationBook(total), offer());
    expect(v).toMatchObject({
      verdict: 'accept', fresh: true,
      reservation: { placement: { region: 'eu-west', bucket: subcontractBucketName('cloud-a', 'sc-1') }, demand: { objectStorageGiB: 300 } },
    });
  });

  it('refuses a region B has no object store configured for: policy', () => {
    const v = admit(new ReservationBook(total), offer({}, { constraints: { regions: ['ap-south', 'eu-central'] } }));
    expect(v).toMatchObject({ verdict: 'reject', reason: 'policy' });
    expect(v.verdict === 'reject' && v.text).toContain("stores only in 'eu-west', 'us-east'");
  });

  it('takes the first allowed region that keeps enough replicas, in the offer\'s order', () => {
    const v = admit(new ReservationBook(total), offer({ replicas: 1 }, { constraints: { regions: ['us-east', 'eu-west'] } }));
    expect(v).toMatchObject({ verdict: 'accept', reservation: { placement: { region: 'us-east' } } });
    const three = admit(new ReservationBook(total), offer({ replicas: 3 }, { constraints: { regions: ['us-east', 'eu-west'] } }));
    expect(three).toMatchObject({ verdict: 'accept', reservation: { placement: { region: 'eu-west' } } });
  });

  it('refuses more replicas than the stores of the allowed regions keep: policy', () => {
    expect(admit(new ReservationBook(total), offer({ replicas: 4 }))).toMatchObject({ verdict: 'reject', reason: 'policy' });
    expect(admit(new ReservationBook(total), offer({ replicas: 2 }, { constraints: { regions: ['us-east'] } }))).toMatchObject({ verdict: 'reject', reason: 'policy' });
  });

  it('refuses more than the free object storage: no-capacity', () => {
    // 400 GiB × 3 replicas > 1000 GiB.
    expect(admit(new ReservationBook(total), offer({ capacityGiB: 400 }))).toMatchObject({ verdict: 'reject', reason: 'no-capacity' });
  });

  it('counts the storage reservations already held, and frees them on release', () => {
    const book = new ReservationBook(total);
    const first = admit(book, offer({ subcontractId: 'sc-1', capacityGiB: 200 }, { offerId: 'o1' }), { id: 'r1' });
    if (first.verdict !== 'accept') throw new Error('first offer refused');
    book.record(first.reservation);
    book.markUsed('r1');
    expect(book.free(T0).objectStorageGiB).toBe(400);
    expect(admit(book, offer({ subcontractId: 'sc-2', capacityGiB: 200 }, { offerId: 'o2' }), { id: 'r2' })).toMatchObject({ verdict: 'reject', reason: 'no-capacity' });
    // A used reservation (an active subcontract) does not lapse with time.
    expect(admit(book, offer({ subcontractId: 'sc-2', capacityGiB: 200 }, { offerId: 'o2' }), { id: 'r2', now: T0 + 3_600_000 })).toMatchObject({ reason: 'no-capacity' });
    book.release('r1');
    expect(admit(book, offer({ subcontractId: 'sc-2', capacityGiB: 200 }, { offerId: 'o2' }), { id: 'r2' })).toMatchObject({ verdict: 'accept' });
  });

  it('refuses storage when B has no object store at all: policy', () => {
    const vmOnly = createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 });
    expect(admit(new ReservationBook(total), offer(), { policy: vmOnly })).toMatchObject({ verdict: 'reject', reason: 'policy' });
  });

  it('refuses too many objects or too long a subcontract: policy', () => {
    expect(admit(new ReservationBook(total), offer({ maxObjects: 2_000_000 }))).toMatchObject({ verdict: 'reject', reason: 'policy' });
    expect(admit(new ReservationBook(total), offer({ ends: '2027-06-01T00:00:00.000Z' }))).toMatchObject({ verdict: 'reject', reason: 'policy' });
  });

  it('refuses a subcontract that has already ended: expired', () => {
    expect(admit(new ReservationBook(total), offer(), { now: Date.parse('2026-12-26T00:00:00.000Z') })).toMatchObject({ verdict: 'reject', reason: 'expired' });
  });

  it('answers the same offer again with the reservation it holds (a retry), not a second one', () => {
    const book = new ReservationBook(total);
    const v = admit(book, offer());
    if (v.verdict !== 'accept') throw new Error('refused');
    book.record(v.reservation);
    expect(admit(book, offer(), { id: 'r-2' })).toMatchObject({ verdict: 'accept', fresh: false, reservation: { reservationId: 'r-1' } });
  });

  it('screens an expired storage offer before its signature, like a vm offer', () => {
    const o = offer({}, { expires: '2026-11-25T13:00:30.000Z' });
    expect(screenOffer({ offer: o, sender: A, gatewayDomains: [DOMAIN], now: T0, policy })).toMatchObject({ reason: 'expired' });
  });

  it('names the bucket from the certificate\'s cloud, never from what the offer proposes', () => {
    const proposing = offer({ sourceBucket: 'ic-cloud-b-0123456789abcdef0123' });
    const v = admit(new ReservationBook(total), proposing, { signer: { cloudId: 'cloud-a', certificateSha256: 'a'.repeat(64) } });
    expect(v).toMatchObject({ verdict: 'accept', reservation: { placement: { bucket: subcontractBucketName('cloud-a', 'sc-1') } } });
    expect(v.verdict === 'accept' && v.reservation.placement?.bucket).not.toBe('ic-cloud-b-0123456789abcdef0123');
  });

  it('chooseStorageRegion leaves a vm offer alone', () => {
    expect(chooseStorageRegion({ ...offer(), workload: { type: 'vm', name: 'x', vcpus: 1, memoryMiB: 1, firmware: 'bios', disks: [], nics: [] } }, storage)).toEqual({ accept: true });
  });

  it('createOfferAdmission carries the storage policy through', () => {
    const a = createOfferAdmission({ policy, domain: DOMAIN, capacity: total, newReservationId: () => 'r9' });
    expect(a.admit(offer({}, { constraints: { regions: ['nowhere'] } }), signerA, A, T0)).toMatchObject({ verdict: 'reject', reason: 'policy' });
    expect(a.admit(offer(), signerA, A, T0)).toMatchObject({ verdict: 'accept', reservation: { reservationId: 'r9', placement: { region: 'eu-west' } } });
  });
});

describe('the bucket B names for a subcontract (issue 14)', () => {
  it('is a valid S3 bucket name, stable, and differs per cloud and per subcontract', () => {
    const b = subcontractBucketName('cloud-a', 'sc-1');
    expect(validateBucketName(b)).toBe(b);
    expect(b).toMatch(/^ic-cloud-a-[0-9a-f]{20}$/);
    expect(subcontractBucketName('cloud-a', 'sc-1')).toBe(b);
    expect(subcontractBucketName('cloud-c', 'sc-1')).not.toBe(b);
    expect(subcontractBucketName('cloud-a', 'sc-2')).not.toBe(b);
  });

  it('fits 63 characters for the longest cloud id and any subcontract id', () => {
    const long = `a${'-b'.repeat(31)}`;
    const b = subcontractBucketName(long, 'X'.repeat(128));
    expect(b.length).toBeLessThanOrEqual(63);
    expect(validateBucketName(b)).toBe(b);
  });

  it('cannot be steered onto another cloud\'s bucket by the subcontract id', () => {
    // cloud-c choosing a subcontract id that spells cloud-a's bucket still gets a bucket under its own name.
    const target = subcontractBucketName('cloud-a', 'sc-1');
    expect(subcontractBucketName('cloud-c', target)).toMatch(/^ic-cloud-c-/);
    expect(subcontractBucketName('cloud-a-x', 'sc-1')).not.toBe(target);
  });
});
