/**
 * What the control plane needs from the trust area (bound to `protocols/trust` by
 * `trust-binding.ts`): signing and verifying the `<signature/>` envelopes of catalog entries,
 * offers, accepts and migration requests, and the audit log. Types, constants and one pure
 * mapping; no I/O.
 */
import type { RejectReason } from './negotiation.js';
import type { VerifiedSigner } from './offer-admission.js';

/** One audit record about an intercloud action of the control plane. */
export interface ControlPlaneAuditRecord {
  readonly action: 'offer-accepted' | 'offer-refused' | 'catalog-entry-ignored' | 'reservation-cancelled' | 'cancel-refused' | 'reservation-expired';
  /** The peer's JID. */
  readonly peer: string;
  readonly reason?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** What a signed payload must be for {@link GatewayTrust.verify} to accept it. */
export interface VerifyExpectation {
  /** The message type (`intercloud/catalog-entry`, `intercloud/offer`, `intercloud/accept`). */
  readonly type: string;
  /** The payload as read from the XML; the envelope must carry exactly this value. */
  readonly payload: Record<string, unknown>;
  readonly cloudId: string;
  readonly jid: string;
  /** Remember the nonce and refuse a second use (offers, accepts; not catalog entries, which are re-read). */
  readonly replay: boolean;
  /**
   * Longest lifetime (issued → expires) accepted for the envelope, ms. Messages whose nonce is
   * remembered live minutes ({@link SIGNED_MESSAGE_MAX_LIFETIME_MS}), so the replay store
   * holds each nonce minutes, not a day. Default: that for `replay`, the trust area's otherwise.
   */
  readonly maxLifetimeMs?: number;
}

/**
 * Longest lifetime of a signed message whose nonce is remembered (offers, accepts, migration
 * requests): 15 minutes. Issue 12 finding 6: a nonce kept a day lets a flood fill the store.
 */
export const SIGNED_MESSAGE_MAX_LIFETIME_MS = 15 * 60_000;

/** How long the signature of an accept or a migration request we send is valid (it is verified on arrival). */
export const SIGNED_REQUEST_TTL_MS = 120_000;

/** Signed message types of the control plane. */
export const MESSAGE_TYPES = {
  CATALOG: 'intercloud/catalog-entry',
  OFFER: 'intercloud/offer',
  ACCEPT: 'intercloud/accept',
  /** instantiate / commit / release after an accepted offer (`migration.ts`). */
  MIGRATION_REQUEST: 'intercloud/migration-request',
} as const;

/**
 * What the session needs from the trust area (bound to `protocols/trust` by the daemon).
 *
 * Contract: `sign` returns an envelope text carrying this gateway's certificate, a fresh
 * nonce and an expiry. `verify` checks the envelope's certificate chain to the Root,
 * revocation, that the certificate names `expected.cloudId` and `expected.jid`, that the
 * signed payload equals `expected.payload` (canonical JSON), its type and time window,
 * and (when `replay` is true) that its nonce was not seen before; it throws an `IntercloudError` with a `TRUST_…` code
 * otherwise. `audit` appends to the hash-chained audit log.
 */
export interface GatewayTrust {
  /** SHA-256 of this gateway's certificate DER (64 lowercase hex digits). */
  readonly certificateSha256: string;
  /** Signs `payload` as a message of `type` valid for `ttlMs`; returns the envelope text. */
  sign(type: string, payload: Record<string, unknown>, ttlMs: number): Promise<string>;
  verify(envelope: string, expected: VerifyExpectation): Promise<VerifiedSigner>;
  audit(record: ControlPlaneAuditRecord): Promise<void>;
}

/** Maps a trust verification error code to the reject reason we send. */
export function trustReason(code: string): RejectReason {
  switch (code) {
    case 'TRUST_MESSAGE_EXPIRED':
      return 'expired';
    case 'TRUST_MESSAGE_NOT_YET_VALID':
      return 'clock-skew';
    case 'TRUST_MESSAGE_REPLAYED':
      return 'replayed';
    case 'TRUST_MESSAGE_MALFORMED':
      return 'malformed';
    case 'TRUST_REPLAY_CACHE_FULL':
      // The sender's own replay store is full: it sent more than its share (finding 6).
      return 'policy';
    default:
      return 'untrusted';
  }
}
