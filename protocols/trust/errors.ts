/**
 * Error codes of the trust area (`TRUST_…`): certificates, CRLs, CSRs, signed messages,
 * the CA's state directory and the audit log.
 */
import { defineErrorCodes, IntercloudError, type IntercloudErrorOptions } from '../errors/index.js';

/** Every code the trust area raises, with its one-line description. */
export const TRUST_ERRORS = defineErrorCodes('trust', {
  TRUST_MALFORMED_PEM: { doc: 'input is not a well-formed pem/der object of the expected type', retryable: false },
  TRUST_MALFORMED_CERT: { doc: 'a certificate, csr or crl does not follow the x.509 structure (rfc 5280)', retryable: false },
  TRUST_UNSUPPORTED_ALGORITHM: { doc: 'a key or signature algorithm other than ecdsa p-256/sha-256 or rsa/sha-256', retryable: false },
  TRUST_EXPIRED: { doc: 'a certificate is past its notAfter', retryable: false },
  TRUST_NOT_YET_VALID: { doc: 'a certificate is before its notBefore', retryable: false },
  TRUST_UNKNOWN_ISSUER: { doc: 'no trusted root (or intermediate) issued the certificate', retryable: false },
  TRUST_BAD_SIGNATURE: { doc: 'a certificate or crl signature does not verify with its issuer key', retryable: false },
  TRUST_SELF_SIGNED_LEAF: { doc: 'a self-signed certificate was presented as an end-entity certificate', retryable: false },
  TRUST_NOT_CA: { doc: 'an issuing certificate lacks basicConstraints ca=true or keyCertSign', retryable: false },
  TRUST_KEY_USAGE: { doc: 'a certificate keyUsage/extKeyUsage/basicConstraints does not allow the requested use', retryable: false },
  TRUST_UNKNOWN_CRITICAL_EXTENSION: { doc: 'a certificate carries a critical extension this verifier does not process', retryable: false },
  TRUST_REVOKED: { doc: 'a certificate is listed on its issuer\'s crl', retryable: false },
  TRUST_CRL_INVALID: { doc: 'a crl is badly signed, not yet valid or past its nextUpdate', retryable: true },
  TRUST_IDENTITY_MISMATCH: { doc: 'the certificate does not name the expected cloud id, jid or dns name', retryable: false },
  TRUST_CSR_SIGNATURE: { doc: 'a csr\'s self-signature does not verify with the public key it carries', retryable: false },
  TRUST_MESSAGE_MALFORMED: { doc: 'a signed message envelope lacks a field or has a wrong type', retryable: false },
  TRUST_MESSAGE_EXPIRED: { doc: 'a signed message is past its expiry (beyond the allowed clock skew)', retryable: false },
  TRUST_MESSAGE_NOT_YET_VALID: { doc: 'a signed message was issued in the future (beyond the allowed clock skew)', retryable: false },
  TRUST_MESSAGE_REPLAYED: { doc: 'a signed message nonce was already seen from this signer', retryable: false },
  TRUST_MESSAGE_TAMPERED: { doc: 'a signed message signature does not match its canonical bytes', retryable: false },
  TRUST_UNKNOWN_SIGNER: { doc: 'a signed message signer certificate is undecodable, self-signed or not issued under a trusted root', retryable: false },
  TRUST_REPLAY_CACHE_FULL: { doc: 'the replay cache is full of unexpired nonces; the message cannot be checked for replay', retryable: true },
  TRUST_KEY_MISMATCH: { doc: 'a private key does not belong to the certificate it was given with', retryable: false },
  TRUST_WRITE_FAILED: { doc: 'a certificate, key, crl or ca state file cannot be written', retryable: false },
  TRUST_CA_STATE: { doc: 'the ca directory is missing, unreadable or inconsistent', retryable: false },
  TRUST_CA_EXISTS: { doc: 'the ca directory already holds a root; refusing to overwrite it', retryable: false },
  TRUST_CA_LOCKED: { doc: 'another process holds the ca directory lock', retryable: true },
  TRUST_UNKNOWN_SERIAL: { doc: 'the serial is not one this ca issued', retryable: false },
  TRUST_AUDIT_BROKEN: { doc: 'the audit log hash chain is broken (edited, removed, reordered or truncated line)', retryable: false },
  TRUST_AUDIT_IO: { doc: 'the audit log cannot be read or appended', retryable: true },
  TRUST_BAD_ARGUMENT: { doc: 'an argument to a trust operation is invalid (cloud id, dns name, ip, days)', retryable: false },
});

/** A trust error code. */
export type TrustErrorCode = keyof typeof TRUST_ERRORS;

/** Builds an {@link IntercloudError} with a trust code. */
export function trustError(code: TrustErrorCode, message: string, options?: IntercloudErrorOptions): IntercloudError<TrustErrorCode> {
  return new IntercloudError(code, message, options);
}
