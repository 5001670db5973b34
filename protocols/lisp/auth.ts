/**
 * Authentication of Map-Register, Map-Notify and Map-Notify-Ack (RFC 9301 §5.6): an HMAC
 * over the whole message with the Authentication Data field set to zero, under the
 * site's shared key, with the algorithm named by the Algorithm ID.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ALGORITHM_ID, AUTH_DATA_LENGTH, type AuthAlgorithm } from './constants.js';
import { lispError } from './errors.js';

/** Offset of the Authentication Data in an authenticated message (after type, nonce, key/alg/len). */
export const AUTH_DATA_OFFSET = 16;

/** The algorithm name of an Algorithm ID, or LISP_UNKNOWN_ALGORITHM. */
export function algorithmOf(algorithmId: number): AuthAlgorithm {
  if (algorithmId === ALGORITHM_ID['hmac-sha-1-96']) return 'hmac-sha-1-96';
  if (algorithmId === ALGORITHM_ID['hmac-sha-256-128']) return 'hmac-sha-256-128';
  throw lispError('LISP_UNKNOWN_ALGORITHM', `lisp algorithm id '${algorithmId}' is not hmac-sha-1-96 (1) or hmac-sha-256-128 (2)`, {
    details: { algorithmId },
  });
}

/**
 * The HMAC of `message` (a whole encoded message whose Authentication Data may hold
 * anything: it is zeroed for the computation) under `key`.
 */
export function computeAuthData(message: Uint8Array, algorithm: AuthAlgorithm, key: Uint8Array | string): Buffer {
  const len = AUTH_DATA_LENGTH[algorithm];
  if (message.length < AUTH_DATA_OFFSET + len) {
    throw lispError('LISP_TRUNCATED', `lisp message of ${message.length} bytes is too short for ${len} bytes of ${algorithm} data`);
  }
  const hmac = createHmac(algorithm === 'hmac-sha-1-96' ? 'sha1' : 'sha256', key);
  hmac.update(message.subarray(0, AUTH_DATA_OFFSET));
  hmac.update(Buffer.alloc(len));
  hmac.update(message.subarray(AUTH_DATA_OFFSET + len));
  return hmac.digest();
}

/** Writes the HMAC of `message` into its Authentication Data field (in place) and returns it. */
export function signInPlace(message: Buffer, algorithm: AuthAlgorithm, key: Uint8Array | string): Buffer {
  const mac = computeAuthData(message, algorithm, key);
  mac.copy(message, AUTH_DATA_OFFSET);
  return message;
}

/**
 * Checks the Authentication Data of an encoded message against `key`; throws
 * LISP_BAD_HMAC (with the key id in details) when it does not match.
 */
export function verifyAuthData(message: Uint8Array, algorithmId: number, key: Uint8Array | string, details: Record<string, unknown> = {}): void {
  const algorithm = algorithmOf(algorithmId);
  const len = AUTH_DATA_LENGTH[algorithm];
  const expected = computeAuthData(message, algorithm, key);
  const got = message.subarray(AUTH_DATA_OFFSET, AUTH_DATA_OFFSET + len);
  if (got.length !== len || !timingSafeEqual(expected, got)) {
    throw lispError('LISP_BAD_HMAC', `lisp authentication data does not match the ${algorithm} of the message`, {
      details: { algorithm, ...details },
    });
  }
}
