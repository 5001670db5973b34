/**
 * Helpers for the control-plane integration tests: gateways on the real Prosody that
 * `scripts/services up` starts, with certificates from the real Intercloud Root.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { xml, type Client, type Element } from '@xmpp/client';
import { serviceEnv } from '../../helpers/services.js';
import {
  buildCrl, certificateToPem, crlToPem, generateKeyPair, issueGatewayCertificate, parseCertificatePem, privateKeyFromPem, privateKeyToPem,
  AuditLog, createRootCertificate,
} from '../../../protocols/trust/index.js';
import {
  buildDiscoItemsQuery, buildRetract, CATALOG_NODE, NS, parseDiscoItems, createTrustBinding, createXmppClient, GatewaySession, GATEWAY_RESOURCE,
  parseReject, parseStanzaError, type CloudProfile, type GatewaySessionOptions, type Offer, type TrustBinding,
} from '../../../protocols/xmpp/index.js';
import { createDefaultPolicy, createOfferAdmission, type NegotiationPolicy } from '../../../agent/admission/index.js';
import { requestIq } from '../../helpers/xmpp-iq.js';

/** `prosody` in services.json. */
export interface ProsodyEnv {
  host: string;
  port: number;
  domain: string;
  pubsubJid: string;
  tls: { ca: string; servername: string };
  /** The password account; its password is in `passwordFile` (0600, root and prosody only). */
  scram: { domain: string; username: string; passwordFile: string; jid: string };
  pidFile: string;
}

/** The password of the SCRAM fallback account (read from its 0600 file: tests run as root). */
export function scramPassword(env: { prosody: ProsodyEnv }): string {
  return readFileSync(env.prosody.scram.passwordFile, 'utf8').trim();
}

/** `pki` in services.json. */
export interface PkiEnv {
  /** The CA directory (`intercloud ca … --dir`). */
  dir: string;
  root: string;
  rootKey: string;
  crl: string;
  clouds: Record<string, { cert: string; key: string; jid: string }>;
}

/** Starts the servers the tests need (idempotent) and reads where they are. */
export function servicesUp(): { prosody: ProsodyEnv; pki: PkiEnv } {
  execFileSync(join(import.meta.dirname, '../../../scripts/services'), ['up', 'pki', 'prosody'], { stdio: 'ignore' });
  return { prosody: serviceEnv<ProsodyEnv>('prosody'), pki: serviceEnv<PkiEnv>('pki') };
}

const RUN = randomBytes(3).toString('hex');

/**
 * A cloud id of its own for this test run (`<name>-<run>`), with a certificate issued
 * under the real Root: other suites running at the same time log in as cloud-a/b/c, and
 * a second login on the same full JID would replace ours.
 */
export function testCloud(name: string): string {
  return `${name}-${RUN}`;
}

/** Only the peers of this test run (other suites' gateways may be online too). */
export function ours<T extends { entry: { cloudId: string } }>(peers: readonly T[]): T[] {
  return peers.filter((p) => p.entry.cloudId.endsWith(`-${RUN}`));
}

/**
 * Checks that the directory node exists. The Root makes it (Prosody's mod_intercloud_directory,
 * scripts/services.d/prosody): gateways are not admins and cannot create nodes.
 */
export async function ensureCatalogNode(env: { prosody: ProsodyEnv; pki: PkiEnv }): Promise<void> {
  const reader = await rawClient(env, 'cloud-a', pkiIdentity(env.pki, 'cloud-a'), `setup-${RUN}`);
  try {
    await reader.iqCaller.request(xml('iq', { type: 'get', to: env.prosody.pubsubJid }, buildDiscoItemsQuery(CATALOG_NODE)), 10_000);
  } finally {
    await reader.stop();
  }
}

/**
 * Retracts this run's catalog entries (ids ending in `-<run>`), so test runs do not pile up
 * dead entries in the shared directory. A cloud may retract only its own item: each is
 * retracted by a certificate naming that cloud, issued under the real Root.
 */
export async function retractTestEntries(env: { prosody: ProsodyEnv; pki: PkiEnv }): Promise<void> {
  const reader = await rawClient(env, 'cloud-a', pkiIdentity(env.pki, 'cloud-a'), `cleanup-${RUN}`);
  let ids: string[];
  try {
    const list = await reader.iqCaller.request(xml('iq', { type: 'get', to: env.prosody.pubsubJid }, buildDiscoItemsQuery(CATALOG_NODE)), 20_000);
    ids = parseDiscoItems(list.getChild('query', NS.DISCO_ITEMS)).map((i) => i.name ?? '').filter((id) => id.endsWith(`-${RUN}`));
  } finally {
    await reader.stop();
  }
  for (const id of ids) {
    const owner = await rawClient(env, id, issueIdentity(env.pki, id), `cleanup-${RUN}`);
    try {
      await owner.iqCaller.request(xml('iq', { type: 'set', to: env.prosody.pubsubJid }, buildRetract(CATALOG_NODE, id)), 20_000);
    } finally {
      await owner.stop();
    }
  }
}

/** A certificate + key (PEM) for a cloud. */
export interface Identity {
  cert: string;
  key: string;
  serial?: string;
}

/** The identity the services script issued for cloud-a/b/c. */
export function pkiIdentity(pki: PkiEnv, cloud: string): Identity {
  const c = pki.clouds[cloud];
  if (!c) throw new Error(`no pki identity for '${cloud}'`);
  return { cert: readFileSync(c.cert, 'utf8'), key: readFileSync(c.key, 'utf8') };
}

/**
 * Issues a fresh gateway certificate under the real Root (a new account for Prosody's ccert),
 * naming `<cloud>@<domain>` (default: the first Root's domain, intercloud.test).
 */
export function issueIdentity(pki: PkiEnv, cloud: string, domain?: string): Identity {
  const issuer = { certificate: parseCertificatePem(readFileSync(pki.root, 'utf8')), privateKey: privateKeyFromPem(readFileSync(pki.rootKey, 'utf8')) };
  const keys = generateKeyPair('ec');
  const cert = issueGatewayCertificate(issuer, {
    cloudId: cloud, publicKey: keys.publicKey, now: new Date(), days: 2,
    ...(domain === undefined ? {} : { jid: `${cloud}@${domain}`, dns: [`${cloud}.${domain}`] }),
  });
  return { cert: certificateToPem(cert.der), key: privateKeyToPem(keys.privateKey), serial: cert.serial };
}

/** A certificate for `cloud` from a root nobody trusts. */
export function foreignIdentity(cloud: string): Identity {
  const rootKeys = generateKeyPair('ec');
  const root = createRootCertificate({ ...rootKeys, now: new Date(), commonName: 'Rogue Root' });
  const keys = generateKeyPair('ec');
  const cert = issueGatewayCertificate({ certificate: root, privateKey: rootKeys.privateKey }, { cloudId: cloud, publicKey: keys.publicKey, now: new Date() });
  return { cert: certificateToPem(cert.der), key: privateKeyToPem(keys.privateKey) };
}

/** A CRL from the real Root revoking `serials` (not written to the CA directory). */
export function crlRevoking(pki: PkiEnv, serials: string[]): string {
  const now = new Date();
  const der = buildCrl({
    issuer: parseCertificatePem(readFileSync(pki.root, 'utf8')),
    signingKey: privateKeyFromPem(readFileSync(pki.rootKey, 'utf8')),
    revoked: serials.map((serial) => ({ serial, revokedAt: new Date(now.getTime() - 1000) })),
    crlNumber: Math.floor(now.getTime() / 1000),
    thisUpdate: new Date(now.getTime() - 60_000),
    nextUpdate: new Date(now.getTime() + 3_600_000),
  });
  return crlToPem(der);
}

/** A default profile: a KVM cloud in eu-central taking OVF and qcow2. */
export function profile(over: Partial<CloudProfile> = {}): CloudProfile {
  return {
    regions: ['eu-central'],
    hypervisors: ['kvm'],
    formats: ['ovf', 'qcow2'],
    capabilities: ['vm-hosting', 'transfer-amqp'],
    capacity: { vcpus: 16, memoryMiB: 32768, diskGiB: 500, objectStorageGiB: 1000 },
    terms: { currency: 'EUR', pricePerVcpuHour: 0.04, pricePerGbMonth: 0.02 },
    transferUri: 'amqps://127.0.0.1:25671/intercloud',
    ...over,
  };
}

/** Options for {@link startGateway}. */
export interface GatewayOptions extends Partial<Omit<GatewaySessionOptions, 'trust' | 'admission'>> {
  /** The admission policy (default: anyone in `acceptFrom`, 8 vCPUs and 16 GiB per VM). */
  policy?: NegotiationPolicy;
  /** How long an accepted reservation is held unless used. */
  reservationTtlMs?: number;
  maxClockSkewMs?: number;
  identity?: Identity;
  /** The Root to log in to (default `env.prosody`, Root 1; `prosody2` in services.json is Root 2). */
  root?: RootEnv;
  crlPem?: string;
  auditPath?: string;
  acceptFrom?: string[];
}

/** How to reach one Root's XMPP server (`prosody`, `prosody2` in services.json). */
export type RootEnv = Pick<ProsodyEnv, 'host' | 'port' | 'domain' | 'pubsubJid' | 'tls'>;

/** A started gateway and what the test may inspect. */
export interface TestGateway {
  session: GatewaySession;
  trust: TrustBinding;
  audit: AuditLog;
  auditPath: string;
}

/** Starts a gateway session for `cloud` on the real Prosody. */
export async function startGateway(env: { prosody: ProsodyEnv; pki: PkiEnv }, cloud: string, opt: GatewayOptions = {}): Promise<TestGateway> {
  const { identity, crlPem, auditPath: auditAt, acceptFrom, policy, reservationTtlMs, maxClockSkewMs, root: at, ...rest } = opt;
  const root = at ?? env.prosody;
  const id = identity ?? (env.pki.clouds[cloud] && root === env.prosody ? pkiIdentity(env.pki, cloud) : issueIdentity(env.pki, cloud, root.domain));
  const auditPath = auditAt ?? join(mkdtempSync(join(tmpdir(), `xmpp-audit-${cloud}-`)), 'audit.jsonl');
  const audit = await AuditLog.open(auditPath);
  const rootPem = readFileSync(env.pki.root, 'utf8');
  const trust = createTrustBinding({
    certificatePem: id.cert,
    privateKeyPem: id.key,
    rootsPem: rootPem,
    crlPem: crlPem ?? readFileSync(env.pki.crl, 'utf8'),
    auditLog: audit,
    ...(opt.now ? { now: opt.now } : {}),
  });
  const session = new GatewaySession({
    ...rest,
    cloudId: cloud,
    service: `xmpp://${root.host}:${root.port}`,
    domain: root.domain,
    pubsubJid: root.pubsubJid,
    tls: { ca: rootPem, cert: id.cert, key: id.key, servername: root.tls.servername },
    trust,
    admission: createOfferAdmission({
      policy: policy ?? createDefaultPolicy({ acceptFrom: acceptFrom ?? ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 }),
      domain: root.domain,
      federatedDomains: (rest.directories ?? []).map((d) => d.domain),
      capacity: (rest.profile ?? profile()).capacity,
      ...(reservationTtlMs === undefined ? {} : { reservationTtlMs }),
      ...(maxClockSkewMs === undefined ? {} : { maxClockSkewMs }),
    }),
    profile: rest.profile ?? profile(),
    iqTimeoutMs: rest.iqTimeoutMs ?? 5_000,
    reconnect: rest.reconnect ?? { initialDelayMs: 200, maxDelayMs: 2_000 },
  });
  await session.start();
  return { session, trust, audit, auditPath };
}

/** Errors raw clients emitted (kept, not thrown: they come after tests closed them). */
export const clientErrors: unknown[] = [];

/** A bare xmpp.js client logged in as `cloud` (for crafting raw stanzas). */
export async function rawClient(env: { prosody: ProsodyEnv; pki: PkiEnv }, cloud: string, identity?: Identity, resource = 'raw', at?: RootEnv): Promise<Client> {
  const root = at ?? env.prosody;
  const id = identity ?? (env.pki.clouds[cloud] && root === env.prosody ? pkiIdentity(env.pki, cloud) : issueIdentity(env.pki, cloud, root.domain));
  const c = createXmppClient({
    service: `xmpp://${root.host}:${root.port}`,
    domain: root.domain,
    resource,
    tls: { ca: readFileSync(env.pki.root, 'utf8'), cert: id.cert, key: id.key, servername: root.tls.servername },
    externalJid: `${cloud}@${root.domain}`,
  });
  c.reconnect.stop();
  // Errors after a test stopped the client (a closed socket) are expected; keep them for debugging.
  c.on('error', (err: unknown) => clientErrors.push(err));
  await c.start();
  return c;
}

/** `<cloud>@<domain>/gateway`. */
export function gatewayJid(env: { prosody: ProsodyEnv }, cloud: string): string {
  return `${cloud}@${env.prosody.domain}/${GATEWAY_RESOURCE}`;
}

/** Reads the audit log as records. */
export function auditRecords(path: string): Array<{ event: Record<string, unknown> }> {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: Record<string, unknown> });
}

/** A small vm offer from `cloud`, issued now and valid a minute (a raw client signs and sends it). */
export function sampleVmOffer(cloud: string, over: Partial<Offer> = {}): Offer {
  const now = Date.now();
  return {
    offerId: `o-${Math.random().toString(36).slice(2)}`,
    from: cloud,
    workload: {
      type: 'vm', name: 'web1', vcpus: 1, memoryMiB: 512, firmware: 'bios',
      disks: [{ id: 'vda', sizeGiB: 1, format: 'qcow2' }], nics: [{ mac: '52:54:00:00:00:01' }],
    },
    constraints: { regions: [] },
    terms: { currency: 'EUR' },
    issued: new Date(now).toISOString(),
    expires: new Date(now + 60_000).toISOString(),
    ...over,
  };
}

/** What a gateway answers a raw iq with: the answer's element name (`accept`), or the reject reason, or the stanza error's condition. */
export async function offerAnswer(c: Client, to: string, child: Element, timeoutMs = 10_000): Promise<string> {
  try {
    const r = await requestIq(c, 'set', to, child, timeoutMs);
    return r.getChildElements()[0]?.name ?? 'result';
  } catch (err) {
    const el = (err as { element?: Element }).element;
    if (!el) throw err;
    const info = parseStanzaError(el);
    return parseReject(info.application, info.text)?.reason ?? info.condition;
  }
}
