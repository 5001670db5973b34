/**
 * The Intercloud control plane over XMPP: pure stanza codecs (disco, caps, pubsub,
 * catalog, negotiation, time, ping, stanza errors), the admission port (the policy and
 * reservation book are the agent's, `agent/admission/`), and the I/O: {@link GatewaySession} on `@xmpp/client`. See README.md.
 */
export { XMPP_ERRORS, xmppError, type XmppCode } from './errors.js';
export {
  CAPABILITIES, CAPABILITY_FEATURE, CAPS_NODE, CATALOG_NODE, FEATURES, GATEWAY_RESOURCE, ICNS, IDENTITIES, NS, type Capability,
} from './namespaces.js';
export {
  buildIqErrorReply, buildStanzaError, parseStanzaError, type StanzaErrorCondition, type StanzaErrorInfo, type StanzaErrorType,
} from './stanza-error.js';
export {
  buildDiscoInfoQuery, buildDiscoInfoResult, buildDiscoItemsQuery, parseDiscoInfo, parseDiscoItems,
  type DataForm, type DataFormField, type DiscoIdentity, type DiscoInfo, type DiscoItem,
} from './disco.js';
export { buildCaps, capsVer, capsVerificationString, parseCaps, type CapsAnnouncement } from './caps.js';
export {
  buildCreateNode, buildItemsRequest, buildPublish, buildRetract, buildSubscribe, parseEvent, parseItemsResult,
  type PubsubEvent, type PubsubItem,
} from './pubsub.js';
export {
  bestEstimate, buildPing, buildTimeRequest, buildTimeResult, estimateClock, parseTimeResult,
  type ClockEstimate, type FourTimestamps,
} from './time.js';
export { LIMITS } from './fields.js';
export { buildSignature, readSignature } from './signature.js';
export {
  buildCatalogEntry, catalogPayload, matchesFilter, normalizeCatalogEntry, parseCatalogEntry,
  type Capacity, type CatalogEntry, type PeerFilter, type SignedCatalogEntry, type Terms,
} from './catalog.js';
export {
  MAX_RESTORE_MACHINES, MIGRATION_MODES, advertisedModes, buildMigrationAdvert, modeRank, normalizeMigrationAdvert, parseMigrationAdvert,
  type MigrationAdvert, type MigrationMode, type RestoreAdvert, type RestoreMachine, type StateNeeds,
} from './migration-mode.js';
export {
  acceptPayload, buildAccept, buildCancel, buildOffer, buildProgress, buildRejectError, normalizeOffer, offerPayload, parseAccept, parseCancel,
  parseOffer, parseProgress, parseReject, PROGRESS_STATES, REJECT_CONDITIONS, REJECT_REASONS, RETRYABLE_REJECT_REASONS,
  STORAGE_ACK_MODES, STORAGE_END_ACTIONS, STORAGE_LIMITS,
  type Accept, type Cancel, type DiskSpec, type NicSpec, type Offer, type OfferConstraints, type OfferTerms, type Progress,
  type Reject, type RejectReason, type StorageAckMode, type StorageEndAction, type StoragePlacement, type StorageWorkload, type VmWorkload,
  type Workload,
} from './negotiation.js';
export type {
  AdmissionRefusal, AdmissionVerdict, OfferAdmission, OfferSender, Reservation, ReservationLedger, VerifiedSigner,
} from './offer-admission.js';
export { createXmppClient, StartTlsSocket, type ScramCredentials, type TlsMaterial, type XmppConnectOptions } from './transport.js';
export {
  buildAvailablePresence, buildRosterQuery, buildSubscription, NS_ROSTER, parsePresence, parseRoster, type PresenceInfo, type RosterItem,
} from './presence.js';
export {
  MESSAGE_TYPES, SIGNED_MESSAGE_MAX_LIFETIME_MS, SIGNED_REQUEST_TTL_MS, trustReason, type ControlPlaneAuditRecord, type GatewayTrust, type VerifyExpectation,
} from './trust-port.js';
export {
  GatewaySession, type CatalogService, type CloudProfile, type DirectoryRoot, type DiscoverOptions, type GatewaySessionOptions, type OfferOutcome, type OfferRequest, type SessionStatus,
} from './session.js';
export {
  OfferResponder, acceptFor,
  type CancelHandler, type CancelOutcome, type CancelVerdict, type IncomingOffer, type OfferResponderOptions, type OfferVeto, type TransferEndpoint,
} from './offer-responder.js';
export { REPLAY_ENTRIES_PER_PEER, REPLAY_PEERS, createTrustBinding, type TrustBinding, type TrustBindingOptions } from './trust-binding.js';
export {
  MAX_INSTANTIATE_BYTES, NS_MIGRATION, buildInstantiate, buildMigrationFailure, buildMigrationState, buildOfferRequest,
  migrationRequestPayload, parseMigrationFailure, parseMigrationRequest, parseMigrationState, type InstantiateRequest, type MigrationRequest,
  type MigrationRequestStanza,
} from './migration.js';
export {
  NS_SUBCONTRACT, SUBCONTRACT_REQUESTS, buildBeganBucket, buildListing, buildSubcontractRequest, parseBeganBucket, parseListing,
  parseSubcontractRequest, subcontractRequestPayload, type SubcontractRequest, type SubcontractRequestStanza,
} from './subcontract.js';
export {
  availablePeers, emptyDirectory, findPeers, isAvailable, reduceDirectory, unknownItems,
  type DirectoryEntry, type DirectoryEvent, type DirectoryState, type PeerInfo,
} from './directory.js';
export {
  classifyConnectError, parseStreamError,
  type ConnectObservation, type ConnectionStatus, type IqRequestHandler, type StreamErrorInfo, type XmppConnection,
} from './connection.js';
export { XmppJsConnection, type XmppJsConnectionOptions } from './xmpp-connection.js';
