/**
 * Error codes of the LISP control plane (`LISP_…`). Decoding, authentication, the
 * map server and the registrar client all fail with an {@link IntercloudError} carrying
 * one of these codes; wire fields (type, offsets, key id, nonce) are kept in `details`.
 */
import { defineErrorCodes, IntercloudError } from '../errors/index.js';

/** The `LISP_…` codes: what each means and whether retrying can help. */
export const LISP_ERRORS = defineErrorCodes('lisp', {
  LISP_TRUNCATED: { doc: 'a lisp control message ends before a field it announces', retryable: false },
  LISP_BAD_LENGTH: { doc: 'a length field is wrong (authentication data, mask length, ip/udp header, trailing bytes)', retryable: false },
  LISP_UNKNOWN_TYPE: { doc: 'the lisp message type is not one this implementation handles', retryable: false },
  LISP_UNSUPPORTED_AFI: { doc: 'an address family other than ipv4 (1) or ipv6 (2) where an address is required', retryable: false },
  LISP_BAD_ADDRESS: { doc: 'an address or prefix given to the encoder is not a valid ipv4/ipv6 address or mask', retryable: false },
  LISP_BAD_FIELD: { doc: 'a field value is out of range for its width (ttl, priority, counts, key id)', retryable: false },
  LISP_UNKNOWN_ALGORITHM: { doc: 'the authentication algorithm id is not hmac-sha-1-96 (1) or hmac-sha-256-128 (2)', retryable: false },
  LISP_UNKNOWN_KEY_ID: { doc: 'no site of the map server has the key id of a map-register', retryable: false },
  LISP_BAD_HMAC: { doc: 'the authentication data does not match the hmac of the message under the site key', retryable: false },
  LISP_EID_NOT_ALLOWED: { doc: 'a map-register names an eid prefix outside the allowed prefixes of its site', retryable: false },
  LISP_EID_HELD: { doc: 'an eid prefix is held by another site: it moves only on the holder\'s withdrawal or a hand-over the holder signed', retryable: false },
  LISP_STALE_NONCE: { doc: 'a map-register or hand-over nonce is not above the site\'s last one, or its time is outside the window (replayed or stale)', retryable: false },
  LISP_HAND_OVER_INVALID: { doc: 'an eid hand-over is not signed by the eids\' holder under the intercloud root, is expired, malformed or not addressed to the presenting site', retryable: false },
  LISP_HAND_OVER_REFUSED: { doc: 'the map server refused an eid hand-over (details.code is its reason)', retryable: false },
  LISP_NO_ANSWER: { doc: 'the map server or map resolver did not answer after all retries', retryable: true },
  LISP_STATE: { doc: 'the map server could not write its state file (it keeps serving from memory)', retryable: true },
  LISP_SOCKET: { doc: 'the udp socket could not be opened, bound or used', retryable: true },
  LISP_CONFIG: { doc: 'map server or registrar options are invalid (sites, keys, prefixes, ports)', retryable: false },
});

/** One of the LISP error codes. */
export type LispCode = keyof typeof LISP_ERRORS;

/** An {@link IntercloudError} with a LISP code. */
export type LispError = IntercloudError<LispCode>;

/** Builds a LISP error (shorthand used by every file of this area). */
export function lispError(
  code: LispCode,
  message: string,
  options: { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean } = {},
): LispError {
  return new IntercloudError(code, message, options);
}
