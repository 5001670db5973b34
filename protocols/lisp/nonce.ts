/**
 * Map-Register nonces that increase (RFC 9301 §5.6: the nonce is incremented with every
 * Map-Register, so that the Map-Server can refuse replays). Ours carry the sender's clock:
 * the top 48 bits are milliseconds since the epoch, the low 16 bits a counter within the
 * millisecond. So a sender need not persist its last nonce across restarts, and a Map-Server
 * can also refuse a Map-Register that is stale (its time far from the server's clock).
 * Pure: the clock is passed in.
 */

/** The nonce for time `ms` and counter `low` (0–65535). */
export function registerNonceAt(ms: number, low = 0): bigint {
  return (BigInt(Math.max(0, Math.floor(ms))) << 16n) | BigInt(low & 0xffff);
}

/** The sender's clock (ms since the epoch) carried by a nonce made by {@link registerNonceAt}. */
export function nonceTimeMs(nonce: bigint): number {
  return Number(nonce >> 16n);
}

/** Hands out strictly increasing nonces, even when the clock stands still or steps back. */
export class RegisterNonces {
  private last = 0n;

  /** The next nonce at clock `nowMs`. */
  next(nowMs: number): bigint {
    const candidate = registerNonceAt(nowMs);
    this.last = candidate > this.last ? candidate : this.last + 1n;
    return this.last;
  }
}
