/**
 * What a peer may touch at this cloud's broker (issue 13). Each cloud runs its own broker and
 * names it in its accepts; a peer logs in there with its own certificate (EXTERNAL, user = its
 * cloud id) and reaches the exchange and queues of exactly the transfers of the offers this
 * cloud accepted from it — one permission regex per peer ({@link grantPattern}), widened when an
 * offer is accepted and narrowed when the offer's job ends. A storage subcontract offer (issue 14)
 * is granted by its transfer prefix instead: every transfer whose id starts with it (the
 * subcontract's request channel and its open-ended series of object transfers), in the same
 * per-peer regex as the peer's VM offers, withdrawn when the subcontract ends. A peer with no
 * live offer has no permission on the vhost at all, so it cannot even open it.
 *
 * The grants go through RabbitMQ's management HTTP API (rabbitmq_management) on a listener only
 * this host reaches, with a credential only the local agent holds: one call costs milliseconds,
 * where `rabbitmqctl` costs over a second. The broker keeps them across an agent restart;
 * {@link BrokerGrants.reconcile} makes them match the live jobs again at start.
 *
 * A grant lets the peer declare its transfers' queues, and a peer that declares one first picks
 * its arguments: before the first permission it gives, this cloud's broker gets the policy that
 * bounds every transfer queue whatever it was declared with ({@link TRANSFER_QUEUE_POLICY}).
 */
import { TRANSFER_QUEUE_POLICY, grantPattern } from '../../protocols/amqp/index.js';
import { IntercloudError } from '../../protocols/errors/index.js';

/** How often the agent sweeps its broker's transfer queues ({@link BrokerGrants.sweep}). */
export const FOREIGN_QUEUE_SWEEP_MS = 15_000;

/**
 * Most transfer queues one peer's transfers into this cloud may have on its broker at once
 * ({@link BrokerGrants.capPeerQueues}). A transfer has two; a VM move has a few at once (one per
 * image in flight), a storage subcontract its request channel and a batch transfer per batch
 * in flight (4 by default). What a transfer whose two sides died leaves stays until the queues'
 * idle expiry (a day), so the bound leaves room for many of those. A subcontract's grant is a
 * prefix, under which the peer may name as many transfers as it likes: this is the bound.
 */
export const MAX_PEER_QUEUES = 2048;

/**
 * Most transfer queues of one peer that may appear between two sweeps
 * ({@link FOREIGN_QUEUE_SWEEP_MS}): a flood is cut off within a sweep, long before
 * {@link MAX_PEER_QUEUES}, whatever queues of dead transfers the peer already has.
 */
export const MAX_NEW_PEER_QUEUES = 256;

/**
 * RabbitMQ's `max-queues` limit put on the transfers vhost with the queue policy: what bounds the
 * broker's memory between two sweeps, whatever peers declare meanwhile. An operator's lower limit
 * is kept.
 */
export const MAX_VHOST_QUEUES = 8192;

/** How to reach the broker's management API. */
export interface BrokerManagement {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly user: string;
  readonly password: string;
  /** The vhost of transfers into this cloud. */
  readonly vhost: string;
  /** This cloud's id (the receiving side of every granted transfer). */
  readonly cloudId: string;
  /** Longest one call may take, ms (default 5000). */
  readonly timeoutMs?: number;
  /** Most transfer queues per peer (default {@link MAX_PEER_QUEUES}). */
  readonly maxPeerQueues?: number;
  /** Most transfer queues per peer new since the previous sweep (default {@link MAX_NEW_PEER_QUEUES}). */
  readonly maxNewPeerQueues?: number;
  /** The vhost's `max-queues` limit (default {@link MAX_VHOST_QUEUES}). */
  readonly maxQueues?: number;
}

/** A peer cut off by {@link BrokerGrants.capPeerQueues}. */
export interface PeerCutOff {
  readonly peer: string;
  /** How many transfer queues its transfers had. */
  readonly queues: number;
}

/** One offer's grant. */
export interface OfferGrant {
  /** The peer's cloud id (the sending side of every granted transfer). */
  readonly peer: string;
  /** The accepted offer (a VM offer, or a storage subcontract's offer). */
  readonly offerId: string;
  /** Transfers granted by exact id (a VM offer's disks). */
  readonly transferIds: readonly string[];
  /**
   * Transfers granted by prefix: every transfer whose id starts with one of these (a storage
   * subcontract's `transferPrefix(subcontractId)` from agent/replication, `xxxxxxxx-xxxx-xxxx`;
   * anything else is refused with `XFER_CONFIG`). Default none.
   */
  readonly transferPrefixes?: readonly string[];
}

/** What one offer holds: exact transfer ids and transfer prefixes. */
interface Held {
  readonly ids: readonly string[];
  readonly prefixes: readonly string[];
}

const held = (g: OfferGrant): Held => ({ ids: [...g.transferIds], prefixes: [...(g.transferPrefixes ?? [])] });

/** Grants and withdraws peers' permissions on this cloud's broker; calls run one at a time. */
export class BrokerGrants {
  readonly #m: BrokerManagement;
  readonly #byPeer = new Map<string, Map<string, Held>>();
  #tail: Promise<unknown> = Promise.resolve();
  #policySet = false;
  /** Peers cut off by {@link capPeerQueues}: no permission until the agent restarts. */
  readonly #cutOff = new Set<string>();
  /** Each peer's transfer queues at the previous {@link capPeerQueues} (none yet: the first one only counts them). */
  #seen: Map<string, Set<string>> | undefined;

  constructor(management: BrokerManagement) {
    this.#m = management;
  }

  /**
   * Lets `peer` reach the transfers `transferIds` of offer `offerId`, and every transfer whose
   * id starts with one of its `transferPrefixes` (idempotent; a second grant of the same offer
   * replaces the first). Throws `XFER_CONFIG` (before any call to the broker) when an id or
   * prefix is not in its fixed form, and `XFER_BROKER` (retryable) when the broker does not
   * answer — the offer must then be refused.
   */
  grant(g: OfferGrant): Promise<void> {
    return this.#serial(async () => {
      this.#check(g);
      if (this.#cutOff.has(g.peer)) {
        throw new IntercloudError('XFER_BROKER_AUTH', `cloud '${g.peer}' was cut off from this cloud's broker for declaring more transfer queues than any transfer needs; it gets no permission until the agent restarts`, {
          details: { peer: g.peer },
        });
      }
      const offers = this.#byPeer.get(g.peer) ?? new Map<string, Held>();
      const before = offers.get(g.offerId);
      offers.set(g.offerId, held(g));
      this.#byPeer.set(g.peer, offers);
      try {
        await this.#ensureUser(g.peer);
        await this.#apply(g.peer);
      } catch (err) {
        if (before === undefined) offers.delete(g.offerId);
        else offers.set(g.offerId, before);
        throw err;
      }
    });
  }

  /** Withdraws what offer `offerId` of `peer` was granted, ids and prefixes (idempotent). */
  withdraw(peer: string, offerId: string): Promise<void> {
    return this.#serial(async () => {
      const offers = this.#byPeer.get(peer);
      if (!offers?.delete(offerId)) return;
      await this.#apply(peer);
    });
  }

  /**
   * Makes the broker's permissions on the vhost match `live` (the offers whose jobs run) and the
   * grants made since this agent started: every other peer loses its permission. `live` holds
   * the running VM jobs' offers and the live storage subcontracts' offers (with their prefixes).
   * Run at start, after the journals were replayed. Throws `XFER_CONFIG` before any change when
   * one of `live` is not in its fixed form.
   */
  reconcile(live: readonly OfferGrant[]): Promise<void> {
    return this.#serial(async () => {
      for (const g of live) this.#check(g);
      for (const g of live) {
        const offers = this.#byPeer.get(g.peer) ?? new Map<string, Held>();
        offers.set(g.offerId, held(g));
        this.#byPeer.set(g.peer, offers);
      }
      const present = (await this.#call('GET', `/api/vhosts/${enc(this.#m.vhost)}/permissions`)) as Array<{ user: string }>;
      const peers = new Set([...present.map((p) => p.user).filter((u) => u !== this.#m.cloudId), ...this.#byPeer.keys()]);
      for (const peer of peers) {
        if (this.#byPeer.has(peer)) await this.#ensureUser(peer);
        await this.#apply(peer);
      }
    });
  }

  /**
   * The sweep the agent runs at start and every {@link FOREIGN_QUEUE_SWEEP_MS}: one listing of the
   * vhost's queues, then {@link sweepForeignQueues} and {@link capPeerQueues} on it.
   */
  sweep(deleteQueues: (names: string[]) => Promise<void>): Promise<{ foreign: string[]; cut: PeerCutOff[] }> {
    return this.#serial(async () => {
      const queues = await this.#listQueues();
      const foreign = await this.#deleteForeign(queues, deleteQueues);
      return { foreign, cut: await this.#capPeers(queues.filter((q) => !foreign.includes(q.name)), deleteQueues) };
    });
  }

  /**
   * Finds every queue named like a transfer's that is not a classic queue, has `deleteQueues`
   * delete them, and returns their names. The protocol declares only classic queues; a peer that
   * declares one of its granted names first may make it a stream (or quorum) queue, which the
   * policy's length limits and expiry do not hold (a stream keeps whole segments of the size its
   * declarer chose, and never expires). The management user has no permission on the vhost, so
   * the deletion is the caller's: the agent deletes them over AMQP as this cloud.
   */
  sweepForeignQueues(deleteQueues: (names: string[]) => Promise<void>): Promise<string[]> {
    return this.#serial(async () => this.#deleteForeign(await this.#listQueues(), deleteQueues));
  }

  /**
   * Counts each peer's transfer queues (`xfer.<peer>.<this cloud>.…`, see `grantPattern`) and cuts
   * off every peer over {@link MAX_PEER_QUEUES}, or with more than {@link MAX_NEW_PEER_QUEUES}
   * that were not there at the previous call: its permission on the vhost is withdrawn for good
   * (this agent run), its connections to the vhost are closed (a channel keeps permissions it
   * checked), and `deleteQueues` deletes all its transfer queues — its honest transfers with them:
   * a peer that floods this broker gets nothing from it.
   */
  capPeerQueues(deleteQueues: (names: string[]) => Promise<void>): Promise<PeerCutOff[]> {
    return this.#serial(async () => this.#capPeers(await this.#listQueues(), deleteQueues));
  }

  /** The vhost's queues, with their type. */
  async #listQueues(): Promise<Array<{ name: string; type?: unknown }>> {
    const queues = (await this.#call('GET', `/api/queues/${enc(this.#m.vhost)}?columns=name,type`)) as Array<{ name?: unknown; type?: unknown }>;
    return queues.filter((q): q is { name: string; type?: unknown } => typeof q.name === 'string');
  }

  async #deleteForeign(queues: ReadonlyArray<{ name: string; type?: unknown }>, deleteQueues: (names: string[]) => Promise<void>): Promise<string[]> {
    const foreign = queues.filter((q) => q.name.startsWith('xfer.') && q.type !== undefined && q.type !== 'classic').map((q) => q.name);
    if (foreign.length > 0) await deleteQueues(foreign);
    return foreign;
  }

  async #capPeers(queues: ReadonlyArray<{ name: string }>, deleteQueues: (names: string[]) => Promise<void>): Promise<PeerCutOff[]> {
    const max = this.#m.maxPeerQueues ?? MAX_PEER_QUEUES;
    const maxNew = this.#m.maxNewPeerQueues ?? MAX_NEW_PEER_QUEUES;
    const byPeer = new Map<string, string[]>();
    for (const q of queues) {
      const peer = transferSender(q.name, this.#m.cloudId);
      if (peer === undefined) continue;
      const names = byPeer.get(peer);
      if (names) names.push(q.name);
      else byPeer.set(peer, [q.name]);
    }
    const cut: PeerCutOff[] = [];
    const before = this.#seen;
    this.#seen = new Map([...byPeer].map(([peer, names]) => [peer, new Set(names)]));
    for (const [peer, names] of byPeer) {
      const known = before?.get(peer);
      const fresh = before === undefined ? 0 : names.filter((n) => !known?.has(n)).length;
      if (names.length <= max && fresh <= maxNew) continue;
      this.#cutOff.add(peer);
      await this.#apply(peer);
      const connections = (await this.#call('GET', `/api/connections?columns=name,user,vhost`)) as Array<{ name?: unknown; user?: unknown; vhost?: unknown }>;
      for (const c of connections) {
        if (c.user === peer && c.vhost === this.#m.vhost && typeof c.name === 'string') await this.#call('DELETE', `/api/connections/${enc(c.name)}`, undefined, [404]);
      }
      await deleteQueues(names);
      cut.push({ peer, queues: names.length });
    }
    return cut;
  }

  /** The peers cut off by {@link capPeerQueues} (tests, diagnostics). */
  cutOff(): string[] {
    return [...this.#cutOff];
  }

  /** The transfer ids `peer` may reach now by exact id (tests, diagnostics). */
  granted(peer: string): string[] {
    return [...(this.#byPeer.get(peer)?.values() ?? [])].flatMap((h) => h.ids);
  }

  /** The transfer prefixes (storage subcontracts) `peer` may reach now (tests, diagnostics). */
  grantedPrefixes(peer: string): string[] {
    return [...(this.#byPeer.get(peer)?.values() ?? [])].flatMap((h) => h.prefixes);
  }

  /** Throws `XFER_CONFIG` when `g` would not make a valid regex (no state is touched). */
  #check(g: OfferGrant): void {
    grantPattern(g.peer, this.#m.cloudId, g.transferIds, g.transferPrefixes ?? []);
  }

  async #apply(peer: string): Promise<void> {
    if (peer === this.#m.cloudId) return;
    const ids = this.granted(peer);
    const prefixes = this.grantedPrefixes(peer);
    const path = `/api/permissions/${enc(this.#m.vhost)}/${enc(peer)}`;
    if (this.#cutOff.has(peer) || (ids.length === 0 && prefixes.length === 0)) {
      await this.#call('DELETE', path, undefined, [404]);
      return;
    }
    await this.#ensureQueuePolicy();
    const re = grantPattern(peer, this.#m.cloudId, ids, prefixes);
    await this.#call('PUT', path, { configure: re, write: re, read: re });
  }

  /**
   * Puts {@link TRANSFER_QUEUE_POLICY} and the `max-queues` limit ({@link MAX_VHOST_QUEUES}, or an
   * operator's lower one) on the vhost (once per agent run; idempotent at the broker).
   */
  async #ensureQueuePolicy(): Promise<void> {
    if (this.#policySet) return;
    await this.#call('PUT', `/api/policies/${enc(this.#m.vhost)}/${enc(TRANSFER_QUEUE_POLICY.name)}`, TRANSFER_QUEUE_POLICY.body);
    const limits = (await this.#call('GET', `/api/vhost-limits/${enc(this.#m.vhost)}`)) as Array<{ value?: Record<string, unknown> }> | null;
    const now = limits?.[0]?.value?.['max-queues'];
    const want = this.#m.maxQueues ?? MAX_VHOST_QUEUES;
    if (typeof now !== 'number' || now < 0 || now > want) {
      await this.#call('PUT', `/api/vhost-limits/${enc(this.#m.vhost)}/max-queues`, { value: want });
    }
    this.#policySet = true;
  }

  /** The peer's user: no password (certificate login only), no tags (no management access). */
  async #ensureUser(peer: string): Promise<void> {
    if ((await this.#call('GET', `/api/users/${enc(peer)}`, undefined, [404])) !== undefined) return;
    await this.#call('PUT', `/api/users/${enc(peer)}`, { password_hash: '', tags: '' });
  }

  async #call(method: string, path: string, body?: unknown, absentOk: number[] = []): Promise<unknown> {
    const url = new URL(path, this.#m.url);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Basic ${Buffer.from(`${this.#m.user}:${this.#m.password}`).toString('base64')}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#m.timeoutMs ?? 5_000),
      });
    } catch (err) {
      throw new IntercloudError('XFER_BROKER', `broker management '${url.host}': ${method} ${path}: the broker does not answer`, { cause: err, retryable: true });
    }
    if (absentOk.includes(res.status)) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) {
      const text = (await res.text()).slice(0, 200);
      const code = res.status === 401 || res.status === 403 ? 'XFER_BROKER_AUTH' : 'XFER_BROKER';
      throw new IntercloudError(code, `broker management '${url.host}': ${method} ${path}: http ${res.status} ${text}`, {
        retryable: code === 'XFER_BROKER', details: { status: res.status },
      });
    }
    const text = await res.text();
    return text === '' ? null : JSON.parse(text);
  }

  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(f, f);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

const enc = (s: string): string => encodeURIComponent(s);

/** The sending cloud of a transfer queue into `to` (`xfer.<from>.<to>.<id>.data|ctl`), or undefined. */
function transferSender(queue: string, to: string): string | undefined {
  const parts = queue.split('.');
  if (parts.length !== 5 || parts[0] !== 'xfer' || parts[2] !== to || (parts[4] !== 'data' && parts[4] !== 'ctl')) return undefined;
  return parts[1] === to ? undefined : parts[1];
}
