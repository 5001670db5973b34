/**
 * The agent's {@link OfferAdmission}: the pure rules of `admit.ts` over this cloud's policy
 * and reservation book, as the XMPP session asks them.
 */
import { randomUUID } from 'node:crypto';
import type { Capacity, MigrationAdvert, OfferAdmission } from '../../protocols/xmpp/index.js';
import { admitOffer, screenOffer } from './admit.js';
import type { NegotiationPolicy } from './policy.js';
import { ReservationBook } from './reservations.js';

/** Settings of {@link createOfferAdmission}. */
export interface OfferAdmissionOptions {
  readonly policy: NegotiationPolicy;
  /** Our XMPP domain. */
  readonly domain: string;
  /** The gateway domains of the other Roots whose directories we read (`xmpp.directories`). */
  readonly federatedDomains?: readonly string[];
  /** Total capacity (the catalog shows it less what live reservations hold). */
  readonly capacity: Capacity;
  /** How long an accepted reservation is held unless used (default 10 min). */
  readonly reservationTtlMs?: number;
  /** Offers issued further in the future than this are refused `clock-skew` (default 2 s). */
  readonly maxClockSkewMs?: number;
  /**
   * The migration modes this cloud takes and what it can restore (issue 15: the advert its
   * catalog entry carries); absent: cold only, so warm and live offers are refused `unsupported-mode`.
   */
  readonly migration?: MigrationAdvert;
  /** Draws a new reservation id (default a random UUID). */
  readonly newReservationId?: () => string;
}

/** Admission with its own reservation book. */
export function createOfferAdmission(options: OfferAdmissionOptions): OfferAdmission & { readonly reservations: ReservationBook } {
  const reservations = new ReservationBook(options.capacity);
  const newId = options.newReservationId ?? randomUUID;
  return {
    reservations,
    screen: (offer, sender, now) => screenOffer({
      offer, sender, now, gatewayDomains: [options.domain, ...(options.federatedDomains ?? [])], policy: options.policy,
      ...(options.maxClockSkewMs === undefined ? {} : { maxClockSkewMs: options.maxClockSkewMs }),
      ...(options.migration === undefined ? {} : { migration: options.migration }),
    }),
    admit: (offer, signer, sender, now) => admitOffer({
      offer, signer, sender, now, book: reservations, policy: options.policy, reservationId: newId(),
      ...(options.reservationTtlMs === undefined ? {} : { reservationTtlMs: options.reservationTtlMs }),
    }),
  };
}
