/**
 * Offer admission: the local policy (who may send us work, per-VM limits, per-cloud quotas,
 * capacity), the reservation book, and the pure rules that turn an offer into a typed
 * reservation or a coded refusal. The XMPP session asks them through its
 * `OfferAdmission` port (`protocols/xmpp/offer-admission.ts`).
 */
export {
  DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_RESERVATION_TTL_MS, admitOffer, screenOffer, type AdmitInput, type ScreenInput,
} from './admit.js';
export { advertisedCapacity } from './host-capacity.js';
export { admitMode, targetModeRefusal, type ModeAdmissionInput, type ModeRefusal, type ModeRefusalReason } from './mode-admission.js';
export { createOfferAdmission, type OfferAdmissionOptions } from './offer-admission.js';
export {
  chooseStorageRegion, createDefaultPolicy, workloadDemand, type DefaultPolicyOptions, type NegotiationPolicy, type OfferContext, type PolicyDecision,
  type StoragePolicy,
} from './policy.js';
export { ReservationBook, type Reservation } from './reservations.js';
