/**
 * Storage federation in the daemon (issue 14): the object stores of the config's `storage`
 * section (one per region, from the adapter registry), and both ends of a storage subcontract.
 *
 * - **B** (this cloud lends storage): the `subcontract-in` transaction, the
 *   {@link SubcontractTargetService} behind the NS_SUBCONTRACT requests, and a
 *   {@link ReplicaReceiver} served on this cloud's own broker for every subcontract whose bucket
 *   is made and that is still active. The peer's broker grant (the subcontract's transfer prefix)
 *   is given at accept and withdrawn when the job ends.
 * - **A** (this cloud subcontracts a bucket): the `subcontract-out` transaction and a
 *   {@link Replicator} per live subcontract (journal and staging under the state folder), opened
 *   once B began the subcontract, reopened at daemon start, closed once its data is returned.
 *
 * `sync()` makes the running receivers and replicators match the journaled jobs; it runs after
 * every step of a subcontract job and at start, so a restart resumes exactly what was live.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Registry } from 'prom-client';
import { createObjectStore, type ObjectStore } from '../../adapters/storage/index.js';
import type { BrokerOptions } from '../../protocols/amqp/index.js';
import type { GatewaySession, IncomingOffer, StorageWorkload } from '../../protocols/xmpp/index.js';
import type { AgentConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import {
  AmqpReplicaPeer, ReplicaReceiver, Replicator, registerReplicationMetrics, serveReplicaPeer, transferPrefix,
  type AuditReport, type ReceiverTerms, type ReplicaObject, type ReplicaServer, type ReplicationEvent, type ReplicationStatus, type Subcontract,
} from '../replication/index.js';
import type { JobStatus, Sequencer, SequencerEvent, TransactionDefinition } from '../sequencer/index.js';
import {
  SubcontractMailbox, SubcontractTargetService, subcontractError, subcontractInDefinition, subcontractOutDefinition,
  type NegotiatedSubcontract, type SubcontractAuditPort, type SubcontractInInput, type SubcontractOutInput, type SubcontractPeer,
  type SubcontractReturnPort,
} from '../subcontract/index.js';
import type { BrokerGrants, OfferGrant } from './broker-grants.js';
import { serveSubcontractRequests, subcontractControlPort } from './subcontract-control.js';

const DAY_MS = 86_400_000;

/** How far a store's upload times may be from ours (whole seconds rounded up, another host's clock). */
const STORE_CLOCK_GRACE_MS = 2_000;

/**
 * Where B stages and journals what `peerCloud` sends for its subcontract `subcontractId`: the id is
 * the peer's choice, so another peer may name the same one; each peer's folder is its own (a
 * receiver clears its staging when it starts). Both parts are checked names (cloud id, token).
 */
export function receiverWorkDir(stateDir: string, peerCloud: string, subcontractId: string): string {
  return join(stateDir, 'replication-in', peerCloud, subcontractId);
}

/**
 * B: the terms a peer's receiver holds it to — the accepted end, the reserved bytes
 * (`capacityGiB` × 2^30) and objects — so that whatever the peer sends, B stores nothing past
 * its end or beyond its reservation (`REPL_SUBCONTRACT_ENDED`, `REPL_OVER_RESERVATION`; issue 14,
 * "a peer asking for more than its reservation").
 */
export function receiverTermsOf(terms: SubcontractInInput['terms']): ReceiverTerms {
  return { ends: terms.ends, capacityBytes: terms.capacityGiB * 2 ** 30, maxObjects: terms.maxObjects };
}

/** A's job input: the transaction's own, plus where the source bucket lives and the bandwidth limit. */
export type StorageOutInput = SubcontractOutInput & {
  /** The region of this cloud's store that holds the source bucket. */
  readonly sourceRegion: string;
  /** Sender bytes per second for this subcontract (0: unlimited). */
  readonly bandwidthBytesPerSecond: number;
};

/** What the operator asks for (`intercloud storage subcontract`). */
export interface StorageSubcontractRequest {
  readonly bucket: string;
  readonly prefix?: string;
  readonly to?: string;
  readonly auto?: boolean;
  readonly replicas: number;
  readonly regions: readonly string[];
  readonly ack: 'async' | 'sync' | 'quorum';
  readonly capacityGiB?: number;
  readonly days?: number;
  readonly maxObjects?: number;
  readonly atEnd?: 'return' | 'delete';
  readonly sourceRegion?: string;
  readonly bandwidthBytesPerSecond?: number;
  readonly maxPricePerGbMonth?: number;
}

/** One subcontract as `storage status` shows it. */
export interface SubcontractView {
  readonly subcontractId: string;
  readonly jobId: string;
  /** This cloud's side: `out` (A, subcontracted its bucket) or `in` (B, holds a peer's copy). */
  readonly side: 'out' | 'in';
  readonly state: JobStatus['state'];
  readonly step: string | undefined;
  readonly peer: string | undefined;
  readonly source: { bucket: string; prefix: string; region?: string };
  readonly target: { bucket: string; region: string } | undefined;
  readonly ack: string;
  readonly replicas: number;
  readonly ends: string;
  readonly atEnd: string;
  readonly error: JobStatus['error'];
  /** A's replication status (live, or as it stood when the replicator closed). */
  readonly replication?: ReplicationStatus & { readonly inFlightObjects?: number };
  readonly objects?: Array<Readonly<ReplicaObject>>;
}

/** Options of {@link StorageFederation}. */
export interface StorageFederationOptions {
  readonly cloudId: string;
  readonly storage: AgentConfig['storage'];
  readonly stateDir: string;
  readonly currency: string;
  readonly session: GatewaySession;
  /** This cloud's own broker, logged in to with its own certificate (B serves its receivers there; A's peers use the accept's). */
  readonly broker: BrokerOptions;
  readonly grants: BrokerGrants | undefined;
  readonly audit: SubcontractAuditPort;
  readonly log: Logger;
}

const outJobId = (subcontractId: string): string => `subcontract-out-${subcontractId}`;

/** Both ends of storage subcontracts in the daemon. */
export class StorageFederation {
  /** The object store of each configured region. */
  readonly stores = new Map<string, ObjectStore>();
  readonly #o: StorageFederationOptions;
  readonly #inbox = new SubcontractMailbox();
  readonly #outbox = new SubcontractMailbox();
  readonly #replicators = new Map<string, { r: Replicator; peer: AmqpReplicaPeer; off: () => void }>();
  readonly #lastStatus = new Map<string, ReplicationStatus>();
  readonly #receivers = new Map<string, ReplicaServer>();
  readonly #listeners = new Set<(e: ReplicationEvent) => void>();
  #sequencer: Sequencer | undefined;
  #service: SubcontractTargetService | undefined;
  #syncing: Promise<void> = Promise.resolve();
  #resync = false;
  #stopped = false;

  /** Creates one store per configured region (reads their secret files; connects nothing). */
  constructor(o: StorageFederationOptions) {
    this.#o = o;
    for (const [region, s] of Object.entries(o.storage?.regions ?? {})) {
      this.stores.set(region, createObjectStore(s.kind, { name: o.cloudId, region, ...s.config }));
    }
  }

  /** Whether this cloud lends object storage (a `storage` section with at least one region). */
  get lends(): boolean {
    return this.stores.size > 0;
  }

  /** The free object storage the catalog starts from (GiB, every replica counted). */
  get capacityGiB(): number {
    return this.#o.storage?.capacityGiB ?? 0;
  }

  /** The sequencer transactions of both ends. */
  definitions(): [TransactionDefinition<SubcontractOutInput>, TransactionDefinition<SubcontractInInput>] {
    const { cloudId, session, audit } = this.#o;
    const control = subcontractControlPort(session);
    const returns: SubcontractReturnPort = { returnData: (req) => this.#returnToA(req.ref.subcontractId) };
    const out = subcontractOutDefinition({ cloudId, control, clock: this.#outbox, returns, audit });
    const inDef = subcontractInDefinition({
      cloudId,
      store: (region) => this.stores.get(region),
      requests: this.#inbox,
      reservations: {
        use: (id) => session.useReservation(id),
        release: (id) => {
          session.releaseReservation(id).catch((err: unknown) => this.#o.log.warn({ err, reservation: id }, 'could not release a subcontract reservation'));
        },
      },
      clock: this.#inbox,
      // B keeps no primary copy: A's bucket is the source, so nothing travels back from B; A
      // verifies at its end that it holds every object B held (see #returnToA).
      returns: { returnData: async () => ({ objects: 0, bytes: 0 }) },
      audit,
    });
    return [out, inDef];
  }

  /** Binds to the sequencer (after it is made, before `resumeAll`) and serves B's requests on the session. */
  attach(sequencer: Sequencer): void {
    this.#sequencer = sequencer;
    this.#service = new SubcontractTargetService(sequencer, this.#inbox, (region) => this.stores.get(region), {
      jobEnded: (offerId, peer) => {
        this.#o.grants?.withdraw(peer.cloudId, offerId).catch((err: unknown) => this.#o.log.warn({ err, offer: offerId }, 'could not withdraw the peer\'s broker grant'));
      },
    });
    serveSubcontractRequests(this.#o.session, this.#service);
    sequencer.watch((e: SequencerEvent) => {
      if (!e.kind.startsWith('subcontract-')) return;
      if (e.type === 'step-completed' || e.type === 'job-finished') this.sync();
      // The service's own hook fires only for jobs it started in this process: a job resumed after
      // a restart ends here too, and its grant must go with it (withdraw is idempotent).
      if (e.type === 'job-finished' && e.kind === 'subcontract-in') this.#withdrawGrantOf(e.jobId);
    });
  }

  /** Before `resumeAll`: the reservations of live inbound subcontracts are held again (remade from their journals). */
  async restoreReservations(): Promise<void> {
    for (const r of await this.#requireService().liveReservations()) this.#o.session.reservations.record(r);
  }

  #withdrawGrantOf(jobId: string): void {
    const grants = this.#o.grants;
    if (!grants) return;
    this.#requireSequencer().status(jobId).then(async (j) => {
      const input = j.input as SubcontractInInput;
      this.#inbox.forget(input.offerId, input.peer.cloudId);
      await grants.withdraw(input.peer.cloudId, input.offerId);
    }).catch((err: unknown) => this.#o.log.warn({ err, job: jobId }, 'could not withdraw the peer\'s broker grant of an ended subcontract'));
  }

  /** After `resumeAll`: the live subcontracts' receivers (B) and replicators (A) run again. */
  async resume(): Promise<void> {
    this.sync();
    await this.#syncing;
  }

  /** The grants of the live inbound subcontracts (for `BrokerGrants.reconcile`). */
  liveGrants(jobs: readonly JobStatus[]): OfferGrant[] {
    return jobs.filter((j) => j.kind === 'subcontract-in' && j.state === 'running').map((j) => {
      const input = j.input as SubcontractInInput;
      return { peer: input.peer.cloudId, offerId: input.offerId, transferIds: [], transferPrefixes: [transferPrefix(input.terms.subcontractId)] };
    });
  }

  /**
   * B: an accepted storage offer. The peer is granted the subcontract's transfers at this cloud's
   * broker, then B's job starts (the grant is withdrawn again if it cannot).
   */
  async handleOffer(incoming: IncomingOffer): Promise<void> {
    const w = incoming.offer.workload as StorageWorkload;
    const peer: SubcontractPeer = { cloudId: incoming.signer.cloudId, jid: incoming.from.split('/')[0] ?? incoming.from };
    const grant: OfferGrant = { peer: peer.cloudId, offerId: incoming.offer.offerId, transferIds: [], transferPrefixes: [transferPrefix(w.subcontractId)] };
    await this.#o.grants?.grant(grant);
    try {
      await this.#requireService().handleOffer(peer, incoming.offer, incoming.reservation);
    } catch (err) {
      await this.#o.grants?.withdraw(grant.peer, grant.offerId);
      throw err;
    }
  }

  /** B: the peer cancelled the reservation of a storage offer. */
  handleCancel(peer: SubcontractPeer, offerId: string): ReturnType<SubcontractTargetService['handleCancel']> {
    return this.#requireService().handleCancel(peer, offerId);
  }

  // ── the operator's side (A) ─────────────────────────────────────────────────────────

  /** Starts A's subcontract of a bucket; resolves with its id once the job is journaled. */
  async subcontract(req: StorageSubcontractRequest): Promise<{ subcontractId: string; jobId: string }> {
    const sequencer = this.#requireSequencer();
    const sourceRegion = req.sourceRegion ?? [...this.stores.keys()][0];
    const store = sourceRegion === undefined ? undefined : this.stores.get(sourceRegion);
    if (sourceRegion === undefined || !store) {
      throw subcontractError('SUBCONTRACT_NO_STORE', sourceRegion === undefined
        ? `'${this.#o.cloudId}' has no object store configured: add a storage section with the region that holds bucket '${req.bucket}'`
        : `'${this.#o.cloudId}' has no object store configured for region '${sourceRegion}': use one of ${[...this.stores.keys()].map((r) => `'${r}'`).join(', ')}`);
    }
    if (!(await store.headBucket(req.bucket, { signal: AbortSignal.timeout(30_000) }))) {
      throw subcontractError('SUBCONTRACT_NO_SOURCE', `bucket '${req.bucket}' does not exist in the store of region '${sourceRegion}': create it first, or name the region that holds it`);
    }
    const subcontractId = `sc-${randomBytes(6).toString('hex')}`;
    const offerId = `so-${randomBytes(8).toString('hex')}`;
    const input: StorageOutInput = {
      offerId,
      ...(req.to === undefined ? {} : { to: req.to }),
      workload: {
        type: 'storage', subcontractId, sourceBucket: req.bucket, ...(req.prefix ? { sourcePrefix: req.prefix } : {}),
        replicas: req.replicas, ack: req.ack, capacityGiB: req.capacityGiB ?? 1, maxObjects: req.maxObjects ?? 100_000,
        ends: new Date(Date.now() + (req.days ?? 30) * DAY_MS).toISOString(), atEnd: req.atEnd ?? 'delete',
      },
      regions: [...req.regions],
      terms: { currency: this.#o.currency, maxPricePerGbMonth: req.maxPricePerGbMonth ?? 1000 },
      sourceRegion,
      bandwidthBytesPerSecond: req.bandwidthBytesPerSecond ?? 0,
    };
    const { jobId } = await sequencer.start('subcontract-out', outJobId(subcontractId), input);
    return { subcontractId, jobId };
  }

  /** Every subcontract of this cloud, both sides. */
  async list(): Promise<SubcontractView[]> {
    const jobs = (await this.#requireSequencer().list()).filter((j) => j.kind === 'subcontract-out' || j.kind === 'subcontract-in');
    return jobs.map((j) => this.#view(j, false));
  }

  /** One subcontract (`SUBCONTRACT_UNKNOWN` when none has that id), with its objects when asked. */
  async status(subcontractId: string, o: { objects?: boolean } = {}): Promise<SubcontractView> {
    return this.#view(await this.#job(subcontractId), o.objects === true);
  }

  /** Audit and repair: compares A's listing with B's copy and sends again what is missing or corrupt; waits for the repair. */
  async verify(subcontractId: string, o: { deep?: boolean; waitMs?: number } = {}): Promise<{ report: AuditReport; status: SubcontractView }> {
    const r = await this.#replicator(subcontractId);
    const report = await r.audit({ deep: o.deep === true, signal: AbortSignal.timeout(600_000) });
    if (report.requeued > 0 && (o.waitMs ?? 0) > 0) await r.idle(AbortSignal.timeout(o.waitMs ?? 0)).catch((err: unknown) => this.#o.log.warn({ err, subcontract: subcontractId }, 'the repair did not finish in time'));
    return { report, status: await this.status(subcontractId) };
  }

  /** The operator ends a subcontract now: its job goes on to return/delete at B and verify. */
  async end(subcontractId: string): Promise<SubcontractView> {
    const job = await this.#job(subcontractId);
    if (job.kind !== 'subcontract-out') throw subcontractError('SUBCONTRACT_NOT_ACTIVE', `subcontract '${subcontractId}' is a peer's: only the cloud that made it ends it`);
    if (job.state !== 'running') throw subcontractError('SUBCONTRACT_NOT_ACTIVE', `subcontract '${subcontractId}' has ended already (${job.state})`);
    if (!job.completedSteps.includes('begin')) {
      // Not begun yet: nothing is stored at B, the job compensates (releases B's reservation).
      await this.#requireSequencer().cancel(job.jobId, 'ended by operator before it began');
    } else {
      this.#outbox.deliverEnd((job.input as StorageOutInput).offerId);
    }
    return this.#view(await this.#requireSequencer().status(job.jobId), false);
  }

  /** Writes an object through the agent; answers when what the ack mode promises holds. */
  async put(subcontractId: string, key: string, body: Readable, o: { sizeBytes: number; sha256: string; signal?: AbortSignal }): Promise<{ etag: string; replicated: boolean; ack: string }> {
    const r = await this.#replicator(subcontractId);
    const out = await r.put(key, body, o);
    return { etag: out.info.etag, replicated: out.replicated, ack: r.subcontract.ackMode };
  }

  /** Listens to the replication events of every subcontract (the local API streams them). */
  subscribe(listener: (e: ReplicationEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Registers the replication gauges (one series per live subcontract). */
  registerMetrics(registry: Registry): void {
    registerReplicationMetrics(registry, () => [...this.#replicators.values()].map((x) => x.r.status()));
  }

  /** Closes every replicator, receiver and store. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#syncing;
    await Promise.allSettled([...this.#replicators.keys()].map((id) => this.#closeReplicator(id)));
    await Promise.allSettled([...this.#receivers.keys()].map((id) => this.#closeReceiver(id)));
    await Promise.allSettled([...this.stores.values()].map((s) => s.close()));
  }

  /** Makes the live replicators (A) and receivers (B) match the journaled jobs (serialized; coalesced). */
  sync(): void {
    if (this.#stopped || !this.#sequencer) return;
    this.#resync = true;
    this.#syncing = this.#syncing.then(async () => {
      while (this.#resync && !this.#stopped) {
        this.#resync = false;
        try {
          await this.#syncOnce();
        } catch (err) {
          this.#o.log.warn({ err }, 'storage subcontracts: could not bring replication in line with the jobs; tried again at the next step');
        }
      }
    });
  }

  async #syncOnce(): Promise<void> {
    const jobs = await this.#requireSequencer().list();
    const wantOut = new Map<string, JobStatus>();
    const wantIn = new Map<string, JobStatus>();
    for (const j of jobs) {
      if (j.state !== 'running') continue;
      // A replicates from B's begin until the data is returned (or the job ends).
      if (j.kind === 'subcontract-out' && j.completedSteps.includes('begin') && !j.completedSteps.includes('return-data')) wantOut.set((j.input as StorageOutInput).workload.subcontractId, j);
      // B receives from the bucket's making until the subcontract's active time is over.
      if (j.kind === 'subcontract-in' && j.completedSteps.includes('create-bucket') && !j.completedSteps.includes('active')) wantIn.set(j.jobId, j);
    }
    for (const id of [...this.#replicators.keys()]) if (!wantOut.has(id)) await this.#closeReplicator(id);
    for (const id of [...this.#receivers.keys()]) if (!wantIn.has(id)) await this.#closeReceiver(id);
    for (const [id, j] of wantOut) if (!this.#replicators.has(id)) await this.#openReplicator(id, j);
    for (const [id, j] of wantIn) if (!this.#receivers.has(id)) await this.#openReceiver(id, j);
  }

  async #openReplicator(subcontractId: string, job: JobStatus): Promise<void> {
    const input = job.input as StorageOutInput;
    const accepted = job.results['negotiate'] as NegotiatedSubcontract;
    const peerCloud = (job.results['find-peer'] as SubcontractPeer).cloudId;
    const store = this.stores.get(input.sourceRegion);
    if (!store) throw subcontractError('SUBCONTRACT_NO_STORE', `no object store for region '${input.sourceRegion}' (the config changed since subcontract '${subcontractId}' began)`);
    const subcontract: Subcontract = {
      id: subcontractId, from: this.#o.cloudId, to: peerCloud,
      source: { bucket: input.workload.sourceBucket, prefix: input.workload.sourcePrefix ?? '' },
      target: { bucket: accepted.bucket }, ackMode: input.workload.ack,
      bandwidthBytesPerSecond: input.bandwidthBytesPerSecond, deletePolicy: 'propagate',
    };
    const dir = join(this.#o.stateDir, 'replication', subcontractId);
    await fs.mkdir(dir, { recursive: true, mode: 0o750 });
    // B's broker, as its accept named it (checked to be B's own when negotiated), logged in to with this cloud's certificate.
    const peer = new AmqpReplicaPeer({
      broker: { ...this.#o.broker, url: accepted.endpoint.url, servername: accepted.endpoint.identity },
      subcontract, journalDir: join(dir, 'transfers'),
    });
    let r: Replicator;
    try {
      r = await Replicator.open({ subcontract, store, peer, journalPath: join(dir, 'journal'), stagingDir: join(dir, 'staging') });
    } catch (err) {
      await peer.close();
      throw err;
    }
    const log = this.#o.log.child({ subcontract: subcontractId });
    const off = r.onEvent((e) => {
      if (e.type === 'replica-failed' || e.type === 'pass-failed' || e.type === 'audit-failed' || e.type === 'compaction-failed') log.warn(e, e.type);
      else if (e.type === 'audit-completed' || (e.type === 'pass-completed' && e.pass <= 1)) log.info(e, e.type);
      for (const l of this.#listeners) l(e);
    });
    const rep = this.#o.storage?.replication;
    r.start({ passEveryMs: (rep?.passSeconds ?? 30) * 1000, auditEveryMs: (rep?.auditSeconds ?? 600) * 1000 });
    this.#replicators.set(subcontractId, { r, peer, off });
    log.info({ peer: peerCloud, bucket: subcontract.source.bucket, target: accepted.bucket }, 'replication started');
  }

  async #closeReplicator(subcontractId: string): Promise<void> {
    const x = this.#replicators.get(subcontractId);
    if (!x) return;
    this.#replicators.delete(subcontractId);
    this.#lastStatus.set(subcontractId, x.r.status());
    x.off();
    await x.r.stop();
    await x.peer.close();
  }

  async #openReceiver(jobId: string, job: JobStatus): Promise<void> {
    const input = job.input as SubcontractInInput;
    const store = this.stores.get(input.placement.region);
    if (!store) throw subcontractError('SUBCONTRACT_NO_STORE', `no object store for region '${input.placement.region}'`);
    const w = input.offer.workload as StorageWorkload;
    const subcontract: Subcontract = {
      id: input.terms.subcontractId, from: input.peer.cloudId, to: this.#o.cloudId,
      source: { bucket: w.sourceBucket, prefix: w.sourcePrefix ?? '' }, target: { bucket: input.placement.bucket },
      ackMode: input.terms.ack, bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
    };
    // Only this agent writes the bucket it made for the peer, and it has not served it yet: any
    // upload there was left by a put killed with an earlier run, holding the store's space until it
    // is aborted. Store times are whole seconds (Swift rounds up) on the store's clock: hence the grace.
    try {
      const keys = await store.abortStaleUploads(input.placement.bucket, new Date(Date.now() + STORE_CLOCK_GRACE_MS));
      if (keys.length > 0) this.#o.log.info({ job: jobId, bucket: input.placement.bucket, keys }, 'aborted uploads left by an earlier run');
    } catch (err) {
      this.#o.log.warn({ err, job: jobId, bucket: input.placement.bucket }, 'could not look for uploads left by an earlier run');
    }
    const server = await serveReplicaPeer({
      broker: this.#o.broker, subcontract, receiver: new ReplicaReceiver(store, input.placement.bucket, undefined, receiverTermsOf(input.terms)),
      workDir: receiverWorkDir(this.#o.stateDir, input.peer.cloudId, input.terms.subcontractId),
    });
    this.#receivers.set(jobId, server);
    this.#o.log.info({ job: jobId, peer: input.peer.cloudId, bucket: input.placement.bucket, region: input.placement.region }, 'serving replicas');
  }

  async #closeReceiver(jobId: string): Promise<void> {
    const s = this.#receivers.get(jobId);
    if (!s) return;
    this.#receivers.delete(jobId);
    await s.close();
  }

  /**
   * A's `return-data`: A holds the primary copy (its bucket is the replication's source), so the
   * data is "returned" when A verifiably still holds every object B confirmed: same size and
   * ETag at A. An object A lost is `SUBCONTRACT_RETURN_INCOMPLETE` (the operator decides).
   */
  async #returnToA(subcontractId: string): Promise<{ objects: number; bytes: number }> {
    const r = await this.#replicator(subcontractId);
    const store = this.stores.get(((await this.#job(subcontractId)).input as StorageOutInput).sourceRegion);
    if (!store) throw subcontractError('SUBCONTRACT_NO_STORE', `no object store for the source of subcontract '${subcontractId}'`);
    let objects = 0;
    let bytes = 0;
    const lost: string[] = [];
    for (const o of r.objects('COMPLETED', Number.MAX_SAFE_INTEGER)) {
      const head = await store.headObject(r.subcontract.source.bucket, o.key);
      if (!head || head.sizeBytes !== o.size) lost.push(o.key);
      else { objects++; bytes += o.size; }
    }
    if (lost.length) {
      throw subcontractError('SUBCONTRACT_RETURN_INCOMPLETE', `${lost.length} objects B held are no longer at '${this.#o.cloudId}' (first: '${lost[0]}')`, { details: { lost: lost.slice(0, 100) } });
    }
    return { objects, bytes };
  }

  async #replicator(subcontractId: string): Promise<Replicator> {
    const job = await this.#job(subcontractId);
    if (job.kind !== 'subcontract-out') throw subcontractError('SUBCONTRACT_NOT_ACTIVE', `subcontract '${subcontractId}' is a peer's: it is replicated by the cloud that made it`);
    const x = this.#replicators.get(subcontractId);
    if (x) return x.r;
    if (job.state === 'running' && job.completedSteps.includes('begin') && !job.completedSteps.includes('return-data')) {
      // Begun a moment ago: the sync that opens its replicator is under way.
      this.sync();
      await this.#syncing;
      const y = this.#replicators.get(subcontractId);
      if (y) return y.r;
    }
    throw subcontractError('SUBCONTRACT_NOT_ACTIVE', `subcontract '${subcontractId}' is not replicating (${job.state === 'running' ? `step '${job.currentStep ?? '-'}'` : job.state})`);
  }

  async #job(subcontractId: string): Promise<JobStatus> {
    const jobs = await this.#requireSequencer().list();
    const job = jobs.find((j) => (j.kind === 'subcontract-out' && j.jobId === outJobId(subcontractId))
      || (j.kind === 'subcontract-in' && (j.input as SubcontractInInput).terms.subcontractId === subcontractId));
    if (!job) throw subcontractError('SUBCONTRACT_UNKNOWN', `no subcontract '${subcontractId}' at '${this.#o.cloudId}': 'intercloud storage status' lists them`);
    return job;
  }

  #view(j: JobStatus, withObjects: boolean): SubcontractView {
    if (j.kind === 'subcontract-in') {
      const input = j.input as SubcontractInInput;
      const w = input.offer.workload as StorageWorkload;
      return {
        subcontractId: input.terms.subcontractId, jobId: j.jobId, side: 'in', state: j.state, step: j.currentStep, peer: input.peer.cloudId,
        source: { bucket: w.sourceBucket, prefix: w.sourcePrefix ?? '' }, target: input.placement,
        ack: input.terms.ack, replicas: input.terms.replicas, ends: input.terms.ends, atEnd: input.terms.atEnd, error: j.error,
      };
    }
    const input = j.input as StorageOutInput;
    const id = input.workload.subcontractId;
    const accepted = j.results['negotiate'] as NegotiatedSubcontract | undefined;
    const live = this.#replicators.get(id)?.r;
    const replication = live?.status() ?? this.#lastStatus.get(id);
    return {
      subcontractId: id, jobId: j.jobId, side: 'out', state: j.state, step: j.currentStep,
      peer: (j.results['find-peer'] as SubcontractPeer | undefined)?.cloudId ?? input.to,
      source: { bucket: input.workload.sourceBucket, prefix: input.workload.sourcePrefix ?? '', region: input.sourceRegion },
      target: accepted ? { bucket: accepted.bucket, region: accepted.region } : undefined,
      ack: input.workload.ack, replicas: input.workload.replicas, ends: input.workload.ends, atEnd: input.workload.atEnd, error: j.error,
      ...(replication ? { replication } : {}),
      ...(withObjects && live ? { objects: live.objects(undefined, 10_000) } : {}),
    };
  }

  #requireSequencer(): Sequencer {
    if (!this.#sequencer) throw subcontractError('SUBCONTRACT_NOT_ACTIVE', 'storage federation is not attached to the sequencer yet');
    return this.#sequencer;
  }

  #requireService(): SubcontractTargetService {
    if (!this.#service) throw subcontractError('SUBCONTRACT_NOT_ACTIVE', 'storage federation is not attached to the sequencer yet');
    return this.#service;
  }
}
