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
import { jid as parseJid, xml, type Client, type Element, type IqContext } from '@xmpp/client';
import { IntercloudError, isIntercloudError, messageOf } from '../errors/index.js';
import { buildCaps, capsVer } from './caps.js';
import {
  buildCatalogEntry, catalogPayload, matchesFilter, normalizeCatalogEntry, parseCatalogEntry, type CatalogEntry, type PeerFilter,
} from './catalog.js';
import { buildDiscoInfoQuery, buildDiscoInfoResult, buildDiscoItemsQuery, parseDiscoInfo, parseDiscoItems, type DiscoInfo } from './disco.js';
import { xmppError } from './errors.js';
import {
  CAPABILITY_FEATURE, CAPS_NODE, CATALOG_NODE, FEATURES, GATEWAY_RESOURCE, ICNS, IDENTITIES, NS,
} from './namespaces.js';
import {
  acceptPayload, buildAccept, buildCancel, buildOffer, buildProgress, buildRejectError, normalizeOffer, offerPayload, parseAccept,
  parseCancel, parseOffer, parseProgress, parseReject, type Accept, type Cancel, type Offer, type Progress, type RejectReason,
} from './negotiation.js';
import type { NegotiationPolicy } from './policy.js';
import { buildAvailablePresence, buildRosterQuery, buildSubscription, parsePresence, parseRoster } from './presence.js';
import { buildCreateNode, buildItemsRequest, buildPublish, buildRetract, buildSubscribe, parseEvent, parseItemsResult } from './pubsub.js';
import { ReservationBook, type Reservation } from './reservations.js';
import { buildStanzaError, parseStanzaError } from './stanza-error.js';
import { bestEstimate, buildPing, buildTimeRequest, buildTimeResult, estimateClock, parseTimeResult, type ClockEstimate } from './time.js';
import { createXmppClient, type ScramCredentials, type TlsMaterial } from './transport.js';

/** Who signed a payload, once the trust area has verified it. */
export interface VerifiedSigner {
  readonly cloudId: string;
  readonly certificateSha256: string;
}

/** One audit record about an intercloud action of the control plane. */
export interface ControlPlaneAuditRecord {
  readonly action: 'offer-accepted' | 'offer-refused' | 'catalog-entry-ignored' | 'reservation-cancelled' | 'cancel-refused' | 'reservation-expired';
  /** The peer's JID. */
  readonly peer: string;
  readonly reason?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** What a signed payload must be for {@link GatewayTrust.verify} to accept it. */
export interface VerifyExpectation {
  /** The message type (`intercloud/catalog-entry`, `intercloud/offer`, `intercloud/accept`). */
  readonly type: string;
  /** The payload as read from the XML; the envelope must carry exactly this value. */
  readonly payload: Record<string, unknown>;
  readonly cloudId: string;
  readonly jid: string;
  /** Remember the nonce and refuse a second use (offers, accepts; not catalog entries, which are re-read). */
  readonly replay: boolean;
  /**
   * Longest lifetime (issued → expires) accepted for the envelope, ms. Messages whose nonce is
   * remembered live minutes ({@link SIGNED_MESSAGE_MAX_LIFETIME_MS}), so the replay store
   * holds each nonce minutes, not a day. Default: that for `replay`, the trust area's otherwise.
   */
  readonly maxLifetimeMs?: number;
}

/**
 * Longest lifetime of a signed message whose nonce is remembered (offers, accepts, migration
 * requests): 15 minutes. Issue 12 finding 6: a nonce kept a day lets a flood fill the store.
 */
export const SIGNED_MESSAGE_MAX_LIFETIME_MS = 15 * 60_000;

/** How long the signature of an accept or a migration request we send is valid (it is verified on arrival). */
export const SIGNED_REQUEST_TTL_MS = 120_000;

/** Signed message types of the control plane. */
export const MESSAGE_TYPES = {
  CATALOG: 'intercloud/catalog-entry',
  OFFER: 'intercloud/offer',
  ACCEPT: 'intercloud/accept',
  /** instantiate / commit / release after an accepted offer (`migration.ts`). */
  MIGRATION_REQUEST: 'intercloud/migration-request',
} as const;

/**
 * What the session needs from the trust area (bound to `protocols/trust` by the daemon).
 *
 * Contract: `sign` returns an envelope text carrying this gateway's certificate, a fresh
 * nonce and an expiry. `verify` checks the envelope's certificate chain to the Root,
 * revocation, that the certificate names `expected.cloudId` and `expected.jid`, that the
 * signed payload equals `expected.payload` (canonical JSON), its type and time window,
 * and (when `replay` is true) that its nonce was not seen before; it throws an {@link IntercloudError} with a `TRUST_…` code
 * otherwise. `audit` appends to the hash-chained audit log.
 */
export interface GatewayTrust {
  /** SHA-256 of this gateway's certificate DER (64 lowercase hex digits). */
  readonly certificateSha256: string;
  /** Signs `payload` as a message of `type` valid for `ttlMs`; returns the envelope text. */
  sign(type: string, payload: Record<string, unknown>, ttlMs: number): Promise<string>;
  verify(envelope: string, expected: VerifyExpectation): Promise<VerifiedSigner>;
  audit(record: ControlPlaneAuditRecord): Promise<void>;
}

/** What this cloud publishes about itself: the catalog entry without the fields the session derives. */
export type CloudProfile = Pick<CatalogEntry, 'regions' | 'hypervisors' | 'formats' | 'capabilities' | 'capacity' | 'terms' | 'transferUri'>;

/** Options of a {@link GatewaySession}. */
export interface GatewaySessionOptions {
  /** This cloud's id; the session logs in as `<cloudId>@<domain>/gateway`. */
  readonly cloudId: string;
  /** `xmpp://HOST:PORT` of the Root's XMPP server. */
  readonly service: string;
  readonly domain: string;
  /** The PubSub service holding the catalog node (`pubsub.<domain>`). */
  readonly pubsubJid: string;
  /**
   * The other Intercloud Roots whose directories this cloud reads, over the Roots' s2s
   * federation — like a resolver's root hints, from the config (`xmpp.directories`). A gateway
   * of one of these domains is a peer like one of our own Root's; a catalog entry read from a
   * Root's directory must name a JID of that Root's domain. Default: none (our Root only).
   */
  readonly directories?: readonly DirectoryRoot[];
  readonly tls: TlsMaterial;
  /** SCRAM-SHA-1 fallback when the server does not take our certificate. */
  readonly scram?: ScramCredentials;
  readonly trust: GatewayTrust;
  readonly policy: NegotiationPolicy;
  readonly profile: CloudProfile;
  /** How long an accepted reservation is held unless used (default 10 min). */
  readonly reservationTtlMs?: number;
  /** How long an offer we send stays valid (default 60 s). */
  readonly offerTtlMs?: number;
  /** Offers issued further in the future than this are refused with `clock-skew` (default 2 s). */
  readonly maxClockSkewMs?: number;
  /** Timeout of each iq we send (default 10 s). */
  readonly iqTimeoutMs?: number;
  /** Reconnect backoff: first delay, doubled up to the maximum (defaults 250 ms, 30 s). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** The queue name a sender must use for a reservation (default `intercloud.<cloudId>.<reservationId>`). */
  readonly transferQueue?: (reservationId: string) => string;
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

/** One Root's directory: its gateways' XMPP domain and the PubSub service holding its catalog. */
export interface DirectoryRoot {
  readonly domain: string;
  readonly pubsubJid: string;
}

/** A cloud found by {@link GatewaySession.discoverPeers}. */
export interface PeerInfo {
  readonly entry: CatalogEntry;
  /** The full JIDs the peer is available at. */
  readonly resources: readonly string[];
  readonly caps?: string;
  /** Round trip of an entity-time exchange, ms (when measured). */
  readonly rttMs?: number;
  /** The peer's clock minus ours, ms (when measured). */
  readonly clockOffsetMs?: number;
  /** Set when measuring failed (the peer did not answer). */
  readonly unreachable?: string;
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
export type OfferRequest = Pick<Offer, 'workload' | 'constraints' | 'terms'> & { readonly offerId?: string };

/** An offer that passed verification and policy, handed to {@link GatewaySession.onOffer} handlers. */
export interface IncomingOffer {
  readonly offer: Offer;
  readonly from: string;
  readonly signer: VerifiedSigner;
}

/**
 * A cancel handler's answer ({@link GatewaySession.onCancel}); `undefined` lets the session
 * release the reservation at once (nothing was made for it). `hold`: a job made for the offer
 * is being cancelled, and the reservation is released when that job ends
 * ({@link GatewaySession.releaseOffer}), never while it still runs (issue 12, findings 6 and 8).
 * `refuse`: the cancel is refused (e.g. the job is committed) and the reservation stays.
 */
export type CancelVerdict = { readonly action: 'hold' } | { readonly action: 'refuse'; readonly text: string };

/** What became of a peer's cancel ({@link GatewaySession.cancelReservation}). */
export type CancelOutcome =
  | { readonly outcome: 'released' }
  | { readonly outcome: 'held' }
  | { readonly outcome: 'refused'; readonly condition: 'item-not-found' | 'not-allowed'; readonly text: string };

/** A cancel handler: asked about each cancel the offer's own sender makes. */
export type CancelHandler = (cancel: Cancel, from: string, reservation: Reservation) => Promise<CancelVerdict | undefined> | CancelVerdict | undefined;

/** A handler's veto: the offer is rejected with this reason. */
export interface OfferVeto {
  readonly reason: RejectReason;
  readonly text: string;
}

/** Status changes the daemon may log. */
export type SessionStatus = 'connecting' | 'online' | 'resumed' | 'offline' | 'reconnecting' | 'stopped';

/** A catalog entry's signature is valid this long; the session re-signs and republishes at half of it. */
const CATALOG_TTL_MS = 6 * 3_600_000;

/** How long past our timeout a late iq answer is still collected (then xmpp.js drops it). */
const LATE_ANSWER_MS = 60_000;

/** Capacity changes within this window are published as one catalog update. */
const REPUBLISH_DEBOUNCE_MS = 250;

const DEFAULTS = {
  reservationTtlMs: 600_000,
  offerTtlMs: 60_000,
  maxClockSkewMs: 2_000,
  iqTimeoutMs: 10_000,
  initialDelayMs: 250,
  maxDelayMs: 30_000,
};

interface CachedEntry {
  readonly entry: CatalogEntry;
  readonly signature: string;
}

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
  readonly reservations: ReservationBook;
  readonly #opt: GatewaySessionOptions;
  readonly #xmpp: Client;
  readonly #now: () => number;
  #profile: CloudProfile;
  #stopped = false;
  #delay: number;
  /** bare JID → full JID → caps ver */
  readonly #presence = new Map<string, Map<string, string | undefined>>();
  /** bare JIDs we receive presence from, or asked to. */
  readonly #subscribed = new Set<string>();
  /** bare JID (`<item id>@<the directory's Root domain>`) → verified entry, kept current by pubsub notifications. */
  readonly #catalog = new Map<string, CachedEntry>();
  /** signature text → verified signer (a signature is verified once). */
  readonly #verified = new Map<string, VerifiedSigner>();
  /** signatures of entries that failed verification. */
  readonly #refused = new Set<string>();
  /** bare JIDs (item id @ Root domain) whose current entry failed verification (not re-fetched until notified or a full refresh). */
  readonly #badIds = new Set<string>();
  /** PubSub services whose catalog was fully read since the last login. */
  readonly #catalogLoaded = new Set<string>();
  #reconnectOff = false;
  readonly #offerHandlers: Array<(offer: IncomingOffer) => Promise<OfferVeto | undefined> | OfferVeto | undefined> = [];
  readonly #cancelHandlers: CancelHandler[] = [];
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
    this.#profile = options.profile;
    this.reservations = new ReservationBook(options.profile.capacity);
    this.#delay = options.reconnect?.initialDelayMs ?? DEFAULTS.initialDelayMs;
    this.#xmpp = createXmppClient({
      service: options.service,
      domain: options.domain,
      resource: options.resource ?? GATEWAY_RESOURCE,
      tls: options.tls,
      externalJid: this.jid,
      streamManagement: options.streamManagement ?? false,
      ...(options.scram === undefined ? {} : { scram: options.scram }),
    });
    this.#wire();
  }

  /** Our full JID (`<cloud>@<domain>/gateway`). */
  get fullJid(): string {
    return `${this.jid}/${this.#opt.resource ?? GATEWAY_RESOURCE}`;
  }

  /** Whether the stream is up and bound. */
  get online(): boolean {
    return this.#xmpp.status === 'online';
  }

  /** Whether XEP-0198 stream management is enabled on the current stream. */
  get streamManagement(): boolean {
    return this.#xmpp.streamManagement.enabled;
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
    });
  }

  /**
   * Connects, logs in, announces presence and publishes our catalog entry. Resolves when
   * all of that is done; rejects with `XMPP_CONNECT` / `XMPP_TLS` / `XMPP_AUTH`.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#status('connecting');
    if (this.#reconnectOff) {
      this.#xmpp.reconnect.start();
      this.#reconnectOff = false;
    }
    try {
      await this.#xmpp.start();
    } catch (err) {
      // A failed first login is reported, not retried in the background; the caller may call start() again.
      this.#xmpp.reconnect.stop();
      this.#reconnectOff = true;
      const error = this.#connectError(err);
      await this.#xmpp.stop().catch((e: unknown) => this.#warn(this.#asError(e, 'closing after a failed login failed')));
      throw error;
    }
    await this.#announcing;
    this.#expiryTimer = setInterval(() => this.#expireReservations(), 1_000);
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
    this.#xmpp.reconnect.stop();
    this.#reconnectOff = true;
    try {
      if (this.online) await this.#xmpp.send(xml('presence', { type: 'unavailable' }));
      await this.#xmpp.stop();
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
    this.#xmpp.reconnect.stop();
    this.#reconnectOff = true;
    const socket = this.#xmpp.socket as { destroy?: () => void } | null;
    socket?.destroy?.();
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
    this.#catalog.set(this.jid, { entry, signature });
    return entry;
  }

  /**
   * Removes our catalog entry from the directory (a cloud leaving the Intercloud), XEP-0060
   * §7.2. The Root's server lets a cloud retract its own item only (the project's Prosody runs
   * mod_intercloud_directory for that; plain Prosody 0.12 allows it to owners and admins only).
   */
  async retractCatalog(): Promise<void> {
    await this.#iq('set', this.#opt.pubsubJid, buildRetract(CATALOG_NODE, this.cloudId));
    this.#catalog.delete(this.jid);
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
    // Our own Root's directory first: its failure is the caller's; another Root's (read over
    // s2s) is a warning, and what we hold from it stays until it answers again.
    await this.#refreshDirectory(this.#roots()[0] as DirectoryRoot, options);
    await Promise.all(this.#roots().slice(1).map((root) => this.#refreshDirectory(root, options)
      .catch((err: unknown) => this.#warn(this.#asError(err, `reading the directory of root '${root.domain}' failed`)))));
  }

  /** Our Root's directory, then the other Roots' ({@link GatewaySessionOptions.directories}). */
  #roots(): DirectoryRoot[] {
    return [{ domain: this.#opt.domain, pubsubJid: this.#opt.pubsubJid }, ...(this.#opt.directories ?? [])];
  }

  /** Whether `domain` is the gateway domain of a Root we federate with (ours or one we read). */
  #isRootDomain(domain: string): boolean {
    return this.#roots().some((r) => r.domain === domain);
  }

  async #refreshDirectory(root: DirectoryRoot, options: { full?: boolean }): Promise<void> {
    const key = (id: string): string => `${id}@${root.domain}`;
    const ofRoot = (k: string): boolean => k.endsWith(`@${root.domain}`) && k !== this.jid;
    if (!options.full && this.#catalogLoaded.has(root.pubsubJid)) {
      let ids: Set<string>;
      try {
        const result = await this.#iq('get', root.pubsubJid, buildDiscoItemsQuery(CATALOG_NODE));
        ids = new Set(parseDiscoItems(result.getChild('query', NS.DISCO_ITEMS)).map((i) => key(i.name ?? '')).filter((n) => !n.startsWith('@')));
      } catch (err) {
        if (isIntercloudError(err, 'XMPP_STANZA_ERROR') && err.details['condition'] === 'item-not-found') return;
        throw err;
      }
      for (const k of [...this.#catalog.keys()]) if (ofRoot(k) && !ids.has(k)) this.#catalog.delete(k);
      const unknown = [...ids].filter((k) => !this.#catalog.has(k) && !this.#badIds.has(k) && k !== this.jid).map((k) => k.slice(0, -root.domain.length - 1));
      if (unknown.length === 0) return;
      const result = await this.#iq('get', root.pubsubJid, buildItemsRequest(CATALOG_NODE, { itemIds: unknown }));
      await Promise.all(parseItemsResult(result.getChild('pubsub', NS.PUBSUB)).map((item) => this.#acceptCatalogItem(item.id, item.payload, root)));
      return;
    }
    let items;
    try {
      const result = await this.#iq('get', root.pubsubJid, buildItemsRequest(CATALOG_NODE));
      items = parseItemsResult(result.getChild('pubsub', NS.PUBSUB));
    } catch (err) {
      if (isIntercloudError(err, 'XMPP_STANZA_ERROR') && err.details['condition'] === 'item-not-found') return;
      throw err;
    }
    for (const k of [...this.#badIds]) if (ofRoot(k)) this.#badIds.delete(k);
    const seen = new Set<string>();
    await Promise.all(items.map(async (item) => {
      const cached = await this.#acceptCatalogItem(item.id, item.payload, root);
      if (cached) seen.add(cached.entry.jid);
    }));
    for (const k of [...this.#catalog.keys()]) if (ofRoot(k) && !seen.has(k)) this.#catalog.delete(k);
    this.#catalogLoaded.add(root.pubsubJid);
  }

  /** Parses and verifies one catalog item; bad ones are audited, warned about and skipped. */
  async #acceptCatalogItem(itemId: string, payload: Element | undefined, root: DirectoryRoot): Promise<CachedEntry | undefined> {
    const key = `${itemId}@${root.domain}`;
    try {
      const { entry, signature } = parseCatalogEntry(payload);
      if (entry.cloudId !== itemId) throw xmppError('XMPP_MALFORMED', `catalog item '${itemId}' carries the entry of '${entry.cloudId}'`);
      // A Root's directory lists that Root's gateways only: an entry naming a JID elsewhere (a
      // cloud of another Root, copied here) is not taken from it (issue 13).
      if (entry.jid !== key) {
        throw xmppError('XMPP_UNTRUSTED', `catalog entry of '${entry.cloudId}' in the directory of '${root.domain}' names jid '${entry.jid}'`);
      }
      const cached = this.#catalog.get(key);
      if (cached?.signature === signature) return cached;
      // An entry already found bad is skipped quietly (it was audited the first time).
      if (this.#refused.has(signature)) return undefined;
      let signer = this.#verified.get(signature);
      if (!signer) {
        signer = await this.#opt.trust.verify(signature, { type: MESSAGE_TYPES.CATALOG, payload: catalogPayload(entry), cloudId: entry.cloudId, jid: entry.jid, replay: false });
        if (this.#verified.size > 10_000) this.#verified.clear();
        this.#verified.set(signature, signer);
      }
      if (signer.certificateSha256 !== entry.certificateSha256) {
        throw xmppError('XMPP_UNTRUSTED', `catalog entry of '${entry.cloudId}' names a certificate it was not signed with`);
      }
      const fresh = { entry, signature };
      this.#catalog.set(key, fresh);
      this.#badIds.delete(key);
      this.#subscribePresence(entry.jid);
      return fresh;
    } catch (err) {
      this.#catalog.delete(key);
      this.#badIds.add(key);
      const sig = payload?.getChild('signature', ICNS.SIGNATURE)?.text().trim();
      if (sig !== undefined && sig !== '') {
        if (this.#refused.size > 10_000) this.#refused.clear();
        this.#refused.add(sig);
      }
      const error = isIntercloudError(err) ? err : xmppError('XMPP_MALFORMED', `catalog item '${itemId}': ${messageOf(err)}`, { cause: err });
      this.#warn(error);
      await this.#audit({ action: 'catalog-entry-ignored', peer: key, reason: error.code, details: { message: error.message } });
      return undefined;
    }
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
    const matches: PeerInfo[] = [];
    for (const { entry } of this.#catalog.values()) {
      if (entry.cloudId === this.cloudId || !matchesFilter(entry, filter)) continue;
      const resources = this.#presence.get(entry.jid);
      if (!resources || resources.size === 0) continue;
      const full = [...resources.keys()];
      const caps = resources.get(full[0] as string);
      matches.push({ entry, resources: full, ...(caps === undefined ? {} : { caps }) });
    }
    matches.sort((a, b) => a.entry.cloudId.localeCompare(b.entry.cloudId));
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
    return [...this.#presence.entries()].filter(([, r]) => r.size > 0).map(([j]) => j);
  }

  /** Waits until `bareJid` is available (presence), or rejects with `XMPP_PEER_UNAVAILABLE`. */
  async waitForPresence(bareJid: string, timeoutMs = 10_000): Promise<void> {
    const isOn = (): boolean => (this.#presence.get(bareJid)?.size ?? 0) > 0;
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
    this.#offerHandlers.push(handler);
  }

  /**
   * Adds a handler asked when the sender of an offer cancels the reservation we gave it; it
   * may hold the reservation (a job made for it is being cancelled) or refuse the cancel.
   * See {@link CancelVerdict}.
   */
  onCancel(handler: CancelHandler): void {
    this.#cancelHandlers.push(handler);
  }

  /** Adds a handler called on each progress report a peer sends us. */
  onProgress(handler: (progress: Progress, from: string) => void): void {
    this.#progressHandlers.push(handler);
  }

  /** Sends a progress report of a long transaction to a peer (a message, fire and forget). */
  async sendProgress(peerJid: string, progress: Progress): Promise<void> {
    this.#requireOnline();
    await this.#xmpp.send(xml('message', { to: peerJid, type: 'normal', id: randomUUID() }, buildProgress(progress)));
  }

  /** Asks a peer to cancel a reservation it gave us; resolves when it acknowledged. */
  async sendCancel(peerJid: string, cancel: Cancel): Promise<void> {
    const to = peerJid.includes('/') ? peerJid : `${peerJid}/${GATEWAY_RESOURCE}`;
    await this.#iq('set', to, buildCancel(cancel));
  }

  /** Marks a reservation as in use (it no longer lapses); false when it is not live. */
  useReservation(reservationId: string): boolean {
    return this.reservations.get(reservationId, this.#now()) !== undefined && this.reservations.markUsed(reservationId);
  }

  /**
   * Releases the reservation a sender's offer holds, if any (the transaction it was made for
   * ended: completed, failed or cancelled), and republishes free capacity.
   */
  releaseOffer(senderCloud: string, offerId: string): boolean {
    const r = this.reservations.byOffer(senderCloud, offerId, this.#now());
    if (!r) return false;
    this.reservations.release(r.reservationId);
    this.#scheduleRepublish();
    return true;
  }

  /** Releases a reservation (transaction done or abandoned) and republishes free capacity. */
  async releaseReservation(reservationId: string): Promise<boolean> {
    const r = this.reservations.release(reservationId);
    if (r) this.#scheduleRepublish();
    return r !== undefined;
  }

  async #handleOffer(ctx: IqContext): Promise<Element> {
    const from = ctx.stanza.attrs['from'] ?? '';
    const refuse = async (reason: RejectReason, text: string, details: Record<string, unknown> = {}, error?: Element): Promise<Element> => {
      await this.#audit({ action: 'offer-refused', peer: from, reason, details: { text, ...details } });
      return error ?? buildRejectError({ reason, text });
    };
    let offer: Offer;
    let signature: string;
    try {
      ({ offer, signature } = parseOffer(ctx.element));
    } catch (err) {
      if (isIntercloudError(err, 'XMPP_OVERSIZED')) {
        return refuse('malformed', err.message, { code: err.code },
          buildStanzaError('modify', 'policy-violation', err.message, xml('reject', { xmlns: ICNS.NEGOTIATION, reason: 'malformed' })));
      }
      return refuse('malformed', isIntercloudError(err) ? err.message : 'offer could not be read', { code: isIntercloudError(err) ? err.code : 'unknown' });
    }
    const sender = parseJid(from);
    const details = { offerId: offer.offerId, claimed: offer.from };
    // The sender's JID (authenticated by the server) must be the cloud the offer claims.
    if (sender.local !== offer.from || !this.#isRootDomain(sender.domain)) {
      return refuse('untrusted', `offer claims cloud '${offer.from}' but comes from '${sender.bare().toString()}'`, details);
    }
    // Allow-list first (issue 12 finding 6): a cloud that may not send us work costs no
    // signature verification and leaves no nonce in our replay store.
    const admitted = this.#opt.policy.admitsSender(sender.local);
    if (!admitted.accept) return refuse(admitted.reason, admitted.text, details);
    const now = this.#now();
    const skew = this.#opt.maxClockSkewMs ?? DEFAULTS.maxClockSkewMs;
    if (Date.parse(offer.issued) - now > skew) {
      return refuse('clock-skew', `offer '${offer.offerId}' was issued ${Date.parse(offer.issued) - now} ms in our future`, details);
    }
    if (Date.parse(offer.expires) <= now) {
      return refuse('expired', `offer '${offer.offerId}' expired at ${offer.expires}`, details);
    }
    let signer: VerifiedSigner;
    try {
      signer = await this.#opt.trust.verify(signature, {
        type: MESSAGE_TYPES.OFFER, payload: offerPayload(offer), cloudId: offer.from, jid: sender.bare().toString(), replay: true,
        maxLifetimeMs: SIGNED_MESSAGE_MAX_LIFETIME_MS,
      });
    } catch (err) {
      const code = isIntercloudError(err) ? err.code : 'unknown';
      return refuse(trustReason(code), `offer '${offer.offerId}' did not verify: ${messageOf(err)}`, { ...details, code });
    }
    // The same offer again (the sender retried after a crash or a lost answer): answer with the
    // reservation it already holds, after the handlers agree, instead of counting it twice.
    const held = this.reservations.byOffer(signer.cloudId, offer.offerId, now);
    if (held) {
      for (const handler of this.#offerHandlers) {
        const veto = await handler({ offer, from, signer });
        if (veto) return refuse(veto.reason, veto.text, details);
      }
      return this.#acceptFor(held.reservationId, offer.offerId, held.expiresAt, now);
    }
    const decision = this.#opt.policy.evaluate({
      offer,
      senderCloud: signer.cloudId,
      free: this.reservations.free(now),
      senderUsage: this.reservations.usage(signer.cloudId, now),
    });
    if (!decision.accept) return refuse(decision.reason, decision.text, details);
    for (const handler of this.#offerHandlers) {
      const veto = await handler({ offer, from, signer });
      if (veto) return refuse(veto.reason, veto.text, details);
    }
    const reservationId = randomUUID();
    const expiresAt = now + (this.#opt.reservationTtlMs ?? DEFAULTS.reservationTtlMs);
    const reservation = this.reservations.add(reservationId, offer, { cloud: signer.cloudId, jid: from }, expiresAt);
    // Audited without holding the answer (an fsync costs more than the whole exchange); refusals
    // above are audited before they are answered.
    void this.#audit({ action: 'offer-accepted', peer: from, details: { offerId: offer.offerId, reservationId } });
    this.emit('reservation', reservation);
    this.#scheduleRepublish();
    return this.#acceptFor(reservationId, offer.offerId, expiresAt, now);
  }

  /** The signed accept of a reservation. */
  async #acceptFor(reservationId: string, offerId: string, expiresAt: number, now: number): Promise<Element> {
    const accept: Accept = {
      offerId,
      reservationId,
      by: this.cloudId,
      transferUri: this.#profile.transferUri,
      transferQueue: this.#opt.transferQueue?.(reservationId) ?? `intercloud.${this.cloudId}.${reservationId}`,
      expires: new Date(expiresAt).toISOString(),
    };
    // The signature only has to survive the trip: the reservation's own expiry is in the payload.
    const acceptSig = await this.#opt.trust.sign(MESSAGE_TYPES.ACCEPT, acceptPayload(accept), Math.max(1, Math.min(expiresAt - now, SIGNED_REQUEST_TTL_MS)));
    return buildAccept(accept, acceptSig);
  }

  async #handleCancel(ctx: IqContext): Promise<Element | Record<string, never>> {
    const from = ctx.stanza.attrs['from'] ?? '';
    let cancel: Cancel;
    try {
      cancel = parseCancel(ctx.element);
    } catch (err) {
      return buildStanzaError('modify', 'bad-request', messageOf(err));
    }
    const out = await this.cancelReservation(cancel, from);
    return out.outcome === 'refused' ? buildStanzaError('cancel', out.condition, out.text) : {};
  }

  /**
   * Handles a peer's `<cancel>` of a reservation (what the iq handler runs; `from` is the
   * server-authenticated full JID). Only the full JID that made the offer may cancel it. The
   * cancel handlers are asked first: a reservation whose job is being cancelled is held until
   * that job ends, and a refused cancel leaves it in place (issue 12, findings 6 and 8: a
   * reservation freed while its job still runs would let a peer pass the quotas and the
   * free-storage check by offering and cancelling again and again).
   */
  async cancelReservation(cancel: Cancel, from: string): Promise<CancelOutcome> {
    const r = this.reservations.get(cancel.reservationId, this.#now());
    if (!r || r.senderJid !== from) {
      return { outcome: 'refused', condition: 'item-not-found', text: `no reservation '${cancel.reservationId}' of yours` };
    }
    let hold = false;
    for (const h of this.#cancelHandlers) {
      const verdict = await h(cancel, from, r);
      if (verdict?.action === 'refuse') {
        await this.#audit({ action: 'cancel-refused', peer: from, reason: verdict.text, details: { reservationId: r.reservationId, offerId: r.offer.offerId } });
        return { outcome: 'refused', condition: 'not-allowed', text: verdict.text };
      }
      if (verdict?.action === 'hold') hold = true;
    }
    if (!hold) this.reservations.release(r.reservationId);
    await this.#audit({
      action: 'reservation-cancelled', peer: from, reason: cancel.reason ?? 'peer', details: { reservationId: r.reservationId, offerId: r.offer.offerId, held: hold },
    });
    this.emit('cancel', { from, cancel });
    if (!hold) this.#scheduleRepublish();
    return { outcome: hold ? 'held' : 'released' };
  }

  async #expireReservations(): Promise<void> {
    const gone = this.reservations.expire(this.#now());
    for (const r of gone) {
      await this.#audit({ action: 'reservation-expired', peer: r.senderJid, details: { reservationId: r.reservationId, offerId: r.offer.offerId } });
    }
    if (gone.length > 0) this.#scheduleRepublish();
  }

  // ── plumbing ───────────────────────────────────────────────────────────────────────

  #wire(): void {
    const x = this.#xmpp;
    const maxDelay = this.#opt.reconnect?.maxDelayMs ?? DEFAULTS.maxDelayMs;
    const initial = this.#opt.reconnect?.initialDelayMs ?? DEFAULTS.initialDelayMs;
    x.reconnect.delay = this.#delay;
    x.on('error', (err: unknown) => this.#warn(this.#connectError(err)));
    x.on('offline', () => this.#status('offline'));
    x.on('disconnect', () => {
      this.#presence.clear();
      this.#catalogLoaded.clear();
      if (this.#stopped) return;
      // Exponential backoff with jitter between attempts (xmpp.js reads `delay` each time).
      x.reconnect.delay = Math.round(this.#delay * (0.75 + Math.random() / 2));
      this.#delay = Math.min(maxDelay, this.#delay * 2);
      this.#status('reconnecting');
    });
    x.on('online', () => {
      this.#delay = initial;
      this.#status('online');
      this.#announcing = this.#announce().catch((err: unknown) => this.#warn(this.#asError(err, 'announcing after login failed')));
    });
    x.streamManagement.on('resumed', () => {
      this.#delay = initial;
      this.#status('resumed');
    });
    x.on('stanza', (stanza: Element) => {
      if (stanza.is('presence')) this.#onPresence(stanza);
      else if (stanza.is('message')) this.#onMessage(stanza);
    });
    x.iqCallee.get(NS.DISCO_INFO, 'query', (ctx) => {
      const node = ctx.element.attrs['node'];
      const info = this.discoInfo();
      if (node !== undefined && node !== `${CAPS_NODE}#${capsVer(info)}`) {
        return buildStanzaError('cancel', 'item-not-found', `no disco node '${node}'`);
      }
      return buildDiscoInfoResult(info, node);
    });
    x.iqCallee.get(NS.TIME, 'time', () => buildTimeResult(new Date(this.#now())));
    if (this.#opt.observer) return;
    x.iqCallee.set(ICNS.NEGOTIATION, 'offer', (ctx) => this.#handleOffer(ctx));
    x.iqCallee.set(ICNS.NEGOTIATION, 'cancel', (ctx) => this.#handleCancel(ctx));
  }

  /** After every fresh login: presence with caps, catalog subscription and publish, presence subscriptions. */
  async #announce(): Promise<void> {
    await this.#xmpp.send(buildAvailablePresence(buildCaps(CAPS_NODE, this.discoInfo()), 'Intercloud Gateway'));
    const roster = await this.#iq('get', undefined, buildRosterQuery());
    for (const item of parseRoster(roster.getChild('query'))) {
      if (item.subscription === 'to' || item.subscription === 'both' || item.pending) this.#subscribed.add(item.jid);
    }
    const watch = this.#opt.watchCatalog ?? true;
    if (!this.#opt.observer) {
      await this.publishCatalog();
      if (watch) {
        await Promise.all(this.#roots().map(async (root) => {
          try {
            await this.#iq('set', root.pubsubJid, buildSubscribe(CATALOG_NODE, this.jid));
          } catch (err) {
            this.#warn(this.#asError(err, `subscribing to the catalog node of '${root.pubsubJid}' failed`));
          }
        }));
      }
    }
    if (watch) await this.refreshCatalog({ full: true });
  }

  #subscribePresence(bareJid: string): void {
    if (bareJid === this.jid || this.#subscribed.has(bareJid) || !this.online) return;
    this.#subscribed.add(bareJid);
    this.#xmpp.send(buildSubscription(bareJid, 'subscribe')).catch((err: unknown) => this.#warn(this.#asError(err, 'presence subscription failed')));
  }

  #onPresence(stanza: Element): void {
    const p = parsePresence(stanza);
    if (!p) return;
    const full = parseJid(p.from);
    const bare = full.bare().toString();
    if (p.type === 'subscribe') {
      // RFC 6121 §3.1.3: approve gateways of the Roots' domains; trust is checked on each offer.
      const type = this.#isRootDomain(full.domain) && full.local !== '' ? 'subscribed' : 'unsubscribed';
      this.#xmpp.send(buildSubscription(bare, type)).catch((err: unknown) => this.#warn(this.#asError(err, 'answering a subscription failed')));
      if (type === 'subscribed') this.#subscribePresence(bare);
      return;
    }
    if (p.type !== 'available' && p.type !== 'unavailable') return;
    let resources = this.#presence.get(bare);
    if (p.type === 'available') {
      if (!resources) this.#presence.set(bare, (resources = new Map()));
      resources.set(p.from, p.caps?.ver);
    } else {
      resources?.delete(p.from);
    }
    this.emit('presence', { from: p.from, type: p.type });
  }

  #onMessage(stanza: Element): void {
    const from = stanza.attrs['from'] ?? '';
    const root = this.#roots().find((r) => r.pubsubJid === from);
    if (root) {
      const ev = parseEvent(stanza);
      if (!ev || ev.node !== CATALOG_NODE) return;
      for (const id of ev.retracted) if (`${id}@${root.domain}` !== this.jid) this.#catalog.delete(`${id}@${root.domain}`);
      for (const item of ev.items) {
        if (`${item.id}@${root.domain}` === this.jid) continue;
        void this.#acceptCatalogItem(item.id, item.payload, root);
      }
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
    if (sender.local === '' || !this.#isRootDomain(sender.domain)) {
      throw xmppError('XMPP_UNTRUSTED', `request from '${from}' is not from a gateway of the roots '${this.#roots().map((r) => r.domain).join("', '")}'`);
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
    this.#xmpp.iqCallee.set(ns, name, (ctx) => handler(ctx.element, ctx.stanza.attrs['from'] ?? ''));
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
    const timeout = timeoutMs ?? this.#opt.iqTimeoutMs ?? DEFAULTS.iqTimeoutMs;
    try {
      // Our own timer, not xmpp.js's: when its timeout and a late answer race, xmpp.js can
      // reject a promise nobody awaits any more. The request stays registered a while longer,
      // so a late answer is consumed here and reported as a warning.
      const id = randomUUID();
      const pending = this.#xmpp.iqCaller.request(xml('iq', { type, to, id }, child), timeout + LATE_ANSWER_MS);
      // @xmpp/iq 0.14 registers the request's promise, then awaits the socket write before it
      // listens to that promise: an error answer arriving in between (a server answering
      // service-unavailable at once) rejects it with no listener — an unhandled rejection,
      // although `pending` below still carries the error to us. Listen from the start.
      this.#xmpp.iqCaller.handlers.get(id)?.promise.catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          pending.catch((late: unknown) => this.#warn(this.#asError(late, `late answer from '${to ?? 'server'}'`)));
          reject(Object.assign(new Error(`no answer within ${timeout} ms`), { name: 'TimeoutError' }));
        }, timeout);
      });
      try {
        return await Promise.race([pending, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      const e = err as { name?: string; element?: Element; condition?: string };
      if (e.element !== undefined && e.condition !== undefined) {
        const info = parseStanzaError(e.element);
        const condition = info.condition;
        throw xmppError('XMPP_STANZA_ERROR', `'${to ?? 'server'}' answered '${condition}'${info.text ? `: ${info.text}` : ''}`, {
          cause: err,
          retryable: info.type === 'wait',
          details: { condition, type: info.type, text: info.text, application: info.application, to },
        });
      }
      if (e.name === 'TimeoutError') {
        throw xmppError('XMPP_TIMEOUT', `no answer from '${to ?? 'server'}' within ${timeout} ms`, { cause: err, details: { to, timeoutMs: timeout } });
      }
      throw this.#asError(err, `iq to '${to ?? 'server'}' failed`);
    }
  }

  #requireOnline(): void {
    if (!this.online) throw xmppError('XMPP_NOT_CONNECTED', `session of '${this.cloudId}' is not online (status '${this.#xmpp.status}')`);
  }

  async #audit(record: ControlPlaneAuditRecord): Promise<void> {
    try {
      await this.#opt.trust.audit(record);
    } catch (err) {
      this.#warn(this.#asError(err, `audit of '${record.action}' failed`));
    }
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

  #connectError(err: unknown): IntercloudError {
    if (err instanceof IntercloudError) return err;
    const e = err as { code?: string; name?: string; condition?: string; message?: string };
    if (e.name === 'SASLError') {
      return xmppError('XMPP_AUTH', `login of '${this.jid}' refused: ${messageOf(err)}`, { cause: err, details: { condition: e.condition } });
    }
    if (typeof e.code === 'string' && (e.code.startsWith('ERR_TLS') || e.code.includes('CERT') || e.code.startsWith('ERR_SSL'))) {
      return xmppError('XMPP_TLS', `tls with the xmpp server failed: ${messageOf(err)}`, { cause: err, details: { code: e.code } });
    }
    const what = messageOf(err) || (e.name === 'TimeoutError' ? 'timed out' : String(e.name ?? 'unknown error'));
    return xmppError('XMPP_CONNECT', `xmpp server '${this.#opt.service}' failed: ${what}`, {
      cause: err,
      details: { code: e.code, condition: e.condition },
    });
  }
}

/** Maps a trust verification error code to the reject reason we send. */
export function trustReason(code: string): RejectReason {
  switch (code) {
    case 'TRUST_MESSAGE_EXPIRED':
      return 'expired';
    case 'TRUST_MESSAGE_NOT_YET_VALID':
      return 'clock-skew';
    case 'TRUST_MESSAGE_REPLAYED':
      return 'replayed';
    case 'TRUST_MESSAGE_MALFORMED':
      return 'malformed';
    case 'TRUST_REPLAY_CACHE_FULL':
      // The sender's own replay store is full: it sent more than its share (finding 6).
      return 'policy';
    default:
      return 'untrusted';
  }
}
