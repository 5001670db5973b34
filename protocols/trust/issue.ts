/**
 * What the Intercloud Root CA issues: its own self-signed certificate, gateway identities
 * (one per cloud) and TLS server certificates for Prosody and RabbitMQ. Pure: the caller
 * passes the clock reading and keys; files live in `ca-store.ts`.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { buildCertificate, parseCertificateDer, type Certificate, type SubjectAltNames } from './certificate.js';
import { trustError } from './errors.js';
import { keyTypeOf } from './keys.js';
import { OID } from './oids.js';

/** The organisation every certificate of the Intercloud Root names. */
export const INTERCLOUD_ORG = 'Intercloud';
/** The default XMPP domain of gateway JIDs. */
export const DEFAULT_XMPP_DOMAIN = 'intercloud.test';
/** Default lifetime of gateway and server certificates, in days. */
export const DEFAULT_LEAF_DAYS = 90;
/** Default lifetime of the root certificate, in days. */
export const DEFAULT_ROOT_DAYS = 3650;
/** Longest lifetime the CA grants a leaf certificate, in days. */
export const MAX_LEAF_DAYS = 825;
/** notBefore is back-dated by this much so peers with slightly slow clocks accept a new certificate. */
export const BACKDATE_MS = 5 * 60_000;

const DAY_MS = 86_400_000;
const CLOUD_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const JID = /^[^@/\s"&'<>:]{1,1023}@[a-z0-9.-]{1,1023}$/i;

/** The SAN URI that names a cloud: `intercloud://<cloud-id>` (SPIFFE-style identity). */
export function cloudUri(cloudId: string): string {
  return `intercloud://${cloudId}`;
}

/**
 * First labels of the hosts a Root runs besides its domain (its PubSub directory, the SCRAM
 * fallback host, the usual XMPP components). A gateway certificate naming such a host — by a
 * cloud id like `pubsub` (its default DNS name is `<cloud>.<domain>`) or an explicit DNS name —
 * would pass the other Roots' certificate-authenticated s2s as that host of its Root (issue 13
 * review), so the CA never issues one.
 */
export const RESERVED_HOST_LABELS: readonly string[] = ['pubsub', 'scram', 'conference', 'upload', 'proxy'];

/** Checks a cloud id (lowercase DNS label, not a Root's host label); anything else is TRUST_BAD_ARGUMENT. */
export function assertCloudId(cloudId: string): void {
  if (!CLOUD_ID.test(cloudId)) throw trustError('TRUST_BAD_ARGUMENT', `'${cloudId}' is not a valid cloud id (lowercase letters, digits, '-')`);
  if (RESERVED_HOST_LABELS.includes(cloudId)) {
    throw trustError('TRUST_BAD_ARGUMENT', `'${cloudId}' names a Root's own host (${RESERVED_HOST_LABELS.join(', ')}): choose another cloud id`);
  }
}

function assertDns(name: string): void {
  if (!DNS_NAME.test(name)) throw trustError('TRUST_BAD_ARGUMENT', `'${name}' is not a valid dns name`);
}

function assertDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > MAX_LEAF_DAYS) {
    throw trustError('TRUST_BAD_ARGUMENT', `lifetime '${days}' days is out of range (1..${MAX_LEAF_DAYS})`);
  }
}

/** A random positive 16-octet serial (CA/B BR §7.1: at least 64 random bits; RFC 5280 §4.1.2.2). */
export function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b;
}

/** Input to {@link createRootCertificate}. */
export interface RootSpec {
  publicKey: KeyObject;
  privateKey: KeyObject;
  now: Date;
  days?: number;
  commonName?: string;
  serial?: Uint8Array;
}

/**
 * The Intercloud Root's self-signed certificate: basicConstraints cA (critical), keyUsage
 * keyCertSign+cRLSign (critical), subject key identifier (RFC 5280 §4.2.1.9, §4.2.1.3).
 */
export function createRootCertificate(spec: RootSpec): Certificate {
  return parseCertificateDer(buildCertificate({
    serial: spec.serial ?? randomSerial(),
    subject: { commonName: spec.commonName ?? 'Intercloud Root CA', organization: INTERCLOUD_ORG },
    notBefore: new Date(spec.now.getTime() - BACKDATE_MS),
    notAfter: new Date(spec.now.getTime() + (spec.days ?? DEFAULT_ROOT_DAYS) * DAY_MS),
    publicKey: spec.publicKey,
    signingKey: spec.privateKey,
    basicConstraints: { ca: true },
    keyUsage: ['keyCertSign', 'cRLSign'],
  }));
}

/** The issuing CA: its certificate and private key. */
export interface Issuer {
  certificate: Certificate;
  privateKey: KeyObject;
}

/** Input to {@link issueGatewayCertificate}. */
export interface GatewaySpec {
  cloudId: string;
  /** The subject's public key (generated, or taken from a verified CSR). */
  publicKey: KeyObject;
  now: Date;
  /** Gateway JID for the xmppAddr SAN, `<cloud-id>@<its Root's domain>`; default `<cloud-id>@intercloud.test`. */
  jid?: string;
  /** DNS SANs; default `<cloud-id>.intercloud.test`. */
  dns?: string[];
  days?: number;
  serial?: Uint8Array;
}

function leafKeyUsage(publicKey: KeyObject): Array<'digitalSignature' | 'keyEncipherment'> {
  // RSA key transport (TLS 1.2 RSA kx) needs keyEncipherment; ECDSA keys only sign.
  return keyTypeOf(publicKey) === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'];
}

/**
 * A gateway identity: CN = cloud id, SAN URI `intercloud://<id>`, SAN otherName
 * id-on-xmppAddr (RFC 6120 §13.7.1.4), SAN DNS, EKU serverAuth+clientAuth (Prosody
 * checks serverAuth even on client certificates), bounded lifetime.
 */
export function issueGatewayCertificate(issuer: Issuer, spec: GatewaySpec): Certificate {
  assertCloudId(spec.cloudId);
  const jid = spec.jid ?? `${spec.cloudId}@${DEFAULT_XMPP_DOMAIN}`;
  if (!JID.test(jid)) throw trustError('TRUST_BAD_ARGUMENT', `'${jid}' is not a bare jid (local@domain)`);
  // The JID's local part is the cloud id on every Root's domain (issue 13): gateways, directories
  // and the Roots' ccert logins take the account `<local>@<root domain>` as that cloud, so a
  // certificate for one cloud must not hold another cloud's account on any Root.
  if (jid.slice(0, jid.indexOf('@')) !== spec.cloudId) {
    throw trustError('TRUST_BAD_ARGUMENT', `jid '${jid}' must be '${spec.cloudId}@<root domain>': its local part is the cloud id`);
  }
  const dns = spec.dns && spec.dns.length > 0 ? spec.dns : [`${spec.cloudId}.${DEFAULT_XMPP_DOMAIN}`];
  dns.forEach(assertDns);
  for (const name of dns) {
    if (RESERVED_HOST_LABELS.includes(name.split('.')[0]!.toLowerCase())) {
      throw trustError('TRUST_BAD_ARGUMENT', `a gateway certificate may not name '${name}': '${name.split('.')[0]!}.' hosts are a Root's own`);
    }
  }
  const days = spec.days ?? DEFAULT_LEAF_DAYS;
  assertDays(days);
  return issueLeaf(issuer, spec, spec.cloudId, days, { uris: [cloudUri(spec.cloudId)], xmppAddrs: [jid], dns });
}

/** Input to {@link issueServerCertificate}. */
export interface ServerSpec {
  /** DNS SANs; the first is also the CN. At least one. */
  dns: string[];
  ips?: string[];
  publicKey: KeyObject;
  now: Date;
  days?: number;
  serial?: Uint8Array;
}

/** A TLS server certificate (Prosody, RabbitMQ): CN = first DNS name, DNS + IP SANs. */
export function issueServerCertificate(issuer: Issuer, spec: ServerSpec): Certificate {
  const first = spec.dns[0];
  if (first === undefined) throw trustError('TRUST_BAD_ARGUMENT', 'a server certificate needs at least one dns name');
  spec.dns.forEach(assertDns);
  for (const ip of spec.ips ?? []) if (isIP(ip) === 0) throw trustError('TRUST_BAD_ARGUMENT', `'${ip}' is not an ip address`);
  const days = spec.days ?? DEFAULT_LEAF_DAYS;
  assertDays(days);
  return issueLeaf(issuer, spec, first, days, { dns: spec.dns, ips: spec.ips ?? [] });
}

/**
 * An end-entity certificate under `issuer`: basicConstraints CA:FALSE, keyUsage for the key
 * type, EKU serverAuth+clientAuth (s2s and client-certificate logins present the same
 * certificate in both roles), back-dated notBefore.
 */
function issueLeaf(issuer: Issuer, spec: { publicKey: KeyObject; now: Date; serial?: Uint8Array }, commonName: string, days: number, san: Partial<SubjectAltNames>): Certificate {
  return parseCertificateDer(buildCertificate({
    serial: spec.serial ?? randomSerial(),
    subject: { commonName, organization: INTERCLOUD_ORG },
    issuerName: issuer.certificate.subjectName,
    issuerKeyId: issuer.certificate.subjectKeyId,
    notBefore: new Date(spec.now.getTime() - BACKDATE_MS),
    notAfter: new Date(spec.now.getTime() + days * DAY_MS),
    publicKey: spec.publicKey,
    signingKey: issuer.privateKey,
    basicConstraints: { ca: false },
    keyUsage: leafKeyUsage(spec.publicKey),
    extKeyUsage: [OID.serverAuth, OID.clientAuth],
    subjectAltNames: san,
  }));
}
