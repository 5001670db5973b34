/**
 * Two clouds' subcontract jobs wired to each other in memory (issue 14): A's control port talks
 * to B's side as B's daemon would — the real admission (admitOffer over a ReservationBook with a
 * storage policy), the real accept (acceptFor), B's job started on accept — and B keeps its
 * buckets in an in-memory object store. Faults are injected by name.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReservationBook, admitOffer, createDefaultPolicy } from '../../../agent/admission/index.js';
import { Sequencer } from '../../../agent/sequencer/index.js';
import {
  emptyAndDeleteBucket, listingOf, SubcontractMailbox, subcontractInDefinition, subcontractInJobId, subcontractOutDefinition, type SubcontractInInput, type SubcontractInPorts,
  type SubcontractOutPorts, type SubcontractRef, type SubcontractStore, type StorageOfferOutcome,
} from '../../../agent/subcontract/index.js';
import { storeError, type ListPage } from '../../../adapters/storage/index.js';
import { acceptFor } from '../../../protocols/xmpp/offer-responder.js';
import type { CatalogEntry, Offer, StorageWorkload } from '../../../protocols/xmpp/index.js';
import { sampleEntry } from '../xmpp/fixtures.js';

/** A bucket store of one region, in memory (the narrow port only). */
export class MemoryStore implements SubcontractStore {
  readonly buckets = new Map<string, Map<string, number>>();
  calls: string[] = [];

  async createBucket(bucket: string): Promise<void> {
    this.calls.push(`create:${bucket}`);
    if (!this.buckets.has(bucket)) this.buckets.set(bucket, new Map());
  }

  async headBucket(bucket: string): Promise<boolean> {
    return this.buckets.has(bucket);
  }

  async deleteBucket(bucket: string): Promise<void> {
    this.calls.push(`delete-bucket:${bucket}`);
    const b = this.buckets.get(bucket);
    if (b && b.size > 0) throw storeError('STORE_BUCKET_NOT_EMPTY', `bucket '${bucket}' is not empty`);
    this.buckets.delete(bucket);
  }

  async listObjects(bucket: string, options: { startAfter?: string; maxKeys?: number } = {}): Promise<ListPage> {
    const b = this.buckets.get(bucket);
    if (!b) throw storeError('STORE_BUCKET_NOT_FOUND', `no bucket '${bucket}'`);
    const keys = [...b.keys()].sort().filter((k) => options.startAfter === undefined || k > options.startAfter);
    const page = keys.slice(0, options.maxKeys ?? 1000);
    return {
      objects: page.map((key) => ({ key, sizeBytes: b.get(key) ?? 0, etag: 'e', lastModified: new Date(0) })),
      ...(keys.length > page.length ? { nextStartAfter: page[page.length - 1] as string } : {}),
    };
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    this.buckets.get(bucket)?.delete(key);
  }

  /** Puts `n` objects into `bucket` (what replication would have written). */
  fill(bucket: string, n: number): void {
    const b = this.buckets.get(bucket) ?? new Map<string, number>();
    for (let i = 0; i < n; i++) b.set(`obj-${String(i).padStart(5, '0')}`, 10);
    this.buckets.set(bucket, b);
  }
}

export const T_REGIONS = { 'eu-west': { maxReplicas: 3 }, 'us-east': { maxReplicas: 1 } };

/** The world: A's and B's sequencers, B's stores and book, and what happened. */
export class SubcontractWorld {
  readonly stores = new Map<string, MemoryStore>([['eu-west', new MemoryStore()], ['us-east', new MemoryStore()]]);
  readonly book = new ReservationBook({ vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 1000 });
  readonly faults = new Set<string>();
  readonly audit: string[] = [];
  readonly calls: string[] = [];
  /** A's: the operator's end. */
  readonly mailboxA = new SubcontractMailbox();
  /** B's: A's begin and end requests. */
  readonly mailboxB = new SubcontractMailbox();
  readonly dirA = mkdtempSync(join(tmpdir(), 'sc-a-'));
  readonly dirB = mkdtempSync(join(tmpdir(), 'sc-b-'));
  /** What B's catalog entry says (signed, as A's directory reader verified it). */
  entryB: CatalogEntry = sampleEntry({ cloudId: 'cloud-b', jid: 'cloud-b@intercloud.test', regions: ['eu-west', 'us-east'], capabilities: ['storage-federation', 'transfer-amqp'] });
  /** Rewrites B's answer to an offer (a lying peer). */
  tamper: ((out: StorageOfferOutcome) => StorageOfferOutcome) | undefined;
  a: Sequencer;
  b: Sequencer;

  constructor() {
    this.a = this.makeA();
    this.b = this.makeB();
  }

  makeA(): Sequencer {
    return new Sequencer({ journalDir: this.dirA, definitions: [subcontractOutDefinition(this.portsA())], backoffMs: () => 1 });
  }

  makeB(): Sequencer {
    return new Sequencer({ journalDir: this.dirB, definitions: [subcontractInDefinition(this.portsB())], backoffMs: () => 1 });
  }

  #fault(point: string): void {
    if (this.faults.has(point)) throw storeError('STORE_UNAVAILABLE', `fault injected at '${point}'`, { retryable: false });
  }

  #jobOf(ref: SubcontractRef): string {
    return subcontractInJobId('cloud-a', ref.subcontractId);
  }

  portsA(): SubcontractOutPorts {
    return {
      cloudId: 'cloud-a',
      control: {
        peers: async () => [this.entryB],
        domainOf: () => 'intercloud.test',
        offer: async (_peer, offer) => {
          this.calls.push(`offer:${offer.offerId}`);
          const out = await this.receiveOffer({ ...offer, from: 'cloud-a', issued: new Date(Date.now() - 1000).toISOString(), expires: new Date(Date.now() + 60_000).toISOString() });
          return this.tamper ? this.tamper(out) : out;
        },
        release: async (_peer, offerId) => {
          this.calls.push(`release:${offerId}`);
          const job = [...(await this.b.list())].find((j) => (j.input as SubcontractInInput).offerId === offerId);
          if (job && job.state === 'running') {
            await this.b.cancel(job.jobId, 'released by the offering cloud');
            await this.b.waitFor(job.jobId, (s) => s.state !== 'running');
          } else {
            const r = this.book.byOffer('cloud-a', offerId, Date.now());
            if (r) this.book.release(r.reservationId);
          }
        },
        begin: async (_peer, ref) => {
          this.calls.push(`begin:${ref.subcontractId}`);
          this.mailboxB.deliverBegin(ref.offerId);
          const s = await this.b.waitFor(this.#jobOf(ref), (st) => st.completedSteps.includes('create-bucket') || st.state !== 'running');
          const made = s.results['create-bucket'] as { bucket: string } | undefined;
          if (!made) throw storeError('STORE_UNAVAILABLE', `cloud-b did not begin: ${s.error?.code ?? s.state}`, { retryable: false });
          return { bucket: made.bucket };
        },
        end: async (_peer, ref) => {
          this.calls.push(`end:${ref.subcontractId}`);
          this.mailboxB.deliverEnd(ref.offerId);
          const s = await this.b.waitFor(this.#jobOf(ref), (st) => st.state !== 'running');
          // Asked again for an ended subcontract, B deletes what is left again (the end is idempotent).
          const { placement } = s.input as SubcontractInInput;
          if (s.state === 'completed') await emptyAndDeleteBucket(this.stores.get(placement.region) as MemoryStore, placement.bucket, new AbortController().signal);
        },
        list: async (_peer, ref) => {
          const s = await this.b.status(this.#jobOf(ref));
          const { placement } = s.input as SubcontractInInput;
          return listingOf(this.stores.get(placement.region) as MemoryStore, placement.bucket, new AbortController().signal);
        },
      },
      clock: this.mailboxA,
      returns: { returnData: async (req) => { this.calls.push(`return-a:${req.bucket}`); return { objects: 0, bytes: 0 }; } },
      audit: { record: async (event) => { this.audit.push(`cloud-a:${event}`); } },
    };
  }

  portsB(): SubcontractInPorts {
    return {
      cloudId: 'cloud-b',
      store: (region) => {
        this.#fault(`store:${region}`);
        return this.stores.get(region);
      },
      requests: this.mailboxB,
      reservations: {
        use: (id) => this.book.get(id, Date.now()) !== undefined && this.book.markUsed(id),
        release: (id) => { this.book.release(id); },
      },
      clock: this.mailboxB,
      returns: { returnData: async (req) => { this.calls.push(`return-b:${req.bucket}`); return { objects: 0, bytes: 0 }; } },
      audit: { record: async (event) => { this.audit.push(`cloud-b:${event}`); } },
    };
  }

  /** B's daemon answering an offer: admission, the accept, and its job started on a fresh reservation. */
  async receiveOffer(offer: Offer, ttlMs = 60_000): Promise<StorageOfferOutcome> {
    const now = Date.now();
    const verdict = admitOffer({
      offer, signer: { cloudId: 'cloud-a', certificateSha256: 'a'.repeat(64) }, sender: { local: 'cloud-a', domain: 'intercloud.test', jid: 'cloud-a@intercloud.test/gateway' },
      now, book: this.book, policy: createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 1, maxMemoryMiBPerVm: 1, storage: { regions: T_REGIONS } }),
      reservationId: `r-${offer.offerId}`, reservationTtlMs: ttlMs,
    });
    if (verdict.verdict === 'reject') return { type: 'reject', reason: verdict.reason, text: verdict.text };
    const r = verdict.reservation;
    if (verdict.fresh) {
      this.book.record(r);
      const w = offer.workload as StorageWorkload;
      await this.b.start('subcontract-in', subcontractInJobId('cloud-a', w.subcontractId), {
        offerId: offer.offerId, peer: { cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, reservationId: r.reservationId,
        reservationExpiresAt: new Date(r.expiresAt).toISOString(), placement: r.placement as NonNullable<typeof r.placement>,
        terms: { subcontractId: w.subcontractId, replicas: w.replicas, ack: w.ack, capacityGiB: w.capacityGiB, maxObjects: w.maxObjects, ends: w.ends, atEnd: w.atEnd },
      } satisfies SubcontractInInput);
    }
    const accept = acceptFor(r, 'cloud-b', { transferUri: 'amqps://127.0.0.1:25672/intercloud', transferQueue: `intercloud.${r.reservationId}`, transferIdentity: 'broker.cloud-b.intercloud.test' });
    return { type: 'accept', accept, signer: { cloudId: 'cloud-b', certificateSha256: 'b'.repeat(64) } };
  }
}
