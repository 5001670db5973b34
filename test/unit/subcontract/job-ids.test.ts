/**
 * B's jobs of storage subcontracts are one per (peer, subcontract id), and each peer reaches
 * its own only. A peer's subcontract ids are its own choice and may hold dashes, as cloud ids do:
 * cloud-a's subcontract `x-y` and cloud-a-x's subcontract `y` are two subcontracts, and neither
 * peer's offer may be refused, begun or ended because of the other's. A job that an earlier
 * version named `subcontract-in-PEER-ID` in its journal is still found by its peer and id.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Sequencer } from '../../../agent/sequencer/index.js';
import {
  SubcontractMailbox, SubcontractTargetService, subcontractBucketName, subcontractInDefinition, subcontractInJobId, type SubcontractInPorts,
} from '../../../agent/subcontract/index.js';
import type { Reservation } from '../../../protocols/xmpp/offer-admission.js';
import { sampleStorageOffer } from '../xmpp/fixtures.js';
import { MemoryStore } from './world.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function serviceB(): { seq: Sequencer; service: SubcontractTargetService; store: MemoryStore } {
  const dir = mkdtempSync(join(tmpdir(), 'sc-ids-'));
  dirs.push(dir);
  const store = new MemoryStore();
  const mailbox = new SubcontractMailbox();
  const ports: SubcontractInPorts = {
    cloudId: 'cloud-b',
    store: () => store,
    requests: mailbox,
    reservations: { use: () => true, release: () => undefined },
    clock: mailbox,
    returns: { returnData: async () => ({ objects: 0, bytes: 0 }) },
    audit: { record: async () => undefined },
  };
  const seq = new Sequencer({ journalDir: dir, definitions: [subcontractInDefinition(ports)], backoffMs: () => 1 });
  return { seq, service: new SubcontractTargetService(seq, mailbox, () => store), store };
}

function offerOf(peer: string, offerId: string, subcontractId: string): { peer: { cloudId: string; jid: string }; offer: ReturnType<typeof sampleStorageOffer>; reservation: Reservation } {
  const base = sampleStorageOffer();
  const offer = sampleStorageOffer({
    offerId, from: peer,
    workload: { ...base.workload, subcontractId, ends: new Date(Date.now() + 86_400_000).toISOString() } as typeof base.workload,
  });
  const reservation: Reservation = {
    reservationId: `r-${offerId}`, offer, senderCloud: peer, senderJid: `${peer}@intercloud.test/gateway`,
    demand: { vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 100 }, expiresAt: Date.now() + 60_000, used: false,
    placement: { region: 'eu-west', bucket: subcontractBucketName(peer, subcontractId) },
  };
  return { peer: { cloudId: peer, jid: `${peer}@intercloud.test` }, offer, reservation };
}

describe("B's subcontract jobs, one per peer and subcontract id", () => {
  it('two peers whose names and ids once made one job id each get their own job and reach only it', async () => {
    const { seq, service, store } = serviceB();
    const a = offerOf('cloud-a', 'so-a', 'x-y');
    const ax = offerOf('cloud-a-x', 'so-ax', 'y');
    await service.handleOffer(a.peer, a.offer, a.reservation);
    // Before: the same job id as cloud-a's, so this offer was refused (SUBCONTRACT_BUCKET_TAKEN).
    await service.handleOffer(ax.peer, ax.offer, ax.reservation);
    const jobs = (await seq.list()).filter((j) => j.kind === 'subcontract-in');
    expect(jobs.map((j) => j.jobId).sort()).toEqual([subcontractInJobId('cloud-a', 'x-y'), subcontractInJobId('cloud-a-x', 'y')].sort());
    expect(new Set(jobs.map((j) => j.jobId)).size).toBe(2);
    // Each peer begins its own; neither names the other's subcontract with its own offer.
    await expect(service.handleBegin(ax.peer, { offerId: 'so-a', subcontractId: 'x-y', peer: 'cloud-a-x' })).rejects.toMatchObject({ code: 'SUBCONTRACT_UNKNOWN' });
    await expect(service.handleBegin(a.peer, { offerId: 'so-ax', subcontractId: 'y', peer: 'cloud-a' })).rejects.toMatchObject({ code: 'SUBCONTRACT_UNKNOWN' });
    expect(await service.handleBegin(ax.peer, { offerId: 'so-ax', subcontractId: 'y', peer: 'cloud-a-x' })).toMatchObject({ region: 'eu-west' });
    expect(await service.handleBegin(a.peer, { offerId: 'so-a', subcontractId: 'x-y', peer: 'cloud-a' })).toMatchObject({ region: 'eu-west' });
    expect(store.buckets.size).toBe(2);
    for (const j of await seq.list()) await seq.cancel(j.jobId);
  });

  it('a job an earlier version named subcontract-in-PEER-ID is found by its peer and id', async () => {
    const { seq, service } = serviceB();
    const a = offerOf('cloud-a', 'so-old', 'x-y');
    // As an earlier version started it (and as its journal replays it after an upgrade).
    await seq.start('subcontract-in', 'subcontract-in-cloud-a-x-y', {
      offerId: 'so-old', peer: a.peer, reservationId: a.reservation.reservationId,
      reservationExpiresAt: new Date(a.reservation.expiresAt).toISOString(), placement: a.reservation.placement!,
      terms: { subcontractId: 'x-y', replicas: 3, ack: 'sync', capacityGiB: 100, maxObjects: 100_000, ends: a.offer.workload.type === 'storage' ? a.offer.workload.ends : '', atEnd: 'delete' },
      offer: a.offer, senderJid: a.reservation.senderJid,
    });
    // The same offer again is the same job; another offer of that subcontract is refused; it begins.
    await service.handleOffer(a.peer, a.offer, a.reservation);
    const again = offerOf('cloud-a', 'so-new', 'x-y');
    await expect(service.handleOffer(again.peer, again.offer, again.reservation)).rejects.toMatchObject({ code: 'SUBCONTRACT_BUCKET_TAKEN' });
    expect(await service.handleBegin(a.peer, { offerId: 'so-old', subcontractId: 'x-y', peer: 'cloud-a' })).toMatchObject({ region: 'eu-west' });
    expect((await seq.list()).map((j) => j.jobId)).toEqual(['subcontract-in-cloud-a-x-y']);
    for (const j of await seq.list()) await seq.cancel(j.jobId);
  });
});
