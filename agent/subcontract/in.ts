/**
 * B's side of a storage subcontract (issue 14), as sequencer steps, started when B accepted A's
 * storage offer:
 *
 *   await-begin → check-bucket → create-bucket (pivot) → active → return-data → delete-data → release
 *
 * B waits for A's begin until the reservation lapses (then it releases it). It makes the bucket
 * it named in its accept — only in the object store configured for the accepted region, and
 * never adopting a bucket of that name that was there before (`check-bucket`: the name is B's
 * own derivation, so one that exists is not this subcontract's). Once the bucket is made the
 * subcontract rolls forward: active until its end time or A's end request, then (`return`
 * terms) the data goes back to A through the replication's port, every object and the bucket
 * are deleted, and the reservation's capacity is released. Journaled: a crash of B resumes.
 */
import type { Offer, StoragePlacement } from '../../protocols/xmpp/index.js';
import type { StepContext, StepDefinition, TransactionDefinition } from '../sequencer/index.js';
import { emptyAndDeleteBucket } from './bucket.js';
import { subcontractError } from './errors.js';
import type { SubcontractInPorts, SubcontractPeer, SubcontractRef, SubcontractStore, SubcontractTerms } from './ports.js';

/** What B's subcontract job is started with (from the accepted offer and its reservation). */
export interface SubcontractInInput {
  readonly offerId: string;
  /** A, as its verified certificate names it, and its gateway's bare JID. */
  readonly peer: SubcontractPeer;
  readonly reservationId: string;
  /** The reservation lapses then unless A begins (ISO). */
  readonly reservationExpiresAt: string;
  /** The bucket and region B named in its accept. */
  readonly placement: StoragePlacement;
  readonly terms: SubcontractTerms;
  /** The accepted offer as it was signed, and the full JID that sent it (the reservation is remade from them after a restart). */
  readonly offer: Offer;
  readonly senderJid: string;
}

/**
 * The job id of B's side of a subcontract: one job per (A, subcontract), whatever the offer. A
 * cloud id holds no '.', so the first one after the prefix ends it: (`a-b`, `c`) and (`a`, `b-c`)
 * are two jobs; a subcontract id holds no '_', so the ':' made '_' stays apart.
 * Jobs are found by their input ({@link isSubcontractInOf}), never by this id, so journals that
 * name jobs the way earlier versions did (`subcontract-in-PEER-ID`) go on.
 */
export function subcontractInJobId(peerCloud: string, subcontractId: string): string {
  // `subcontract-in.`: never an id of the earlier form, whatever the peer and id.
  return `subcontract-in.${peerCloud}.${subcontractId}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Whether `job` is B's side of `peerCloud`'s subcontract `subcontractId`. */
export function isSubcontractInOf(job: { kind: string; input: unknown }, peerCloud: string, subcontractId: string): boolean {
  if (job.kind !== 'subcontract-in') return false;
  const input = job.input as Partial<SubcontractInInput> | undefined;
  return input?.peer?.cloudId === peerCloud && input.terms?.subcontractId === subcontractId;
}

const refOf = (input: SubcontractInInput): SubcontractRef => ({ offerId: input.offerId, subcontractId: input.terms.subcontractId, peer: input.peer.cloudId });

/** The steps of B's side, bound to `ports`. */
export function subcontractInSteps(ports: SubcontractInPorts): Array<StepDefinition<SubcontractInInput>> {
  const storeOf = (ctx: StepContext<SubcontractInInput>): SubcontractStore => {
    const { region } = ctx.input.placement;
    const store = ports.store(region);
    if (!store) throw subcontractError('SUBCONTRACT_NO_STORE', `'${ports.cloudId}' has no object store configured for region '${region}'`, { details: { region } });
    return store;
  };
  return [
    {
      name: 'await-begin',
      run: async (ctx) => {
        const left = Date.parse(ctx.input.reservationExpiresAt) - Date.now();
        const lapse = new AbortController();
        const timer = setTimeout(() => lapse.abort(), Math.max(0, left));
        try {
          await ports.requests.beginRequest(refOf(ctx.input), AbortSignal.any([ctx.signal, lapse.signal]));
        } catch (err) {
          if (!lapse.signal.aborted || ctx.signal.aborted) throw err;
          throw subcontractError('SUBCONTRACT_NOT_STARTED', `'${ctx.input.peer.cloudId}' did not begin subcontract '${ctx.input.terms.subcontractId}' before ${ctx.input.reservationExpiresAt}`, { cause: err });
        } finally {
          clearTimeout(timer);
        }
        // From now on the reservation holds its capacity for as long as the subcontract lasts.
        if (!ports.reservations.use(ctx.input.reservationId)) {
          throw subcontractError('SUBCONTRACT_NOT_STARTED', `the reservation of subcontract '${ctx.input.terms.subcontractId}' lapsed before '${ctx.input.peer.cloudId}' began it`);
        }
        return { begunAt: new Date().toISOString() };
      },
      compensate: async (ctx) => {
        ports.reservations.release(ctx.input.reservationId);
        await ports.audit.record('subcontract-released', { job: ctx.jobId, peer: ctx.input.peer.cloudId, offerId: ctx.input.offerId });
      },
    },
    {
      // Nothing is made here, so a crash and a retry look again: a bucket of this name that exists
      // before `create-bucket` ran is someone else's, never adopted.
      name: 'check-bucket',
      run: async (ctx) => {
        const { bucket } = ctx.input.placement;
        if (await storeOf(ctx).headBucket(bucket, { signal: ctx.signal })) {
          throw subcontractError('SUBCONTRACT_BUCKET_TAKEN', `bucket '${bucket}' exists already in '${ctx.input.placement.region}' and was not made for subcontract '${ctx.input.terms.subcontractId}'`, {
            details: { bucket, region: ctx.input.placement.region },
          });
        }
        return { absent: bucket };
      },
    },
    {
      name: 'create-bucket',
      pivot: true,
      maxAttempts: 6,
      run: async (ctx) => {
        const { bucket, region } = ctx.input.placement;
        await storeOf(ctx).createBucket(bucket, { signal: ctx.signal });
        await ports.audit.record('subcontract-bucket-created', { job: ctx.jobId, peer: ctx.input.peer.cloudId, bucket, region });
        return { bucket, region };
      },
      compensate: async (ctx) => {
        // check-bucket saw no bucket of this name: whatever is there now was made by this step.
        await emptyAndDeleteBucket(storeOf(ctx), ctx.input.placement.bucket, ctx.signal);
      },
    },
    {
      name: 'active',
      maxAttempts: 100,
      run: async (ctx) => ports.clock.untilEnd(refOf(ctx.input), ctx.input.terms.ends, ctx.signal),
    },
    {
      name: 'return-data',
      maxAttempts: 10,
      run: async (ctx) => {
        if (ctx.input.terms.atEnd !== 'return') return { skipped: true };
        return ports.returns.returnData({ ref: refOf(ctx.input), peer: ctx.input.peer, ...ctx.input.placement }, ctx.signal);
      },
    },
    {
      name: 'delete-data',
      maxAttempts: 10,
      run: async (ctx) => {
        const out = await emptyAndDeleteBucket(storeOf(ctx), ctx.input.placement.bucket, ctx.signal);
        await ports.audit.record('subcontract-data-deleted', { job: ctx.jobId, peer: ctx.input.peer.cloudId, bucket: ctx.input.placement.bucket, ...out });
        return out;
      },
    },
    {
      name: 'release',
      run: async (ctx) => {
        ports.reservations.release(ctx.input.reservationId);
        await ports.audit.record('subcontract-ended', { job: ctx.jobId, peer: ctx.input.peer.cloudId, subcontractId: ctx.input.terms.subcontractId });
        return { released: ctx.input.reservationId };
      },
    },
  ];
}

/** B's storage subcontract transaction. Bump `version` when the steps change incompatibly. */
export function subcontractInDefinition(ports: SubcontractInPorts): TransactionDefinition<SubcontractInInput> {
  return { kind: 'subcontract-in', version: 1, steps: subcontractInSteps(ports) };
}
