/**
 * A's side of a storage subcontract (issue 14), as sequencer steps:
 *
 *   find-peer → negotiate → begin (pivot) → active → return-data → end-at-peer → verify-ended
 *
 * Until B has made the bucket (`begin`), a failure or a cancel compensates: B ends what it made
 * and the reservation is released. From then on the subcontract rolls forward: it is active
 * until its end time or until the operator ends it, then (`return` terms) the data comes back
 * to A through the replication's port, B deletes every object and the bucket, and A verifies
 * that B's listing of the bucket is gone. Journaled: a crash of A resumes where it stopped.
 */
import { IntercloudError } from '../../protocols/errors/index.js';
import { RETRYABLE_REJECT_REASONS, type StorageWorkload } from '../../protocols/xmpp/index.js';
import type { StepContext, StepDefinition, TransactionDefinition } from '../sequencer/index.js';
import { subcontractError } from './errors.js';
import { checkStorageAccept, chooseStoragePeer, type CheckedStorageAccept } from './peer.js';
import type { SubcontractOutPorts, SubcontractPeer, SubcontractRef } from './ports.js';

/** What A's subcontract job is started with. */
export interface SubcontractOutInput {
  /** The storage offer's id; B keys its reservation on it, so a retried offer is the same one. */
  readonly offerId: string;
  /** `--to CLOUD`; absent: `--auto`. */
  readonly to?: string;
  readonly workload: StorageWorkload;
  /** The allowed regions (`--region`, at least one). */
  readonly regions: readonly string[];
  readonly terms: { readonly currency: string; readonly maxPricePerGbMonth: number };
}

/** The accepted subcontract, as `negotiate` journals it. */
export type NegotiatedSubcontract = CheckedStorageAccept;

const refOf = (input: SubcontractOutInput): SubcontractRef => ({ offerId: input.offerId, subcontractId: input.workload.subcontractId });

function optionalResult<T>(ctx: StepContext<SubcontractOutInput>, step: string): T | undefined {
  try {
    return ctx.result<T>(step);
  } catch (err) {
    if (err instanceof IntercloudError && err.code === 'SEQ_JOURNAL_MISMATCH') return undefined;
    throw err;
  }
}

/** The steps of A's side, bound to `ports`. */
export function subcontractOutSteps(ports: SubcontractOutPorts): Array<StepDefinition<SubcontractOutInput>> {
  const peerOf = (ctx: StepContext<SubcontractOutInput>): SubcontractPeer => ctx.result<SubcontractPeer>('find-peer');
  return [
    {
      name: 'find-peer',
      run: async ({ input, signal }) => {
        const entries = await ports.control.peers(signal);
        const w = input.workload;
        const chosen = chooseStoragePeer(entries, {
          ...(input.to === undefined ? {} : { to: input.to }), regions: input.regions, needGiB: w.capacityGiB * w.replicas,
          maxPricePerGbMonth: input.terms.maxPricePerGbMonth, currency: input.terms.currency, self: ports.cloudId,
        });
        return { cloudId: chosen.cloudId, jid: chosen.jid } satisfies SubcontractPeer;
      },
    },
    {
      name: 'negotiate',
      run: async (ctx) => {
        const peer = peerOf(ctx);
        const { input } = ctx;
        const offer = {
          offerId: input.offerId, workload: input.workload, constraints: { regions: [...input.regions] },
          terms: { currency: input.terms.currency, maxPricePerGbMonth: input.terms.maxPricePerGbMonth },
        };
        const out = await ports.control.offer(peer, offer, ctx.signal);
        if (out.type === 'reject') {
          throw subcontractError('SUBCONTRACT_REJECTED', `cloud '${peer.cloudId}' rejected storage offer '${input.offerId}': ${out.reason}${out.text ? ` (${out.text})` : ''}`, {
            retryable: RETRYABLE_REJECT_REASONS.has(out.reason), details: { peer: peer.cloudId, reason: out.reason },
          });
        }
        // Whatever comes back is checked before anything is used: who, which offer, region, bucket, endpoint.
        const checked = checkStorageAccept(out.accept, out.signer, offer, peer.cloudId, ports.control.domainOf(peer));
        await ports.audit.record('subcontract-accepted', {
          job: ctx.jobId, peer: peer.cloudId, offerId: input.offerId, reservationId: checked.reservationId, bucket: checked.bucket, region: checked.region,
        });
        return checked satisfies NegotiatedSubcontract;
      },
      compensate: async (ctx) => {
        // B may hold a reservation even when its accept was refused here: release it (fine when none).
        await ports.control.release(peerOf(ctx), ctx.input.offerId, ctx.signal);
        await ports.audit.record('subcontract-released', { job: ctx.jobId, peer: peerOf(ctx).cloudId, offerId: ctx.input.offerId });
      },
    },
    {
      name: 'begin',
      pivot: true,
      maxAttempts: 6,
      run: async (ctx) => {
        const peer = peerOf(ctx);
        const accepted = ctx.result<NegotiatedSubcontract>('negotiate');
        const { bucket } = await ports.control.begin(peer, refOf(ctx.input), ctx.signal);
        if (bucket !== accepted.bucket) {
          throw subcontractError('SUBCONTRACT_BAD_ACCEPT', `cloud '${peer.cloudId}' began subcontract '${ctx.input.workload.subcontractId}' in bucket '${bucket}', its accept named '${accepted.bucket}'`);
        }
        await ports.audit.record('subcontract-begun', { job: ctx.jobId, peer: peer.cloudId, bucket, region: accepted.region });
        return { bucket, region: accepted.region, at: new Date().toISOString() };
      },
      compensate: async (ctx) => {
        // Only reached when `begin` itself failed: B removes whatever it made (its own bucket for this subcontract).
        if (optionalResult(ctx, 'negotiate') === undefined) return;
        await ports.control.end(peerOf(ctx), refOf(ctx.input), ctx.signal);
      },
    },
    {
      name: 'active',
      // Waiting is the step: a restart waits again until the same end time.
      maxAttempts: 100,
      run: async (ctx) => {
        const why = await ports.clock.untilEnd(refOf(ctx.input), ctx.input.workload.ends, ctx.signal);
        await ports.audit.record('subcontract-ending', { job: ctx.jobId, peer: peerOf(ctx).cloudId, reason: why.reason });
        return why;
      },
    },
    {
      name: 'return-data',
      maxAttempts: 10,
      run: async (ctx) => {
        if (ctx.input.workload.atEnd !== 'return') return { skipped: true };
        const accepted = ctx.result<NegotiatedSubcontract>('negotiate');
        return ports.returns.returnData({ ref: refOf(ctx.input), peer: peerOf(ctx), bucket: accepted.bucket, region: accepted.region }, ctx.signal);
      },
    },
    {
      name: 'end-at-peer',
      maxAttempts: 10,
      run: async (ctx) => {
        await ports.control.end(peerOf(ctx), refOf(ctx.input), ctx.signal);
        return { endedAt: new Date().toISOString() };
      },
    },
    {
      name: 'verify-ended',
      maxAttempts: 6,
      run: async (ctx) => {
        const peer = peerOf(ctx);
        const listing = await ports.control.list(peer, refOf(ctx.input), ctx.signal);
        if (listing.bucketExists || listing.objects > 0) {
          // B said it ended: ask again (the end is idempotent) before the next look.
          await ports.control.end(peer, refOf(ctx.input), ctx.signal);
          throw subcontractError('SUBCONTRACT_NOT_EMPTY', `cloud '${peer.cloudId}' still lists ${listing.objects} objects${listing.bucketExists ? ' and the bucket' : ''} of subcontract '${ctx.input.workload.subcontractId}'`, {
            details: { peer: peer.cloudId, ...listing },
          });
        }
        await ports.audit.record('subcontract-ended', { job: ctx.jobId, peer: peer.cloudId, subcontractId: ctx.input.workload.subcontractId });
        return listing;
      },
    },
  ];
}

/** A's storage subcontract transaction. Bump `version` when the steps change incompatibly. */
export function subcontractOutDefinition(ports: SubcontractOutPorts): TransactionDefinition<SubcontractOutInput> {
  return { kind: 'subcontract-out', version: 1, steps: subcontractOutSteps(ports) };
}
