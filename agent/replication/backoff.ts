/**
 * Retry scheduling (pure): exponential backoff with jitter, capped. Attempt `n` (1-based, the
 * number of failures so far) waits a uniformly random time in `[d/2, d]` with
 * `d = min(cap, base · 2^(n-1))` ("equal jitter": never zero, never above the cap), so that
 * objects that failed together do not retry in lockstep.
 */

/** Backoff parameters. */
export interface BackoffPolicy {
  /** First retry's upper bound, ms. */
  readonly baseMs: number;
  /** No retry waits longer, ms. */
  readonly capMs: number;
  /** After this many failed attempts an object is FAILED instead of PENDING. */
  readonly maxAttempts: number;
}

/** The default: 1 s, doubling, capped at 5 min; FAILED after 12 attempts (about 40 min). */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 300_000, maxAttempts: 12 };

/** The delay before the next attempt after `failures` failures; `random()` in [0, 1). */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const n = Math.max(1, failures);
  const d = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(n - 1, 52));
  return Math.round(d / 2 + (d / 2) * random());
}
