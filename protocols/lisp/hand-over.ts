/**
 * The Intercloud EID hand-over: the site that holds a VM's EIDs (the migration's source)
 * signs, under its certificate from the Intercloud Root, that the target site may register
 * them for one offer until an expiry. The target presents it to the Map-Server (an
 * `eid-hand-over` message), which checks it here before letting the EIDs move. Pure: the
 * signed-payload mechanism of `protocols/trust`, `now` passed in.
 */
import { isIntercloudError } from '../errors/index.js';
import {
  signPayload, verifySignedPayload, type Certificate, type Crl, type SignedEnvelope, type Signer,
} from '../trust/index.js';
import { lispError } from './errors.js';
import { formatPrefix, hostPrefix, parsePrefix } from './address.js';

/** The signed-payload type of a hand-over (signed, so it cannot be relabelled). */
export const EID_HAND_OVER_TYPE = 'lisp/eid-hand-over';
/** Default lifetime of a hand-over: long enough for the target to define, start and register. */
export const DEFAULT_HAND_OVER_TTL_MS = 15 * 60_000;
/** Longest lifetime a Map-Server accepts for a hand-over. */
export const MAX_HAND_OVER_LIFETIME_MS = 60 * 60_000;

/** What the holder hands over. */
export interface EidHandOver {
  /** The EID prefixes (`10.77.0.5/32`; a bare address means its host prefix). */
  eids: string[];
  /** The site (cloud id) that holds them and signs. */
  from: string;
  /** The site (cloud id) that may register them. */
  to: string;
  /** The migration offer this hand-over belongs to. */
  offerId: string;
}

/** A verified hand-over: canonical prefixes, its expiry and its nonce. */
export interface VerifiedEidHandOver extends EidHandOver {
  expiresAt: Date;
  /** The signer certificate's fingerprint and the envelope nonce: unique per hand-over. */
  id: string;
}

/** Signs a hand-over as the holder (`signer` is the holder's gateway identity). */
export function signEidHandOver(handOver: EidHandOver, signer: Signer, options: { now: Date; ttlMs?: number }): SignedEnvelope<EidHandOver> {
  const eids = handOver.eids.map((e) => formatPrefix(e.includes('/') ? parsePrefix(e) : hostPrefix(e)));
  return signPayload({ ...handOver, eids }, signer, { now: options.now, type: EID_HAND_OVER_TYPE, ttlMs: options.ttlMs ?? DEFAULT_HAND_OVER_TTL_MS });
}

function invalid(message: string, details: Record<string, unknown>, cause?: unknown): never {
  throw lispError('LISP_HAND_OVER_INVALID', message, { details, ...(cause === undefined ? {} : { cause }) });
}

/**
 * Verifies a hand-over (JSON text or parsed envelope): signed under one of `roots` (chain,
 * validity, revocation), of type {@link EID_HAND_OVER_TYPE}, within its lifetime (at most
 * {@link MAX_HAND_OVER_LIFETIME_MS}), signed by the site it names as `from`, with 1–255 valid
 * prefixes. Throws LISP_HAND_OVER_INVALID with the trust error as `cause`.
 */
export function verifyEidHandOver(
  input: string | unknown,
  options: { roots: readonly Certificate[]; crls?: readonly Crl[]; now: Date; clockSkewMs?: number },
): VerifiedEidHandOver {
  let envelope: unknown = input;
  if (typeof input === 'string') {
    try {
      envelope = JSON.parse(input);
    } catch (err) {
      invalid('eid hand-over is not json', {}, err);
    }
  }
  let verified;
  try {
    verified = verifySignedPayload<EidHandOver>(envelope, {
      roots: options.roots, ...(options.crls ? { crls: options.crls } : {}), now: options.now, expectType: EID_HAND_OVER_TYPE,
      maxLifetimeMs: MAX_HAND_OVER_LIFETIME_MS, ...(options.clockSkewMs === undefined ? {} : { clockSkewMs: options.clockSkewMs }),
    });
  } catch (err) {
    if (!isIntercloudError(err)) throw err;
    return invalid(`eid hand-over does not verify under the intercloud root: ${err.message}`, { trustCode: err.code }, err);
  }
  const p = verified.payload as Partial<EidHandOver> | null;
  if (typeof p !== 'object' || p === null || typeof p.from !== 'string' || typeof p.to !== 'string' || typeof p.offerId !== 'string'
    || !p.from || !p.to || !p.offerId || !Array.isArray(p.eids) || p.eids.length < 1 || p.eids.length > 255
    || !p.eids.every((e) => typeof e === 'string')) {
    return invalid('eid hand-over payload is not { eids: [1–255 prefixes], from, to, offerId }', {});
  }
  if (verified.signer.cloudId !== p.from) {
    return invalid(`eid hand-over names '${p.from}' as holder but is signed by '${verified.signer.cloudId ?? verified.signer.subject}'`, {
      from: p.from, signer: verified.signer.cloudId,
    });
  }
  let eids: string[];
  try {
    eids = p.eids.map((e) => formatPrefix(parsePrefix(e)));
  } catch (err) {
    return invalid('eid hand-over names an invalid prefix', { eids: p.eids }, err);
  }
  return {
    eids, from: p.from, to: p.to, offerId: p.offerId, expiresAt: verified.expiresAt, id: `${verified.signer.fingerprint256}:${verified.nonce}`,
  };
}
