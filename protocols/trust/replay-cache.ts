/**
 * A bounded memory of message nonces for replay detection. An entry is kept until the
 * message it came from can no longer be accepted (its expiry plus the clock-skew
 * allowance) and is forgotten after that, so the cache only ever holds nonces that could
 * still be replayed. When it is full of such nonces it refuses (TRUST_REPLAY_CACHE_FULL)
 * rather than forget one early, which would let a replay through.
 */
import { trustError } from './errors.js';

/** Nonces seen, each until its message's last acceptable instant. */
export class ReplayCache {
  readonly #entries = new Map<string, number>();
  readonly #maxEntries: number;
  #earliest = Number.POSITIVE_INFINITY;

  /** @param maxEntries — most nonces held at once (default 100 000). */
  constructor(maxEntries = 100_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw trustError('TRUST_BAD_ARGUMENT', `replay cache size '${maxEntries}' is not a positive integer`);
    this.#maxEntries = maxEntries;
  }

  /** How many nonces are held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Forgets every nonce past its last acceptable instant at `nowMs`; returns how many are left. */
  sweep(nowMs: number): number {
    this.#sweep(nowMs);
    return this.#entries.size;
  }

  #sweep(nowMs: number): void {
    let earliest = Number.POSITIVE_INFINITY;
    for (const [key, until] of this.#entries) {
      if (until < nowMs) this.#entries.delete(key);
      else if (until < earliest) earliest = until;
    }
    this.#earliest = earliest;
  }

  /**
   * Records `key` (signer fingerprint + nonce) as seen until `untilMs`; throws
   * TRUST_MESSAGE_REPLAYED when it is already held.
   */
  remember(key: string, untilMs: number, nowMs: number): void {
    if (nowMs > this.#earliest) this.#sweep(nowMs);
    const seen = this.#entries.get(key);
    if (seen !== undefined && seen >= nowMs) {
      throw trustError('TRUST_MESSAGE_REPLAYED', `nonce '${key}' was already accepted`, { details: { key, rememberedUntil: new Date(seen).toISOString() } });
    }
    if (this.#entries.size >= this.#maxEntries) {
      this.#sweep(nowMs);
      if (this.#entries.size >= this.#maxEntries) {
        throw trustError('TRUST_REPLAY_CACHE_FULL', `replay cache holds ${this.#entries.size} unexpired nonces`, { details: { maxEntries: this.#maxEntries } });
      }
    }
    this.#entries.set(key, untilMs);
    if (untilMs < this.#earliest) this.#earliest = untilMs;
  }

  /** True when `key` is held and not yet forgotten at `nowMs`. */
  has(key: string, nowMs: number): boolean {
    const until = this.#entries.get(key);
    return until !== undefined && until >= nowMs;
  }
}
