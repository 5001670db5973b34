/**
 * LISP control plane (RFC 9301; RFC 6833 where it differs): the pure codec, HMAC
 * authentication, the Map-Server/Map-Resolver (state machine + UDP runner) and the
 * agent's registrar and lookup clients. Other folders import only from here.
 */
export {
  afiOf, canonicalAddress, formatPrefix, hostPrefix, negativePrefix, parsePrefix, prefixContains, prefixesOverlap, addressToBytes,
  bytesToAddress, type EidPrefix, type IpAfi,
} from './address.js';
export { AUTH_DATA_OFFSET, algorithmOf, computeAuthData, verifyAuthData } from './auth.js';
export { decodeLispMessage, encodeLispMessage, peekLispType, type EncodeOptions } from './codec.js';
export {
  AFI, ALGORITHM_ID, AUTH_DATA_LENGTH, DEFAULT_RECORD_TTL_MINUTES, LISP_CONTROL_PORT, LISP_TYPE, MAP_REGISTER_INTERVAL_SECONDS,
  MAP_REPLY_ACTION, NEGATIVE_MAP_REPLY_TTL_MINUTES, REGISTER_NONCE_WINDOW_SECONDS, REGISTRATION_TIMEOUT_SECONDS,
  SHARED_EXTENSION_SUBTYPE, type AuthAlgorithm,
} from './constants.js';
export {
  DEFAULT_HAND_OVER_TTL_MS, EID_HAND_OVER_TYPE, MAX_HAND_OVER_LIFETIME_MS, signEidHandOver, verifyEidHandOver, type EidHandOver,
  type VerifiedEidHandOver,
} from './hand-over.js';
export { RegisterNonces, nonceTimeMs, registerNonceAt } from './nonce.js';
export { LISP_ERRORS, lispError, type LispCode, type LispError } from './errors.js';
export type {
  AuthenticatedMessage, AuthFields, EidHandOverAnswer, EidHandOverMessage, EncapsulatedControlMessage, InnerHeader, LispMessage, Locator,
  MapNotify, MapNotifyAck, MapRegister, MapReply, MapRequest, MappingRecord, SiteAuthenticatedMessage,
} from './messages.js';
export {
  MapServerCore, type Endpoint, type HandleResult, type MapServerEvent, type MapServerOptions, type Registration,
  type SiteConfig,
} from './map-server.js';
export { startMapServer, type RunningMapServer, type StartMapServerOptions } from './map-server-udp.js';
export {
  Registrar, lookupEid, registerEid, withdrawEid, type LookupOptions, type RegistrarEvent, type RegistrarOptions, type RetryOptions,
  type RlocSpec, type ServerAddress,
} from './client.js';

/**
 * Splits an RFC 6833 16-bit Key ID (as configs written for RFC 6833 implementations, and
 * tshark, show it) into RFC 9301's 8-bit Key ID and Algorithm ID.
 */
export function splitRfc6833KeyId(keyId16: number): { keyId: number; algorithmId: number } {
  return { keyId: (keyId16 >> 8) & 0xff, algorithmId: keyId16 & 0xff };
}
