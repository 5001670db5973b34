/**
 * Numbers of the LISP control plane, as RFC 9301 (and RFC 6833 before it) assigns them.
 */

/** LISP control message types (RFC 9301 §5.1, IANA "LISP Packet Types"). */
export const LISP_TYPE = {
  /** RFC 9301 §5.2 Map-Request. */
  mapRequest: 1,
  /** RFC 9301 §5.4 Map-Reply. */
  mapReply: 2,
  /** RFC 9301 §5.6 Map-Register. */
  mapRegister: 3,
  /** RFC 9301 §5.7 Map-Notify. */
  mapNotify: 4,
  /** RFC 9301 §5.7 Map-Notify-Ack. */
  mapNotifyAck: 5,
  /** RFC 9301 §5.8 Encapsulated Control Message. */
  encapsulatedControlMessage: 8,
  /** RFC 9304 LISP Shared Extension Message (a 12-bit Sub-type follows the type). */
  sharedExtension: 15,
} as const;

/**
 * Sub-types of the Shared Extension Message (RFC 9304 §2) this implementation uses for the
 * Intercloud EID hand-over. They are taken from the top of the 12-bit space, which IANA has
 * not assigned; a deployment beyond one federation would register its own (RFC 9304 §4).
 */
export const SHARED_EXTENSION_SUBTYPE = {
  /** An xTR presents a hand-over signed under the Intercloud Root to its Map-Server. */
  eidHandOver: 0xffe,
  /** The Map-Server's answer: accepted, or refused with an error code. */
  eidHandOverAnswer: 0xfff,
} as const;

/** Address Family Identifiers used for EIDs and RLOCs (RFC 9301 §5.1, IANA AFN registry). */
export const AFI = {
  /** No address (e.g. an empty Source-EID in a Map-Request, RFC 9301 §5.3). */
  none: 0,
  ipv4: 1,
  ipv6: 2,
} as const;

/**
 * Authentication algorithms of Map-Register / Map-Notify (RFC 9301 §5.6 "Algorithm ID",
 * IANA "LISP Algorithm ID Numbers"). RFC 6833 carried the same numbers in a 16-bit
 * "Key ID" field; RFC 9301 split it into an 8-bit Key ID and an 8-bit Algorithm ID, so a
 * message with Key ID 0 is byte-identical under both (tshark reads the RFC 6833 field).
 */
export const ALGORITHM_ID = {
  none: 0,
  'hmac-sha-1-96': 1,
  'hmac-sha-256-128': 2,
} as const;

/** A supported authentication algorithm name. */
export type AuthAlgorithm = 'hmac-sha-1-96' | 'hmac-sha-256-128';

/**
 * Authentication Data length per algorithm. As deployed LISP implementations and Wireshark's
 * dissector do, the whole HMAC output is carried (20 bytes for SHA-1, 32 for SHA-256).
 */
export const AUTH_DATA_LENGTH = {
  'hmac-sha-1-96': 20,
  'hmac-sha-256-128': 32,
} as const;

/** Map-Reply ACT values for negative Map-Replies (RFC 9301 §5.4, IANA "LISP ACT Values"). */
export const MAP_REPLY_ACTION = {
  noAction: 0,
  nativelyForward: 1,
  sendMapRequest: 2,
  dropNoReason: 3,
  dropPolicyDenied: 4,
  dropAuthFailure: 5,
} as const;

/** The LISP control plane UDP port (RFC 9301 §5.1). */
export const LISP_CONTROL_PORT = 4342;

/** RFC 9301 §8.2: an ETR sends Map-Register about every 60 seconds. */
export const MAP_REGISTER_INTERVAL_SECONDS = 60;

/**
 * RFC 9301 §8.2: a Map-Server times out a registration not refreshed within 3 minutes,
 * unless the T bit asks it to use the Record TTL instead (RFC 9301 §5.6).
 */
export const REGISTRATION_TIMEOUT_SECONDS = 180;

/** RFC 9301 §5.4: the TTL, in minutes, of a negative Map-Reply for an unregistered EID. */
export const NEGATIVE_MAP_REPLY_TTL_MINUTES = 15;

/**
 * RFC 9301 §5.6: the Map-Register nonce increases with every Map-Register a site sends, so a
 * Map-Server can refuse a replayed or stale one. Ours carry the sender's clock in their top
 * 48 bits (ms since the epoch), and a Map-Server refuses nonces further than this from its
 * own clock, as well as any not above the last one it accepted from the site.
 */
export const REGISTER_NONCE_WINDOW_SECONDS = 120;

/** RFC 9301 §5.4: the usual Record TTL (one day, in minutes) of a positive mapping. */
export const DEFAULT_RECORD_TTL_MINUTES = 1440;
