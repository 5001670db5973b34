/**
 * The Map-Server / Map-Resolver logic (RFC 9301 §4, §8), without sockets: push a
 * datagram and the current time in, get the datagrams to send back and what happened.
 * `map-server-udp.ts` runs it on a UDP socket.
 *
 * - Map-Register (RFC 9301 §5.6, §8.2): authenticated with the site whose Key ID and key
 *   verify the HMAC; every EID prefix must lie inside the site's allowed prefixes; a record
 *   with TTL 0 withdraws the prefix; a Map-Notify answers when the M bit asks for it.
 *   Registrations time out after 3 minutes without refresh, or after the Record TTL when
 *   the T bit is set. Rejected registrations get no answer (RFC 9301 §5.6).
 * - Map-Request, bare or inside an Encapsulated Control Message (RFC 9301 §5.2, §5.8):
 *   answered with a proxy Map-Reply from the registrations (longest match; the newest
 *   registration of a prefix wins while two sites hold it during a move), or a negative
 *   Map-Reply for an unregistered EID.
 * - When a site registers a prefix another site holds (a VM moved), the old site gets an
 *   unsolicited Map-Notify with the new mapping, signed with its key and retransmitted until
 *   its Map-Notify-Ack arrives (RFC 9301 §5.7; `tick`).
 * - Map-Notify-Ack (RFC 9301 §5.7): verified, and clears the unsolicited Map-Notify it answers.
 */
import { addressBits, afiOf, formatPrefix, parsePrefix, prefixContains, type EidPrefix } from './address.js';
import { verifyAuthData } from './auth.js';
import { decodeLispMessage, encodeLispMessage } from './codec.js';
import { MAP_REPLY_ACTION, NEGATIVE_MAP_REPLY_TTL_MINUTES, REGISTRATION_TIMEOUT_SECONDS } from './constants.js';
import { lispError, type LispError } from './errors.js';
import type { AuthenticatedMessage, LispMessage, MapReply, MapRequest, MappingRecord } from './messages.js';
import { randomBytes } from 'node:crypto';
import { isIntercloudError } from '../errors/index.js';

/** A UDP peer. */
export interface Endpoint {
  address: string;
  port: number;
}

/** A site: the parties allowed to register a set of EID prefixes with one shared key (RFC 9301 §8.2). */
export interface SiteConfig {
  /** A name for logs and lookups (e.g. the cloud id). */
  name: string;
  /** RFC 9301 8-bit Key ID. */
  keyId: number;
  /** The shared key. */
  key: string | Buffer;
  /** EID prefixes the site may register (`10.0.0.0/8`, `2001:db8::/32`). */
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
  /** When this site first registered the prefix (ms since the epoch); the newest one wins lookups. */
  since: number;
  /** When the registration lapses without a refresh (ms since the epoch). */
  expiresAt: number;
}

/** What one datagram did, for the daemon's logs and metrics. */
export type MapServerEvent =
  | { kind: 'registered'; site: string; eids: string[]; notified: boolean; from: Endpoint }
  | { kind: 'withdrawn'; site: string; eids: string[]; from: Endpoint }
  | { kind: 'map-request'; eids: string[]; found: number; replyTo: Endpoint }
  | { kind: 'map-notify-ack'; site: string; nonce: bigint; from: Endpoint; acknowledged: boolean }
  | { kind: 'mapping-moved'; eids: string[]; from: string; to: string; notified: Endpoint }
  | { kind: 'notify-retransmitted'; site: string; eids: string[]; to: Endpoint; attempt: number }
  | { kind: 'notify-unacknowledged'; site: string; eids: string[]; to: Endpoint }
  | { kind: 'rejected'; error: LispError; from: Endpoint };

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
  /** Overrides RFC 9301's 3-minute registration timeout (seconds), e.g. for tests. */
  registrationTimeoutSeconds?: number;
  /** Nonces of unsolicited Map-Notifies; default: 64 random bits. */
  nonce?: () => bigint;
  /** Wait before retransmitting an unacknowledged unsolicited Map-Notify (ms, default 3000). */
  notifyRetransmitMs?: number;
  /** Retransmissions of an unsolicited Map-Notify before giving up (default 3). */
  notifyRetries?: number;
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

/** The Map-Server/Map-Resolver state machine. Not thread-safe; one instance per socket. */
export class MapServerCore {
  private readonly sites: Site[];
  private readonly timeoutMs: number;
  /** prefix text → site name → registration. */
  private readonly table = new Map<string, Map<string, Registration>>();
  /** Unsolicited Map-Notifies by nonce, until acknowledged or given up. */
  private readonly pending = new Map<bigint, PendingNotify>();
  private readonly nonce: () => bigint;
  private readonly retransmitMs: number;
  private readonly notifyRetries: number;

  constructor(options: MapServerOptions) {
    this.sites = resolveSites(options.sites);
    this.timeoutMs = (options.registrationTimeoutSeconds ?? REGISTRATION_TIMEOUT_SECONDS) * 1000;
    this.nonce = options.nonce ?? (() => randomBytes(8).readBigUInt64BE(0));
    this.retransmitMs = options.notifyRetransmitMs ?? 3000;
    this.notifyRetries = options.notifyRetries ?? 3;
  }

  /** Handles one datagram received from `from` at time `now` (ms). Never throws for bad input. */
  handle(datagram: Buffer, from: Endpoint, now: number): HandleResult {
    try {
      const message = decodeLispMessage(datagram);
      switch (message.type) {
        case 'map-register':
          return this.onMapRegister(datagram, message, from, now);
        case 'map-notify-ack': {
          const site = this.authenticate(datagram, message);
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
        return { replies: [], event: { kind: 'rejected', error: err as LispError, from } };
      }
      throw err;
    }
  }

  /** Finds the site whose key verifies the message (RFC 9301 §5.6 Key ID + HMAC). */
  private authenticate(datagram: Buffer, m: AuthenticatedMessage): Site {
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

  private onMapRegister(datagram: Buffer, m: Extract<LispMessage, { type: 'map-register' }>, from: Endpoint, now: number): HandleResult {
    const site = this.authenticate(datagram, m);
    for (const r of m.records) {
      if (!site.allowedPrefixes.some((p) => prefixContains(p, r.eid))) {
        throw lispError('LISP_EID_NOT_ALLOWED', `site '${site.name}' may not register '${formatPrefix(r.eid)}'`, {
          details: { site: site.name, eid: formatPrefix(r.eid), allowed: site.allowedPrefixes.map(formatPrefix) },
        });
      }
    }
    const registered: string[] = [];
    const withdrawn: string[] = [];
    const replies: HandleResult['replies'] = [];
    const moved: Array<{ from: Registration; record: MappingRecord }> = [];
    for (const r of m.records) {
      const key = formatPrefix(r.eid);
      if (r.ttl === 0) {
        // A Record TTL of 0 removes the mapping (RFC 9301 §5.4): the registration is withdrawn.
        const bySite = this.table.get(key);
        bySite?.delete(site.name);
        if (bySite?.size === 0) this.table.delete(key);
        withdrawn.push(key);
        continue;
      }
      // RFC 9301 §8.2 / §5.6 T bit: timeout is 3 minutes, or the Record TTL (minutes) when T is set.
      const timeout = m.useTtlForTimeout ? r.ttl * 60_000 : this.timeoutMs;
      let bySite = this.table.get(key);
      if (!bySite) this.table.set(key, (bySite = new Map()));
      const prev = bySite.get(site.name);
      if (!prev) {
        for (const other of bySite.values()) if (other.site !== site.name && other.expiresAt > now) moved.push({ from: other, record: r });
      }
      bySite.set(site.name, { eid: r.eid, site: site.name, record: r, from, algorithmId: m.algorithmId, since: prev?.since ?? now, expiresAt: now + timeout });
      registered.push(key);
    }
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
      movedEvents.push({ kind: 'mapping-moved', eids, from: old.site, to: site.name, notified: old.from });
    }
    const event: MapServerEvent = registered.length > 0 || withdrawn.length === 0
      ? { kind: 'registered', site: site.name, eids: registered, notified: m.wantMapNotify, from }
      : { kind: 'withdrawn', site: site.name, eids: withdrawn, from };
    return { replies, event, ...(movedEvents.length > 0 ? { also: movedEvents } : {}) };
  }

  private onMapRequest(m: MapRequest, replyTo: Endpoint, now: number): HandleResult {
    this.expire(now);
    let found = 0;
    const records: MappingRecord[] = m.records.map((eid) => {
      const reg = this.lookup(eid, now);
      if (reg) {
        found++;
        return { ...reg.record, authoritative: true };
      }
      // RFC 9301 §5.4 negative Map-Reply: no locators, an action, a TTL of 15 minutes.
      const inSite = this.sites.some((s) => s.allowedPrefixes.some((p) => prefixContains(p, eid)));
      return {
        ttl: inSite ? 1 : NEGATIVE_MAP_REPLY_TTL_MINUTES, eid, authoritative: true, mapVersion: 0, locators: [],
        action: inSite ? MAP_REPLY_ACTION.sendMapRequest : MAP_REPLY_ACTION.nativelyForward,
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

  /** Drops registrations that were not refreshed in time; returns them. */
  expire(now: number): Registration[] {
    const gone: Registration[] = [];
    for (const [key, bySite] of this.table) {
      for (const [site, reg] of bySite) {
        if (reg.expiresAt <= now) { bySite.delete(site); gone.push(reg); }
      }
      if (bySite.size === 0) this.table.delete(key);
    }
    return gone;
  }

  /** Every live registration (for `status` and tests). */
  registrations(now: number): Registration[] {
    return [...this.table.values()].flatMap((m) => [...m.values()]).filter((r) => r.expiresAt > now);
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

/** A host prefix (/32 or /128) for a VM address. */
export function hostPrefix(address: string): EidPrefix {
  return parsePrefix(`${address}/${addressBits(afiOf(address))}`);
}
