/**
 * The agent's side of the mapping system over UDP: a {@link Registrar} that registers the
 * EIDs of hosted VMs with a Map-Server (RFC 9301 §8.2: Map-Register with the M bit, confirmed
 * by an authenticated Map-Notify, refreshed every minute, withdrawn with Record TTL 0), and
 * {@link lookupEid}, a Map-Request in an Encapsulated Control Message to a Map-Resolver
 * (RFC 9301 §5.8). Messages are built with the pure codec; this file only does I/O.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { afiOf, formatPrefix, parsePrefix, type EidPrefix } from './address.js';
import { verifyAuthData } from './auth.js';
import { decodeLispMessage, encodeLispMessage } from './codec.js';
import {
  ALGORITHM_ID, DEFAULT_RECORD_TTL_MINUTES, LISP_CONTROL_PORT, MAP_REGISTER_INTERVAL_SECONDS, type AuthAlgorithm,
} from './constants.js';
import { lispError, type LispError } from './errors.js';
import { hostPrefix } from './address.js';
import type { Locator, LispMessage, MapNotify, MappingRecord } from './messages.js';
import { RegisterNonces } from './nonce.js';
import { isIntercloudError } from '../errors/index.js';

/** Where a Map-Server or Map-Resolver listens. */
export interface ServerAddress {
  host: string;
  /** Default 4342. */
  port?: number;
}

/** How often and how long to retry a request that gets no answer. */
export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** Wait for an answer to the first attempt (ms, default 1000); doubles on every retry. */
  initialTimeoutMs?: number;
  /** Upper bound of the per-attempt wait (ms, default 8000). */
  maxTimeoutMs?: number;
}

/** An RLOC of this cloud with its policy; only `address` is required. */
export type RlocSpec = string | (Partial<Locator> & { address: string });

/** Options of a {@link Registrar}. */
export interface RegistrarOptions extends RetryOptions {
  mapServer: ServerAddress;
  /** RFC 9301 8-bit Key ID of this site's key. */
  keyId: number;
  /** Authentication algorithm (RFC 9301 Algorithm ID 1 or 2). */
  algorithm: AuthAlgorithm;
  /** The site's shared key. */
  key: string | Buffer;
  /** This cloud's RLOCs (priority 1, weight 100 unless given). */
  rlocs: RlocSpec[];
  /** Record TTL (minutes) given to map caches; default 1440 (RFC 9301 §5.4). */
  recordTtlMinutes?: number;
  /** Re-registration period (ms); default 60 s (RFC 9301 §8.2); 0 disables it. */
  refreshIntervalMs?: number;
  /** Told about refresh failures, unsolicited Map-Notifies and ignored datagrams. */
  onEvent?: (event: RegistrarEvent) => void;
  /** Clock for the increasing Map-Register nonces (RFC 9301 §5.6); default Date.now. */
  now?: () => number;
}

/** What a {@link Registrar} does in the background. */
export type RegistrarEvent =
  | { kind: 'refreshed'; eids: string[] }
  | { kind: 'refresh-failed'; eids: string[]; error: LispError }
  | { kind: 'unsolicited-map-notify'; eids: string[]; acked: boolean; released?: string[] }
  | { kind: 'ignored'; error: LispError };

function toLocator(spec: RlocSpec): Locator {
  const s = typeof spec === 'string' ? { address: spec } : spec;
  afiOf(s.address);
  return {
    address: s.address, priority: s.priority ?? 1, weight: s.weight ?? 100, multicastPriority: s.multicastPriority ?? 255,
    multicastWeight: s.multicastWeight ?? 0, local: s.local ?? true, probed: s.probed ?? false, reachable: s.reachable ?? true,
  };
}

/** A random Map-Request nonce (RFC 9301 §5.2). */
function newNonce(): bigint {
  return randomBytes(8).readBigUInt64BE(0);
}

/** A UDP socket connected to one server, with request/answer matching and retries. */
class Channel {
  private waiters = new Set<(msg: Buffer) => boolean>();
  private unmatched?: (msg: Buffer) => void;
  private constructor(readonly socket: Socket, readonly server: { host: string; port: number }) {}

  static async open(server: ServerAddress): Promise<Channel> {
    const port = server.port ?? LISP_CONTROL_PORT;
    const socket = createSocket({ type: isIPv6(server.host) ? 'udp6' : 'udp4' });
    const ch = new Channel(socket, { host: server.host, port });
    socket.on('message', (msg) => {
      for (const w of ch.waiters) if (w(msg)) return;
      ch.unmatched?.(msg);
    });
    // A closed port answers with ICMP unreachable, seen as ECONNREFUSED: the attempt just goes unanswered.
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => reject(lispError('LISP_SOCKET', `cannot open a udp socket to '${server.host}:${port}'`, { cause: err })));
      socket.connect(port, server.host, () => resolve());
    });
    return ch;
  }

  /** The local address the kernel picked (our ITR-RLOC for Map-Replies). */
  local(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  onUnmatched(fn: (msg: Buffer) => void): void {
    this.unmatched = fn;
  }

  send(data: Buffer): void {
    this.socket.send(data);
  }

  /**
   * Sends `data` (or what `data()` builds afresh for each attempt, e.g. with a new nonce)
   * until `match` accepts an answer, waiting `initialTimeoutMs` then doubling;
   * LISP_NO_ANSWER after the last retry. `match` may throw to end the request at once.
   */
  async request<T>(data: Buffer | (() => Buffer), match: (msg: Buffer) => T | undefined, what: string, opts: RetryOptions, signal?: AbortSignal): Promise<T> {
    const retries = opts.retries ?? 3;
    let timeout = opts.initialTimeoutMs ?? 1000;
    const max = opts.maxTimeoutMs ?? 8000;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (signal?.aborted) {
        throw lispError('LISP_NO_ANSWER', `${what} to '${this.server.host}:${this.server.port}' was aborted`, {
          cause: signal.reason, retryable: false, details: { attempts: attempt, aborted: true },
        });
      }
      const bytes = typeof data === 'function' ? data() : data;
      const got = await new Promise<{ value: T } | { error: unknown } | undefined>((resolve) => {
        const waiter = (msg: Buffer): boolean => {
          let v: T | undefined;
          try {
            v = match(msg);
          } catch (err) {
            done({ error: err });
            return true;
          }
          if (v === undefined) return false;
          done({ value: v });
          return true;
        };
        const onAbort = (): void => done(undefined);
        const timer = setTimeout(() => done(undefined), timeout);
        const done = (v: { value: T } | { error: unknown } | undefined): void => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          signal?.removeEventListener('abort', onAbort);
          resolve(v);
        };
        this.waiters.add(waiter);
        signal?.addEventListener('abort', onAbort);
        this.send(bytes);
      });
      if (got && 'error' in got) throw got.error;
      if (got) return got.value;
      timeout = Math.min(max, timeout * 2);
    }
    throw lispError('LISP_NO_ANSWER', `${what} to '${this.server.host}:${this.server.port}' got no answer after ${retries + 1} attempts`, {
      details: { server: `${this.server.host}:${this.server.port}`, attempts: retries + 1 },
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

function tryDecode(msg: Buffer): LispMessage | LispError {
  try {
    return decodeLispMessage(msg);
  } catch (err) {
    if (isIntercloudError(err)) return err as LispError;
    throw err;
  }
}

/**
 * Registers this cloud's VM addresses (EIDs) with a Map-Server and keeps them registered.
 * `register` and `withdraw` resolve only when the Map-Server's authenticated Map-Notify
 * confirms; both are idempotent. Call `close` to stop refreshing (registrations then lapse
 * after the Map-Server's timeout).
 */
export class Registrar {
  private readonly held = new Map<string, EidPrefix>();
  private readonly locators: Locator[];
  private refreshTimer?: NodeJS.Timeout;
  private refreshing = false;
  private readonly nonces = new RegisterNonces();

  private constructor(private readonly opts: RegistrarOptions, private readonly channel: Channel) {
    this.locators = opts.rlocs.map(toLocator);
    if (this.locators.length === 0) throw lispError('LISP_CONFIG', 'a registrar needs at least one rloc');
    channel.onUnmatched((msg) => this.onUnsolicited(msg));
    const every = opts.refreshIntervalMs ?? MAP_REGISTER_INTERVAL_SECONDS * 1000;
    if (every > 0) {
      this.refreshTimer = setInterval(() => void this.refresh(), every);
      this.refreshTimer.unref();
    }
  }

  /** Opens the registrar's socket; LISP_CONFIG for bad options, LISP_SOCKET when it cannot. */
  static async open(opts: RegistrarOptions): Promise<Registrar> {
    if (!Number.isInteger(opts.keyId) || opts.keyId < 0 || opts.keyId > 255) {
      throw lispError('LISP_CONFIG', `key id '${opts.keyId}' is not 0–255 (rfc 9301 8-bit key id)`);
    }
    opts.rlocs.forEach((r) => toLocator(r));
    return new Registrar(opts, await Channel.open(opts.mapServer));
  }

  /** The EID prefixes currently held (registered and refreshed). */
  registered(): string[] {
    return [...this.held.keys()];
  }

  /** Registers host prefixes (/32, /128) for `addresses`; resolves on the confirming Map-Notify. */
  async register(addresses: string[], signal?: AbortSignal): Promise<MapNotify> {
    const eids = addresses.map((a) => (a.includes('/') ? parsePrefix(a) : hostPrefix(a)));
    const notify = await this.send(eids, this.opts.recordTtlMinutes ?? DEFAULT_RECORD_TTL_MINUTES, signal);
    for (const e of eids) this.held.set(formatPrefix(e), e);
    return notify;
  }

  /** Withdraws `addresses` (Record TTL 0) and stops refreshing them; resolves on the Map-Notify. */
  async withdraw(addresses: string[], signal?: AbortSignal): Promise<MapNotify> {
    const eids = addresses.map((a) => (a.includes('/') ? parsePrefix(a) : hostPrefix(a)));
    for (const e of eids) this.held.delete(formatPrefix(e));
    return this.send(eids, 0, signal);
  }

  /** Re-registers everything held (RFC 9301 §8.2 periodic Map-Register); failures go to onEvent. */
  async refresh(): Promise<void> {
    if (this.refreshing || this.held.size === 0) return;
    this.refreshing = true;
    const eids = [...this.held.values()];
    try {
      await this.send(eids, this.opts.recordTtlMinutes ?? DEFAULT_RECORD_TTL_MINUTES);
      this.opts.onEvent?.({ kind: 'refreshed', eids: eids.map(formatPrefix) });
    } catch (err) {
      if (!isIntercloudError(err)) throw err;
      this.opts.onEvent?.({ kind: 'refresh-failed', eids: eids.map(formatPrefix), error: err as LispError });
    } finally {
      this.refreshing = false;
    }
  }

  /** The next Map-Register nonce: increasing (RFC 9301 §5.6), carrying this clock. */
  private nextNonce(): bigint {
    return this.nonces.next((this.opts.now ?? Date.now)());
  }

  private async send(eids: EidPrefix[], ttl: number, signal?: AbortSignal): Promise<MapNotify> {
    if (eids.length === 0 || eids.length > 255) {
      throw lispError('LISP_BAD_FIELD', `a map-register carries 1–255 records, not '${eids.length}'`);
    }
    const records: MappingRecord[] = eids.map((eid) => ({
      ttl, eid, action: 0, authoritative: true, mapVersion: 0, locators: ttl === 0 ? [] : this.locators,
    }));
    const algorithmId = ALGORITHM_ID[this.opts.algorithm];
    // A retransmission is a new Map-Register with a new, higher nonce (the Map-Server refuses
    // a repeated one as a replay); a Map-Notify answering any of them acknowledges.
    const sent = new Set<bigint>();
    const build = (): Buffer => {
      const nonce = this.nextNonce();
      sent.add(nonce);
      return encodeLispMessage({
        type: 'map-register', proxyReply: true, securityCapable: false, useTtlForTimeout: false, wantMapNotify: true,
        nonce, keyId: this.opts.keyId, algorithmId, authData: Buffer.alloc(0), records,
      }, { key: this.opts.key });
    };
    const what = ttl === 0 ? 'map-register (withdraw)' : 'map-register';
    return this.channel.request(build, (msg) => {
      const m = tryDecode(msg);
      if (m instanceof Error || m.type !== 'map-notify' || !sent.has(m.nonce)) return undefined;
      // RFC 9301 §5.7: the Map-Notify acknowledging a Map-Register carries its key id and
      // algorithm; one under another key id is not its acknowledgement.
      if (m.keyId !== this.opts.keyId || m.algorithmId !== algorithmId) {
        this.opts.onEvent?.({
          kind: 'ignored',
          error: lispError('LISP_BAD_FIELD', `map-notify for nonce '0x${m.nonce.toString(16)}' has key id '${m.keyId}' / algorithm '${m.algorithmId}', not '${this.opts.keyId}' / '${algorithmId}'`, {
            details: { keyId: m.keyId, algorithmId: m.algorithmId },
          }),
        });
        return undefined;
      }
      try {
        verifyAuthData(msg, m.algorithmId, this.opts.key, { keyId: m.keyId });
      } catch (err) {
        if (isIntercloudError(err)) { this.opts.onEvent?.({ kind: 'ignored', error: err as LispError }); return undefined; }
        throw err;
      }
      return m;
    }, what, this.opts, signal);
  }

  /**
   * Presents an EID hand-over (a `SignedEnvelope` the EIDs' holder signed, as JSON text) to
   * the Map-Server, so that this site may then register those EIDs. Resolves when the
   * Map-Server accepts it; LISP_HAND_OVER_REFUSED (not retryable, `details.code` = the
   * server's reason) when it refuses; LISP_NO_ANSWER when it stays silent.
   */
  async presentHandOver(handOver: string, signal?: AbortSignal): Promise<void> {
    const algorithmId = ALGORITHM_ID[this.opts.algorithm];
    const sent = new Set<bigint>();
    const build = (): Buffer => {
      const nonce = this.nextNonce();
      sent.add(nonce);
      return encodeLispMessage({ type: 'eid-hand-over', nonce, keyId: this.opts.keyId, algorithmId, authData: Buffer.alloc(0), handOver }, { key: this.opts.key });
    };
    await this.channel.request(build, (msg) => {
      const m = tryDecode(msg);
      if (m instanceof Error || m.type !== 'eid-hand-over-answer' || !sent.has(m.nonce)) return undefined;
      if (m.keyId !== this.opts.keyId || m.algorithmId !== algorithmId) return undefined;
      try {
        verifyAuthData(msg, m.algorithmId, this.opts.key, { keyId: m.keyId });
      } catch (err) {
        if (isIntercloudError(err)) { this.opts.onEvent?.({ kind: 'ignored', error: err as LispError }); return undefined; }
        throw err;
      }
      if (!m.accepted) {
        throw lispError('LISP_HAND_OVER_REFUSED', `the map server '${this.opts.mapServer.host}:${this.opts.mapServer.port ?? LISP_CONTROL_PORT}' refused the eid hand-over: '${m.code}'`, {
          details: { code: m.code },
        });
      }
      return true;
    }, 'eid hand-over', this.opts, signal);
  }

  /** RFC 9301 §5.7: an authenticated unsolicited Map-Notify is acknowledged with a Map-Notify-Ack. */
  private onUnsolicited(msg: Buffer): void {
    const m = tryDecode(msg);
    if (m instanceof Error) { this.opts.onEvent?.({ kind: 'ignored', error: m }); return; }
    if (m.type !== 'map-notify') return;
    try {
      if (m.keyId !== this.opts.keyId) {
        throw lispError('LISP_BAD_FIELD', `unsolicited map-notify has key id '${m.keyId}', not '${this.opts.keyId}'`, { details: { keyId: m.keyId } });
      }
      verifyAuthData(msg, m.algorithmId, this.opts.key, { keyId: m.keyId });
    } catch (err) {
      if (!isIntercloudError(err)) throw err;
      this.opts.onEvent?.({ kind: 'unsolicited-map-notify', eids: m.records.map((r) => formatPrefix(r.eid)), acked: false });
      return;
    }
    this.channel.send(encodeLispMessage({ ...m, type: 'map-notify-ack' }, { key: this.opts.key }));
    // RFC 9301 §5.7: the Map-Server says these prefixes now map elsewhere (handed to another
    // site). They are no longer ours to refresh: a refresh naming them would be refused whole,
    // and this site's other EIDs would lapse with them.
    const ours = new Set(this.locators.map((l) => l.address));
    const released: string[] = [];
    for (const r of m.records) {
      const key = formatPrefix(r.eid);
      if (this.held.has(key) && !r.locators.some((l) => ours.has(l.address))) {
        this.held.delete(key);
        released.push(key);
      }
    }
    this.opts.onEvent?.({
      kind: 'unsolicited-map-notify', eids: m.records.map((r) => formatPrefix(r.eid)), acked: true, ...(released.length ? { released } : {}),
    });
  }

  /** Stops refreshing and closes the socket (registrations are not withdrawn). */
  async close(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await this.channel.close();
  }
}

/**
 * Registers `addresses` once and resolves when the Map-Server confirms (for the migration's
 * re-address step), first presenting `handOver` (the holder's signed hand-over, JSON) when
 * the addresses come from another site. Retries with backoff; LISP_NO_ANSWER when the
 * Map-Server stays silent, LISP_HAND_OVER_REFUSED when it refuses the hand-over.
 */
export async function registerEid(opts: RegistrarOptions, addresses: string[], signal?: AbortSignal, handOver?: string): Promise<MapNotify> {
  const r = await Registrar.open({ ...opts, refreshIntervalMs: 0 });
  try {
    if (handOver !== undefined) await r.presentHandOver(handOver, signal);
    return await r.register(addresses, signal);
  } finally {
    await r.close();
  }
}

/** Withdraws `addresses` once (Record TTL 0) and resolves when the Map-Server confirms. */
export async function withdrawEid(opts: RegistrarOptions, addresses: string[], signal?: AbortSignal): Promise<MapNotify> {
  const r = await Registrar.open({ ...opts, refreshIntervalMs: 0 });
  try {
    return await r.withdraw(addresses, signal);
  } finally {
    await r.close();
  }
}

/** Options of {@link lookupEid}. */
export interface LookupOptions extends RetryOptions {
  resolver: ServerAddress;
  signal?: AbortSignal;
}

/**
 * Asks a Map-Resolver for the mapping of `eid` (an address or prefix): a Map-Request inside
 * an Encapsulated Control Message (RFC 9301 §5.8). Resolves with the Map-Reply's record — a
 * negative one (no locators) when the EID is not registered.
 */
export async function lookupEid(eid: string, opts: LookupOptions): Promise<MappingRecord> {
  const prefix = eid.includes('/') ? parsePrefix(eid) : hostPrefix(eid);
  const ch = await Channel.open(opts.resolver);
  try {
    const local = ch.local();
    const nonce = newNonce();
    const data = encodeLispMessage({
      type: 'encapsulated-control-message', security: false, ddtOriginated: false, toEtr: false, toMapServer: false,
      // RFC 9301 §5.8: inner source = the ITR's address, destination = the EID asked for.
      inner: {
        source: afiOf(prefix.address) === afiOf(local.address) ? local.address : prefix.address,
        destination: prefix.address, sourcePort: local.port, destinationPort: LISP_CONTROL_PORT, ttl: 64,
      },
      message: {
        type: 'map-request', authoritative: false, mapDataPresent: false, probe: false, smr: false, pitr: false, smrInvoked: false,
        nonce, sourceEid: null, itrRlocs: [local.address], records: [prefix],
      },
    });
    return await ch.request(data, (msg) => {
      const m = tryDecode(msg);
      if (m instanceof Error || m.type !== 'map-reply' || m.nonce !== nonce) return undefined;
      return m.records[0];
    }, 'map-request', opts, opts.signal);
  } finally {
    await ch.close();
  }
}
