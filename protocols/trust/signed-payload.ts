/**
 * Signed negotiation messages: a payload with a detached signature over canonical bytes
 * (RFC 8785 JSON), bound to the signer's certificate fingerprint, a type, an issued-at
 * time, an expiry and a nonce. Verification checks the signer's certificate against the
 * Intercloud Root (as {@link verifyCertificate}), the signature, the time window (with a
 * clock-skew allowance) and replay (a {@link ReplayCache}). Pure: `now` is passed in.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { isIntercloudError } from '../errors/index.js';
import { canonicalBytes } from './canonical-json.js';
import { certificateToPem, parseCertificatesPem, type Certificate } from './certificate.js';
import type { Crl } from './crl.js';
import { trustError } from './errors.js';
import { algorithmName, signBytes, verifyBytes } from './keys.js';
import type { ReplayCache } from './replay-cache.js';
import { verifyCertificate, type PeerIdentity } from './verify.js';

/** Domain-separation label inside the signed bytes, so a signature means nothing elsewhere. */
export const SIGNED_PAYLOAD_CONTEXT = 'intercloud-signed-payload/v1';
/** Default lifetime of a signed message. */
export const DEFAULT_MESSAGE_TTL_MS = 5 * 60_000;
/** Default allowance for clocks that disagree (issued-at in the future, expiry in the past). */
export const DEFAULT_CLOCK_SKEW_MS = 30_000;
/** Longest lifetime a verifier accepts by default (bounds how long nonces are remembered). */
export const DEFAULT_MAX_MESSAGE_LIFETIME_MS = 24 * 3_600_000;

/** A signed message as it travels (JSON). */
export interface SignedEnvelope<P = unknown> {
  v: 1;
  /** What the payload is, e.g. `negotiation/offer`; signed, so it cannot be relabelled. */
  type: string;
  alg: 'ES256' | 'RS256';
  payload: P;
  /** The signer's certificate (PEM), then any intermediates. */
  signer: { certificate: string; chain?: string[] };
  /** SHA-256 of the signer certificate DER (signed). */
  signerFingerprint256: string;
  /** ISO 8601 UTC with milliseconds. */
  issuedAt: string;
  expiresAt: string;
  /** 16 random octets, base64url. */
  nonce: string;
  /** The signature over {@link signedBytes}, base64url. */
  sig: string;
}

/** Who signs: a gateway's certificate and private key. */
export interface Signer {
  certificate: Certificate;
  privateKey: KeyObject;
  chain?: Certificate[];
}

/** Options of {@link signPayload}. */
export interface SignOptions {
  now: Date;
  type: string;
  ttlMs?: number;
  /** Fixed nonce (tests); default 16 random octets. */
  nonce?: Uint8Array;
}

type SignedFields = Omit<SignedEnvelope, 'sig' | 'signer'>;

/** The exact bytes the signature covers: canonical JSON of every field but `sig` and `signer`. */
export function signedBytes(fields: SignedFields): Buffer {
  return canonicalBytes({
    ctx: SIGNED_PAYLOAD_CONTEXT,
    v: fields.v,
    type: fields.type,
    alg: fields.alg,
    payload: fields.payload,
    signerFingerprint256: fields.signerFingerprint256,
    issuedAt: fields.issuedAt,
    expiresAt: fields.expiresAt,
    nonce: fields.nonce,
  });
}

/** Signs `payload` (JSON data) as `signer`; the envelope is ready to send as JSON. */
export function signPayload<P>(payload: P, signer: Signer, options: SignOptions): SignedEnvelope<P> {
  const ttl = options.ttlMs ?? DEFAULT_MESSAGE_TTL_MS;
  if (!Number.isInteger(ttl) || ttl <= 0) throw trustError('TRUST_BAD_ARGUMENT', `message ttl '${ttl}' ms is not a positive integer`);
  const fields: SignedFields = {
    v: 1,
    type: options.type,
    alg: algorithmName(signer.privateKey),
    payload,
    signerFingerprint256: signer.certificate.fingerprint256,
    issuedAt: options.now.toISOString(),
    expiresAt: new Date(options.now.getTime() + ttl).toISOString(),
    nonce: Buffer.from(options.nonce ?? randomBytes(16)).toString('base64url'),
  };
  const sig = signBytes(signedBytes(fields), signer.privateKey).toString('base64url');
  const chain = signer.chain?.map((c) => certificateToPem(c.der));
  return { ...fields, signer: { certificate: certificateToPem(signer.certificate.der), ...(chain && chain.length ? { chain } : {}) }, sig } as SignedEnvelope<P>;
}

/** Options of {@link verifySignedPayload}. */
export interface VerifyPayloadOptions {
  roots: readonly Certificate[];
  intermediates?: readonly Certificate[];
  crls?: readonly Crl[];
  requireCrl?: boolean;
  now: Date;
  /** Remembers accepted nonces; omit only where replay is handled elsewhere. */
  replayCache?: ReplayCache;
  /** The signer must be this cloud. */
  expectCloudId?: string;
  /** The message must be of this type. */
  expectType?: string;
  clockSkewMs?: number;
  maxLifetimeMs?: number;
}

/** A verified message. */
export interface VerifiedPayload<P = unknown> {
  payload: P;
  type: string;
  signer: PeerIdentity;
  issuedAt: Date;
  expiresAt: Date;
  nonce: string;
}

const FINGERPRINT = /^[0-9a-f]{64}$/;
const NONCE = /^[A-Za-z0-9_-]{16,128}$/;
const SIG = /^[A-Za-z0-9_-]+$/;

function malformed(message: string, cause?: unknown): never {
  throw trustError('TRUST_MESSAGE_MALFORMED', message, cause === undefined ? undefined : { cause });
}

function isoTime(value: unknown, field: string): Date {
  if (typeof value !== 'string') malformed(`field '${field}' is not a string`);
  const d = new Date(value);
  if (Number.isNaN(d.getTime()) || d.toISOString() !== value) malformed(`field '${field}' is not an iso 8601 utc time`);
  return d;
}

function checkShape(input: unknown): SignedEnvelope {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) malformed('signed message is not an object');
  const e = input as Record<string, unknown>;
  if (e['v'] !== 1) malformed(`unsupported signed message version '${String(e['v'])}'`);
  if (typeof e['type'] !== 'string' || e['type'] === '') malformed("field 'type' is not a non-empty string");
  if (e['alg'] !== 'ES256' && e['alg'] !== 'RS256') malformed(`unsupported algorithm '${String(e['alg'])}'`);
  if (!('payload' in e)) malformed("field 'payload' is missing");
  const signer = e['signer'] as Record<string, unknown> | undefined;
  if (typeof signer !== 'object' || signer === null || typeof signer['certificate'] !== 'string') malformed("field 'signer.certificate' is not a pem string");
  if (signer['chain'] !== undefined && !(Array.isArray(signer['chain']) && signer['chain'].every((c) => typeof c === 'string'))) malformed("field 'signer.chain' is not a list of pem strings");
  if (typeof e['signerFingerprint256'] !== 'string' || !FINGERPRINT.test(e['signerFingerprint256'])) malformed("field 'signerFingerprint256' is not 64 hex digits");
  if (typeof e['nonce'] !== 'string' || !NONCE.test(e['nonce'])) malformed("field 'nonce' is not base64url of 12 or more octets");
  if (typeof e['sig'] !== 'string' || !SIG.test(e['sig'])) malformed("field 'sig' is not base64url");
  isoTime(e['issuedAt'], 'issuedAt');
  isoTime(e['expiresAt'], 'expiresAt');
  return input as SignedEnvelope;
}

/** Certificate problems that mean "we do not know who signed this". */
const UNKNOWN_SIGNER_CAUSES = ['TRUST_UNKNOWN_ISSUER', 'TRUST_SELF_SIGNED_LEAF', 'TRUST_BAD_SIGNATURE', 'TRUST_MALFORMED_PEM', 'TRUST_MALFORMED_CERT'] as const;

/**
 * Verifies a signed message. Throws TRUST_MESSAGE_MALFORMED, TRUST_UNKNOWN_SIGNER (signer
 * certificate not from a trusted root, self-signed or undecodable), the certificate's own
 * code when it is otherwise unacceptable (TRUST_EXPIRED, TRUST_REVOKED,
 * TRUST_IDENTITY_MISMATCH for `expectCloudId` …), TRUST_MESSAGE_TAMPERED,
 * TRUST_MESSAGE_EXPIRED, TRUST_MESSAGE_NOT_YET_VALID or TRUST_MESSAGE_REPLAYED. The
 * nonce is remembered only when every check passed.
 */
export function verifySignedPayload<P = unknown>(input: unknown, options: VerifyPayloadOptions): VerifiedPayload<P> {
  const env = checkShape(input);
  if (options.expectType !== undefined && env.type !== options.expectType) {
    malformed(`signed message type '${env.type}' is not the expected '${options.expectType}'`);
  }
  let certificate: Certificate;
  let chain: Certificate[];
  let signer: PeerIdentity;
  try {
    [certificate] = parseCertificatesPem(env.signer.certificate) as [Certificate];
    chain = (env.signer.chain ?? []).flatMap(parseCertificatesPem);
    signer = verifyCertificate(certificate, {
      roots: options.roots,
      intermediates: [...(options.intermediates ?? []), ...chain],
      crls: options.crls,
      requireCrl: options.requireCrl,
      now: options.now,
      expectCloudId: options.expectCloudId,
    });
  } catch (err) {
    if (isIntercloudError(err, ...UNKNOWN_SIGNER_CAUSES)) {
      throw trustError('TRUST_UNKNOWN_SIGNER', `signer of '${env.type}' message is not a trusted cloud: ${err.message}`, { cause: err, details: { certificateCode: err.code, ...err.details } });
    }
    throw err;
  }
  if (certificate.fingerprint256 !== env.signerFingerprint256 || algorithmName(certificate.publicKey) !== env.alg) {
    throw trustError('TRUST_MESSAGE_TAMPERED', `signed message names signer '${env.signerFingerprint256}' / '${env.alg}' but carries certificate '${certificate.fingerprint256}'`, {
      details: { signerFingerprint256: env.signerFingerprint256, certificateFingerprint256: certificate.fingerprint256 },
    });
  }
  let bytes: Buffer;
  try {
    bytes = signedBytes(env);
  } catch (err) {
    return malformed('signed message payload is not json data', err);
  }
  if (!verifyBytes(bytes, Buffer.from(env.sig, 'base64url'), certificate.publicKey)) {
    throw trustError('TRUST_MESSAGE_TAMPERED', `signature of '${env.type}' message from '${signer.cloudId ?? signer.subject}' does not match its content`, {
      details: { type: env.type, signer: signer.cloudId, nonce: env.nonce },
    });
  }
  const issuedAt = isoTime(env.issuedAt, 'issuedAt');
  const expiresAt = isoTime(env.expiresAt, 'expiresAt');
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  const maxLifetime = options.maxLifetimeMs ?? DEFAULT_MAX_MESSAGE_LIFETIME_MS;
  const now = options.now.getTime();
  if (expiresAt.getTime() <= issuedAt.getTime() || expiresAt.getTime() - issuedAt.getTime() > maxLifetime) {
    malformed(`signed message lifetime from '${env.issuedAt}' to '${env.expiresAt}' is not within (0, ${maxLifetime}] ms`);
  }
  const times = { issuedAt: env.issuedAt, expiresAt: env.expiresAt, now: options.now.toISOString(), clockSkewMs: skew };
  if (now > expiresAt.getTime() + skew) {
    throw trustError('TRUST_MESSAGE_EXPIRED', `'${env.type}' message from '${signer.cloudId ?? signer.subject}' expired at '${env.expiresAt}'`, { details: times });
  }
  if (issuedAt.getTime() > now + skew) {
    throw trustError('TRUST_MESSAGE_NOT_YET_VALID', `'${env.type}' message from '${signer.cloudId ?? signer.subject}' is issued in the future at '${env.issuedAt}'`, { details: times });
  }
  options.replayCache?.remember(`${certificate.fingerprint256}:${env.nonce}`, expiresAt.getTime() + skew, now);
  return { payload: env.payload as P, type: env.type, signer, issuedAt, expiresAt, nonce: env.nonce };
}
