/**
 * The directory a gateway keeps of the Intercloud: verified catalog entries (XEP-0060 items on
 * {@link CATALOG_NODE}) and the presence of their gateways (RFC 6121), as a pure reducer
 * `(state, event) → state` over what the session read. No I/O, no clock, no trust: the session
 * verifies an item's signature and reports it `published` or `refused`.
 *
 * Entries are keyed by cloud id and remember the PubSub service they came from, so catalogs may
 * come from several services (one per federated Root): a retraction or a listing of one service
 * only drops entries that service gave. The caller's own cloud is never dropped by a listing or
 * a retraction, and never found as a peer.
 */
import { matchesFilter, type CatalogEntry, type PeerFilter } from './catalog.js';

/** A verified catalog entry and where it came from. */
export interface DirectoryEntry {
  readonly entry: CatalogEntry;
  /** The `<signature/>` envelope text it carried (verified once). */
  readonly signature: string;
  /** JID of the PubSub service it was read from. */
  readonly service: string;
}

/** What the gateway knows of the directory and of presence. Treat as immutable. */
export interface DirectoryState {
  /** The caller's own cloud id. */
  readonly self: string;
  /** cloud id → entry. */
  readonly entries: ReadonlyMap<string, DirectoryEntry>;
  /** service → item ids whose current item failed verification (not fetched again until notified or reloaded). */
  readonly refused: ReadonlyMap<string, ReadonlySet<string>>;
  /** Services whose whole catalog was read since the stream came up. */
  readonly loaded: ReadonlySet<string>;
  /** bare JID → full JID → caps `ver` (XEP-0115), for available resources only. */
  readonly presence: ReadonlyMap<string, ReadonlyMap<string, string | undefined>>;
}

/** What happened, as the session saw it. */
export type DirectoryEvent =
  /** An item (notification or fetch) whose entry verified. */
  | { readonly type: 'published'; readonly service: string; readonly entry: CatalogEntry; readonly signature: string }
  /** An item that did not parse or verify. */
  | { readonly type: 'refused'; readonly service: string; readonly itemId: string }
  /** Items the service retracted (XEP-0060 §7.2 notification). */
  | { readonly type: 'retracted'; readonly service: string; readonly itemIds: readonly string[] }
  /** A full read of the service's catalog begins: items refused before may be read again. */
  | { readonly type: 'reload'; readonly service: string }
  /**
   * The item ids the service holds now: entries it gave that are not among them are gone.
   * `complete`: this ends a full read of its catalog.
   */
  | { readonly type: 'listed'; readonly service: string; readonly itemIds: readonly string[]; readonly complete: boolean }
  /** Presence from a full JID (RFC 6121 §4). */
  | { readonly type: 'presence'; readonly from: string; readonly available: boolean; readonly caps?: string }
  /** The stream went down: presence is unknown, catalogs must be read again. */
  | { readonly type: 'disconnected' };

/** A cloud found in the directory, online. */
export interface PeerInfo {
  readonly entry: CatalogEntry;
  /** The full JIDs the peer is available at. */
  readonly resources: readonly string[];
  readonly caps?: string;
  /** Round trip of an entity-time exchange, ms (when measured). */
  readonly rttMs?: number;
  /** The peer's clock minus ours, ms (when measured). */
  readonly clockOffsetMs?: number;
  /** Set when measuring failed (the peer did not answer). */
  readonly unreachable?: string;
}

/** An empty directory for cloud `self`. */
export function emptyDirectory(self: string): DirectoryState {
  return { self, entries: new Map(), refused: new Map(), loaded: new Set(), presence: new Map() };
}

function bareOf(jid: string): string {
  const slash = jid.indexOf('/');
  return slash < 0 ? jid : jid.slice(0, slash);
}

function withRefused(state: DirectoryState, service: string, change: (ids: Set<string>) => void): ReadonlyMap<string, ReadonlySet<string>> {
  const ids = new Set(state.refused.get(service) ?? []);
  change(ids);
  const refused = new Map(state.refused);
  if (ids.size === 0) refused.delete(service);
  else refused.set(service, ids);
  return refused;
}

/** Drops the entries `service` gave for which `gone(cloudId)` holds (never our own). */
function dropFrom(state: DirectoryState, service: string, gone: (cloudId: string) => boolean): ReadonlyMap<string, DirectoryEntry> {
  let entries: Map<string, DirectoryEntry> | undefined;
  for (const [id, e] of state.entries) {
    if (e.service !== service || id === state.self || !gone(id)) continue;
    entries ??= new Map(state.entries);
    entries.delete(id);
  }
  return entries ?? state.entries;
}

/** The reducer. Returns `state` itself when nothing changed. */
export function reduceDirectory(state: DirectoryState, event: DirectoryEvent): DirectoryState {
  switch (event.type) {
    case 'published': {
      const id = event.entry.cloudId;
      const entries = new Map(state.entries);
      entries.set(id, { entry: event.entry, signature: event.signature, service: event.service });
      const refused = state.refused.get(event.service)?.has(id) ? withRefused(state, event.service, (s) => s.delete(id)) : state.refused;
      return { ...state, entries, refused };
    }
    case 'refused': {
      const entries = dropFrom(state, event.service, (id) => id === event.itemId);
      return { ...state, entries, refused: withRefused(state, event.service, (s) => s.add(event.itemId)) };
    }
    case 'retracted': {
      const ids = new Set(event.itemIds);
      const entries = dropFrom(state, event.service, (id) => ids.has(id));
      return entries === state.entries ? state : { ...state, entries };
    }
    case 'reload':
      return state.refused.has(event.service) ? { ...state, refused: withRefused(state, event.service, (s) => s.clear()) } : state;
    case 'listed': {
      const ids = new Set(event.itemIds);
      const entries = dropFrom(state, event.service, (id) => !ids.has(id));
      const loaded = event.complete && !state.loaded.has(event.service) ? new Set([...state.loaded, event.service]) : state.loaded;
      return entries === state.entries && loaded === state.loaded ? state : { ...state, entries, loaded };
    }
    case 'presence': {
      const bare = bareOf(event.from);
      const before = state.presence.get(bare);
      if (!event.available && !before?.has(event.from)) return state;
      const resources = new Map(before ?? []);
      if (event.available) resources.set(event.from, event.caps);
      else resources.delete(event.from);
      const presence = new Map(state.presence);
      if (resources.size === 0) presence.delete(bare);
      else presence.set(bare, resources);
      return { ...state, presence };
    }
    case 'disconnected':
      return { ...state, presence: new Map(), loaded: new Set() };
  }
}

/** Whether `bareJid` has an available resource. */
export function isAvailable(state: DirectoryState, bareJid: string): boolean {
  return (state.presence.get(bareJid)?.size ?? 0) > 0;
}

/** The bare JIDs with an available resource. */
export function availablePeers(state: DirectoryState): string[] {
  return [...state.presence.keys()];
}

/** Of `itemIds` listed by `service`, those to fetch: not held, not refused, not our own. */
export function unknownItems(state: DirectoryState, service: string, itemIds: Iterable<string>): string[] {
  const refused = state.refused.get(service);
  return [...itemIds].filter((id) => id !== state.self && !state.entries.has(id) && !refused?.has(id));
}

/**
 * Clouds that match `filter`, whose gateway is available, other than our own, by cloud id. Each
 * comes with its available full JIDs and the caps `ver` of the first.
 */
export function findPeers(state: DirectoryState, filter: PeerFilter = {}): PeerInfo[] {
  const out: PeerInfo[] = [];
  for (const { entry } of state.entries.values()) {
    if (entry.cloudId === state.self || !matchesFilter(entry, filter)) continue;
    const resources = state.presence.get(entry.jid);
    if (!resources || resources.size === 0) continue;
    const full = [...resources.keys()];
    const caps = resources.get(full[0] as string);
    out.push({ entry, resources: full, ...(caps === undefined ? {} : { caps }) });
  }
  return out.sort((a, b) => a.entry.cloudId.localeCompare(b.entry.cloudId));
}
