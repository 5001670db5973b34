/**
 * The directory as a pure reducer over catalog and presence events (issue 13): no server, no
 * trust area. Entries are keyed by cloud and remember the PubSub service they came from.
 */
import { describe, expect, it } from 'vitest';
import {
  availablePeers, emptyDirectory, findPeers, isAvailable, reduceDirectory, unknownItems, type DirectoryEvent, type DirectoryState,
} from '../../../protocols/xmpp/index.js';
import { sampleEntry } from './fixtures.js';

const ROOT1 = 'pubsub.intercloud.test';
const ROOT2 = 'pubsub.root2.test';
const B = sampleEntry();
const C = sampleEntry({ cloudId: 'cloud-c', jid: 'cloud-c@intercloud.test', regions: ['us-east'] });
const D = sampleEntry({ cloudId: 'cloud-d', jid: 'cloud-d@root2.test' });
const SELF = sampleEntry({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' });

const run = (events: DirectoryEvent[], from: DirectoryState = emptyDirectory('cloud-a')): DirectoryState => events.reduce(reduceDirectory, from);
const pub = (service: string, entry = B, signature = `sig-${entry.cloudId}`): DirectoryEvent => ({ type: 'published', service, entry, signature });
const on = (from: string, caps?: string): DirectoryEvent => ({ type: 'presence', from, available: true, ...(caps ? { caps } : {}) });
const off = (from: string): DirectoryEvent => ({ type: 'presence', from, available: false });

describe('the directory reducer', () => {
  it('finds a published cloud only while its gateway is available, by cloud id, never itself', () => {
    let s = run([pub(ROOT1, C), pub(ROOT1, B), pub(ROOT1, SELF), on('cloud-a@intercloud.test/gateway')]);
    expect(findPeers(s)).toEqual([]);
    s = run([on('cloud-c@intercloud.test/gateway', 'v1'), on('cloud-b@intercloud.test/gateway'), on('cloud-b@intercloud.test/cli-1')], s);
    expect(findPeers(s).map((p) => p.entry.cloudId)).toEqual(['cloud-b', 'cloud-c']);
    expect(findPeers(s)[0]?.resources).toEqual(['cloud-b@intercloud.test/gateway', 'cloud-b@intercloud.test/cli-1']);
    expect(findPeers(s)[1]).toMatchObject({ caps: 'v1' });
    expect(findPeers(s, { region: 'us-east' }).map((p) => p.entry.cloudId)).toEqual(['cloud-c']);
    s = run([off('cloud-b@intercloud.test/gateway'), off('cloud-b@intercloud.test/cli-1')], s);
    expect(isAvailable(s, 'cloud-b@intercloud.test')).toBe(false);
    expect(findPeers(s).map((p) => p.entry.cloudId)).toEqual(['cloud-c']);
    expect(availablePeers(s).sort()).toEqual(['cloud-a@intercloud.test', 'cloud-c@intercloud.test']);
  });

  it('keeps the newest verified entry of a cloud and the service it came from', () => {
    const fuller = { ...B, capacity: { ...B.capacity, vcpus: 1 } };
    const s = run([pub(ROOT1, B, 's1'), pub(ROOT1, fuller, 's2')]);
    expect(s.entries.get('cloud-b')).toEqual({ entry: fuller, signature: 's2', service: ROOT1 });
  });

  it('drops an entry when its item is retracted by the service that gave it, not by another service', () => {
    let s = run([pub(ROOT1, B), pub(ROOT2, D)]);
    s = run([{ type: 'retracted', service: ROOT2, itemIds: ['cloud-b'] }], s);
    expect([...s.entries.keys()].sort()).toEqual(['cloud-b', 'cloud-d']);
    s = run([{ type: 'retracted', service: ROOT1, itemIds: ['cloud-b', 'cloud-a'] }], s);
    expect([...s.entries.keys()]).toEqual(['cloud-d']);
    expect(s.entries.get('cloud-d')?.service).toBe(ROOT2);
  });

  it('never drops our own entry on a retraction or a listing', () => {
    const s = run([pub(ROOT1, SELF), { type: 'retracted', service: ROOT1, itemIds: ['cloud-a'] }, { type: 'listed', service: ROOT1, itemIds: [], complete: true }]);
    expect(s.entries.has('cloud-a')).toBe(true);
  });

  it('drops, on a listing, the entries that service no longer holds; a complete listing marks it loaded', () => {
    let s = run([pub(ROOT1, B), pub(ROOT1, C), pub(ROOT2, D)]);
    s = run([{ type: 'listed', service: ROOT1, itemIds: ['cloud-c'], complete: false }], s);
    expect([...s.entries.keys()].sort()).toEqual(['cloud-c', 'cloud-d']);
    expect(s.loaded.has(ROOT1)).toBe(false);
    s = run([{ type: 'listed', service: ROOT1, itemIds: ['cloud-c'], complete: true }], s);
    expect(s.loaded.has(ROOT1)).toBe(true);
    expect(s.loaded.has(ROOT2)).toBe(false);
  });

  it('remembers items that failed verification per service, until notified again or reloaded', () => {
    let s = run([pub(ROOT1, B), { type: 'refused', service: ROOT1, itemId: 'cloud-b' }, { type: 'refused', service: ROOT2, itemId: 'cloud-x' }]);
    // The bad item replaced the good one: the entry is gone and it is not fetched again.
    expect(s.entries.has('cloud-b')).toBe(false);
    expect(unknownItems(s, ROOT1, ['cloud-b', 'cloud-c', 'cloud-a'])).toEqual(['cloud-c']);
    expect(unknownItems(s, ROOT2, ['cloud-b', 'cloud-x'])).toEqual(['cloud-b']);
    // A verified item of that id again clears it.
    s = run([pub(ROOT1, B)], s);
    expect(s.refused.get(ROOT1)).toBeUndefined();
    // A full reload of one service forgets its refusals only.
    s = run([{ type: 'refused', service: ROOT1, itemId: 'cloud-y' }, { type: 'reload', service: ROOT1 }], s);
    expect(s.refused.has(ROOT1)).toBe(false);
    expect(s.refused.get(ROOT2)?.has('cloud-x')).toBe(true);
  });

  it('a refused item from one service does not drop the entry another service gave', () => {
    const s = run([pub(ROOT1, B), { type: 'refused', service: ROOT2, itemId: 'cloud-b' }]);
    expect(s.entries.get('cloud-b')?.service).toBe(ROOT1);
  });

  it('forgets presence and what was loaded when the stream goes down, but keeps the entries', () => {
    const s = run([pub(ROOT1, B), on('cloud-b@intercloud.test/gateway'), { type: 'listed', service: ROOT1, itemIds: ['cloud-b'], complete: true }, { type: 'disconnected' }]);
    expect(s.presence.size).toBe(0);
    expect(s.loaded.size).toBe(0);
    expect(s.entries.has('cloud-b')).toBe(true);
    expect(findPeers(s)).toEqual([]);
  });

  it('does not change the state it is given, and returns it as is when nothing happens', () => {
    const s0 = run([pub(ROOT1, B)]);
    const s1 = reduceDirectory(s0, pub(ROOT1, C));
    expect(s0.entries.has('cloud-c')).toBe(false);
    expect(s1.entries.has('cloud-c')).toBe(true);
    expect(reduceDirectory(s1, off('cloud-z@intercloud.test/gateway'))).toBe(s1);
    expect(reduceDirectory(s1, { type: 'retracted', service: ROOT2, itemIds: ['cloud-b'] })).toBe(s1);
  });
});
