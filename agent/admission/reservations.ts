/**
 * Reservations made by accepted offers: they hold capacity until used, released,
 * cancelled or expired. Pure bookkeeping; the caller supplies the time.
 */
import type { Capacity, Offer, Reservation, ReservationLedger } from '../../protocols/xmpp/index.js';
import { workloadDemand } from './policy.js';

export type { Reservation };

/** Holds reservations and computes free capacity from a configured total. */
export class ReservationBook implements ReservationLedger {
  readonly #byId = new Map<string, Reservation>();
  #total: Capacity;

  constructor(total: Capacity) {
    this.#total = total;
  }

  /** Changes the configured total (e.g. the hypervisor reported new free capacity). */
  setTotal(total: Capacity): void {
    this.#total = total;
  }

  /** Capacity not held by live reservations at `now`. */
  free(now: number): Capacity {
    const held = this.held(now);
    return {
      vcpus: Math.max(0, this.#total.vcpus - held.vcpus),
      memoryMiB: Math.max(0, this.#total.memoryMiB - held.memoryMiB),
      diskGiB: Math.max(0, this.#total.diskGiB - held.diskGiB),
      objectStorageGiB: Math.max(0, this.#total.objectStorageGiB - held.objectStorageGiB),
    };
  }

  /** What all live reservations hold at `now`. */
  held(now: number): Capacity {
    this.expire(now);
    const held = { vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 0 };
    for (const r of this.#byId.values()) {
      held.vcpus += r.demand.vcpus;
      held.memoryMiB += r.demand.memoryMiB;
      held.diskGiB += r.demand.diskGiB;
      held.objectStorageGiB += r.demand.objectStorageGiB;
    }
    return held;
  }

  /** What one sending cloud holds at `now`. */
  usage(senderCloud: string, now: number): { vcpus: number; memoryMiB: number; diskGiB: number; reservations: number } {
    this.expire(now);
    const u = { vcpus: 0, memoryMiB: 0, diskGiB: 0, reservations: 0 };
    for (const r of this.#byId.values()) {
      if (r.senderCloud !== senderCloud) continue;
      u.vcpus += r.demand.vcpus;
      u.memoryMiB += r.demand.memoryMiB;
      u.diskGiB += r.demand.diskGiB;
      u.reservations += 1;
    }
    return u;
  }

  /** Records a reservation made by {@link admitOffer} (or any other). */
  record(reservation: Reservation): Reservation {
    this.#byId.set(reservation.reservationId, reservation);
    return reservation;
  }

  /** Records a reservation for an accepted offer. */
  add(reservationId: string, offer: Offer, sender: { cloud: string; jid: string }, expiresAt: number): Reservation {
    const r: Reservation = {
      reservationId, offer, senderCloud: sender.cloud, senderJid: sender.jid, demand: workloadDemand(offer), expiresAt, used: false,
    };
    this.#byId.set(reservationId, r);
    return r;
  }

  /** The live reservation with that id at `now`, if any. */
  get(reservationId: string, now: number): Reservation | undefined {
    this.expire(now);
    return this.#byId.get(reservationId);
  }

  /** The reservation made for an offer id from a sender, if still live. */
  byOffer(senderCloud: string, offerId: string, now: number): Reservation | undefined {
    this.expire(now);
    for (const r of this.#byId.values()) if (r.senderCloud === senderCloud && r.offer.offerId === offerId) return r;
    return undefined;
  }

  /** Marks a reservation used: it no longer lapses (the transaction is under way). */
  markUsed(reservationId: string): boolean {
    const r = this.#byId.get(reservationId);
    if (!r) return false;
    this.#byId.set(reservationId, { ...r, used: true });
    return true;
  }

  /** Drops a reservation (done, cancelled); returns it if it was live. */
  release(reservationId: string): Reservation | undefined {
    const r = this.#byId.get(reservationId);
    this.#byId.delete(reservationId);
    return r;
  }

  /** Drops unused reservations past their expiry; returns them. */
  expire(now: number): Reservation[] {
    const gone: Reservation[] = [];
    for (const r of this.#byId.values()) {
      if (!r.used && r.expiresAt <= now) {
        this.#byId.delete(r.reservationId);
        gone.push(r);
      }
    }
    return gone;
  }

  /** Number of live reservations (after expiring at `now`). */
  size(now: number): number {
    this.expire(now);
    return this.#byId.size;
  }
}
