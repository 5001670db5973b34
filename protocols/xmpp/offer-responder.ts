/**
 * The target side of the negotiation: answers a peer's `<offer/>` and `<cancel/>` with the
 * agent's admission (`OfferAdmission`) and the reservations it holds. The session feeds it the
 * iq requests; it signs accepts, audits every refusal before answering, and tells the session
 * when a reservation was made or free capacity changed. The accept it sends is built in one
 * place, {@link acceptFor}.
 */
import { jid as parseJid, xml, type Element } from '@xmpp/client';
import { isIntercloudError, messageOf } from '../errors/index.js';
import { ICNS } from './namespaces.js';
import {
  acceptPayload, buildAccept, buildRejectError, offerPayload, parseCancel, parseOffer, type Accept, type Cancel, type Offer, type RejectReason,
} from './negotiation.js';
import type { OfferAdmission, OfferSender, Reservation, VerifiedSigner } from './offer-admission.js';
import { buildStanzaError } from './stanza-error.js';
import {
  MESSAGE_TYPES, SIGNED_MESSAGE_MAX_LIFETIME_MS, SIGNED_REQUEST_TTL_MS, trustReason, type ControlPlaneAuditRecord, type GatewayTrust,
} from './trust-port.js';

/** An offer that passed verification and policy, handed to {@link OfferResponder.onOffer} handlers. */
export interface IncomingOffer {
  readonly offer: Offer;
  readonly from: string;
  readonly signer: VerifiedSigner;
  /**
   * The reservation the accept will carry (its id and expiry): the only one of the
   * transaction. Recorded once every handler agreed; the same one again for a retried offer.
   */
  readonly reservation: Reservation;
}

/**
 * A cancel handler's answer ({@link OfferResponder.onCancel}); `undefined` lets the session
 * release the reservation at once (nothing was made for it). `hold`: a job made for the offer
 * is being cancelled, and the reservation is released when that job ends
 * ({@link OfferResponder.releaseOffer}), never while it still runs (issue 12, findings 6 and 8).
 * `refuse`: the cancel is refused (e.g. the job is committed) and the reservation stays.
 */
export type CancelVerdict = { readonly action: 'hold' } | { readonly action: 'refuse'; readonly text: string };

/** What became of a peer's cancel ({@link OfferResponder.cancelReservation}). */
export type CancelOutcome =
  | { readonly outcome: 'released' }
  | { readonly outcome: 'held' }
  | { readonly outcome: 'refused'; readonly condition: 'item-not-found' | 'not-allowed'; readonly text: string };

/** A cancel handler: asked about each cancel the offer's own sender makes. */
export type CancelHandler = (cancel: Cancel, from: string, reservation: Reservation) => Promise<CancelVerdict | undefined> | CancelVerdict | undefined;

/** A handler's veto: the offer is rejected with this reason. */
export interface OfferVeto {
  readonly reason: RejectReason;
  readonly text: string;
}

/** Where the sender sends the data of a reservation: what the accept names. */
export interface TransferEndpoint {
  readonly transferUri: string;
  readonly transferQueue: string;
  /** The identity the broker's certificate carries (see {@link Accept.transferIdentity}). */
  readonly transferIdentity?: string;
}

/**
 * The accept of a reservation: the offer, the reservation's id and expiry (the one
 * reservation of the transaction), who accepts, and where the data goes (for a storage offer
 * also the bucket and region admission chose, issue 14).
 */
export function acceptFor(reservation: Reservation, by: string, endpoint: TransferEndpoint): Accept {
  return {
    offerId: reservation.offer.offerId,
    reservationId: reservation.reservationId,
    by,
    transferUri: endpoint.transferUri,
    transferQueue: endpoint.transferQueue,
    ...(endpoint.transferIdentity === undefined ? {} : { transferIdentity: endpoint.transferIdentity }),
    expires: new Date(reservation.expiresAt).toISOString(),
    ...(reservation.placement === undefined ? {} : { storage: reservation.placement }),
    // The mode the target agrees to is the one offered (admission refused any it cannot take).
    ...(reservation.offer.mode === undefined || reservation.offer.mode === 'cold' ? {} : { mode: reservation.offer.mode }),
    ...(reservation.bases === undefined || reservation.bases.length === 0 ? {} : { bases: reservation.bases }),
  };
}

/** What an {@link OfferResponder} works with. */
export interface OfferResponderOptions {
  /** Our cloud id (the accept's `by`). */
  readonly cloudId: string;
  readonly trust: GatewayTrust;
  readonly admission: OfferAdmission;
  readonly now: () => number;
  /** The transfer endpoint an accept names for a reservation id. */
  readonly endpoint: (reservationId: string) => TransferEndpoint;
  /** Appends to the audit log; never throws (the session warns instead). */
  readonly audit: (record: ControlPlaneAuditRecord) => Promise<void>;
  /** A reservation was recorded (free capacity went down). */
  readonly reserved: (reservation: Reservation) => void;
  /** A reservation was released or lapsed (free capacity went up). */
  readonly capacityChanged: () => void;
  /** A peer cancelled a reservation (released or held). */
  readonly cancelled: (from: string, cancel: Cancel) => void;
  /**
   * Issue 16: of the `base` content hashes an offer's disks name (well-formed: the codec
   * refused any other), the ones this cloud holds a file of — answered as the disks' ids.
   * Asked once, when the offer is first taken; the answer is kept on the reservation, so a
   * repeated offer gets the same accept. Must not throw (answer `[]` when unsure: the source
   * then sends the flattened image). Absent: no base is ever held.
   */
  readonly heldBases?: (disks: ReadonlyArray<{ readonly id: string; readonly base: string }>) => Promise<readonly string[]>;
}

/** Answers offers and cancels. */
export class OfferResponder {
  readonly #o: OfferResponderOptions;
  readonly #offerHandlers: Array<(offer: IncomingOffer) => Promise<OfferVeto | undefined> | OfferVeto | undefined> = [];
  readonly #cancelHandlers: CancelHandler[] = [];

  constructor(options: OfferResponderOptions) {
    this.#o = options;
  }

  /**
   * Adds a handler that sees each incoming offer after verification and policy accepted
   * it, before the reservation is recorded; returning a veto rejects the offer.
   */
  onOffer(handler: (offer: IncomingOffer) => Promise<OfferVeto | undefined> | OfferVeto | undefined): void {
    this.#offerHandlers.push(handler);
  }

  /**
   * Adds a handler asked when the sender of an offer cancels the reservation we gave it; it
   * may hold the reservation (a job made for it is being cancelled) or refuse the cancel.
   * See {@link CancelVerdict}.
   */
  onCancel(handler: CancelHandler): void {
    this.#cancelHandlers.push(handler);
  }

  /** Marks a reservation as in use (it no longer lapses); false when it is not live. */
  useReservation(reservationId: string): boolean {
    const book = this.#o.admission.reservations;
    return book.get(reservationId, this.#o.now()) !== undefined && book.markUsed(reservationId);
  }

  /**
   * Releases the reservation a sender's offer holds, if any (the transaction it was made for
   * ended: completed, failed or cancelled).
   */
  releaseOffer(senderCloud: string, offerId: string): boolean {
    const book = this.#o.admission.reservations;
    const r = book.byOffer(senderCloud, offerId, this.#o.now());
    if (!r) return false;
    book.release(r.reservationId);
    this.#o.capacityChanged();
    return true;
  }

  /** Releases a reservation (transaction done or abandoned). */
  releaseReservation(reservationId: string): boolean {
    const r = this.#o.admission.reservations.release(reservationId);
    if (r) this.#o.capacityChanged();
    return r !== undefined;
  }

  /** Answers an `<offer/>` iq (`from`: the server-authenticated full JID): a signed accept or a coded rejection. */
  async handleOffer(element: Element, from: string): Promise<Element> {
    const refuse = async (reason: RejectReason, text: string, details: Record<string, unknown> = {}, error?: Element): Promise<Element> => {
      await this.#o.audit({ action: 'offer-refused', peer: from, reason, details: { text, ...details } });
      return error ?? buildRejectError({ reason, text });
    };
    let offer: Offer;
    let signature: string;
    try {
      ({ offer, signature } = parseOffer(element));
    } catch (err) {
      if (isIntercloudError(err, 'XMPP_OVERSIZED')) {
        return refuse('malformed', err.message, { code: err.code },
          buildStanzaError('modify', 'policy-violation', err.message, xml('reject', { xmlns: ICNS.NEGOTIATION, reason: 'malformed' })));
      }
      return refuse('malformed', isIntercloudError(err) ? err.message : 'offer could not be read', { code: isIntercloudError(err) ? err.code : 'unknown' });
    }
    const jid = parseJid(from);
    const sender: OfferSender = { local: jid.local, domain: jid.domain, jid: from };
    const details = { offerId: offer.offerId, claimed: offer.from };
    const admission = this.#o.admission;
    const now = this.#o.now();
    // Sender identity, allow-list and times, before any signature is verified or nonce stored.
    const screened = admission.screen(offer, sender, now);
    if (screened) return refuse(screened.reason, screened.text, details);
    let signer: VerifiedSigner;
    try {
      signer = await this.#o.trust.verify(signature, {
        type: MESSAGE_TYPES.OFFER, payload: offerPayload(offer), cloudId: offer.from, jid: jid.bare().toString(), replay: true,
        maxLifetimeMs: SIGNED_MESSAGE_MAX_LIFETIME_MS,
      });
    } catch (err) {
      const code = isIntercloudError(err) ? err.code : 'unknown';
      return refuse(trustReason(code), `offer '${offer.offerId}' did not verify: ${messageOf(err)}`, { ...details, code });
    }
    const verdict = admission.admit(offer, signer, sender, now);
    if (verdict.verdict === 'reject') return refuse(verdict.reason, verdict.text, details);
    let { reservation } = verdict;
    if (verdict.fresh) reservation = await this.#withHeldBases(reservation);
    for (const handler of this.#offerHandlers) {
      const veto = await handler({ offer, from, signer, reservation });
      if (veto) return refuse(veto.reason, veto.text, details);
    }
    if (!verdict.fresh) return this.#acceptFor(reservation, now);
    this.#o.admission.reservations.record(reservation);
    // Audited without holding the answer (an fsync costs more than the whole exchange); refusals
    // above are audited before they are answered.
    void this.#o.audit({ action: 'offer-accepted', peer: from, details: { offerId: offer.offerId, reservationId: reservation.reservationId } });
    this.#o.reserved(reservation);
    return this.#acceptFor(reservation, now);
  }

  /** `reservation` with the ids of the offered disks whose base this cloud holds (issue 16). */
  async #withHeldBases(reservation: Reservation): Promise<Reservation> {
    const w = reservation.offer.workload;
    if (w.type !== 'vm' || this.#o.heldBases === undefined) return reservation;
    const offered = w.disks.flatMap((d) => (d.base === undefined ? [] : [{ id: d.id, base: d.base }]));
    if (offered.length === 0) return reservation;
    // Only ids of disks that named a base, each once, in the offer's order.
    const said = new Set(await this.#o.heldBases(offered));
    const bases = offered.filter((d) => said.has(d.id)).map((d) => d.id).filter((id, i, all) => all.indexOf(id) === i);
    return bases.length === 0 ? reservation : { ...reservation, bases };
  }

  /** The signed accept of a reservation. */
  async #acceptFor(reservation: Reservation, now: number): Promise<Element> {
    const { expiresAt } = reservation;
    const accept = acceptFor(reservation, this.#o.cloudId, this.#o.endpoint(reservation.reservationId));
    // The signature only has to survive the trip: the reservation's own expiry is in the payload.
    const acceptSig = await this.#o.trust.sign(MESSAGE_TYPES.ACCEPT, acceptPayload(accept), Math.max(1, Math.min(expiresAt - now, SIGNED_REQUEST_TTL_MS)));
    return buildAccept(accept, acceptSig);
  }

  /** Answers a `<cancel/>` iq: an empty result, or a stanza error when refused. */
  async handleCancel(element: Element, from: string): Promise<Element | Record<string, never>> {
    let cancel: Cancel;
    try {
      cancel = parseCancel(element);
    } catch (err) {
      return buildStanzaError('modify', 'bad-request', messageOf(err));
    }
    const out = await this.cancelReservation(cancel, from);
    return out.outcome === 'refused' ? buildStanzaError('cancel', out.condition, out.text) : {};
  }

  /**
   * Handles a peer's `<cancel>` of a reservation (what the iq handler runs; `from` is the
   * server-authenticated full JID). Only the full JID that made the offer may cancel it. The
   * cancel handlers are asked first: a reservation whose job is being cancelled is held until
   * that job ends, and a refused cancel leaves it in place (issue 12, findings 6 and 8: a
   * reservation freed while its job still runs would let a peer pass the quotas and the
   * free-storage check by offering and cancelling again and again).
   */
  async cancelReservation(cancel: Cancel, from: string): Promise<CancelOutcome> {
    const r = this.#o.admission.reservations.get(cancel.reservationId, this.#o.now());
    if (!r || r.senderJid !== from) {
      return { outcome: 'refused', condition: 'item-not-found', text: `no reservation '${cancel.reservationId}' of yours` };
    }
    let hold = false;
    for (const h of this.#cancelHandlers) {
      const verdict = await h(cancel, from, r);
      if (verdict?.action === 'refuse') {
        await this.#o.audit({ action: 'cancel-refused', peer: from, reason: verdict.text, details: { reservationId: r.reservationId, offerId: r.offer.offerId } });
        return { outcome: 'refused', condition: 'not-allowed', text: verdict.text };
      }
      if (verdict?.action === 'hold') hold = true;
    }
    if (!hold) this.#o.admission.reservations.release(r.reservationId);
    await this.#o.audit({
      action: 'reservation-cancelled', peer: from, reason: cancel.reason ?? 'peer', details: { reservationId: r.reservationId, offerId: r.offer.offerId, held: hold },
    });
    this.#o.cancelled(from, cancel);
    if (!hold) this.#o.capacityChanged();
    return { outcome: hold ? 'held' : 'released' };
  }

  /** Drops lapsed reservations (audited) and says that capacity changed. */
  async expireReservations(): Promise<void> {
    const gone = this.#o.admission.reservations.expire(this.#o.now());
    for (const r of gone) {
      await this.#o.audit({ action: 'reservation-expired', peer: r.senderJid, details: { reservationId: r.reservationId, offerId: r.offer.offerId } });
    }
    if (gone.length > 0) this.#o.capacityChanged();
  }
}
