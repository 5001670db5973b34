/**
 * Offer admission as pure functions: what a certified peer may cost us (README, "Admission",
 * issue 12). An offer is checked cheapest and least stateful first:
 *
 * 1. {@link screenOffer}, before any signature is verified or nonce stored: the sending JID
 *    (authenticated by the server) is a gateway of our domain and the cloud the offer names;
 *    the allow-list; the offer's times (issued in our future beyond the skew bound, expired);
 *    the migration mode (one we take; for live, a state our host can restore: issue 15);
 * 2. the caller verifies the signature (chain, CRL, names, payload, per-peer replay store);
 * 3. {@link admitOffer}, with the verified signer: the same offer id again from the same cloud
 *    is answered with the reservation it already holds; else the policy (per-VM limits,
 *    per-cloud quotas, free capacity minus live reservations; for a storage offer the region
 *    with an object store, replicas, objects, duration) decides, and an accepted offer gets a
 *    new, typed {@link Reservation}: the one its accept carries (for storage with the region
 *    and the bucket this cloud names for the subcontract, issue 14).
 *
 * Nothing here does I/O or reads a clock; the reservation book's reads drop lapsed
 * reservations at `now` (its contract), nothing else changes.
 */
import type {
  AdmissionRefusal, AdmissionVerdict, MigrationAdvert, Offer, OfferSender, Reservation, ReservationLedger, VerifiedSigner,
} from '../../protocols/xmpp/index.js';
import { subcontractBucketName } from '../subcontract/names.js';
import { admitMode } from './mode-admission.js';
import { workloadDemand, type NegotiationPolicy } from './policy.js';

/** Offers issued further in our future than this are refused `clock-skew` (2 s). */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 2_000;

/** How long an accepted reservation is held unless used (10 min). */
export const DEFAULT_RESERVATION_TTL_MS = 600_000;

/** What {@link screenOffer} looks at. */
export interface ScreenInput {
  readonly offer: Offer;
  readonly sender: OfferSender;
  /**
   * The gateway domains of the Roots we federate with (ours, and those whose directories we
   * read): gateways of other domains may not send us offers.
   */
  readonly gatewayDomains: readonly string[];
  readonly now: number;
  readonly policy: NegotiationPolicy;
  readonly maxClockSkewMs?: number;
  /** The migration modes we take and what we can restore (our catalog advert); absent: cold only. */
  readonly migration?: MigrationAdvert;
}

/** What {@link admitOffer} looks at. */
export interface AdmitInput {
  readonly offer: Offer;
  readonly signer: VerifiedSigner;
  readonly sender: OfferSender;
  readonly now: number;
  readonly book: Pick<ReservationLedger, 'byOffer' | 'free' | 'usage'>;
  readonly policy: NegotiationPolicy;
  /** The id a new reservation gets (the caller draws it: this function draws nothing). */
  readonly reservationId: string;
  readonly reservationTtlMs?: number;
}

function refuse(reason: AdmissionRefusal['reason'], text: string): AdmissionRefusal {
  return { verdict: 'reject', reason, text };
}

/** The checks before the signature: sender identity, allow-list, times, migration mode. `undefined`: go on. */
export function screenOffer(input: ScreenInput): AdmissionRefusal | undefined {
  const { offer, sender, gatewayDomains, now, policy } = input;
  // The sender's JID (authenticated by the server) must be the cloud the offer claims, on a Root
  // we federate with.
  if (sender.local !== offer.from || !gatewayDomains.includes(sender.domain)) {
    return refuse('untrusted', `offer claims cloud '${offer.from}' but comes from '${sender.local}@${sender.domain}'`);
  }
  // Allow-list first (issue 12 finding 6): a cloud that may not send us work costs no
  // signature verification and leaves no nonce in our replay store.
  const admitted = policy.admitsSender(sender.local);
  if (!admitted.accept) return refuse(admitted.reason, admitted.text);
  const skew = input.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  const ahead = Date.parse(offer.issued) - now;
  if (ahead > skew) return refuse('clock-skew', `offer '${offer.offerId}' was issued ${ahead} ms in our future`);
  if (Date.parse(offer.expires) <= now) return refuse('expired', `offer '${offer.offerId}' expired at ${offer.expires}`);
  // Issue 15: a mode we do not take, or a live state our host cannot restore, is refused here,
  // long before any cut-over.
  return admitMode({ offer, takes: input.migration });
}

/** The checks after the signature verified: duplicate offer, policy, capacity; the reservation. */
export function admitOffer(input: AdmitInput): AdmissionVerdict {
  const { offer, signer, sender, now, book, policy } = input;
  // The same offer again (the sender retried after a crash or a lost answer): the reservation
  // it already holds, instead of counting it twice.
  const held = book.byOffer(signer.cloudId, offer.offerId, now);
  if (held) return { verdict: 'accept', reservation: held, fresh: false };
  const w = offer.workload;
  // Issue 14: a subcontract that has ended already is not taken (its offer may still be fresh).
  if (w.type === 'storage' && Date.parse(w.ends) <= now) {
    return refuse('expired', `subcontract '${w.subcontractId}' of offer '${offer.offerId}' ended at ${w.ends}`);
  }
  const decision = policy.evaluate({
    offer, senderCloud: signer.cloudId, free: book.free(now), senderUsage: book.usage(signer.cloudId, now),
  });
  if (!decision.accept) return refuse(decision.reason, decision.text);
  const reservation: Reservation = {
    reservationId: input.reservationId,
    offer,
    senderCloud: signer.cloudId,
    senderJid: sender.jid,
    demand: workloadDemand(offer),
    expiresAt: now + (input.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS),
    used: false,
    // The bucket is ours to name (never the offer's), from the certificate's cloud id.
    ...(w.type === 'storage' && decision.region !== undefined
      ? { placement: { region: decision.region, bucket: subcontractBucketName(signer.cloudId, w.subcontractId) } }
      : {}),
  };
  return { verdict: 'accept', reservation, fresh: true };
}
