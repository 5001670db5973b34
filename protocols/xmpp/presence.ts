/**
 * Presence (RFC 6121 §4) with XEP-0115 caps, presence subscriptions (RFC 6121 §3) and
 * the roster query (RFC 6121 §2.1.3) that tells whose presence we already receive.
 */
import { xml, type Element } from '@xmpp/client';
import { parseCaps, type CapsAnnouncement } from './caps.js';

/** jabber:iq:roster (RFC 6121 §2). */
export const NS_ROSTER = 'jabber:iq:roster';

/** What a presence stanza says. */
export interface PresenceInfo {
  /** Full JID of the sender. */
  readonly from: string;
  /** RFC 6121 §4.7.1: absent type means available. */
  readonly type: 'available' | 'unavailable' | 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed' | 'probe' | 'error';
  readonly caps?: CapsAnnouncement;
}

/** One roster item (RFC 6121 §2.1.2). */
export interface RosterItem {
  readonly jid: string;
  readonly subscription: 'none' | 'to' | 'from' | 'both' | 'remove';
  /** RFC 6121 §2.1.2.2: a subscription request is pending. */
  readonly pending: boolean;
}

/** Available presence with our caps and a status text (RFC 6121 §4.2, XEP-0115 §4). */
export function buildAvailablePresence(caps: Element, status?: string): Element {
  return xml('presence', {}, status === undefined ? undefined : xml('status', {}, status), caps);
}

/** A subscription-management presence (RFC 6121 §3.1.1, §3.1.4). */
export function buildSubscription(to: string, type: 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed'): Element {
  return xml('presence', { to, type });
}

const TYPES = new Set(['unavailable', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'probe', 'error']);

/** Reads a presence stanza; `undefined` when it is not one or has no sender. */
export function parsePresence(el: Element): PresenceInfo | undefined {
  if (!el.is('presence')) return undefined;
  const from = el.attrs['from'];
  if (from === undefined) return undefined;
  const t = el.attrs['type'];
  const type = t === undefined ? 'available' : TYPES.has(t) ? (t as PresenceInfo['type']) : undefined;
  if (type === undefined) return undefined;
  const caps = parseCaps(el);
  return { from, type, ...(caps === undefined ? {} : { caps }) };
}

/** `<query xmlns='jabber:iq:roster'/>` for an iq get. */
export function buildRosterQuery(): Element {
  return xml('query', { xmlns: NS_ROSTER });
}

/** Reads the items of a roster result or push. */
export function parseRoster(query: Element | undefined): RosterItem[] {
  if (!query || !query.is('query', NS_ROSTER)) return [];
  return query.getChildren('item').map((i) => {
    const s = i.attrs['subscription'];
    const subscription = s === 'to' || s === 'from' || s === 'both' || s === 'remove' ? s : 'none';
    return { jid: i.attrs['jid'] ?? '', subscription, pending: i.attrs['ask'] === 'subscribe' };
  });
}
