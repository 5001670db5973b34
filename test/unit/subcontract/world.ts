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
  SubcontractMailbox, SubcontractTargetService, subcontractInDefinition, subcontractInJobId, subcontractOutDefinition, type SubcontractInPorts,
  type SubcontractOutPorts, type SubcontractRef, type SubcontractStore, type StorageOfferOutcome,
} from '../../../agent/subcontract/index.js';
import { storeError, type ListPage } from '../../../adapters/storage/index.js';
import { acceptFor } from '../../../protocols/xmpp/offer-responder.js';
import type { CatalogEntry, Offer } from '../../../protocols/xmpp/index.js';
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

const A_PEER = { cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' };

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
  /** B's daemon-side glue (what the session's handlers call). */
  serviceB!: SubcontractTargetService;

  constructor() {
    this.a = this.makeA();
    this.b = this.makeB();
  }

  makeA(): Sequencer {
    return new Sequencer({ journalDir: this.dirA, definitions: [subcontractOutDefinition(this.portsA())], backoffMs: () => 1 });
  }

  makeB(): Sequencer {
    const b = new Sequencer({ journalDir: this.dirB, definitions: [subcontractInDefinition(this.portsB())], backoffMs: () => 1 });
    this.serviceB = new SubcontractTargetService(b, this.mailboxB, (region) => this.stores.get(region));
    return b;
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
          // B's session asks its cancel handler: hold while the job compensates, else release now.
          const verdict = await this.serviceB.handleCancel(A_PEER, offerId);
          if (verdict?.action === 'hold') {
            await this.b.waitFor(subcontractInJobId('cloud-a', 'sc-1'), (s) => s.state !== 'running');
          } else if (verdict === undefined) {
            const r = this.book.byOffer('cloud-a', offerId, Date.now());
            if (r) this.book.release(r.reservationId);
          }
        },
        begin: async (_peer, ref) => {
          this.calls.push(`begin:${ref.subcontractId}`);
          return this.serviceB.handleBegin(A_PEER, ref);
        },
        end: async (_peer, ref) => {
          this.calls.push(`end:${ref.subcontractId}`);
          await this.serviceB.handleEnd(A_PEER, ref);
        },
        list: async (_peer, ref) => this.serviceB.handleListing(A_PEER, ref),
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
      // As the session does: the offer handler (which may veto) runs before the reservation is recorded.
      await this.serviceB.handleOffer(A_PEER, offer, r);
      this.book.record(r);
    }
    const accept = acceptFor(r, 'cloud-b', { transferUri: 'amqps://127.0.0.1:25672/intercloud', transferQueue: `intercloud.${r.reservationId}`, transferIdentity: 'broker.cloud-b.intercloud.test' });
    return { type: 'accept', accept, signer: { cloudId: 'cloud-b', certificateSha256: 'b'.repeat(64) } };
  }
}
