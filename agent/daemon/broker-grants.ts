/**
 * What a peer may touch at this cloud's broker (issue 13). Each cloud runs its own broker and
 * names it in its accepts; a peer logs in there with its own certificate (EXTERNAL, user = its
 * cloud id) and reaches the exchange and queues of exactly the transfers of the offers this
 * cloud accepted from it — one permission regex per peer ({@link grantPattern}), widened when an
 * offer is accepted and narrowed when the offer's job ends. A peer with no live offer has no
 * permission on the vhost at all, so it cannot even open it.
 *
 * The grants go through RabbitMQ's management HTTP API (rabbitmq_management) on a listener only
 * this host reaches, with a credential only the local agent holds: one call costs milliseconds,
 * where `rabbitmqctl` costs over a second. The broker keeps them across an agent restart;
 * {@link BrokerGrants.reconcile} makes them match the live jobs again at start.
 */
import { grantPattern } from '../../protocols/amqp/index.js';
import { IntercloudError } from '../../protocols/errors/index.js';

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
}

/** One offer's grant. */
export interface OfferGrant {
  readonly peer: string;
  readonly offerId: string;
  readonly transferIds: readonly string[];
}

/** Grants and withdraws peers' permissions on this cloud's broker; calls run one at a time. */
export class BrokerGrants {
  readonly #m: BrokerManagement;
  readonly #byPeer = new Map<string, Map<string, readonly string[]>>();
  #tail: Promise<unknown> = Promise.resolve();

  constructor(management: BrokerManagement) {
    this.#m = management;
  }

  /**
   * Lets `peer` reach the transfers `transferIds` of offer `offerId` (idempotent). Throws
   * `XFER_BROKER` (retryable) when the broker does not answer — the offer must then be refused.
   */
  grant(g: OfferGrant): Promise<void> {
    return this.#serial(async () => {
      const offers = this.#byPeer.get(g.peer) ?? new Map<string, readonly string[]>();
      const before = offers.get(g.offerId);
      offers.set(g.offerId, [...g.transferIds]);
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

  /** Withdraws what offer `offerId` of `peer` was granted (idempotent). */
  withdraw(peer: string, offerId: string): Promise<void> {
    return this.#serial(async () => {
      const offers = this.#byPeer.get(peer);
      if (!offers?.delete(offerId)) return;
      await this.#apply(peer);
    });
  }

  /**
   * Makes the broker's permissions on the vhost match `live` (the offers whose jobs run) and the
   * grants made since this agent started: every other peer loses its permission. Run at start,
   * after the journals were replayed.
   */
  reconcile(live: readonly OfferGrant[]): Promise<void> {
    return this.#serial(async () => {
      for (const g of live) {
        const offers = this.#byPeer.get(g.peer) ?? new Map<string, readonly string[]>();
        offers.set(g.offerId, [...g.transferIds]);
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

  /** The transfer ids `peer` may reach now (tests, diagnostics). */
  granted(peer: string): string[] {
    return [...(this.#byPeer.get(peer)?.values() ?? [])].flat();
  }

  async #apply(peer: string): Promise<void> {
    if (peer === this.#m.cloudId) return;
    const ids = this.granted(peer);
    const path = `/api/permissions/${enc(this.#m.vhost)}/${enc(peer)}`;
    if (ids.length === 0) {
      await this.#call('DELETE', path, undefined, [404]);
      return;
    }
    const re = grantPattern(peer, this.#m.cloudId, ids);
    await this.#call('PUT', path, { configure: re, write: re, read: re });
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
