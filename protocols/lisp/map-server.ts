/**
 * The Map-Server / Map-Resolver logic (RFC 9301 §4, §8), without sockets: push a
 * datagram and the current time in, get the datagrams to send back and what happened.
 * `map-server-udp.ts` runs it on a UDP socket.
 *
 * Who may register what (the Intercloud's rule: a certified peer touches only what it holds):
 * - A site registers only prefixes inside the prefixes it was granted (its config), and never
 *   one that overlaps a live registration of another site (LISP_EID_HELD): an EID moves
 *   between sites only when its holder withdraws it, or when the holder signed a hand-over
 *   under the Intercloud Root that the new site presented (`eid-hand-over`, checked against
 *   the Root CA and CRL). A prefix received by hand-over stays the new site's while its
 *   registration lives; its withdrawal or lapse returns it to the sites whose grant covers it.
 * - Map-Register (RFC 9301 §5.6, §8.2): authenticated with the site whose Key ID and key
 *   verify the HMAC; its nonce must be above the last one the site used and carry a time
 *   within the window of the server's clock (RFC 9301 §5.6: the nonce increases with every
 *   Map-Register and protects against replays), else LISP_STALE_NONCE. A record with TTL 0
 *   or no locators withdraws the prefix; a Map-Notify answers when the M bit asks for it.
 *   Registrations time out after 3 minutes without refresh, or after the Record TTL when
 *   the T bit is set. Rejected registrations get no answer (RFC 9301 §5.6).
 * - Map-Request, bare or inside an Encapsulated Control Message (RFC 9301 §5.2, §5.8):
 *   answered with a proxy Map-Reply from the registrations (longest match) with the A bit and
 *   every locator's L bit clear (RFC 9301 §5.4: a Map-Server proxy-replying is not the
 *   authoritative ETR, and the locators are not local to it), or a negative Map-Reply
 *   covering the least-specific prefix that overlaps no registered or configured EID space.
 * - When a prefix moves to another site (by hand-over), the old site gets an unsolicited
 *   Map-Notify with the new mapping, signed with its key and retransmitted until its
 *   Map-Notify-Ack arrives (RFC 9301 §5.7; `tick`).
 * - Map-Notify-Ack (RFC 9301 §5.7): verified, and clears the unsolicited Map-Notify it answers.
 *
 * State is bounded: one last nonce per site, hand-overs per site up to a limit, each
 * forgotten at its expiry.
 */
import {
  addressBits, addressToBytes, afiOf, bytesToAddress, formatPrefix, hostPrefix, maskBytes, negativePrefix, parsePrefix, prefixContains,
  prefixesOverlap, type EidPrefix,
} from './address.js';
import { verifyAuthData } from './auth.js';
import { decodeLispMessage, encodeLispMessage } from './codec.js';
import {
  MAP_REPLY_ACTION, NEGATIVE_MAP_REPLY_TTL_MINUTES, REGISTER_NONCE_WINDOW_SECONDS, REGISTRATION_TIMEOUT_SECONDS,
} from './constants.js';
import { lispError, type LispError } from './errors.js';
import { verifyEidHandOver } from './hand-over.js';
import type {
  EidHandOverMessage, MapRegister, MapReply, MapRequest, MappingRecord, SiteAuthenticatedMessage,
} from './messages.js';
import { nonceTimeMs } from './nonce.js';
import { randomBytes } from 'node:crypto';
import { isIntercloudError } from '../errors/index.js';
import { DEFAULT_CLOCK_SKEW_MS, type Certificate, type Crl } from '../trust/index.js';

export { hostPrefix };

/** A UDP peer. */
export interface Endpoint {
  address: string;
  port: number;
}

/** A site: the parties allowed to register a set of EID prefixes with one shared key (RFC 9301 §8.2). */
export interface SiteConfig {
  /** A name for logs and lookups: the cloud id, as its certificate names it (hand-overs name sites by it). */
  name: string;
  /** RFC 9301 8-bit Key ID. */
  keyId: number;
  /** The shared key. */
  key: string | Buffer;
  /** EID prefixes granted to the site (`10.0.0.0/9`, `2001:db8:a::/48`). */
  allowedPrefixes: string[];
}

/** One live registration. */
export interface Registration {
  /** The registered prefix. */
  eid: EidPrefix;
  /** The site that registered it. */
  site: string;
  /** The mapping record as registered (locators, TTL). */
  record: MappingRecord;
  /** Where the last Map-Register came from. */
  from: Endpoint;
  /** The Algorithm ID the site used (an unsolicited Map-Notify to it uses the same). */
  algorithmId: number;
  /** When this site first registered the prefix (ms since the epoch). */
  since: number;
  /** When the registration lapses without a refresh (ms since the epoch). */
  expiresAt: number;
  /** The hand-over it came by (`from` site and offer), when the prefix is outside the site's grant or was held by another. */
  handedOverBy?: { site: string; offerId: string };
}

/** What one datagram did, for the daemon's logs and metrics. */
export type MapServerEvent =
  | { kind: 'registered'; site: string; eids: string[]; notified: boolean; from: Endpoint }
  | { kind: 'withdrawn'; site: string; eids: string[]; from: Endpoint }
  | { kind: 'map-request'; eids: string[]; found: number; replyTo: Endpoint }
  | { kind: 'map-notify-ack'; site: string; nonce: bigint; from: Endpoint; acknowledged: boolean }
  | { kind: 'hand-over-accepted'; site: string; eids: string[]; from: string; offerId: string; expiresAt: string }
  | { kind: 'mapping-moved'; eids: string[]; from: string; to: string; notified: Endpoint; offerId?: string }
  | { kind: 'notify-retransmitted'; site: string; eids: string[]; to: Endpoint; attempt: number }
  | { kind: 'notify-unacknowledged'; site: string; eids: string[]; to: Endpoint }
  | { kind: 'rejected'; error: LispError; from: Endpoint; site?: string };

/** The result of {@link MapServerCore.handle}. */
export interface HandleResult {
  /** Datagrams to send. */
  replies: Array<{ to: Endpoint; data: Buffer }>;
  event: MapServerEvent;
  /** Further events of the same datagram (e.g. `mapping-moved`). */
  also?: MapServerEvent[];
}

/** Options of a {@link MapServerCore}. */
export interface MapServerOptions {
  sites: SiteConfig[];
  /**
   * The Intercloud Root (and its CRLs) that hand-overs must be signed under. Without it,
   * every hand-over is refused and EIDs move only by withdrawal.
   */
  trust?: { roots: readonly Certificate[]; crls?: readonly Crl[]; clockSkewMs?: number };
  /** Overrides RFC 9301's 3-minute registration timeout (seconds), e.g. for tests. */
  registrationTimeoutSeconds?: number;
  /** How far a Map-Register nonce's time may be from the server's clock (seconds, default 120). */
  nonceWindowSeconds?: number;
  /** Most hand-overs held for one site at once (default 1024); more are refused until some expire. */
  maxHandOversPerSite?: number;
  /** Nonces of unsolicited Map-Notifies; default: 64 random bits. */
  nonce?: () => bigint;
  /** Wait before retransmitting an unacknowledged unsolicited Map-Notify (ms, default 3000). */
  notifyRetransmitMs?: number;
  /** Retransmissions of an unsolicited Map-Notify before giving up (default 3). */
  notifyRetries?: number;
}

/**
 * What a map server must not forget across a restart (JSON): who holds which prefix (a prefix
 * received by hand-over is outside the holder's grant, so its refreshes would be refused), each
 * site's last nonce (so a Map-Register captured before the restart stays a replay), and the
 * unused and used hand-overs.
 */
export interface MapServerSnapshot {
  v: 1;
  registrations: Array<Omit<Registration, 'eid'> & { eid: string }>;
  lastNonces: Record<string, string>;
  grants: Array<Omit<HandOverGrant, 'eid'> & { eid: string }>;
  seenHandOvers: Array<{ id: string; to: string; expiresAt: number }>;
}

/** An unsolicited Map-Notify waiting for its Map-Notify-Ack. */
interface PendingNotify {
  site: string;
  to: Endpoint;
  data: Buffer;
  eids: string[];
  sent: number;
  nextAt: number;
}

/** An accepted hand-over: `to` may register `eid` (held by `from`) until `expiresAt`. */
interface HandOverGrant {
  id: string;
  eid: EidPrefix;
  from: string;
  to: string;
  offerId: string;
  expiresAt: number;
}

interface Site extends Omit<SiteConfig, 'allowedPrefixes'> {
  allowedPrefixes: EidPrefix[];
}

/** Validates site configs; throws LISP_CONFIG with the offending site. */
function resolveSites(sites: SiteConfig[]): Site[] {
  const names = new Set<string>();
  return sites.map((s) => {
    if (!s.name || names.has(s.name)) throw lispError('LISP_CONFIG', `site name '${s.name}' is empty or repeated`);
    names.add(s.name);
    if (!Number.isInteger(s.keyId) || s.keyId < 0 || s.keyId > 255) {
      throw lispError('LISP_CONFIG', `site '${s.name}' key id '${s.keyId}' is not 0–255 (rfc 9301 8-bit key id)`);
    }
    if (s.key.length === 0) throw lispError('LISP_CONFIG', `site '${s.name}' has an empty key`);
    try {
      return { ...s, allowedPrefixes: s.allowedPrefixes.map(parsePrefix) };
    } catch (err) {
      throw lispError('LISP_CONFIG', `site '${s.name}' has an invalid allowed prefix`, { cause: err });
    }
  });
}

/** A record with TTL 0 or no locators withdraws its prefix (RFC 9301 §5.4, §8.2): nothing is left to serve. */
function isWithdrawal(r: MappingRecord): boolean {
  return r.ttl === 0 || r.locators.length === 0;
}

/** The Map-Server/Map-Resolver state machine. Not thread-safe; one instance per socket. */
export class MapServerCore {
  private readonly sites: Site[];
  private readonly timeoutMs: number;
  private readonly nonceWindowMs: number;
  private readonly maxHandOvers: number;
  private readonly trust: MapServerOptions['trust'];
  /** prefix text → site name → registration (one site per prefix, but a move is visible while it happens). */
  private readonly table = new Map<string, Map<string, Registration>>();
  /** Mask lengths ever registered (so a covering registration is found in a few lookups). */
  private readonly maskLengths = new Set<number>();
  /** Unsolicited Map-Notifies by nonce, until acknowledged or given up. */
  private readonly pending = new Map<bigint, PendingNotify>();
  /** RFC 9301 §5.6: the last Map-Register (or hand-over) nonce accepted from each site. */
  private readonly lastNonce = new Map<string, bigint>();
  /** Accepted hand-overs, by receiving site, until used or expired. */
  private readonly grants = new Map<string, HandOverGrant[]>();
  /** Hand-over ids (signer + envelope nonce) already accepted, until their expiry: a replay is refused. */
  private readonly seenHandOvers = new Map<string, { to: string; expiresAt: number }>();
  private readonly nonce: () => bigint;
  private readonly retransmitMs: number;
  private readonly notifyRetries: number;
  /** True when state worth a {@link snapshot} changed since the last one. */
  dirty = false;

  constructor(options: MapServerOptions) {
    this.sites = resolveSites(options.sites);
    this.timeoutMs = (options.registrationTimeoutSeconds ?? REGISTRATION_TIMEOUT_SECONDS) * 1000;
    this.nonceWindowMs = (options.nonceWindowSeconds ?? REGISTER_NONCE_WINDOW_SECONDS) * 1000;
    this.maxHandOvers = options.maxHandOversPerSite ?? 1024;
    this.trust = options.trust;
    this.nonce = options.nonce ?? (() => randomBytes(8).readBigUInt64BE(0));
    this.retransmitMs = options.notifyRetransmitMs ?? 3000;
    this.notifyRetries = options.notifyRetries ?? 3;
  }

  /** Handles one datagram received from `from` at time `now` (ms). Never throws for bad input. */
  handle(datagram: Buffer, from: Endpoint, now: number): HandleResult {
    let site: Site | undefined;
    try {
      const message = decodeLispMessage(datagram);
      switch (message.type) {
        case 'map-register':
          site = this.authenticate(datagram, message);
          this.checkNonce(site, message.nonce, now);
          return this.onMapRegister(site, message, from, now);
        case 'eid-hand-over':
          site = this.authenticate(datagram, message);
          return this.onHandOver(site, message, from, now);
        case 'map-notify-ack': {
          site = this.authenticate(datagram, message);
          const p = this.pending.get(message.nonce);
          const acknowledged = p !== undefined && p.site === site.name;
          if (acknowledged) this.pending.delete(message.nonce);
          return { replies: [], event: { kind: 'map-notify-ack', site: site.name, nonce: message.nonce, from, acknowledged } };
        }
        case 'map-request':
          return this.onMapRequest(message, from, now);
        case 'encapsulated-control-message':
          if (message.message.type !== 'map-request') {
            throw lispError('LISP_UNKNOWN_TYPE', `encapsulated '${message.message.type}' is not handled by a map resolver`, {
              details: { type: message.message.type },
            });
          }
          // RFC 9301 §5.8: the Map-Reply goes to an ITR-RLOC, at the inner UDP source port.
          return this.onMapRequest(message.message, { address: replyAddress(message.message, from), port: message.inner.sourcePort }, now);
        default:
          throw lispError('LISP_UNKNOWN_TYPE', `a map server does not take '${message.type}' messages`, { details: { type: message.type } });
      }
    } catch (err) {
      if (isIntercloudError(err) && err.code.startsWith('LISP_')) {
        return { replies: [], event: { kind: 'rejected', error: err as LispError, from, ...(site ? { site: site.name } : {}) } };
      }
      throw err;
    }
  }

  /** Finds the site whose key verifies the message (RFC 9301 §5.6 Key ID + HMAC). */
  private authenticate(datagram: Buffer, m: SiteAuthenticatedMessage): Site {
    const candidates = this.sites.filter((s) => s.keyId === m.keyId);
    if (candidates.length === 0) {
      throw lispError('LISP_UNKNOWN_KEY_ID', `no site has key id '${m.keyId}'`, { details: { keyId: m.keyId, nonce: m.nonce.toString(16) } });
    }
    let last: unknown;
    for (const site of candidates) {
      try {
        verifyAuthData(datagram, m.algorithmId, site.key, { keyId: m.keyId });
        return site;
      } catch (err) {
        last = err;
        if (!isIntercloudError(err, 'LISP_BAD_HMAC')) throw err;
      }
    }
    throw last;
  }

  /**
   * RFC 9301 §5.6: the nonce increases with every Map-Register a site sends; a Map-Server
   * refuses one that does not (a replay), and one whose time is outside the window (stale,
   * e.g. captured before this server restarted). Remembered once authentic.
   */
  private checkNonce(site: Site, nonce: bigint, now: number): void {
    const sentAt = nonceTimeMs(nonce);
    const last = this.lastNonce.get(site.name);
    const details = (): Record<string, unknown> => ({
      site: site.name, nonce: `0x${nonce.toString(16)}`, sentAt: new Date(sentAt).toISOString(), windowMs: this.nonceWindowMs,
    });
    if (Math.abs(sentAt - now) > this.nonceWindowMs) {
      throw lispError('LISP_STALE_NONCE', `site '${site.name}' sent a nonce dated '${new Date(sentAt).toISOString()}', outside ${this.nonceWindowMs / 1000} s of now`, { details: details() });
    }
    if (last !== undefined && nonce <= last) {
      throw lispError('LISP_STALE_NONCE', `site '${site.name}' sent nonce '0x${nonce.toString(16)}', not above its last '0x${last.toString(16)}' (a replay)`, {
        details: { ...details(), last: `0x${last.toString(16)}` },
      });
    }
    this.lastNonce.set(site.name, nonce);
    this.dirty = true;
  }

  private grantFor(site: string, eid: EidPrefix, now: number): HandOverGrant | undefined {
    const key = formatPrefix(eid);
    return this.grants.get(site)?.find((g) => g.expiresAt > now && formatPrefix(g.eid) === key);
  }

  /**
   * Live registrations of sites other than `site` that overlap `eid`: those covering it are
   * found by one table lookup per shorter mask; more specific ones (only when `eid` is not a
   * host prefix) by a scan.
   */
  private heldByOthers(site: string, eid: EidPrefix, now: number): Registration[] {
    const out: Registration[] = [];
    const keep = (reg: Registration): void => { if (reg.site !== site && reg.expiresAt > now) out.push(reg); };
    const bytes = addressToBytes(eid.address);
    for (const len of this.maskLengths) {
      if (len > eid.maskLength) continue;
      for (const reg of this.table.get(`${bytesToAddress(maskBytes(bytes, len))}/${len}`)?.values() ?? []) keep(reg);
    }
    if (eid.maskLength < addressBits(afiOf(eid.address))) {
      for (const bySite of this.table.values()) {
        for (const reg of bySite.values()) if (reg.eid.maskLength > eid.maskLength && prefixesOverlap(reg.eid, eid)) keep(reg);
      }
    }
    return out;
  }

  /** The site's own live registration of exactly `eid`. */
  private own(site: string, eid: EidPrefix, now: number): Registration | undefined {
    const reg = this.table.get(formatPrefix(eid))?.get(site);
    return reg && reg.expiresAt > now ? reg : undefined;
  }

  /**
   * Whether `site` may register `eid` now, and by which right: its own live registration
   * (a refresh), a hand-over it presented (the holder's live registrations step aside), or
   * its grant when no other site holds the space. Throws LISP_EID_HELD / LISP_EID_NOT_ALLOWED.
   */
  private rightTo(site: Site, eid: EidPrefix, now: number): { grant?: HandOverGrant; displaced: Registration[] } {
    if (this.own(site.name, eid, now)) return { displaced: [] };
    const grant = this.grantFor(site.name, eid, now);
    const others = this.heldByOthers(site.name, eid, now);
    if (grant) {
      const blocking = others.filter((r) => r.site !== grant.from);
      if (blocking.length === 0) return { grant, displaced: others.filter((r) => formatPrefix(r.eid) === formatPrefix(eid)) };
      others.splice(0, others.length, ...blocking);
    }
    if (others.length > 0) {
      throw lispError('LISP_EID_HELD', `site '${site.name}' may not register '${formatPrefix(eid)}': site '${others[0]!.site}' holds '${formatPrefix(others[0]!.eid)}'`, {
        details: { site: site.name, eid: formatPrefix(eid), holder: others[0]!.site, held: formatPrefix(others[0]!.eid) },
      });
    }
    if (!site.allowedPrefixes.some((p) => prefixContains(p, eid))) {
      throw lispError('LISP_EID_NOT_ALLOWED', `site '${site.name}' may not register '${formatPrefix(eid)}'`, {
        details: { site: site.name, eid: formatPrefix(eid), allowed: site.allowedPrefixes.map(formatPrefix) },
      });
    }
    return { displaced: [] };
  }

  private onMapRegister(site: Site, m: MapRegister, from: Endpoint, now: number): HandleResult {
    // Every record is checked before any is applied: a refused message changes nothing.
    const rights = m.records.map((r) => (isWithdrawal(r) ? undefined : this.rightTo(site, r.eid, now)));
    const registered: string[] = [];
    const withdrawn: string[] = [];
    const replies: HandleResult['replies'] = [];
    const moved: Array<{ from: Registration; record: MappingRecord; offerId?: string }> = [];
    m.records.forEach((r, i) => {
      const key = formatPrefix(r.eid);
      const right = rights[i];
      if (!right) {
        // RFC 9301 §5.4/§8.2: a record with TTL 0 (or without locators) withdraws the prefix.
        // Only the sender's own registration goes; withdrawing what one does not hold is a no-op.
        const bySite = this.table.get(key);
        bySite?.delete(site.name);
        if (bySite?.size === 0) this.table.delete(key);
        withdrawn.push(key);
        return;
      }
      // RFC 9301 §8.2 / §5.6 T bit: timeout is 3 minutes, or the Record TTL (minutes) when T is set.
      const timeout = m.useTtlForTimeout ? r.ttl * 60_000 : this.timeoutMs;
      let bySite = this.table.get(key);
      if (!bySite) this.table.set(key, (bySite = new Map()));
      this.maskLengths.add(r.eid.maskLength);
      const prev = bySite.get(site.name);
      for (const old of right.displaced) {
        this.table.get(formatPrefix(old.eid))?.delete(old.site);
        moved.push({ from: old, record: r, ...(right.grant ? { offerId: right.grant.offerId } : {}) });
      }
      if (right.grant) this.useGrant(right.grant);
      const handedOverBy = right.grant ? { site: right.grant.from, offerId: right.grant.offerId } : prev?.handedOverBy;
      bySite.set(site.name, {
        eid: r.eid, site: site.name, record: r, from, algorithmId: m.algorithmId, since: prev?.since ?? now, expiresAt: now + timeout,
        ...(handedOverBy ? { handedOverBy } : {}),
      });
      registered.push(key);
    });
    if (m.wantMapNotify) {
      // RFC 9301 §5.7: the Map-Notify echoes nonce, key id and records, signed with the same key.
      const notify = encodeLispMessage({
        type: 'map-notify', nonce: m.nonce, keyId: m.keyId, algorithmId: m.algorithmId, authData: Buffer.alloc(0),
        records: m.records, ...(m.xtr ? { xtr: m.xtr } : {}),
      }, { key: site.key });
      replies.push({ to: from, data: notify });
    }
    // RFC 9301 §5.7: an unsolicited Map-Notify tells the site that held a prefix that it now
    // maps elsewhere (a VM moved); it is retransmitted until a Map-Notify-Ack arrives (see tick).
    const movedEvents: MapServerEvent[] = [];
    for (const [, group] of groupBy(moved, (mv) => mv.from.site)) {
      const old = group[0]!.from;
      const oldSite = this.sites.find((x) => x.name === old.site);
      if (!oldSite) continue;
      const nonce = this.nonce();
      const data = encodeLispMessage({
        type: 'map-notify', nonce, keyId: oldSite.keyId, algorithmId: old.algorithmId, authData: Buffer.alloc(0), records: group.map((g) => g.record),
      }, { key: oldSite.key });
      const eids = group.map((g) => formatPrefix(g.record.eid));
      this.pending.set(nonce, { site: old.site, to: old.from, data, eids, sent: 1, nextAt: now + this.retransmitMs });
      replies.push({ to: old.from, data });
      const offerId = group[0]!.offerId;
      movedEvents.push({ kind: 'mapping-moved', eids, from: old.site, to: site.name, notified: old.from, ...(offerId ? { offerId } : {}) });
    }
    this.dirty = true;
    const event: MapServerEvent = registered.length > 0 || withdrawn.length === 0
      ? { kind: 'registered', site: site.name, eids: registered, notified: m.wantMapNotify, from }
      : { kind: 'withdrawn', site: site.name, eids: withdrawn, from };
    return { replies, event, ...(movedEvents.length > 0 ? { also: movedEvents } : {}) };
  }

  private useGrant(grant: HandOverGrant): void {
    const list = this.grants.get(grant.to)?.filter((g) => g !== grant) ?? [];
    if (list.length > 0) this.grants.set(grant.to, list);
    else this.grants.delete(grant.to);
  }

  /**
   * An `eid-hand-over` from `site` (already authenticated by its key): the hand-over must be
   * signed under the Root by the site it names as holder, name this site as receiver, be
   * unexpired and not seen before, and its holder must hold every prefix now (a live
   * registration, or its grant with no other site holding the space). Answered either way
   * (the presenter is authenticated), with the refusal's code.
   */
  private onHandOver(site: Site, m: EidHandOverMessage, from: Endpoint, now: number): HandleResult {
    const answer = (accepted: boolean, code: string): HandleResult['replies'][number] => ({
      to: from,
      data: encodeLispMessage({ type: 'eid-hand-over-answer', nonce: m.nonce, keyId: m.keyId, algorithmId: m.algorithmId, authData: Buffer.alloc(0), accepted, code }, { key: site.key }),
    });
    try {
      this.checkNonce(site, m.nonce, now);
      this.expire(now);
      if (!this.trust) {
        throw lispError('LISP_HAND_OVER_INVALID', 'this map server has no intercloud root configured: it takes no hand-overs', { details: { site: site.name } });
      }
      const h = verifyEidHandOver(m.handOver, { roots: this.trust.roots, ...(this.trust.crls ? { crls: this.trust.crls } : {}), now: new Date(now), ...(this.trust.clockSkewMs === undefined ? {} : { clockSkewMs: this.trust.clockSkewMs }) });
      if (h.to !== site.name) {
        throw lispError('LISP_HAND_OVER_INVALID', `hand-over from '${h.from}' is addressed to '${h.to}', not to the presenting site '${site.name}'`, {
          details: { site: site.name, to: h.to, from: h.from },
        });
      }
      const eids = h.eids.map(parsePrefix);
      const seen = this.seenHandOvers.get(h.id);
      if (seen) {
        // The same site presenting the same hand-over again (its answer was lost) is told again;
        // anything else is a replay.
        const stillThere = seen.to === site.name && eids.every((e) => this.grantFor(site.name, e, now) ?? this.own(site.name, e, now));
        if (!stillThere) {
          throw lispError('LISP_HAND_OVER_INVALID', `hand-over '${h.id}' for offer '${h.offerId}' was already used`, { details: { site: site.name, offerId: h.offerId, replayed: true } });
        }
      } else {
        const holder = this.sites.find((x) => x.name === h.from);
        for (const eid of eids) {
          if (!holder) {
            throw lispError('LISP_HAND_OVER_INVALID', `hand-over names holder '${h.from}', which is not a site of this map server`, { details: { from: h.from } });
          }
          this.assertHolds(holder, eid, site.name, now);
        }
        const list = this.grants.get(site.name) ?? [];
        const seenBySite = [...this.seenHandOvers.values()].filter((v) => v.to === site.name).length;
        if (list.length + eids.length > this.maxHandOvers || seenBySite >= this.maxHandOvers) {
          throw lispError('LISP_HAND_OVER_INVALID', `site '${site.name}' already holds ${list.length} unused and ${seenBySite} remembered hand-overs (at most ${this.maxHandOvers})`, {
            details: { site: site.name, held: list.length, remembered: seenBySite, max: this.maxHandOvers },
          });
        }
        const expiresAt = h.expiresAt.getTime();
        for (const eid of eids) list.push({ id: h.id, eid, from: h.from, to: site.name, offerId: h.offerId, expiresAt });
        this.grants.set(site.name, list);
        // Kept as long as the hand-over could still verify (its expiry plus the clock-skew allowance).
        this.seenHandOvers.set(h.id, { to: site.name, expiresAt: expiresAt + (this.trust.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS) });
      }
      return {
        replies: [answer(true, '')],
        event: { kind: 'hand-over-accepted', site: site.name, eids: h.eids, from: h.from, offerId: h.offerId, expiresAt: h.expiresAt.toISOString() },
      };
    } catch (err) {
      if (!isIntercloudError(err) || !err.code.startsWith('LISP_')) throw err;
      return { replies: [answer(false, err.code)], event: { kind: 'rejected', error: err as LispError, from, site: site.name } };
    }
  }

  /** The holder named by a hand-over must hold `eid`: its live registration covers it, or its grant does and no other site holds it. */
  private assertHolds(holder: Site, eid: EidPrefix, receiver: string, now: number): void {
    const others = this.heldByOthers(holder.name, eid, now).filter((r) => r.site !== receiver || !this.own(receiver, eid, now));
    const registered = [...this.table.values()].some((m) => {
      const reg = m.get(holder.name);
      return reg !== undefined && reg.expiresAt > now && prefixContains(reg.eid, eid);
    });
    const granted = holder.allowedPrefixes.some((p) => prefixContains(p, eid));
    if (others.length > 0 || (!registered && !granted)) {
      throw lispError('LISP_HAND_OVER_INVALID', `site '${holder.name}' does not hold '${formatPrefix(eid)}' and cannot hand it over`, {
        details: { from: holder.name, eid: formatPrefix(eid), ...(others[0] ? { holder: others[0].site } : {}) },
      });
    }
  }

  private onMapRequest(m: MapRequest, replyTo: Endpoint, now: number): HandleResult {
    this.expire(now);
    let found = 0;
    const records: MappingRecord[] = m.records.map((eid) => {
      const reg = this.lookup(eid, now);
      if (reg) {
        found++;
        // RFC 9301 §5.4: a Map-Server proxy-replying MUST NOT set the A bit (it is not the
        // site's ETR), and the L bit is clear on every locator (none is local to the sender).
        return { ...reg.record, authoritative: false, locators: reg.record.locators.map((l) => ({ ...l, local: false })) };
      }
      // RFC 9301 §5.4, §8.1 (RFC 6833 §6.1) negative Map-Reply: no locators, for the
      // least-specific prefix that overlaps no registered or configured EID space.
      // Inside a site's configured space the reply stays within it (and says Send-Map-Request:
      // the EID may be registered soon); outside, it covers only non-LISP space.
      const space = this.sites.flatMap((s) => s.allowedPrefixes).filter((p) => prefixContains(p, eid))
        .sort((a, b) => a.maskLength - b.maskLength)[0];
      const registered = this.registrations(now).map((r) => r.eid);
      const known = space ? registered : [...registered, ...this.sites.flatMap((s) => s.allowedPrefixes)];
      return {
        // RFC 9301 §5.4: the A bit "MAY only be set to 1 by an ETR"; a Map-Resolver is none.
        ttl: space ? 1 : NEGATIVE_MAP_REPLY_TTL_MINUTES, eid: negativePrefix(eid, known, space), authoritative: false, mapVersion: 0, locators: [],
        action: space ? MAP_REPLY_ACTION.sendMapRequest : MAP_REPLY_ACTION.nativelyForward,
      };
    });
    const reply: MapReply = { type: 'map-reply', probe: m.probe, echoNonceCapable: false, security: false, nonce: m.nonce, records };
    return {
      replies: [{ to: replyTo, data: encodeLispMessage(reply) }],
      event: { kind: 'map-request', eids: m.records.map(formatPrefix), found, replyTo },
    };
  }

  /**
   * Retransmits unacknowledged unsolicited Map-Notifies that are due (RFC 9301 §5.7) and gives
   * up on those past their retries. Call it periodically (the UDP runner does, every sweep).
   */
  tick(now: number): HandleResult[] {
    const out: HandleResult[] = [];
    for (const [nonce, p] of this.pending) {
      if (p.nextAt > now) continue;
      if (p.sent > this.notifyRetries) {
        this.pending.delete(nonce);
        out.push({ replies: [], event: { kind: 'notify-unacknowledged', site: p.site, eids: p.eids, to: p.to } });
        continue;
      }
      p.sent++;
      p.nextAt = now + this.retransmitMs;
      out.push({ replies: [{ to: p.to, data: p.data }], event: { kind: 'notify-retransmitted', site: p.site, eids: p.eids, to: p.to, attempt: p.sent } });
    }
    return out;
  }

  /** The registration answering `eid` (longest matching prefix; newest site first), if any. */
  lookup(eid: EidPrefix | string, now: number): Registration | undefined {
    const want = typeof eid === 'string' ? parsePrefix(eid) : eid;
    let best: Registration | undefined;
    for (const bySite of this.table.values()) {
      for (const reg of bySite.values()) {
        if (reg.expiresAt <= now || !prefixContains(reg.eid, want)) continue;
        if (!best || reg.eid.maskLength > best.eid.maskLength || (reg.eid.maskLength === best.eid.maskLength && reg.since > best.since)) {
          best = reg;
        }
      }
    }
    return best;
  }

  /** Drops registrations that were not refreshed in time, and hand-overs past their expiry; returns the registrations. */
  expire(now: number): Registration[] {
    const gone: Registration[] = [];
    for (const [key, bySite] of this.table) {
      for (const [site, reg] of bySite) {
        if (reg.expiresAt <= now) { bySite.delete(site); gone.push(reg); this.dirty = true; }
      }
      if (bySite.size === 0) this.table.delete(key);
    }
    for (const [site, list] of this.grants) {
      const live = list.filter((g) => g.expiresAt > now);
      if (live.length > 0) this.grants.set(site, live);
      else this.grants.delete(site);
    }
    for (const [id, seen] of this.seenHandOvers) if (seen.expiresAt <= now) this.seenHandOvers.delete(id);
    return gone;
  }

  /** Every live registration (for `status` and tests). */
  registrations(now: number): Registration[] {
    return [...this.table.values()].flatMap((m) => [...m.values()]).filter((r) => r.expiresAt > now);
  }

  /** The state to keep across a restart (see {@link MapServerSnapshot}); clears {@link dirty}. */
  snapshot(now: number): MapServerSnapshot {
    this.dirty = false;
    return {
      v: 1,
      registrations: this.registrations(now).map((r) => ({ ...r, eid: formatPrefix(r.eid) })),
      lastNonces: Object.fromEntries([...this.lastNonce].map(([site, n]) => [site, n.toString(16)])),
      grants: [...this.grants.values()].flat().filter((g) => g.expiresAt > now).map((g) => ({ ...g, eid: formatPrefix(g.eid) })),
      seenHandOvers: [...this.seenHandOvers].filter(([, v]) => v.expiresAt > now).map(([id, v]) => ({ id, ...v })),
    };
  }

  /**
   * Takes back a {@link snapshot} (at start, before any datagram): entries of sites no longer
   * configured, and expired ones, are dropped. LISP_CONFIG when it is not a snapshot.
   */
  restore(snap: MapServerSnapshot, now: number): void {
    if (snap?.v !== 1 || !Array.isArray(snap.registrations) || !Array.isArray(snap.grants) || !Array.isArray(snap.seenHandOvers)
      || typeof snap.lastNonces !== 'object' || snap.lastNonces === null) {
      throw lispError('LISP_CONFIG', 'the map server state is not a version 1 snapshot');
    }
    const known = new Set(this.sites.map((x) => x.name));
    try {
      for (const r of snap.registrations) {
        if (!known.has(r.site) || r.expiresAt <= now) continue;
        const eid = parsePrefix(r.eid);
        const key = formatPrefix(eid);
        let bySite = this.table.get(key);
        if (!bySite) this.table.set(key, (bySite = new Map()));
        bySite.set(r.site, { ...r, eid });
        this.maskLengths.add(eid.maskLength);
      }
      for (const [site, n] of Object.entries(snap.lastNonces)) if (known.has(site)) this.lastNonce.set(site, BigInt(`0x${n}`));
      for (const g of snap.grants) {
        if (!known.has(g.to) || g.expiresAt <= now) continue;
        this.grants.set(g.to, [...(this.grants.get(g.to) ?? []), { ...g, eid: parsePrefix(g.eid) }]);
      }
      for (const h of snap.seenHandOvers) if (h.expiresAt > now) this.seenHandOvers.set(h.id, { to: h.to, expiresAt: h.expiresAt });
    } catch (err) {
      throw lispError('LISP_CONFIG', 'the map server state has an invalid entry', { cause: err });
    }
  }
}

/** RFC 9301 §5.2: answer to the first ITR-RLOC of the family we can reach, else the sender. */
function replyAddress(m: MapRequest, from: Endpoint): string {
  const family = afiOf(from.address);
  return m.itrRlocs.find((a) => afiOf(a) === family) ?? from.address;
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    m.set(k, [...(m.get(k) ?? []), it]);
  }
  return m;
}
