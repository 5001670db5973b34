/**
 * The clock-skew policy: time-sensitive steps (accepting an offer, verifying a signed
 * message, certificate validity) are refused with reason `clock-skew` when the offset to
 * the peer exceeds the configured bound. Pure.
 */
import { timeError } from './errors.js';

/** A peer's clock as measured by the XMPP work (XEP-0202 Entity Time), or any other means. */
export interface PeerOffset {
  /** Who was measured (a JID or cloud id). */
  peer: string;
  /** Peer clock minus our clock (ms), corrected by half the round trip. */
  offsetMs: number;
  /** Round trip of the measurement (ms). */
  roundTripMs: number;
  /** When it was measured (ms since the epoch). */
  measuredAt: number;
}

/** Something that measures peers' offsets; `intercloud time` calls it when one is given. */
export type PeerOffsetProvider = (signal: AbortSignal) => Promise<PeerOffset[]>;

/**
 * Throws TIME_CLOCK_SKEW (details: reason 'clock-skew', offsetMs, boundMs, peer) when
 * |offsetMs| exceeds `boundMs`. The measurement's own uncertainty (half the round trip) is
 * given the benefit of the doubt: the check uses |offset| − rtt/2 when a round trip is known.
 */
export function checkClockSkew(offsetMs: number, boundMs: number, context: { peer?: string; roundTripMs?: number } = {}): void {
  if (!Number.isFinite(offsetMs) || !Number.isFinite(boundMs) || boundMs < 0) {
    throw timeError('TIME_CLOCK_SKEW', `clock offset '${offsetMs}' ms or bound '${boundMs}' ms is not a usable number`, {
      retryable: false, details: { reason: 'clock-skew', offsetMs, boundMs },
    });
  }
  const uncertainty = context.roundTripMs !== undefined && context.roundTripMs > 0 ? context.roundTripMs / 2 : 0;
  if (Math.abs(offsetMs) - uncertainty > boundMs) {
    const who = context.peer === undefined ? 'the peer' : `'${context.peer}'`;
    throw timeError('TIME_CLOCK_SKEW', `clock offset to ${who} is ${offsetMs.toFixed(1)} ms, beyond the bound of ${boundMs} ms`, {
      details: { reason: 'clock-skew', offsetMs, boundMs, ...(context.peer === undefined ? {} : { peer: context.peer }), ...(context.roundTripMs === undefined ? {} : { roundTripMs: context.roundTripMs }) },
    });
  }
}

/** Each peer with whether it is within `boundMs` (for reports; the policy is {@link checkClockSkew}). */
export function judgePeers(peers: PeerOffset[], boundMs: number): Array<PeerOffset & { withinBound: boolean }> {
  return peers.map((p) => {
    try {
      checkClockSkew(p.offsetMs, boundMs, { peer: p.peer, roundTripMs: p.roundTripMs });
      return { ...p, withinBound: true };
    } catch (err) {
      if ((err as { code?: string }).code !== 'TIME_CLOCK_SKEW') throw err;
      return { ...p, withinBound: false };
    }
  });
}
