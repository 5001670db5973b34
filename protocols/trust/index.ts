/**
 * Intercloud trust: the Root CA, gateway identities, certificate verification, CRLs,
 * signed negotiation messages and the hash-chained audit log. See README.md.
 */
export { TRUST_ERRORS, type TrustErrorCode } from './errors.js';
export { generateKeyPair, keyTypeOf, privateKeyFromPem, privateKeyToPem, spkiKeyType, type KeyPair, type KeyType } from './keys.js';
export { decodePem, encodePem } from './pem.js';
export {
  buildCertificate, certificateToPem, encodeName, parseCertificateDer, parseCertificatePem, parseCertificatesPem, KEY_USAGE_BITS,
  type CertificateSpec, type BasicConstraints,
  type Certificate, type DistinguishedName, type KeyUsage, type NameFields, type SubjectAltNames,
} from './certificate.js';
export { createCsr, csrToPem, parseCsrDer, parseCsrPem, type CertificationRequest } from './csr.js';
export {
  BACKDATE_MS, DEFAULT_LEAF_DAYS, DEFAULT_ROOT_DAYS, DEFAULT_XMPP_DOMAIN, MAX_LEAF_DAYS, INTERCLOUD_ORG,
  assertCloudId, cloudUri, createRootCertificate, issueGatewayCertificate, issueServerCertificate, randomSerial,
  type GatewaySpec, type Issuer, type RootSpec, type ServerSpec,
} from './issue.js';
export {
  CA_FILES, assertCloudIdFree, initCaDirectory, readCaDirectory, updateCaState, withCaLock, writeFileAtomic,
  type CaDirectory, type CaState, type IssuedRecord, type RevokedRecord,
} from './ca-store.js';
export { buildCrl, crlToPem, parseCrlDer, parseCrlsPem, type Crl, type CrlSpec, type RevokedEntry } from './crl.js';
export {
  crlIssuer, isTrustRejection, trustDecisionEvent, verifyCertificate, verifyCertificateDer, verifyCertificatePem,
  type PeerIdentity, type TrustDecisionEvent, type VerifyOptions,
} from './verify.js';
export { canonicalBytes, canonicalJson } from './canonical-json.js';
export { ReplayCache } from './replay-cache.js';
export {
  DEFAULT_CLOCK_SKEW_MS, DEFAULT_MAX_MESSAGE_LIFETIME_MS, DEFAULT_MESSAGE_TTL_MS, SIGNED_PAYLOAD_CONTEXT,
  signPayload, signedBytes, verifySignedPayload,
  type SignOptions, type SignedEnvelope, type Signer, type VerifiedPayload, type VerifyPayloadOptions,
} from './signed-payload.js';
export {
  AuditChainVerifier, GENESIS_HASH, formatRecord, hashRecord, nextRecord, verifyAuditText,
  type AuditBreak, type AuditEvent, type AuditHead, type AuditRecord,
} from './audit-chain.js';
export { AuditLog, verifyAuditFile, type AuditLogOptions } from './audit-file.js';
export { loadGatewayIdentity, loadTrustMaterial, type GatewayIdentity, type TrustMaterial } from './trust-files.js';
