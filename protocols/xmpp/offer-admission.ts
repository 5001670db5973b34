/**
 * The port through which a {@link GatewaySession} asks whether to take an offer, and the
 * reservation it then holds. The rules (allow-list, times, duplicate offers, per-VM limits,
 * per-cloud quotas, free capacity) and the reservation book belong to the agent
 * (`agent/admission/`); this file only says what the session needs from them. No I/O.
 */
import type { Capacity } from './catalog.js';
import type { Offer, RejectReason, StoragePlacement } from './negotiation.js';

/** Who signed a payload, once the trust area has verified it. */
export interface VerifiedSigner {
  readonly cloudId: string;
  readonly certificateSha256: string;
}

/**
 * The one reservation an accepted offer makes: its id and expiry travel in the accept, and
 * every later step of the transaction (the target's migration job, the transfer) uses them.
 */
export interface Reservation {
  readonly reservationId: string;
  readonly offer: Offer;
  /** The sender's cloud id, as its verified certificate names it. */
  readonly senderCloud: string;
  /** The full JID (authenticated by the server) that made the offer: only it may cancel. */
  readonly senderJid: string;
  readonly demand: Capacity;
  /** Epoch ms after which it lapses unless marked used. */
  readonly expiresAt: number;
  readonly used: boolean;
  /**
   * For a storage offer: the bucket and region admission chose (the accept names them, and
   * the subcontract's job makes the bucket there). Absent for a vm offer.
   */
  readonly placement?: StoragePlacement;
  /**
   * For a vm offer (issue 16): the ids of its disks whose base (`DiskSpec.base`, a content
   * hash) this cloud holds, decided once when the offer was taken; the accept names them, and
   * the source sends those disks as overlays. Absent: none.
   */
  readonly bases?: readonly string[];
}

/** Who sent an offer, as the server authenticated the sending JID. */
export interface OfferSender {
  /** The JID's local part (a gateway's JID is `<cloud-id>@<domain>`). */
  readonly local: string;
  readonly domain: string;
  /** The full JID. */
  readonly jid: string;
}

/** A refusal: the reason sent to the peer and a lowercase text. */
export interface AdmissionRefusal {
  readonly verdict: 'reject';
  readonly reason: RejectReason;
  readonly text: string;
}

/**
 * What admission says about a verified offer: take it with this reservation (`fresh`: made
 * now, to be recorded once the offer handlers agree; not fresh: the sender already holds it for
 * the same offer id, a retry) or refuse it.
 */
export type AdmissionVerdict =
  | { readonly verdict: 'accept'; readonly reservation: Reservation; readonly fresh: boolean }
  | AdmissionRefusal;

/**
 * The reservations an agent holds for accepted offers, with the capacity they take. Contract:
 * every read expires unused reservations past their expiry at `now` first; `release` and
 * `markUsed` of an unknown id are no-ops (undefined / false).
 */
export interface ReservationLedger {
  /** Changes the total capacity (the hypervisor reported new free capacity). */
  setTotal(total: Capacity): void;
  /** Capacity not held by live reservations at `now`. */
  free(now: number): Capacity;
  /** What all live reservations hold at `now`. */
  held(now: number): Capacity;
  /** What one sending cloud holds at `now`. */
  usage(senderCloud: string, now: number): { vcpus: number; memoryMiB: number; diskGiB: number; reservations: number };
  /** Records a reservation (an accepted offer's). */
  record(reservation: Reservation): Reservation;
  /** Records a reservation for an accepted offer. */
  add(reservationId: string, offer: Offer, sender: { cloud: string; jid: string }, expiresAt: number): Reservation;
  get(reservationId: string, now: number): Reservation | undefined;
  /** The live reservation made for `offerId` from `senderCloud`. */
  byOffer(senderCloud: string, offerId: string, now: number): Reservation | undefined;
  /** Marks a reservation used: it no longer lapses. */
  markUsed(reservationId: string): boolean;
  release(reservationId: string): Reservation | undefined;
  /** Drops unused reservations past their expiry; returns them. */
  expire(now: number): Reservation[];
  size(now: number): number;
}

/**
 * What the session asks about each offer. Contract: `screen` and `admit` are synchronous and
 * change nothing. `screen` runs before any signature is verified or nonce stored (a sender that
 * may not send us work costs nothing); `admit` after the signature verified, with the cloud the
 * certificate names. A fresh reservation is recorded in `reservations` by the session only once
 * the offer handlers agreed.
 */
export interface OfferAdmission {
  readonly reservations: ReservationLedger;
  screen(offer: Offer, sender: OfferSender, now: number): AdmissionRefusal | undefined;
  admit(offer: Offer, signer: VerifiedSigner, sender: OfferSender, now: number): AdmissionVerdict;
}
