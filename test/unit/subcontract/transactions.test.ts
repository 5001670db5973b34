/**
 * Issue 14: the storage subcontract as sequencer transactions at both ends, wired to each other
 * in memory (world.ts): begin → active → end by the terms, verified; every refusal and failure
 * before B made the bucket compensated; a crash of either agent resumed from its journal.
 */
import { describe, expect, it } from 'vitest';
import { subcontractBucketName, subcontractInJobId, type SubcontractOutInput } from '../../../agent/subcontract/index.js';
import type { StorageWorkload } from '../../../protocols/xmpp/index.js';
import { SubcontractWorld, type MemoryStore } from './world.js';

const BUCKET = subcontractBucketName('cloud-a', 'sc-1');
const JOB_B = subcontractInJobId('cloud-a', 'sc-1');

function input(over: Partial<StorageWorkload> = {}, rest: Partial<SubcontractOutInput> = {}): SubcontractOutInput {
  return {
    offerId: 'o1', to: 'cloud-b',
    workload: {
      type: 'storage', subcontractId: 'sc-1', sourceBucket: 'photos', replicas: 3, ack: 'sync', capacityGiB: 100, maxObjects: 1000,
      ends: new Date(Date.now() + 3_600_000).toISOString(), atEnd: 'delete', ...over,
    },
    regions: ['eu-west'], terms: { currency: 'EUR', maxPricePerGbMonth: 0.05 },
    ...rest,
  };
}

const westOf = (w: SubcontractWorld): MemoryStore => w.stores.get('eu-west') as MemoryStore;

/** Waits until A's job has begun (B made the bucket) and is active. */
async function active(w: SubcontractWorld, job = 'a1'): Promise<void> {
  await w.a.waitFor(job, (s) => s.completedSteps.includes('begin') || s.state !== 'running');
}

describe('a storage subcontract between two clouds (issue 14)', () => {
  it('begins (B makes its bucket in the accepted region), stays active, and ends by deleting everything at B, verified by A', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    await active(w);
    expect(westOf(w).buckets.has(BUCKET)).toBe(true);
    // B's reservation holds the capacity while active: 100 GiB × 3 replicas.
    expect(w.book.free(Date.now()).objectStorageGiB).toBe(700);
    westOf(w).fill(BUCKET, 2500); // what replication would have written (three listing pages)
    w.mailboxA.deliverEnd('o1'); // the operator ends it
    expect(await done).toBe('completed');
    expect(westOf(w).buckets.has(BUCKET)).toBe(false);
    expect((await w.b.status(JOB_B)).state).toBe('completed');
    expect((await w.a.status('a1')).results['verify-ended']).toEqual({ bucketExists: false, objects: 0 });
    expect(w.book.free(Date.now()).objectStorageGiB).toBe(1000);
    expect(w.audit).toEqual(expect.arrayContaining(['cloud-a:subcontract-accepted', 'cloud-b:subcontract-bucket-created', 'cloud-a:subcontract-begun',
      'cloud-b:subcontract-data-deleted', 'cloud-b:subcontract-ended', 'cloud-a:subcontract-ended']));
  });

  it('ends on its own at its end time, at both ends', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input({ ends: new Date(Date.now() + 400).toISOString() }));
    expect(await done).toBe('completed');
    expect((await w.a.status('a1')).results['active']).toEqual({ reason: 'expired' });
    expect(westOf(w).buckets.size).toBe(0);
  });

  it('with `return` terms runs the return step (the replication\'s port) at both ends before B deletes', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input({ atEnd: 'return' }));
    await active(w);
    w.mailboxA.deliverEnd('o1');
    expect(await done).toBe('completed');
    expect(w.calls).toEqual(expect.arrayContaining([`return-a:${BUCKET}`, `return-b:${BUCKET}`]));
    expect(w.calls.indexOf(`return-a:${BUCKET}`)).toBeLessThan(w.calls.indexOf('end:sc-1'));
  });

  it('picks the peer with --auto only if its signed catalog lists an allowed region and enough free object storage', async () => {
    const w = new SubcontractWorld();
    w.entryB = { ...w.entryB, regions: ['ap-south'] };
    const { done } = await w.a.start('subcontract-out', 'a1', input({}, { to: undefined }));
    expect(await done).toBe('compensated');
    expect((await w.a.status('a1')).error).toMatchObject({ code: 'SUBCONTRACT_NO_PEER' });
    expect(w.calls.filter((c) => c.startsWith('offer:'))).toEqual([]);
  });

  it('refuses the named peer when its catalog lacks the room (--to), without offering', async () => {
    const w = new SubcontractWorld();
    w.entryB = { ...w.entryB, capacity: { ...w.entryB.capacity, objectStorageGiB: 200 } };
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    expect(await done).toBe('compensated');
    expect((await w.a.status('a1')).error).toMatchObject({ code: 'SUBCONTRACT_PEER_UNFIT' });
    expect(w.calls).toEqual([]);
  });

  it('a rejection by B (a region it has no store for) ends A\'s job with its coded reason, nothing made', async () => {
    const w = new SubcontractWorld();
    // B's catalog claims eu-central, but its config has no store there: B refuses, policy.
    w.entryB = { ...w.entryB, regions: ['eu-central'] };
    const { done } = await w.a.start('subcontract-out', 'a1', input({}, { regions: ['eu-central'] }));
    expect(await done).toBe('compensated');
    expect((await w.a.status('a1')).error).toMatchObject({ code: 'SUBCONTRACT_REJECTED', retryable: false });
    expect([...w.stores.values()].every((s) => s.buckets.size === 0)).toBe(true);
  });

  it.each([
    ['a region outside the allowed set', (a: Record<string, unknown>) => ({ ...a, storage: { bucket: BUCKET, region: 'us-east' } })],
    ['an invalid bucket name', (a: Record<string, unknown>) => ({ ...a, storage: { bucket: 'xn--bad', region: 'eu-west' } })],
    ['no storage part', (a: Record<string, unknown>) => { const { storage: _, ...rest } = a; return rest; }],
    ['another cloud\'s name', (a: Record<string, unknown>) => ({ ...a, by: 'cloud-c' })],
    ['a broker outside the peer\'s cloud', (a: Record<string, unknown>) => ({ ...a, transferIdentity: 'broker.cloud-c.intercloud.test' })],
  ])('refuses an accept with %s, and releases B\'s reservation', async (_name, edit) => {
    const w = new SubcontractWorld();
    w.tamper = (out) => (out.type === 'accept' ? { ...out, accept: edit({ ...out.accept }) as typeof out.accept } : out);
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    expect(await done).toBe('compensated');
    expect((await w.a.status('a1')).error).toMatchObject({ code: 'SUBCONTRACT_BAD_ACCEPT' });
    expect(w.calls).toContain('release:o1');
    expect(w.calls.filter((c) => c.startsWith('begin:'))).toEqual([]);
    expect((await w.b.status(JOB_B)).state).toBe('cancelled');
    expect(w.book.free(Date.now()).objectStorageGiB).toBe(1000);
    expect(westOf(w).buckets.size).toBe(0);
  });

  it('refuses an accept signed by another cloud than the one offered to', async () => {
    const w = new SubcontractWorld();
    w.tamper = (out) => (out.type === 'accept' ? { ...out, signer: { cloudId: 'cloud-c', certificateSha256: 'c'.repeat(64) } } : out);
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    expect(await done).toBe('compensated');
    expect((await w.a.status('a1')).error).toMatchObject({ code: 'SUBCONTRACT_BAD_ACCEPT' });
  });

  it('B never adopts a bucket of that name that was there before: refused, left as it was, reservation released', async () => {
    const w = new SubcontractWorld();
    westOf(w).fill(BUCKET, 3); // someone else's bucket of that name
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    expect(await done).toBe('compensated');
    expect((await w.b.status(JOB_B))).toMatchObject({ state: 'compensated', error: { code: 'SUBCONTRACT_BUCKET_TAKEN' } });
    expect(westOf(w).buckets.get(BUCKET)?.size).toBe(3);
    expect(westOf(w).calls.filter((c) => c.startsWith('delete-bucket'))).toEqual([]);
    expect(w.book.free(Date.now()).objectStorageGiB).toBe(1000);
  });

  it('B releases a reservation A never begins, once it lapses', async () => {
    const w = new SubcontractWorld();
    const out = await w.receiveOffer({
      offerId: 'o9', from: 'cloud-a', workload: input().workload, constraints: { regions: ['eu-west'] }, terms: { currency: 'EUR', maxPricePerGbMonth: 0.05 },
      issued: new Date().toISOString(), expires: new Date(Date.now() + 60_000).toISOString(),
    }, 300);
    expect(out.type).toBe('accept');
    expect(w.book.free(Date.now()).objectStorageGiB).toBe(700);
    await w.b.waitFor(JOB_B, (s) => s.state !== 'running');
    expect(await w.b.status(JOB_B)).toMatchObject({ state: 'compensated', error: { code: 'SUBCONTRACT_NOT_STARTED' } });
    expect(w.book.free(Date.now()).objectStorageGiB).toBe(1000);
    expect(westOf(w).buckets.size).toBe(0);
  });

  it('a crash of A while active resumes from its journal: no second offer, the end still verified', async () => {
    const w = new SubcontractWorld();
    void (await w.a.start('subcontract-out', 'a1', input())).done.catch(() => undefined);
    await active(w);
    await w.a.stop();
    w.a = w.makeA();
    const [resumed] = await w.a.resumeAll();
    w.mailboxA.deliverEnd('o1');
    expect(await resumed?.done).toBe('completed');
    expect(w.calls.filter((c) => c.startsWith('offer:'))).toEqual(['offer:o1']);
    expect(westOf(w).buckets.size).toBe(0);
  });

  it('a crash of B while active resumes from its journal and still deletes at the end', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    await active(w);
    westOf(w).fill(BUCKET, 5);
    await w.b.stop();
    w.b = w.makeB();
    await w.b.resumeAll();
    w.mailboxA.deliverEnd('o1');
    expect(await done).toBe('completed');
    expect(westOf(w).buckets.size).toBe(0);
    expect(westOf(w).calls.filter((c) => c.startsWith('create:'))).toEqual([`create:${BUCKET}`]);
  });

  it('A does not call it ended while B still lists the bucket: it asks again until the listing is empty', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    await active(w);
    // B's first delete misses the bucket (its store answered but left it): a store B lies about.
    const store = westOf(w);
    const realDelete = store.deleteBucket.bind(store);
    let misses = 2; // B's job and its answer to the first end both miss it
    store.deleteBucket = async (b: string) => { if (misses-- > 0) return; await realDelete(b); };
    w.mailboxA.deliverEnd('o1');
    expect(await done).toBe('completed');
    const s = await w.a.status('a1');
    expect(s.results['verify-ended']).toEqual({ bucketExists: false, objects: 0 });
    expect(w.calls.filter((c) => c === 'end:sc-1').length).toBeGreaterThan(1);
  });

  it('A never reports an end that B\'s listing contradicts: a bucket that stays is an operator\'s matter', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    await active(w);
    westOf(w).deleteBucket = async () => undefined; // B's store never removes it
    w.mailboxA.deliverEnd('o1');
    expect(await done).toBe('needs-operator');
    expect((await w.a.status('a1')).error).toMatchObject({ code: 'SUBCONTRACT_NOT_EMPTY' });
    expect(w.audit).not.toContain('cloud-a:subcontract-ended');
  });
});

describe('B\'s subcontract service (issue 14)', () => {
  const C_PEER = { cloudId: 'cloud-c', jid: 'cloud-c@intercloud.test' };

  it('answers another cloud\'s begin, end or listing of the subcontract with SUBCONTRACT_UNKNOWN, and changes nothing', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    await active(w);
    westOf(w).fill(BUCKET, 2);
    const ref = { offerId: 'o1', subcontractId: 'sc-1' };
    await expect(w.serviceB.handleEnd(C_PEER, ref)).rejects.toMatchObject({ code: 'SUBCONTRACT_UNKNOWN' });
    await expect(w.serviceB.handleListing(C_PEER, ref)).rejects.toMatchObject({ code: 'SUBCONTRACT_UNKNOWN' });
    await expect(w.serviceB.handleBegin(C_PEER, ref)).rejects.toMatchObject({ code: 'SUBCONTRACT_UNKNOWN' });
    // A's own request naming another offer of the subcontract is not it either.
    await expect(w.serviceB.handleEnd({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, { ...ref, offerId: 'o-other' })).rejects.toMatchObject({ code: 'SUBCONTRACT_UNKNOWN' });
    expect((await w.b.status(JOB_B)).state).toBe('running');
    expect(westOf(w).buckets.get(BUCKET)?.size).toBe(2);
    w.mailboxA.deliverEnd('o1');
    expect(await done).toBe('completed');
  });

  it('refuses a second offer of a subcontract whose job still runs (its bucket is that job\'s)', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    await active(w);
    const again = w.receiveOffer({
      offerId: 'o2', from: 'cloud-a', workload: input().workload, constraints: { regions: ['eu-west'] }, terms: { currency: 'EUR', maxPricePerGbMonth: 0.05 },
      issued: new Date().toISOString(), expires: new Date(Date.now() + 60_000).toISOString(),
    });
    await expect(again).rejects.toMatchObject({ code: 'SUBCONTRACT_BUCKET_TAKEN' });
    expect(w.book.free(Date.now()).objectStorageGiB).toBe(700);
    w.mailboxA.deliverEnd('o1');
    expect(await done).toBe('completed');
  });

  it('refuses a cancel once the bucket is made (the subcontract is ended, not cancelled)', async () => {
    const w = new SubcontractWorld();
    const { done } = await w.a.start('subcontract-out', 'a1', input());
    await active(w);
    expect(await w.serviceB.handleCancel({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, 'o1')).toMatchObject({ action: 'refuse' });
    expect(await w.serviceB.handleCancel(C_PEER, 'o1')).toBeUndefined();
    expect((await w.b.status(JOB_B)).state).toBe('running');
    w.mailboxA.deliverEnd('o1');
    expect(await done).toBe('completed');
  });

  it('lists the reservations of live subcontracts, for the book after a restart', async () => {
    const w = new SubcontractWorld();
    void (await w.a.start('subcontract-out', 'a1', input())).done;
    await active(w);
    await w.b.stop();
    w.b = w.makeB();
    void w.b.resumeAll();
    const live = await w.serviceB.liveReservations();
    expect(live).toMatchObject([{ reservationId: 'r-o1', senderCloud: 'cloud-a', senderJid: 'cloud-a@intercloud.test/gateway', used: true, demand: { objectStorageGiB: 300 }, placement: { bucket: BUCKET, region: 'eu-west' } }]);
    // Recorded in a fresh book (the daemon's after a restart), it holds the capacity and does not lapse.
    const { ReservationBook } = await import('../../../agent/admission/index.js');
    const book = new ReservationBook({ vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 1000 });
    for (const r of live) book.record(r);
    expect(book.free(Date.now() + 86_400_000).objectStorageGiB).toBe(700);
    w.mailboxA.deliverEnd('o1');
    await w.a.waitFor('a1', (s) => s.state !== 'running');
    expect(await w.serviceB.liveReservations()).toEqual([]);
  });
});
