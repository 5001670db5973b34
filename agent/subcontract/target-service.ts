/**
 * B's answers to A about a storage subcontract (issue 14). The control plane calls these when
 * A's storage offer was accepted and when A's begin, end and listing requests arrive; they
 * start, feed and wait on B's journaled `subcontract-in` job. Every call is idempotent (the job
 * id is derived from A's cloud and the subcontract id), and only the cloud that made the
 * subcontract may ask about it.
 */
import type { Offer, Reservation } from '../../protocols/xmpp/index.js';
import { workloadDemand } from '../admission/index.js';
import type { JobStatus, Sequencer } from '../sequencer/index.js';
import { emptyAndDeleteBucket, listingOf } from './bucket.js';
import { subcontractError } from './errors.js';
import { isSubcontractInOf, subcontractInJobId, type SubcontractInInput } from './in.js';
import type { SubcontractMailbox } from './mailbox.js';
import type { RemoteListing, SubcontractPeer, SubcontractRef, SubcontractStore } from './ports.js';

/** What the service tells its owner. */
export interface SubcontractServiceHooks {
  /** The job of `offerId` ended: the daemon withdraws what the offer was granted at its broker. */
  jobEnded?(offerId: string, peer: SubcontractPeer): void;
}

/** Handles A's side of the conversation at B. */
export class SubcontractTargetService {
  constructor(
    private readonly sequencer: Sequencer,
    private readonly mailbox: SubcontractMailbox,
    private readonly stores: (region: string) => SubcontractStore | undefined,
    private readonly hooks: SubcontractServiceHooks = {},
  ) {}

  /**
   * Starts B's job for an accepted storage offer (from the session's offer handler, with the
   * reservation admission made). The same offer again is fine; another offer of a subcontract
   * whose job still runs is refused (`SUBCONTRACT_BUCKET_TAKEN`: its bucket is that job's).
   */
  async handleOffer(peer: SubcontractPeer, offer: Offer, reservation: Reservation): Promise<void> {
    const w = offer.workload;
    if (w.type !== 'storage') return;
    const placement = reservation.placement;
    if (!placement) throw subcontractError('SUBCONTRACT_NO_STORE', `storage offer '${offer.offerId}' was admitted without a region`);
    const existing = await this.#find(peer.cloudId, w.subcontractId);
    if (existing) {
      const input = existing.input as SubcontractInInput;
      if (input.offerId === offer.offerId) return;
      if (existing.state === 'running') {
        throw subcontractError('SUBCONTRACT_BUCKET_TAKEN', `subcontract '${w.subcontractId}' of '${peer.cloudId}' is held by offer '${input.offerId}'`);
      }
      throw subcontractError('SUBCONTRACT_BUCKET_TAKEN', `subcontract '${w.subcontractId}' of '${peer.cloudId}' has ended ('${existing.state}'): offer a new subcontract id`);
    }
    const input: SubcontractInInput = {
      offerId: offer.offerId, peer, reservationId: reservation.reservationId, reservationExpiresAt: new Date(reservation.expiresAt).toISOString(), placement,
      terms: { subcontractId: w.subcontractId, replicas: w.replicas, ack: w.ack, capacityGiB: w.capacityGiB, maxObjects: w.maxObjects, ends: w.ends, atEnd: w.atEnd },
      offer, senderJid: reservation.senderJid,
    };
    const { done } = await this.sequencer.start('subcontract-in', subcontractInJobId(peer.cloudId, w.subcontractId), input);
    const ended = (): void => {
      this.mailbox.forget(offer.offerId, peer.cloudId);
      this.hooks.jobEnded?.(offer.offerId, peer);
    };
    done.then(ended, ended);
  }

  /** Delivers A's begin and resolves once the bucket exists (or with why it will not). */
  async handleBegin(peer: SubcontractPeer, ref: SubcontractRef, signal?: AbortSignal): Promise<{ bucket: string; region: string }> {
    const job = await this.#require(peer, ref);
    if (job.state === 'running') this.mailbox.deliverBegin(ref.offerId, peer.cloudId);
    const s = await this.sequencer.waitFor(job.jobId, (st) => st.state !== 'running' || st.completedSteps.includes('create-bucket'), signal);
    const made = s.results['create-bucket'] as { bucket: string; region: string } | undefined;
    if (!made) {
      const e = s.error;
      throw subcontractError(e?.code === 'SUBCONTRACT_BUCKET_TAKEN' ? 'SUBCONTRACT_BUCKET_TAKEN' : 'SUBCONTRACT_NOT_STARTED',
        `subcontract '${ref.subcontractId}' did not begin: ${e?.message ?? s.state}`, { details: { state: s.state, code: e?.code } });
    }
    return made;
  }

  /**
   * Delivers A's end and resolves once every object and the bucket are deleted. Asked again for
   * an ended subcontract, deletes again whatever is left (A saw its listing not empty).
   */
  async handleEnd(peer: SubcontractPeer, ref: SubcontractRef, signal?: AbortSignal): Promise<void> {
    const job = await this.#require(peer, ref);
    if (job.state === 'running') this.mailbox.deliverEnd(ref.offerId, peer.cloudId);
    const s = await this.sequencer.waitFor(job.jobId, (st) => st.state !== 'running', signal);
    if (s.state !== 'completed' || !s.completedSteps.includes('create-bucket')) return;
    const { placement } = s.input as SubcontractInInput;
    const store = this.stores(placement.region);
    if (store) await emptyAndDeleteBucket(store, placement.bucket, signal ?? new AbortController().signal);
  }

  /**
   * A cancelled the reservation of `offerId` (negotiation `<cancel/>`; the session's cancel
   * handler asks this). Before B made the bucket the job is cancelled — it compensates and
   * releases the reservation itself — and the session must hold the reservation until then
   * (`hold`); once the bucket is made the subcontract is active and is ended, not cancelled
   * (`refuse`); `undefined` when no job of A has that offer (the session releases at once).
   */
  async handleCancel(peer: SubcontractPeer, offerId: string): Promise<{ action: 'hold' } | { action: 'refuse'; text: string } | undefined> {
    const job = (await this.sequencer.list()).find((j) => j.kind === 'subcontract-in' && (j.input as SubcontractInInput).offerId === offerId
      && (j.input as SubcontractInInput).peer.cloudId === peer.cloudId);
    if (!job || job.state !== 'running') return undefined;
    const { accepted } = await this.sequencer.cancel(job.jobId, `cancelled by '${peer.cloudId}'`);
    if (!accepted) return { action: 'refuse', text: `subcontract of offer '${offerId}' is active: end it instead` };
    return { action: 'hold' };
  }

  /** B's listing of the subcontract's bucket. */
  async handleListing(peer: SubcontractPeer, ref: SubcontractRef, signal?: AbortSignal): Promise<RemoteListing> {
    const job = await this.#require(peer, ref);
    const { placement } = job.input as SubcontractInInput;
    const store = this.stores(placement.region);
    if (!store) throw subcontractError('SUBCONTRACT_NO_STORE', `no object store for region '${placement.region}'`);
    return listingOf(store, placement.bucket, signal ?? new AbortController().signal);
  }

  /**
   * The reservations of the subcontracts whose jobs still run, remade from their journals: after
   * a restart the daemon records them in its book again (`ReservationBook.record`), so their
   * capacity stays held. One that A has begun is marked used (it never lapses).
   */
  async liveReservations(): Promise<Reservation[]> {
    return (await this.sequencer.list()).filter((j) => j.kind === 'subcontract-in' && j.state === 'running').map((j) => {
      const input = j.input as SubcontractInInput;
      return {
        reservationId: input.reservationId, offer: input.offer, senderCloud: input.peer.cloudId, senderJid: input.senderJid,
        demand: workloadDemand(input.offer), expiresAt: Date.parse(input.reservationExpiresAt), used: j.completedSteps.includes('await-begin'),
        placement: input.placement,
      };
    });
  }

  /** B's job of `peerCloud`'s subcontract `subcontractId`, found by its input (whatever its id). */
  async #find(peerCloud: string, subcontractId: string): Promise<JobStatus | undefined> {
    return (await this.sequencer.list()).find((j) => isSubcontractInOf(j, peerCloud, subcontractId));
  }

  async #require(peer: SubcontractPeer, ref: SubcontractRef): Promise<JobStatus> {
    const job = await this.#find(peer.cloudId, ref.subcontractId);
    // Another cloud's request names a subcontract that is not its own: it learns nothing of it.
    if (!job || (job.input as SubcontractInInput).offerId !== ref.offerId || (job.input as SubcontractInInput).peer.cloudId !== peer.cloudId) {
      throw subcontractError('SUBCONTRACT_UNKNOWN', `no subcontract '${ref.subcontractId}' of offer '${ref.offerId}' from '${peer.cloudId}'`);
    }
    return job;
  }
}
