/**
 * What a storage subcontract needs from the rest of the agent (issue 14), as narrow ports. The
 * daemon wires them to the XMPP session, the object stores and the replication; unit tests to
 * fakes. Every call must be idempotent for the same arguments: a step may run again after a crash.
 */
import type { ObjectStore } from '../../adapters/storage/index.js';
import type { Accept, CatalogEntry, Offer, RejectReason, StorageEndAction, StorageWorkload, VerifiedSigner } from '../../protocols/xmpp/index.js';

/** A peer cloud. */
export interface SubcontractPeer {
  readonly cloudId: string;
  /** Its gateway's bare JID. */
  readonly jid: string;
}

/** What identifies one subcontract between A and B (the offer that made it, and A's id for it). */
export interface SubcontractRef {
  readonly offerId: string;
  readonly subcontractId: string;
  /** B's side: the peer whose offer it is. Offer ids are each peer's own choice, and two peers may use the same. */
  readonly peer?: string;
}

/** The answer to a storage offer: B's verified accept, or its coded rejection. */
export type StorageOfferOutcome =
  | { readonly type: 'accept'; readonly accept: Accept; readonly signer: VerifiedSigner }
  | { readonly type: 'reject'; readonly reason: RejectReason; readonly text?: string };

/** B's listing of a subcontract's bucket, as B reports it. */
export interface RemoteListing {
  readonly bucketExists: boolean;
  readonly objects: number;
}

/** A's side of the control plane (the XMPP session and directory). */
export interface SubcontractControlPort {
  /** The verified catalog entries of the peers online now (signatures checked by the directory reader). */
  peers(signal: AbortSignal): Promise<CatalogEntry[]>;
  /** The Intercloud domain of `peer`'s gateway (its broker's identity must be under `<cloud>.<domain>`). */
  domainOf(peer: SubcontractPeer): string;
  /** Signs and sends the storage offer (the offer's id and times as given); the accept comes back verified. */
  offer(peer: SubcontractPeer, offer: Pick<Offer, 'offerId' | 'workload' | 'constraints' | 'terms'>, signal: AbortSignal): Promise<StorageOfferOutcome>;
  /** Cancels the reservation of `offerId` at `peer`; fine when it is gone. */
  release(peer: SubcontractPeer, offerId: string, signal: AbortSignal): Promise<void>;
  /** Asks B to begin: B makes the bucket (idempotent) and resolves once it exists. */
  begin(peer: SubcontractPeer, ref: SubcontractRef, signal: AbortSignal): Promise<{ bucket: string }>;
  /**
   * Asks B to end the subcontract: B deletes every object of it and the bucket; resolves when
   * done. Idempotent: asked again for an ended subcontract, B deletes again whatever is left.
   */
  end(peer: SubcontractPeer, ref: SubcontractRef, signal: AbortSignal): Promise<void>;
  /** B's listing of the subcontract's bucket (what A verifies after the end). */
  list(peer: SubcontractPeer, ref: SubcontractRef, signal: AbortSignal): Promise<RemoteListing>;
}

/**
 * When a subcontract's active time is over, at either end: its end time came, or the operator
 * (A: `intercloud storage end`) or the peer (B: A's end request) ended it early. Resolves with why.
 */
export interface SubcontractClockPort {
  untilEnd(ref: SubcontractRef, ends: string, signal: AbortSignal): Promise<{ reason: 'expired' | 'ended' }>;
}

/**
 * Returning the data to A at the end of a `return` subcontract (the replication's part: the
 * objects come back over the reliable transfer and are verified at A). Idempotent; resolves once
 * every object is back.
 */
export interface SubcontractReturnPort {
  returnData(req: { ref: SubcontractRef; peer: SubcontractPeer; bucket: string; region: string }, signal: AbortSignal): Promise<{ objects: number; bytes: number }>;
}

/** The audit trail. */
export interface SubcontractAuditPort {
  record(event: string, fields: Record<string, unknown>): Promise<void>;
}

/** Everything A's side of a subcontract uses. */
export interface SubcontractOutPorts {
  readonly cloudId: string;
  readonly control: SubcontractControlPort;
  readonly clock: SubcontractClockPort;
  readonly returns: SubcontractReturnPort;
  readonly audit: SubcontractAuditPort;
}

/** The part of an {@link ObjectStore} a subcontract's bucket needs at B. */
export type SubcontractStore = Pick<ObjectStore, 'createBucket' | 'headBucket' | 'deleteBucket' | 'listObjects' | 'deleteObject'>;

/** B's view of A's requests for one subcontract (delivered by the session to the waiting job). */
export interface SubcontractRequestsPort {
  /** Resolves when A asks to begin `ref` (A's begin request is answered once the bucket exists). */
  beginRequest(ref: SubcontractRef, signal: AbortSignal): Promise<void>;
}

/** B's reservation book, as the subcontract uses it. */
export interface SubcontractReservationsPort {
  /** Marks the reservation used: it no longer lapses while the subcontract is active. False when it is gone. */
  use(reservationId: string): boolean;
  /** Releases it: its capacity is free again. Idempotent. */
  release(reservationId: string): void;
}

/** Everything B's side of a subcontract uses. */
export interface SubcontractInPorts {
  readonly cloudId: string;
  /** The object store of a region, or `undefined` when none is configured there. */
  store(region: string): SubcontractStore | undefined;
  readonly requests: SubcontractRequestsPort;
  readonly reservations: SubcontractReservationsPort;
  readonly clock: SubcontractClockPort;
  readonly returns: SubcontractReturnPort;
  readonly audit: SubcontractAuditPort;
}

/** The terms of a subcontract as both jobs carry them in their input. */
export type SubcontractTerms = Pick<StorageWorkload, 'subcontractId' | 'replicas' | 'ack' | 'capacityGiB' | 'maxObjects' | 'ends'> & { readonly atEnd: StorageEndAction };
