/**
 * The target cloud's answers to a source's migration requests. The control plane (XMPP)
 * calls these when an offer, instantiate, commit or release arrives; they start, feed,
 * wait on and cancel the target's journaled `migrate-in` job. Every call is idempotent:
 * the job id is derived from the offer id.
 */
import { randomUUID } from 'node:crypto';
import { IntercloudError } from '../../protocols/errors/index.js';
import { vmNameProblem } from '../../protocols/vm/index.js';
import type { MigrationMode } from '../../protocols/xmpp/index.js';
import type { JobStatus, Sequencer } from '../sequencer/index.js';
import type { DataEndpoint, InstantiateOrder, PeerRef, Reservation, VmSummary } from './ports.js';
import type { SourceRequestMailbox } from './source-requests.js';
import type { MigrateInInput } from './target.js';

/** Local decisions of the target: who may send what, and where data goes. */
export interface TargetPolicy {
  /** Throws a coded rejection (policy, no-capacity, untrusted …) when the offer is refused. */
  admit(peer: PeerRef, offer: { offerId: string; vm: VmSummary; region?: string }): Promise<void>;
  /** Whether a VM of this name exists in this cloud (whoever made it). */
  vmNameInUse(name: string): Promise<boolean>;
  /** How long a started VM waits for the source's commit. */
  commitTimeoutMs: number;
  /** Where the source sends disks for this offer: this cloud's own broker. */
  transferEndpoint(offerId: string): DataEndpoint;
}

/**
 * The reservation admission made for an offer (`agent/admission`): the one its accept carries.
 * The target's job waits for the data and the instantiate request until `expiresAt`.
 */
export interface HeldReservation {
  readonly reservationId: string;
  /** Epoch ms. */
  readonly expiresAt: number;
  /** The offered disks whose base this cloud said it holds (issue 16); the accept named them. */
  readonly bases?: readonly string[];
}

/** What the target service tells its owner about inbound jobs. */
export interface TargetServiceHooks {
  /**
   * The job of `offerId` ended (completed, failed, compensated or cancelled): whatever the
   * offer held (its reservation) is released (issue 12 finding 6).
   */
  jobEnded?(offerId: string, peer: PeerRef): void;
}
/** Why a target refuses what a source sent; passed back to the source by code. */
const REFUSALS = new Set(['MIGRATE_BAD_DESCRIPTOR', 'MIGRATE_BAD_DISK', 'MIGRATE_NAME_TAKEN', 'MIGRATE_DIGEST_MISMATCH', 'MIGRATE_NOT_OURS', 'MIGRATE_ADDRESS_HELD', 'MIGRATE_BASE_UNLINKABLE']);

/** The job id of the target side of `offerId`. */
export function inboundJobId(offerId: string): string {
  return `in-${offerId}`;
}

/** Handles a source's requests on the target. */
export class MigrationTargetService {
  constructor(
    private readonly sequencer: Sequencer,
    private readonly mailbox: SourceRequestMailbox,
    private readonly policy: TargetPolicy,
    private readonly hooks: TargetServiceHooks = {},
  ) {}

  /**
   * Accepts (and starts receiving for) an offer, or throws the policy's rejection. Before any
   * byte moves, an offered VM name that the hypervisor must not be given is refused with
   * `MIGRATE_BAD_VM_NAME`, and one that a VM here already has with `MIGRATE_NAME_TAKEN`: the
   * target never adopts a VM it did not make for this offer. The job's input records the UUID
   * this cloud gives the VM's domain, by which every later step knows it as its own, and
   * `held`, the reservation admission made (the one the accept carries; there is no other).
   */
  async handleOffer(peer: PeerRef, offer: { offerId: string; vm: VmSummary; region?: string; mode?: MigrationMode }, held: HeldReservation): Promise<Reservation> {
    const existing = await this.find(offer.offerId);
    if (existing) {
      this.checkPeer(existing, peer);
      if (existing.state !== 'running') {
        throw new IntercloudError('MIGRATE_NO_RESERVATION', `offer '${offer.offerId}' was already handled and ended '${existing.state}'`);
      }
      return (existing.input as MigrateInInput).reservation;
    }
    const problem = vmNameProblem(offer.vm.name);
    if (problem !== undefined) {
      throw new IntercloudError('MIGRATE_BAD_VM_NAME', `offer '${offer.offerId}': vm name ${JSON.stringify(offer.vm.name)} ${problem}`);
    }
    // Issue 15: this side runs cold, warm and live moves (`migrate-in-warm`, `migrate-in-live`);
    // admission refused a mode this cloud does not advertise.
    await this.policy.admit(peer, offer);
    if (await this.policy.vmNameInUse(offer.vm.name)) {
      throw new IntercloudError('MIGRATE_NAME_TAKEN', `offer '${offer.offerId}': a vm named '${offer.vm.name}' already exists in this cloud`);
    }
    const reservation: Reservation = {
      reservationId: held.reservationId,
      transfer: this.policy.transferEndpoint(offer.offerId),
      expiresAt: new Date(held.expiresAt).toISOString(),
      // Issue 16: only disks that offered a base (the responder asked about no other).
      ...(held.bases === undefined || held.bases.length === 0 ? {} : { bases: held.bases.filter((id) => offer.vm.disks.some((d) => d.id === id && d.base !== undefined)) }),
    };
    const input: MigrateInInput = {
      offerId: offer.offerId, peer, vm: offer.vm, reservation, commitTimeoutMs: this.policy.commitTimeoutMs, domainUuid: randomUUID(),
      ...(offer.mode === 'live' || offer.mode === 'warm' ? { mode: offer.mode } : {}),
    };
    const kind = offer.mode === 'live' ? 'migrate-in-live' : offer.mode === 'warm' ? 'migrate-in-warm' : 'migrate-in';
    const { done } = await this.sequencer.start(kind, inboundJobId(offer.offerId), input);
    const ended = (): void => {
      this.mailbox.forget(offer.offerId);
      this.hooks.jobEnded?.(offer.offerId, peer);
    };
    done.then(ended, ended);
    return reservation;
  }

  /** Delivers the instantiate request and resolves once the VM runs here. */
  async handleInstantiate(peer: PeerRef, req: InstantiateOrder, signal?: AbortSignal): Promise<{ state: 'running' }> {
    const job = await this.require(req.offerId, peer);
    if (job.state === 'running') this.mailbox.deliverInstantiate(req.offerId, req);
    const s = await this.sequencer.waitFor(job.jobId, (st) => st.state !== 'running' || st.completedSteps.includes('start'), signal);
    if (!s.completedSteps.includes('start') || (s.state !== 'running' && s.state !== 'completed')) {
      // What the source sent was refused: it learns why, by code.
      const code = s.error?.code;
      if (code !== undefined && REFUSALS.has(code)) throw new IntercloudError(code, `offer '${req.offerId}': ${s.error!.message}`, { retryable: false });
      throw this.ended(s, req.offerId);
    }
    return { state: 'running' };
  }

  /** Delivers the commit and resolves once this side has recorded it (the VM stays here). */
  async handleCommit(peer: PeerRef, offerId: string, signal?: AbortSignal): Promise<{ state: 'running' }> {
    const job = await this.require(offerId, peer);
    if (job.state === 'running') this.mailbox.deliverCommit(offerId);
    // Committed once `await-commit` completed (a live move flattens its disks afterwards).
    const committed = (st: JobStatus): boolean => st.completedSteps.includes('await-commit');
    const s = await this.sequencer.waitFor(job.jobId, (st) => st.state !== 'running' || committed(st), signal);
    if (!committed(s) || (s.state !== 'completed' && s.state !== 'running' && s.state !== 'needs-operator')) throw this.ended(s, offerId);
    return { state: 'running' };
  }

  /** Removes whatever was made for the offer. Refuses once the move is committed. */
  async handleRelease(peer: PeerRef, offerId: string, signal?: AbortSignal): Promise<void> {
    const job = await this.find(offerId);
    if (!job) return;
    this.checkPeer(job, peer);
    if (job.state === 'completed') {
      throw new IntercloudError('MIGRATE_NO_RESERVATION', `offer '${offerId}' is committed: the vm stays in this cloud`);
    }
    let state: JobStatus['state'] = job.state;
    if (state === 'running') {
      const c = await this.sequencer.cancel(job.jobId, `released by '${peer.cloudId}'`);
      if (!c.accepted) throw new IntercloudError('MIGRATE_NO_RESERVATION', `offer '${offerId}' is committed: the vm stays in this cloud`);
      state = (await this.sequencer.waitFor(job.jobId, (st) => st.state !== 'running', signal)).state;
    }
    // A job that could not undo its steps may have left the VM defined, even running, here: the
    // source must not take this answer as a release and start its own copy (never two).
    if (state === 'needs-operator') {
      throw new IntercloudError('MIGRATE_TARGET_UNRELEASED', `offer '${offerId}': this cloud could not undo its part, an operator must look; the vm may still be here`);
    }
  }

  /**
   * The offer's own peer cancelled it on the control plane (issue 12, findings 6 and 8). A
   * running job is cancelled through the sequencer (its compensation removes what it made),
   * and what the offer holds is released by the `jobEnded` hook once the job has ended, not
   * now: a peer could otherwise offer, cancel and offer again past its quotas while the jobs
   * still receive. A committed job is not cancelled: the VM stays in this cloud.
   * @returns `cancelling` (the job is being cancelled; hold what the offer holds until it
   *   ends), `ended` (its job already ended: nothing left to hold), or `none` (no job here).
   * @throws `MIGRATE_NO_RESERVATION` when the offer is another peer's, or committed.
   */
  async handleCancel(peer: PeerRef, offerId: string): Promise<'cancelling' | 'ended' | 'none'> {
    const job = await this.find(offerId);
    if (!job) return 'none';
    this.checkPeer(job, peer);
    const committed = (): IntercloudError =>
      new IntercloudError('MIGRATE_NO_RESERVATION', `offer '${offerId}' is committed: the vm stays in this cloud`, { retryable: false });
    if (job.state === 'completed') throw committed();
    if (job.state !== 'running') return 'ended';
    const c = await this.sequencer.cancel(job.jobId, `cancelled by '${peer.cloudId}'`);
    if (c.accepted) return 'cancelling';
    if (c.state === 'running' || c.state === 'completed') throw committed();
    return 'ended';
  }

  private async find(offerId: string): Promise<JobStatus | undefined> {
    try {
      return await this.sequencer.status(inboundJobId(offerId));
    } catch (err) {
      if (err instanceof IntercloudError && (err.code === 'SEQ_UNKNOWN_JOB')) return undefined;
      throw err;
    }
  }

  private async require(offerId: string, peer: PeerRef): Promise<JobStatus> {
    const job = await this.find(offerId);
    if (!job) throw new IntercloudError('MIGRATE_NO_RESERVATION', `no reservation for offer '${offerId}'`);
    this.checkPeer(job, peer);
    return job;
  }

  /**
   * Only the cloud that made the offer may act on it (issue 12 finding 7): the same cloud id
   * (as its certificate names it) and the same bare JID, not just the JID's local part.
   */
  private checkPeer(job: JobStatus, peer: PeerRef): void {
    const owner = (job.input as MigrateInInput).peer;
    if (owner.cloudId !== peer.cloudId || owner.jid !== peer.jid) {
      throw new IntercloudError('MIGRATE_NO_RESERVATION', `offer '${(job.input as MigrateInInput).offerId}' belongs to '${owner.jid}', not '${peer.jid}'`);
    }
  }

  private ended(s: JobStatus, offerId: string): IntercloudError {
    return new IntercloudError('MIGRATE_NO_RESERVATION', `offer '${offerId}' ended '${s.state}'${s.error ? `: ${s.error.message}` : ''}`);
  }
}
