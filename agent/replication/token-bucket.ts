/**
 * A token bucket (pure, clock passed in): the bandwidth limit of one subcontract, shared by all
 * of its transfers. `take(n, now)` answers how long to wait before `n` bytes may go; the bytes
 * are counted at once (a debt), so concurrent senders queue behind each other fairly.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  /**
   * @param rate bytes per second (0 = unlimited)
   * @param burst most bytes that may go at once after an idle period
   */
  constructor(readonly rate: number, readonly burst: number, now: number) {
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes `n` bytes at time `now` (ms); returns the wait in ms before they may be sent. */
  take(n: number, now: number): number {
    if (this.rate <= 0) return 0;
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.rate) * 1000);
  }
}
