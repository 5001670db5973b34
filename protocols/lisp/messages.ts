/**
 * LISP control messages as typed values: a discriminated union on `type`, named as
 * RFC 9301 §5 names them. Nonces are 64-bit `bigint`s; addresses are canonical text.
 */
import type { EidPrefix } from './address.js';

/** RFC 9301 §5.4 Locator fields of a mapping record (an RLOC with its policy). */
export interface Locator {
  /** The RLOC address (IPv4 or IPv6). */
  address: string;
  /** Unicast priority: lower is preferred; 255 means "do not use". */
  priority: number;
  /** Unicast weight among locators of equal priority (0–100 by convention). */
  weight: number;
  /** Multicast priority. */
  multicastPriority: number;
  /** Multicast weight. */
  multicastWeight: number;
  /** L bit: the locator is local to the sender. */
  local: boolean;
  /** p bit: the locator was RLOC-probed. */
  probed: boolean;
  /** R bit: the locator is reachable. */
  reachable: boolean;
}

/** RFC 9301 §5.4 a mapping record (EID-Record): an EID prefix and its locators. */
export interface MappingRecord {
  /** Record TTL in minutes; 0 removes the mapping (and, in a Map-Register, withdraws it). */
  ttl: number;
  /** The EID prefix this record maps. */
  eid: EidPrefix;
  /** ACT (3 bits): what to do with packets when there are no locators (negative reply). */
  action: number;
  /** A bit: the record comes from an authoritative source. */
  authoritative: boolean;
  /** Map-Version Number (12 bits). */
  mapVersion: number;
  /** The RLOCs. */
  locators: Locator[];
}

/** Authentication fields shared by Map-Register, Map-Notify and Map-Notify-Ack (RFC 9301 §5.6). */
export interface AuthFields {
  /** 64-bit nonce; a Map-Notify echoes the Map-Register's. */
  nonce: bigint;
  /** RFC 9301 8-bit Key ID: which of the site's shared keys is used. */
  keyId: number;
  /** RFC 9301 Algorithm ID (1 = HMAC-SHA-1-96, 2 = HMAC-SHA-256-128). */
  algorithmId: number;
  /** The Authentication Data as received, or as computed by the encoder. */
  authData: Buffer;
  /** The mapping records. */
  records: MappingRecord[];
  /** xTR-ID (16 bytes) and site-ID (64 bits), present when the I bit is set. */
  xtr?: { xtrId: Buffer; siteId: bigint };
}

/** RFC 9301 §5.6 Map-Register: an ETR registers its EID prefixes with a Map-Server. */
export interface MapRegister extends AuthFields {
  type: 'map-register';
  /** P bit: the Map-Server should answer Map-Requests for these EIDs itself (proxy reply). */
  proxyReply: boolean;
  /** S bit: the ETR is LISP-SEC capable. */
  securityCapable: boolean;
  /** T bit (RFC 9301 §5.6): the Map-Server uses the Record TTL as the registration timeout. */
  useTtlForTimeout: boolean;
  /** M bit: the ETR wants a Map-Notify as acknowledgement. */
  wantMapNotify: boolean;
}

/** RFC 9301 §5.7 Map-Notify: a Map-Server acknowledges or announces a registration. */
export interface MapNotify extends AuthFields {
  type: 'map-notify';
}

/** RFC 9301 §5.7 Map-Notify-Ack: an xTR acknowledges an unsolicited Map-Notify. */
export interface MapNotifyAck extends AuthFields {
  type: 'map-notify-ack';
}

/** RFC 9301 §5.2 Map-Request: asks for the mapping of EID prefixes. */
export interface MapRequest {
  type: 'map-request';
  /** A bit: the request is authoritative (sent by an ITR, not a cache). */
  authoritative: boolean;
  /** M bit: a Map-Reply record is piggybacked (`mapReply`). */
  mapDataPresent: boolean;
  /** P bit: an RLOC probe. */
  probe: boolean;
  /** S bit: solicit Map-Request (SMR). */
  smr: boolean;
  /** p bit: sent by a proxy ITR. */
  pitr: boolean;
  /** s bit: sent in answer to an SMR. */
  smrInvoked: boolean;
  nonce: bigint;
  /** Source EID, or null (AFI 0). */
  sourceEid: string | null;
  /** ITR-RLOCs where the Map-Reply goes (at least one). */
  itrRlocs: string[];
  /** The EID prefixes asked for (at least one). */
  records: EidPrefix[];
  /** The piggybacked mapping when `mapDataPresent`. */
  mapReply?: MappingRecord;
}

/** RFC 9301 §5.4 Map-Reply: the answer to a Map-Request (negative when a record has no locators). */
export interface MapReply {
  type: 'map-reply';
  /** P bit: answer to an RLOC probe. */
  probe: boolean;
  /** E bit: the ETR can echo nonces. */
  echoNonceCapable: boolean;
  /** S bit: LISP-SEC data follows. */
  security: boolean;
  /** The Map-Request's nonce. */
  nonce: bigint;
  records: MappingRecord[];
}

/** The inner IP and UDP header of an Encapsulated Control Message (RFC 9301 §5.8). */
export interface InnerHeader {
  /** Source address: the ITR's RLOC (or its source EID). */
  source: string;
  /** Destination: the EID being asked for. */
  destination: string;
  /** The ITR's UDP port (the Map-Reply goes back to it). */
  sourcePort: number;
  /** Normally 4342. */
  destinationPort: number;
  /** IP TTL / hop limit. */
  ttl: number;
}

/** RFC 9301 §5.8 Encapsulated Control Message: carries a Map-Request to a Map-Resolver. */
export interface EncapsulatedControlMessage {
  type: 'encapsulated-control-message';
  /** S bit: LISP-SEC. */
  security: boolean;
  /** D bit: sent by a DDT node. */
  ddtOriginated: boolean;
  /** E bit: forward to the ETR. */
  toEtr: boolean;
  /** M bit: forward to a Map-Server. */
  toMapServer: boolean;
  inner: InnerHeader;
  /** The encapsulated control message (a Map-Request). */
  message: LispMessage;
}

/**
 * Intercloud EID hand-over (a Shared Extension Message, RFC 9304, sub-type
 * `SHARED_EXTENSION_SUBTYPE.eidHandOver`): a site presents to its Map-Server a hand-over that
 * the EIDs' holder signed under the Intercloud Root. Laid out like a Map-Register up to the
 * Authentication Data (so it is authenticated with the site key the same way, RFC 9301 §5.6),
 * then the signed hand-over as UTF-8 JSON with a 16-bit length:
 *
 *   |Type=15| Sub-type=0xffe |        Reserved               |
 *   |                        Nonce (64)                        |
 *   | Key ID | Algorithm ID |  Authentication Data Length     |
 *   ~                 Authentication Data                      ~
 *   |     Hand-over Length     |  Hand-over (JSON) ...          ~
 */
export interface EidHandOverMessage {
  type: 'eid-hand-over';
  nonce: bigint;
  keyId: number;
  algorithmId: number;
  authData: Buffer;
  /** The signed hand-over (a trust `SignedEnvelope`), as its JSON text. */
  handOver: string;
}

/**
 * The Map-Server's answer to an {@link EidHandOverMessage} (sub-type
 * `eidHandOverAnswer`), same header, signed with the site key, then
 * `| Status (8) | Code Length (8) | Code (ASCII) |` — status 0 accepted, 1 refused.
 */
export interface EidHandOverAnswer {
  type: 'eid-hand-over-answer';
  /** The hand-over message's nonce. */
  nonce: bigint;
  keyId: number;
  algorithmId: number;
  authData: Buffer;
  accepted: boolean;
  /** The error code of a refusal (e.g. `LISP_HAND_OVER_REFUSED`); empty when accepted. */
  code: string;
}

/** Every LISP control message this implementation reads and writes. */
export type LispMessage =
  | MapRequest
  | MapReply
  | MapRegister
  | MapNotify
  | MapNotifyAck
  | EncapsulatedControlMessage
  | EidHandOverMessage
  | EidHandOverAnswer;

/** Messages that carry authentication data. */
export type AuthenticatedMessage = MapRegister | MapNotify | MapNotifyAck;

/** Messages authenticated with a site key (HMAC at the same offset, RFC 9301 §5.6). */
export type SiteAuthenticatedMessage = AuthenticatedMessage | EidHandOverMessage | EidHandOverAnswer;
