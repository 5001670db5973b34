/**
 * I/O: one gateway's session with the Root's XMPP server, on `@xmpp/client`.
 *
 * It announces presence with caps, answers disco#info, entity time and ping, keeps the
 * signed catalog entry of its cloud published on the Root's PubSub directory, discovers
 * peers (catalog ∩ presence ∩ filter, with measured round trip and clock offset), and
 * runs the offer → accept / reject negotiation in both directions. Every payload it
 * builds or reads goes through the pure codecs of this folder; signing, certificate
 * checks, replay protection and the audit log come from a {@link GatewayTrust}.
 *
 * The session never logs: it emits `status` and `warning` events for the daemon.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { jid as parseJid, xml, type Element } from '@xmpp/client';
import { IntercloudError, isIntercloudError, messageOf } from '../errors/index.js';
import { buildCaps, capsVer } from './caps.js';
import {
  buildCatalogEntry, catalogPayload, normalizeCatalogEntry, type CatalogEntry, type PeerFilter,
} from './catalog.js';
import {
  availablePeers, emptyDirectory, findPeers, isAvailable, reduceDirectory, type DirectoryEvent, type DirectoryState, type PeerInfo,
} from './directory.js';
import { buildDiscoInfoQuery, buildDiscoInfoResult, parseDiscoInfo, type DiscoInfo } from './disco.js';
import { xmppError } from './errors.js';
import {
  CAPABILITY_FEATURE, CAPS_NODE, CATALOG_NODE, FEATURES, GATEWAY_RESOURCE, ICNS, IDENTITIES, NS,
} from './namespaces.js';
import {
  acceptPayload, buildCancel, buildOffer, buildProgress, normalizeOffer, offerPayload, parseAccept, parseProgress, parseReject,
  type Accept, type Cancel, type Offer, type Progress, type RejectReason,
} from './negotiation.js';
import type { OfferAdmission, ReservationLedger, VerifiedSigner } from './offer-admission.js';
import { buildAvailablePresence, buildRosterQuery, buildSubscription, parsePresence, parseRoster } from './presence.js';
import { buildCreateNode, buildPublish, buildRetract, buildSubscribe, parseEvent } from './pubsub.js';
import { buildStanzaError } from './stanza-error.js';
import { bestEstimate, buildPing, buildTimeRequest, buildTimeResult, estimateClock, parseTimeResult, type ClockEstimate } from './time.js';
import type { ConnectionStatus, XmppConnection } from './connection.js';
import type { ScramCredentials, TlsMaterial } from './transport.js';
import { XmppJsConnection } from './xmpp-connection.js';
import { DirectoryReader } from './directory-reader.js';
import { OfferResponder, type CancelHandler, type CancelOutcome, type IncomingOffer, type OfferResponderOptions, type OfferVeto } from './offer-responder.js';
import {
  MESSAGE_TYPES, SIGNED_MESSAGE_MAX_LIFETIME_MS, SIGNED_REQUEST_TTL_MS, type ControlPlaneAuditRecord, type GatewayTrust,
} from './trust-port.js';

/** What this cloud publishes about itself: the catalog entry without the fields the session derives. */
export type CloudProfile = Pick<CatalogEntry, 'regions' | 'hypervisors' | 'formats' | 'capabilities' | 'capacity' | 'terms' | 'transferUri' | 'migration'>;

/** A PubSub service whose catalog node is read, and the XMPP domain of the clouds publishing on it. */
export interface CatalogService {
  readonly service: string;
  readonly domain: string;
}

/** One Root's directory: its gateways' XMPP domain and the PubSub service holding its catalog. */
export interface DirectoryRoot {
  readonly domain: string;
  readonly pubsubJid: string;
}

/** Options of a {@link GatewaySession}. */
export interface GatewaySessionOptions {
  /** This cloud's id; the session logs in as `<cloudId>@<domain>/gateway`. */
  readonly cloudId: string;
  /** `xmpp://HOST:PORT` of the Root's XMPP server. */
  readonly service: string;
  readonly domain: string;
  /** The PubSub service holding the catalog node (`pubsub.<domain>`): where this cloud publishes. */
  readonly pubsubJid: string;
  /**
   * The PubSub services whose catalogs are read, each with the XMPP domain of the clouds that
   * publish there (default: `pubsubJid` with `domain`). A federated Root's service is one more
   * entry; the directory keeps which service each entry came from.
   */
  readonly catalogServices?: readonly CatalogService[];
  /**
   * The other Intercloud Roots whose directories this cloud reads, over the Roots' s2s
   * federation — like a resolver's root hints, from the config (`xmpp.directories`). A gateway
   * of one of these domains is a peer like one of our own Root's; a catalog entry read from a
   * Root's directory must name a JID of that Root's domain. Each is one more catalog service
   * (when `catalogServices` is not given). Default: none (our Root only).
   */
  readonly directories?: readonly DirectoryRoot[];
  readonly tls: TlsMaterial;
  /** SCRAM-SHA-1 fallback when the server does not take our certificate. */
  readonly scram?: ScramCredentials;
  readonly trust: GatewayTrust;
  /**
   * Whether to take an offer, and the reservations taken (the agent's `agent/admission`).
   * Required unless `observer`.
   */
  readonly admission?: OfferAdmission;
  /** What this cloud publishes and answers in disco#info. Required unless `observer`. */
  readonly profile?: CloudProfile;
  /** How long an offer we send stays valid (default 60 s). */
  readonly offerTtlMs?: number;
  /** Timeout of each iq we send (default 10 s). */
  readonly iqTimeoutMs?: number;
  /** Reconnect backoff: first delay, doubled up to the maximum (defaults 250 ms, 30 s). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** Deadline for connect and login in `start` (default 15 s). */
  readonly connectTimeoutMs?: number;
  /**
   * The connection to use instead of one on `@xmpp/client` built from `service`, `tls`,
   * `scram`, `resource`, `reconnect` and `streamManagement` (tests: an in-memory one).
   */
  readonly connection?: XmppConnection;
  /** The queue name a sender must use for a reservation (default `intercloud.<cloudId>.<reservationId>`). */
  readonly transferQueue?: (reservationId: string) => string;
  /**
   * The data endpoint an accept names (issue 13): this cloud's own broker and the identity its
   * certificate carries. Default: the profile's `transferUri` and no identity (a sender that
   * checks, as the agent does, then refuses the accept).
   */
  readonly transferEndpoint?: () => { readonly uri: string; readonly identity: string };
  /** Which offered disks' bases this cloud holds (issue 16); see {@link OfferResponderOptions.heldBases}. */
  readonly heldBases?: OfferResponderOptions['heldBases'];
  /** The clock (ms since the epoch); tests inject a skewed one. */
  readonly now?: () => number;
  /** The resource to bind (default `gateway`; a CLI looking around uses another, so it does not replace the daemon). */
  readonly resource?: string;
  /**
   * An observer only looks: it does not publish a catalog entry, subscribe to the catalog
   * node or take offers (the CLI's `intercloud peers`). Default false.
   */
  readonly observer?: boolean;
  /**
   * Whether to follow the directory (fetch the catalog at login, subscribe to its
   * notifications). Default true; a pure provider that never looks for peers may turn it off.
   */
  readonly watchCatalog?: boolean;
  /**
   * Use XEP-0198 stream management when offered (default false). With xmpp.js 0.14 the
   * inbound count goes wrong when stanzas are sent as soon as the session is online
   * (before `<enabled/>`), and Prosody closes the stream ("client acknowledged more
   * stanzas than sent by server"); without it the session re-announces presence and
   * republishes its catalog entry after every reconnect instead of resuming.
   */
  readonly streamManagement?: boolean;
}

/** Options of {@link GatewaySession.discoverPeers}. */
export interface DiscoverOptions {
  /**
   * Reconcile with the Root first (list item ids, drop removed entries, fetch unknown ones)
   * instead of trusting the view kept by notifications alone.
   */
  readonly refresh?: boolean;
  /** Measure round trip and clock offset to each match (XEP-0202, best of `samples`). */
  readonly measure?: boolean;
  readonly samples?: number;
}

/** What {@link GatewaySession.sendOffer} resolves to. */
export type OfferOutcome =
  | { readonly type: 'accept'; readonly accept: Accept; readonly signer: VerifiedSigner }
  | { readonly type: 'reject'; readonly reason: RejectReason; readonly text?: string };

/** What the caller gives {@link GatewaySession.sendOffer}; ids and times are filled in. */
export type OfferRequest = Pick<Offer, 'workload' | 'constraints' | 'terms' | 'mode' | 'state'> & { readonly offerId?: string };

/** Status changes the daemon may log. */
export type SessionStatus = 'connecting' | 'online' | 'resumed' | 'offline' | 'reconnecting' | 'stopped';

/** A catalog entry's signature is valid this long; the session re-signs and republishes at half of it. */
const CATALOG_TTL_MS = 6 * 3_600_000;

/** Capacity changes within this window are published as one catalog update. */
const REPUBLISH_DEBOUNCE_MS = 250;

const DEFAULTS = {
  offerTtlMs: 60_000,
  iqTimeoutMs: 10_000,
};

/** An observer publishes nothing: its disco#info names no capability. */
const OBSERVER_PROFILE: CloudProfile = {
  regions: [], hypervisors: [], formats: [], capabilities: [],
  capacity: { vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 0 },
  terms: { currency: 'EUR', pricePerVcpuHour: 0, pricePerGbMonth: 0 },
  transferUri: '',
};

/**
 * One gateway's XMPP session. Create, then `start()`; `stop()` ends it. Events:
 * `status` ({@link SessionStatus}), `warning` (IntercloudError: something ignored, e.g.
 * a bad catalog entry), `reservation` (a new {@link Reservation}), `progress`
 * ({ from, progress }), `cancel` ({ from, cancel }).
 */
export class GatewaySession extends EventEmitter {
  readonly cloudId: string;
  /** Our bare JID. */
  readonly jid: string;
  readonly #admission: OfferAdmission | undefined;
  readonly #opt: GatewaySessionOptions;
  readonly #conn: XmppConnection;
  readonly #now: () => number;
  #profile: CloudProfile;
  #stopped = false;
  /** bare JIDs we receive presence from, or asked to. */
  readonly #subscribed = new Set<string>();
  /** Verified catalog entries and presence (a pure reducer, `directory.ts`). */
  #dir: DirectoryState;
  /** Reads and follows the catalogs into `#dir`. */
  readonly #reader: DirectoryReader;
  /** service JID → domain of the clouds publishing there. */
  readonly #catalogServices: ReadonlyMap<string, string>;
  /** Answers offers and cancels; absent for an observer. */
  readonly #responder: OfferResponder | undefined;
  readonly #progressHandlers: Array<(progress: Progress, from: string) => void> = [];
  #expiryTimer: NodeJS.Timeout | undefined;
  #republishTimer: NodeJS.Timeout | undefined;
  #republishPending: NodeJS.Timeout | undefined;
  #announcing: Promise<void> | undefined;

  constructor(options: GatewaySessionOptions) {
    super();
    this.#opt = options;
    this.cloudId = options.cloudId;
    this.jid = `${options.cloudId}@${options.domain}`;
    this.#now = options.now ?? Date.now;
    this.#dir = emptyDirectory(options.cloudId);
    const services = options.catalogServices
      ?? [{ service: options.pubsubJid, domain: options.domain }, ...(options.directories ?? []).map((d) => ({ service: d.pubsubJid, domain: d.domain }))];
    this.#catalogServices = new Map(services.map((c) => [c.service, c.domain]));
    this.#reader = new DirectoryReader({
      cloudId: options.cloudId,
      domainOf: (service) => this.#catalogServices.get(service) ?? options.domain,
      trust: options.trust,
      iq: (type, to, child) => this.#iq(type, to, child),
      state: () => this.#dir,
      dispatch: (event) => this.#dispatch(event),
      found: (entry) => this.#subscribePresence(entry.jid),
      warn: (error) => this.#warn(error),
      audit: (record) => this.#audit(record),
    });
    if (!options.observer && (options.admission === undefined || options.profile === undefined)) {
      throw xmppError('XMPP_CONFIG', `session of '${options.cloudId}' takes offers and publishes: give it an admission and a profile, or make it an observer`);
    }
    this.#profile = options.profile ?? OBSERVER_PROFILE;
    this.#admission = options.admission;
    this.#responder = options.admission === undefined || options.observer ? undefined : new OfferResponder({
      cloudId: options.cloudId,
      trust: options.trust,
      admission: options.admission,
      now: this.#now,
      endpoint: (reservationId) => {
        const own = options.transferEndpoint?.();
        return {
          transferUri: own?.uri ?? this.#profile.transferUri,
          transferQueue: options.transferQueue?.(reservationId) ?? `intercloud.${options.cloudId}.${reservationId}`,
          ...(own ? { transferIdentity: own.identity } : {}),
        };
      },
      audit: (record) => this.#audit(record),
      reserved: (reservation) => {
        this.emit('reservation', reservation);
        this.#scheduleRepublish();
      },
      capacityChanged: () => this.#scheduleRepublish(),
      cancelled: (from, cancel) => this.emit('cancel', { from, cancel }),
      ...(options.heldBases === undefined ? {} : { heldBases: options.heldBases }),
    });
    this.#conn = options.connection ?? new XmppJsConnection({
      service: options.service,
      domain: options.domain,
      resource: options.resource ?? GATEWAY_RESOURCE,
      tls: options.tls,
      externalJid: this.jid,
      streamManagement: options.streamManagement ?? false,
      ...(options.scram === undefined ? {} : { scram: options.scram }),
      ...(options.reconnect === undefined ? {} : { reconnect: options.reconnect }),
      ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
    });
    this.#wire();
  }

  /** The reservations accepted offers hold (`XMPP_CONFIG` for an observer, which takes none). */
  get reservations(): ReservationLedger {
    if (!this.#admission) throw xmppError('XMPP_CONFIG', `session of '${this.cloudId}' is an observer: it takes no offers`);
    return this.#admission.reservations;
  }

  /** Our full JID (`<cloud>@<domain>/gateway`). */
  get fullJid(): string {
    return `${this.jid}/${this.#opt.resource ?? GATEWAY_RESOURCE}`;
  }

  /** Whether the stream is up and bound. */
  get online(): boolean {
    return this.#conn.online;
  }

  /** Whether XEP-0198 stream management is enabled on the current stream. */
  get streamManagement(): boolean {
    return this.#conn.streamManagement;
  }

  /** The disco#info we answer (XEP-0030) and hash into our caps (XEP-0115). */
  discoInfo(): DiscoInfo {
    const p = this.#profile;
    const features = new Set<string>([
      NS.DISCO_INFO, NS.CAPS, NS.PING, NS.TIME, FEATURES.NEGOTIATION, FEATURES.CATALOG,
      ...p.capabilities.map((c) => CAPABILITY_FEATURE[c]),
      ...p.formats.map((f) => `${FEATURES.FORMAT_PREFIX}${f}`),
      ...p.hypervisors.map((h) => `${FEATURES.HYPERVISOR_PREFIX}${h}`),
    ]);
    return { identities: [IDENTITIES.GATEWAY], features: [...features].sort() };
  }

  /** The catalog entry we publish now. */
  catalogEntry(): CatalogEntry {
    const p = this.#profile;
    return normalizeCatalogEntry({
      cloudId: this.cloudId,
      jid: this.jid,
      regions: p.regions,
      hypervisors: p.hypervisors,
      formats: p.formats,
      capabilities: p.capabilities,
      capacity: this.reservations.free(this.#now()),
      terms: p.terms,
      transferUri: p.transferUri,
      certificateSha256: this.#opt.trust.certificateSha256,
      updated: new Date(this.#now()).toISOString(),
      ...(p.migration === undefined ? {} : { migration: p.migration }),
    });
  }

  /**
   * Connects, logs in, announces presence and publishes our catalog entry. Resolves when
   * all of that is done; rejects with `XMPP_CONNECT` / `XMPP_TLS` / `XMPP_AUTH`.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#status('connecting');
    // A failed first login is reported, not retried in the background; the caller may call start() again.
    await this.#conn.start();
    await this.#announcing;
    this.#expiryTimer = setInterval(() => void this.#responder?.expireReservations(), 1_000);
    this.#expiryTimer.unref();
    this.#republishTimer = setInterval(() => {
      if (this.online && !this.#opt.observer) this.publishCatalog().catch((err: unknown) => this.#warn(this.#asError(err, 'republishing the catalog failed')));
    }, CATALOG_TTL_MS / 2);
    this.#republishTimer.unref();
  }

  /** Sends unavailable presence and closes the stream. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#expiryTimer);
    clearInterval(this.#republishTimer);
    try {
      if (this.online) await this.#conn.send(xml('presence', { type: 'unavailable' }));
      await this.#conn.stop();
    } catch (err) {
      this.#warn(xmppError('XMPP_CONNECT', `closing the stream failed: ${messageOf(err)}`, { cause: err }));
    }
    this.#status('stopped');
  }

  /** Drops the TCP connection without closing the stream (tests: a peer that vanishes). */
  kill(): void {
    this.#stopped = true;
    clearInterval(this.#expiryTimer);
    clearInterval(this.#republishTimer);
    this.#conn.kill();
  }

  // ── catalog ────────────────────────────────────────────────────────────────────────

  /**
   * Signs and publishes our catalog entry (item id = cloud id) to the directory node,
   * optionally with a changed profile (e.g. new free capacity). Creates the node on
   * first use when the server lets us.
   */
  async publishCatalog(update: Partial<CloudProfile> = {}): Promise<CatalogEntry> {
    this.#profile = { ...this.#profile, ...update };
    if (update.capacity) this.reservations.setTotal(update.capacity);
    const entry = this.catalogEntry();
    const signature = await this.#opt.trust.sign(MESSAGE_TYPES.CATALOG, catalogPayload(entry), CATALOG_TTL_MS);
    const publish = buildPublish(CATALOG_NODE, this.cloudId, buildCatalogEntry(entry, signature));
    try {
      await this.#iq('set', this.#opt.pubsubJid, publish);
    } catch (err) {
      if (!isIntercloudError(err, 'XMPP_STANZA_ERROR') || err.details['condition'] !== 'item-not-found') throw err;
      await this.#ensureNode();
      await this.#iq('set', this.#opt.pubsubJid, buildPublish(CATALOG_NODE, this.cloudId, buildCatalogEntry(entry, signature)));
    }
    this.#dispatch({ type: 'published', service: this.#opt.pubsubJid, entry, signature });
    return entry;
  }

  /**
   * Removes our catalog entry from the directory (a cloud leaving the Intercloud), XEP-0060
   * §7.2. The Root's server lets a cloud retract its own item only (the project's Prosody runs
   * mod_intercloud_directory for that; plain Prosody 0.12 allows it to owners and admins only).
   */
  async retractCatalog(): Promise<void> {
    await this.#iq('set', this.#opt.pubsubJid, buildRetract(CATALOG_NODE, this.cloudId));
    if (this.#dir.entries.has(this.cloudId)) {
      const entries = new Map(this.#dir.entries);
      entries.delete(this.cloudId);
      this.#dir = { ...this.#dir, entries };
    }
  }

  /**
   * Republishes our entry soon after free capacity changed, coalescing bursts (many
   * accepts or cancels) into one publish per {@link REPUBLISH_DEBOUNCE_MS}.
   */
  #scheduleRepublish(): void {
    if (this.#republishPending || this.#opt.observer) return;
    this.#republishPending = setTimeout(() => {
      this.#republishPending = undefined;
      if (!this.online) return;
      this.publishCatalog().catch((err: unknown) => this.#warn(this.#asError(err, 'republishing the catalog failed')));
    }, REPUBLISH_DEBOUNCE_MS);
    this.#republishPending.unref();
  }

  async #ensureNode(): Promise<void> {
    // XEP-0060 §8.1.3: an open node that anyone may read and publish to, one item per cloud.
    // The Root normally made it already (its server refuses node creation to gateways); this is
    // for a Root whose server lets a gateway make it.
    const create = buildCreateNode(CATALOG_NODE, {
      'pubsub#access_model': 'open',
      'pubsub#publish_model': 'open',
      'pubsub#persist_items': 'true',
      'pubsub#max_items': '1000',
      'pubsub#notify_retract': 'true',
    });
    try {
      await this.#iq('set', this.#opt.pubsubJid, create);
    } catch (err) {
      // Someone else created it first (XEP-0060 §8.1.3.2 conflict): fine.
      if (!isIntercloudError(err, 'XMPP_STANZA_ERROR') || err.details['condition'] !== 'conflict') throw err;
    }
  }

  /**
   * Brings the local view of the directory up to date with the Root. `full` fetches every
   * entry (done at each login); otherwise only the item ids are listed (disco#items on the
   * node, XEP-0060 §5.5), entries gone from the Root are dropped and only ids we do not
   * hold are fetched — changed entries arrive as notifications while we are online.
   */
  async refreshCatalog(options: { full?: boolean } = {}): Promise<void> {
    // Our own Root's directory: its failure is the caller's. Another Root's (read over s2s) is a
    // warning, and what we hold from it stays until it answers again.
    const [own, ...others] = [...this.#catalogServices.keys()];
    await Promise.all([
      ...(own === undefined ? [] : [this.#reader.refresh(own, options)]),
      ...others.map((service) => this.#reader.refresh(service, options)
        .catch((err: unknown) => this.#warn(this.#asError(err, `reading the directory at '${service}' failed`)))),
    ]);
  }

  /** The gateway domains of the Roots whose directories we read (ours first). */
  #gatewayDomains(): string[] {
    return [...new Set([this.#opt.domain, ...this.#catalogServices.values()])];
  }

  /** Whether `domain` is the gateway domain of a Root we federate with (ours or one we read). */
  #isGatewayDomain(domain: string): boolean {
    return this.#gatewayDomains().includes(domain);
  }

  // ── discovery ──────────────────────────────────────────────────────────────────────

  /**
   * Clouds that match `filter`, are online (available presence) and whose catalog entry
   * verified; our own cloud is left out. With `measure`, each match gets a round trip and
   * clock offset (XEP-0202 four-timestamp estimate); a match that does not answer is
   * returned with `unreachable` set.
   */
  async discoverPeers(filter: PeerFilter = {}, options: DiscoverOptions = {}): Promise<PeerInfo[]> {
    if (options.refresh) await this.refreshCatalog();
    const matches = findPeers(this.#dir, filter);
    if (!options.measure) return matches;
    return Promise.all(matches.map(async (m) => {
      const target = m.resources.includes(`${m.entry.jid}/${GATEWAY_RESOURCE}`) ? `${m.entry.jid}/${GATEWAY_RESOURCE}` : (m.resources[0] as string);
      try {
        const est = await this.peerTime(target, options.samples ?? 3);
        return { ...m, rttMs: est.rttMs, clockOffsetMs: est.offsetMs };
      } catch (err) {
        return { ...m, unreachable: isIntercloudError(err) ? err.code : messageOf(err) };
      }
    }));
  }

  /** The bare JIDs we currently see available presence from. */
  onlinePeers(): string[] {
    return availablePeers(this.#dir);
  }

  /** Waits until `bareJid` is available (presence), or rejects with `XMPP_PEER_UNAVAILABLE`. */
  async waitForPresence(bareJid: string, timeoutMs = 10_000): Promise<void> {
    const isOn = (): boolean => isAvailable(this.#dir, bareJid);
    if (isOn()) return;
    this.#subscribePresence(bareJid);
    await new Promise<void>((resolve, reject) => {
      const onPresence = (): void => {
        if (!isOn()) return;
        clearTimeout(timer);
        this.off('presence', onPresence);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('presence', onPresence);
        reject(xmppError('XMPP_PEER_UNAVAILABLE', `no presence from '${bareJid}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('presence', onPresence);
    });
  }

  /** Asks a peer's disco#info (XEP-0030), optionally of a node (the caps `node#ver`, XEP-0115 §6.2). */
  async peerInfo(fullJid: string, node?: string): Promise<DiscoInfo> {
    const result = await this.#iq('get', fullJid, buildDiscoInfoQuery(node));
    const info = parseDiscoInfo(result.getChild('query', NS.DISCO_INFO));
    if (!info) throw xmppError('XMPP_MALFORMED', `disco#info answer of '${fullJid}' has no query`);
    return info;
  }

  /**
   * Round trip and clock offset to `fullJid`: `samples` XEP-0202 exchanges, each
   * estimated with the four-timestamp method (RFC 5905 §8), the least-delayed one kept.
   */
  async peerTime(fullJid: string, samples = 3): Promise<ClockEstimate> {
    const estimates: ClockEstimate[] = [];
    for (let i = 0; i < samples; i++) {
      // Our two stamps: the clock at send, plus the monotonic time elapsed (sub-millisecond).
      const t0 = this.#now();
      const p0 = performance.now();
      const result = await this.#iq('get', fullJid, buildTimeRequest());
      const t3 = t0 + (performance.now() - p0);
      const peer = parseTimeResult(result.getChild('time', NS.TIME));
      if (!peer) throw xmppError('XMPP_MALFORMED', `entity time answer of '${fullJid}' has no valid utc`);
      estimates.push(estimateClock({ t0, t1: peer.getTime(), t2: peer.getTime(), t3 }));
    }
    return bestEstimate(estimates) as ClockEstimate;
  }

  /** One XEP-0199 ping round trip to `to`, in ms. */
  async ping(to: string): Promise<number> {
    const t0 = performance.now();
    await this.#iq('get', to, buildPing());
    return performance.now() - t0;
  }

  // ── negotiation ────────────────────────────────────────────────────────────────────

  /**
   * Sends a signed offer to a peer gateway (full JID, or bare: `/gateway` is added) and
   * returns its signed accept (verified) or its rejection. Throws `XMPP_TIMEOUT` /
   * `XMPP_PEER_UNAVAILABLE` when the peer does not answer, `XMPP_UNTRUSTED` when the
   * accept does not verify.
   */
  async sendOffer(peerJid: string, request: OfferRequest): Promise<OfferOutcome> {
    const to = peerJid.includes('/') ? peerJid : `${peerJid}/${GATEWAY_RESOURCE}`;
    const peer = parseJid(to);
    const now = this.#now();
    const offer: Offer = normalizeOffer({
      offerId: request.offerId ?? randomUUID(),
      from: this.cloudId,
      workload: request.workload,
      constraints: request.constraints,
      terms: request.terms,
      issued: new Date(now).toISOString(),
      expires: new Date(now + (this.#opt.offerTtlMs ?? DEFAULTS.offerTtlMs)).toISOString(),
      ...(request.mode === undefined ? {} : { mode: request.mode }),
      ...(request.state === undefined ? {} : { state: request.state }),
    });
    const signature = await this.#opt.trust.sign(MESSAGE_TYPES.OFFER, offerPayload(offer), this.#opt.offerTtlMs ?? DEFAULTS.offerTtlMs);
    let result: Element;
    try {
      result = await this.#iq('set', to, buildOffer(offer, signature));
    } catch (err) {
      if (isIntercloudError(err, 'XMPP_STANZA_ERROR')) {
        const reject = parseReject(err.details['application'] as Element | undefined, err.details['text'] as string | undefined);
        if (reject) return { type: 'reject', ...reject };
        const condition = err.details['condition'];
        if (condition === 'service-unavailable' || condition === 'recipient-unavailable' || condition === 'item-not-found') {
          throw xmppError('XMPP_PEER_UNAVAILABLE', `peer '${to}' is not online`, { cause: err, details: err.details });
        }
      }
      throw err;
    }
    const { accept, signature: acceptSig } = parseAccept(result.getChild('accept', ICNS.NEGOTIATION));
    if (accept.offerId !== offer.offerId) throw xmppError('XMPP_MALFORMED', `accept names offer '${accept.offerId}', we sent '${offer.offerId}'`);
    if (accept.by !== peer.local) throw xmppError('XMPP_UNTRUSTED', `accept from '${to}' claims to be by '${accept.by}'`);
    // Issue 15: the target agrees to the offered mode or rejects the offer; it never picks another.
    if ((accept.mode ?? 'cold') !== (offer.mode ?? 'cold')) {
      throw xmppError('XMPP_MALFORMED', `accept agrees to mode '${accept.mode ?? 'cold'}', we offered '${offer.mode ?? 'cold'}'`);
    }
    let signer: VerifiedSigner;
    try {
      signer = await this.#opt.trust.verify(acceptSig, {
        type: MESSAGE_TYPES.ACCEPT, payload: acceptPayload(accept), cloudId: peer.local, jid: peer.bare().toString(), replay: true,
        maxLifetimeMs: SIGNED_MESSAGE_MAX_LIFETIME_MS,
      });
    } catch (err) {
      throw xmppError('XMPP_UNTRUSTED', `accept from '${to}' did not verify: ${messageOf(err)}`, { cause: err });
    }
    return { type: 'accept', accept, signer };
  }

  /**
   * Adds a handler that sees each incoming offer after verification and policy accepted
   * it, before the reservation is made; returning a veto rejects the offer.
   */
  onOffer(handler: (offer: IncomingOffer) => Promise<OfferVeto | undefined> | OfferVeto | undefined): void {
    this.#takesOffers().onOffer(handler);
  }

  /**
   * Adds a handler asked when the sender of an offer cancels the reservation we gave it; it
   * may hold the reservation (a job made for it is being cancelled) or refuse the cancel.
   * See {@link CancelVerdict}.
   */
  onCancel(handler: CancelHandler): void {
    this.#takesOffers().onCancel(handler);
  }

  /** Adds a handler called on each progress report a peer sends us. */
  onProgress(handler: (progress: Progress, from: string) => void): void {
    this.#progressHandlers.push(handler);
  }

  /** Sends a progress report of a long transaction to a peer (a message, fire and forget). */
  async sendProgress(peerJid: string, progress: Progress): Promise<void> {
    this.#requireOnline();
    await this.#conn.send(xml('message', { to: peerJid, type: 'normal', id: randomUUID() }, buildProgress(progress)));
  }

  /** Asks a peer to cancel a reservation it gave us; resolves when it acknowledged. */
  async sendCancel(peerJid: string, cancel: Cancel): Promise<void> {
    const to = peerJid.includes('/') ? peerJid : `${peerJid}/${GATEWAY_RESOURCE}`;
    await this.#iq('set', to, buildCancel(cancel));
  }

  /** Marks a reservation as in use (it no longer lapses); false when it is not live. */
  useReservation(reservationId: string): boolean {
    return this.#takesOffers().useReservation(reservationId);
  }

  /**
   * Releases the reservation a sender's offer holds, if any (the transaction it was made for
   * ended: completed, failed or cancelled), and republishes free capacity.
   */
  releaseOffer(senderCloud: string, offerId: string): boolean {
    return this.#takesOffers().releaseOffer(senderCloud, offerId);
  }

  /** Releases a reservation (transaction done or abandoned) and republishes free capacity. */
  async releaseReservation(reservationId: string): Promise<boolean> {
    return this.#takesOffers().releaseReservation(reservationId);
  }

  /**
   * Handles a peer's `<cancel>` of a reservation (what the iq handler runs; `from` is the
   * server-authenticated full JID); see {@link OfferResponder.cancelReservation}.
   */
  async cancelReservation(cancel: Cancel, from: string): Promise<CancelOutcome> {
    return this.#takesOffers().cancelReservation(cancel, from);
  }

  #takesOffers(): OfferResponder {
    if (!this.#responder) throw xmppError('XMPP_CONFIG', `session of '${this.cloudId}' is an observer: it takes no offers`);
    return this.#responder;
  }

  // ── plumbing ───────────────────────────────────────────────────────────────────────

  #wire(): void {
    const c = this.#conn;
    c.on('warning', (err) => this.#warn(err));
    c.on('disconnect', () => this.#dispatch({ type: 'disconnected' }));
    c.on('status', (status: ConnectionStatus) => {
      this.#status(status);
      if (status === 'online') {
        this.#announcing = this.#announce().catch((err: unknown) => this.#warn(this.#asError(err, 'announcing after login failed')));
      }
    });
    c.on('stanza', (stanza: Element) => {
      if (stanza.is('presence')) this.#onPresence(stanza);
      else if (stanza.is('message')) this.#onMessage(stanza);
    });
    c.handle('get', NS.DISCO_INFO, 'query', (element) => {
      const node = element.attrs['node'];
      const info = this.discoInfo();
      if (node !== undefined && node !== `${CAPS_NODE}#${capsVer(info)}`) {
        return buildStanzaError('cancel', 'item-not-found', `no disco node '${node}'`);
      }
      return buildDiscoInfoResult(info, node);
    });
    c.handle('get', NS.TIME, 'time', () => buildTimeResult(new Date(this.#now())));
    if (this.#opt.observer) return;
    const responder = this.#takesOffers();
    c.handle('set', ICNS.NEGOTIATION, 'offer', (element, from) => responder.handleOffer(element, from));
    c.handle('set', ICNS.NEGOTIATION, 'cancel', (element, from) => responder.handleCancel(element, from));
  }

  /** After every fresh login: presence with caps, catalog subscription and publish, presence subscriptions. */
  async #announce(): Promise<void> {
    await this.#conn.send(buildAvailablePresence(buildCaps(CAPS_NODE, this.discoInfo()), 'Intercloud Gateway'));
    const roster = await this.#iq('get', undefined, buildRosterQuery());
    for (const item of parseRoster(roster.getChild('query'))) {
      if (item.subscription === 'to' || item.subscription === 'both' || item.pending) this.#subscribed.add(item.jid);
    }
    const watch = this.#opt.watchCatalog ?? true;
    if (!this.#opt.observer) {
      await this.publishCatalog();
      if (watch) {
        for (const service of this.#catalogServices.keys()) {
          try {
            await this.#iq('set', service, buildSubscribe(CATALOG_NODE, this.jid));
          } catch (err) {
            this.#warn(this.#asError(err, `subscribing to the catalog node of '${service}' failed`));
          }
        }
      }
    }
    if (watch) await this.refreshCatalog({ full: true });
  }

  #subscribePresence(bareJid: string): void {
    if (bareJid === this.jid || this.#subscribed.has(bareJid) || !this.online) return;
    this.#subscribed.add(bareJid);
    this.#conn.send(buildSubscription(bareJid, 'subscribe')).catch((err: unknown) => this.#warn(this.#asError(err, 'presence subscription failed')));
  }

  #onPresence(stanza: Element): void {
    const p = parsePresence(stanza);
    if (!p) return;
    const full = parseJid(p.from);
    const bare = full.bare().toString();
    if (p.type === 'subscribe') {
      // RFC 6121 §3.1.3: approve gateways of the Roots' domains; trust is checked on each offer.
      const type = this.#isGatewayDomain(full.domain) && full.local !== '' ? 'subscribed' : 'unsubscribed';
      this.#conn.send(buildSubscription(bare, type)).catch((err: unknown) => this.#warn(this.#asError(err, 'answering a subscription failed')));
      if (type === 'subscribed') this.#subscribePresence(bare);
      return;
    }
    if (p.type !== 'available' && p.type !== 'unavailable') return;
    this.#dispatch({ type: 'presence', from: p.from, available: p.type === 'available', ...(p.caps?.ver === undefined ? {} : { caps: p.caps.ver }) });
    this.emit('presence', { from: p.from, type: p.type });
  }

  #onMessage(stanza: Element): void {
    const from = stanza.attrs['from'] ?? '';
    if (this.#catalogServices.has(from)) {
      const ev = parseEvent(stanza);
      if (!ev || ev.node !== CATALOG_NODE) return;
      this.#reader.notified(from, ev);
      return;
    }
    const el = stanza.getChild('progress', ICNS.NEGOTIATION);
    if (!el) return;
    try {
      const progress = parseProgress(el);
      for (const h of this.#progressHandlers) h(progress, from);
      this.emit('progress', { from, progress });
    } catch (err) {
      this.#warn(this.#asError(err, `progress from '${from}' is malformed`));
    }
  }

  /**
   * Signs the payload of a request to a peer (a migration request, `migration.ts`) as
   * {@link MESSAGE_TYPES.MIGRATION_REQUEST}, valid {@link SIGNED_REQUEST_TTL_MS}, with a fresh nonce.
   */
  async signRequest(payload: Record<string, unknown>): Promise<string> {
    return this.#opt.trust.sign(MESSAGE_TYPES.MIGRATION_REQUEST, payload, SIGNED_REQUEST_TTL_MS);
  }

  /**
   * Verifies a peer's signed request (issue 12 finding 7): `from` (the full JID the server
   * authenticated) must be a gateway of our domain; the envelope must be signed by the
   * certificate naming that cloud *and* that JID (id-on-xmppAddr), carry exactly `payload`,
   * be within its minutes-long lifetime and use a nonce not seen before (per-peer replay store).
   * Returns the verified cloud id and the sender's bare JID; throws the trust area's coded
   * error (`TRUST_…`) or `XMPP_UNTRUSTED` for a JID outside our domain.
   */
  async verifyRequest(from: string, signature: string, payload: Record<string, unknown>): Promise<VerifiedSigner & { readonly jid: string }> {
    const sender = parseJid(from);
    if (sender.local === '' || !this.#isGatewayDomain(sender.domain)) {
      throw xmppError('XMPP_UNTRUSTED', `request from '${from}' is not from a gateway of the roots '${this.#gatewayDomains().join("', '")}'`);
    }
    const jid = sender.bare().toString();
    const signer = await this.#opt.trust.verify(signature, {
      type: MESSAGE_TYPES.MIGRATION_REQUEST, payload, cloudId: sender.local, jid, replay: true, maxLifetimeMs: SIGNED_MESSAGE_MAX_LIFETIME_MS,
    });
    return { ...signer, jid };
  }

  /**
   * Serves iq `set` requests whose child is `<name xmlns=ns/>` from other gateways: the
   * handler gets the child and the sender's full JID (authenticated by the server) and
   * returns the result child, or an `<error/>` element to refuse.
   */
  serveRequests(ns: string, name: string, handler: (element: Element, from: string) => Promise<Element>): void {
    this.#conn.handle('set', ns, name, handler);
  }

  /**
   * Sends an iq `set` carrying `child` to a peer gateway (bare JID: `/gateway` is added) and
   * returns the result; errors as for every iq (`XMPP_STANZA_ERROR` with the error's fields in
   * `details`, `XMPP_TIMEOUT`). `timeoutMs` overrides the session's iq timeout for long requests.
   */
  async request(peerJid: string, child: Element, timeoutMs?: number): Promise<Element> {
    const to = peerJid.includes('/') ? peerJid : `${peerJid}/${GATEWAY_RESOURCE}`;
    return this.#iq('set', to, child, timeoutMs);
  }

  /** Sends an iq and returns the result; stanza errors become `XMPP_STANZA_ERROR`, timeouts `XMPP_TIMEOUT`. */
  async #iq(type: 'get' | 'set', to: string | undefined, child: Element, timeoutMs?: number): Promise<Element> {
    this.#requireOnline();
    return this.#conn.iq(type, to, child, timeoutMs ?? this.#opt.iqTimeoutMs ?? DEFAULTS.iqTimeoutMs);
  }

  #requireOnline(): void {
    if (!this.online) throw xmppError('XMPP_NOT_CONNECTED', `session of '${this.cloudId}' is not online (status '${this.#conn.status}')`);
  }

  async #audit(record: ControlPlaneAuditRecord): Promise<void> {
    try {
      await this.#opt.trust.audit(record);
    } catch (err) {
      this.#warn(this.#asError(err, `audit of '${record.action}' failed`));
    }
  }

  #dispatch(event: DirectoryEvent): void {
    this.#dir = reduceDirectory(this.#dir, event);
  }

  #status(status: SessionStatus): void {
    this.emit('status', status);
  }

  #warn(err: IntercloudError): void {
    this.emit('warning', err);
  }

  #asError(err: unknown, what: string): IntercloudError {
    if (err instanceof IntercloudError) return err;
    return xmppError('XMPP_CONNECT', `${what}: ${messageOf(err)}`, { cause: err });
  }
}
