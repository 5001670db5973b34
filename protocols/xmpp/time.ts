/**
 * XEP-0202 Entity Time and XEP-0199 Ping, and the four-timestamp clock-offset estimate
 * (the NTP on-wire method, RFC 5905 §8) applied to an entity-time exchange.
 */
import { xml, type Element } from '@xmpp/client';
import { NS } from './namespaces.js';

/** `<ping xmlns='urn:xmpp:ping'/>` for an iq get (XEP-0199 §4.2). */
export function buildPing(): Element {
  return xml('ping', { xmlns: NS.PING });
}

/** `<time xmlns='urn:xmpp:time'/>` for an iq get (XEP-0202 §3). */
export function buildTimeRequest(): Element {
  return xml('time', { xmlns: NS.TIME });
}

function tzo(offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * The `<time/>` answer (XEP-0202 §3): `tzo` and `utc`, the latter in XEP-0082 DateTime
 * with milliseconds so the offset estimate is not limited to whole seconds.
 */
export function buildTimeResult(now: Date, offsetMinutes = 0): Element {
  return xml('time', { xmlns: NS.TIME }, xml('tzo', {}, tzo(offsetMinutes)), xml('utc', {}, now.toISOString()));
}

/** The peer's UTC clock reading from a `<time/>` answer, or `undefined` if unreadable. */
export function parseTimeResult(time: Element | undefined): Date | undefined {
  if (!time || !time.is('time', NS.TIME)) return undefined;
  const utc = time.getChildText('utc');
  // XEP-0082 §3.2 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD, and utc is always Z.
  if (utc === null || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(utc.trim())) return undefined;
  const d = new Date(utc.trim());
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The four timestamps of one exchange, in milliseconds since the epoch. */
export interface FourTimestamps {
  /** Our clock when the request left. */
  readonly t0: number;
  /** The peer's clock when the request arrived. */
  readonly t1: number;
  /** The peer's clock when the answer left. */
  readonly t2: number;
  /** Our clock when the answer arrived. */
  readonly t3: number;
}

/** Estimated offset of the peer's clock from ours, and the round trip without the peer's processing time. */
export interface ClockEstimate {
  /** Peer clock minus ours, in ms (positive: the peer is ahead). */
  readonly offsetMs: number;
  readonly rttMs: number;
}

/**
 * RFC 5905 §8: offset θ = ((t1 − t0) + (t2 − t3)) / 2, delay δ = (t3 − t0) − (t2 − t1).
 * XEP-0202 carries one peer timestamp, so t1 = t2 for an entity-time exchange.
 */
export function estimateClock({ t0, t1, t2, t3 }: FourTimestamps): ClockEstimate {
  return { offsetMs: (t1 - t0 + (t2 - t3)) / 2, rttMs: t3 - t0 - (t2 - t1) };
}

/** Of several samples, the one with the smallest round trip (its offset is the least noisy). */
export function bestEstimate(samples: readonly ClockEstimate[]): ClockEstimate | undefined {
  let best: ClockEstimate | undefined;
  for (const s of samples) if (best === undefined || s.rttMs < best.rttMs) best = s;
  return best;
}
