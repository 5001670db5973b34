import { describe, expect, it } from 'vitest';
import {
  MapServerCore, decodeLispMessage, encodeLispMessage, registerNonceAt, verifyAuthData, type LispMessage, type MapRegister, type MappingRecord,
  signEidHandOver, type EidHandOver,
} from '../../../protocols/lisp/index.js';
import {
  buildCrl, createRootCertificate, generateKeyPair, issueGatewayCertificate, parseCrlDer, type Certificate, type Signer,
} from '../../../protocols/trust/index.js';

const SITES = [
  { name: 'cloud-a', keyId: 0, key: 'key-a', allowedPrefixes: ['10.0.0.0/8', '2001:db8::/32'] },
  { name: 'cloud-b', keyId: 0, key: 'key-b', allowedPrefixes: ['10.0.0.0/8'] },
  { name: 'cloud-c', keyId: 7, key: 'key-c', allowedPrefixes: ['192.168.50.0/24'] },
];
const ETR = { address: '127.0.0.1', port: 40001 };
const T0 = 1_700_000_000_000;

// An Intercloud Root and the three clouds' gateway certificates, made here (hermetic).
const rootKeys = generateKeyPair();
const ROOT: Certificate = createRootCertificate({ ...rootKeys, now: new Date(T0) });
function gateway(cloudId: string): Signer {
  const k = generateKeyPair();
  return { certificate: issueGatewayCertificate({ certificate: ROOT, privateKey: rootKeys.privateKey }, { cloudId, publicKey: k.publicKey, now: new Date(T0) }), privateKey: k.privateKey };
}
const CLOUD = { a: gateway('cloud-a'), b: gateway('cloud-b'), c: gateway('cloud-c') };
const TRUST = { roots: [ROOT] };

/** cloud `by` signs that `h.from` hands `h.eids` to `h.to`; returned as the `eid-hand-over` `to`'s site sends it (key). */
function handOver(h: EidHandOver, by: Signer, key: string, at = T0, ttlMs = 600_000): Buffer {
  const env = signEidHandOver(h, by, { now: new Date(at), ttlMs });
  return encodeLispMessage({
    type: 'eid-hand-over', nonce: registerNonceAt(at, seq++), keyId: 0, algorithmId: 2, authData: Buffer.alloc(0), handOver: JSON.stringify(env),
  }, { key });
}

function answer(out: ReturnType<MapServerCore['handle']>, key: string): { accepted: boolean; code: string } {
  expect(out.replies).toHaveLength(1);
  expect(() => verifyAuthData(out.replies[0]!.data, 2, key)).not.toThrow();
  const m = decodeLispMessage(out.replies[0]!.data);
  if (m.type !== 'eid-hand-over-answer') throw new Error(`expected a hand-over answer, got '${m.type}'`);
  return { accepted: m.accepted, code: m.code };
}

function record(eid: string, rloc: string, ttl = 1440): MappingRecord {
  const [address = '', len] = eid.split('/');
  return {
    ttl, eid: { address, maskLength: Number(len ?? (address.includes(':') ? 128 : 32)) }, action: 0, authoritative: true, mapVersion: 0,
    locators: ttl === 0 ? [] : [{ address: rloc, priority: 1, weight: 100, multicastPriority: 255, multicastWeight: 0, local: true, probed: false, reachable: true }],
  };
}

let seq = 0;
/** A signed Map-Register sent at `at` (its nonce carries that time and increases, RFC 9301 §5.6). */
function register(records: MappingRecord[], over: Partial<MapRegister> = {}, key = 'key-a', at = T0): Buffer {
  const m: MapRegister = {
    type: 'map-register', proxyReply: true, securityCapable: false, useTtlForTimeout: false, wantMapNotify: true,
    nonce: registerNonceAt(at, seq++), keyId: 0, algorithmId: 2, authData: Buffer.alloc(0), records, ...over,
  };
  return encodeLispMessage(m, { key });
}

function mapRequest(eid: string, sourcePort = 50000): Buffer {
  return encodeLispMessage({
    type: 'encapsulated-control-message', security: false, ddtOriginated: false, toEtr: false, toMapServer: false,
    inner: { source: '127.0.0.1', destination: eid, sourcePort, destinationPort: 4342, ttl: 64 },
    message: {
      type: 'map-request', authoritative: false, mapDataPresent: false, probe: false, smr: false, pitr: false, smrInvoked: false,
      nonce: 99n, sourceEid: null, itrRlocs: ['127.0.0.1'], records: [{ address: eid, maskLength: 32 }],
    },
  });
}

function reply(core: MapServerCore, eid: string, now: number): Extract<LispMessage, { type: 'map-reply' }> {
  const out = core.handle(mapRequest(eid), { address: '127.0.0.1', port: 50000 }, now);
  expect(out.replies).toHaveLength(1);
  const m = decodeLispMessage(out.replies[0]!.data);
  if (m.type !== 'map-reply') throw new Error(`expected a map-reply, got '${m.type}'`);
  return m;
}

describe('map server: registrations', () => {
  it('accepts an authenticated Map-Register and answers with a signed Map-Notify echoing the nonce', () => {
    const core = new MapServerCore({ sites: SITES });
    const nonce = registerNonceAt(T0, 7);
    const out = core.handle(register([record('10.1.1.1/32', '192.0.2.1')], { nonce }), ETR, T0);
    expect(out.event).toMatchObject({ kind: 'registered', site: 'cloud-a', eids: ['10.1.1.1/32'], notified: true });
    expect(out.replies).toHaveLength(1);
    expect(out.replies[0]!.to).toEqual(ETR);
    const notify = decodeLispMessage(out.replies[0]!.data);
    expect(notify).toMatchObject({ type: 'map-notify', nonce, keyId: 0, algorithmId: 2 });
    expect(() => verifyAuthData(out.replies[0]!.data, 2, 'key-a')).not.toThrow();
  });

  it('sends no Map-Notify when the M bit is clear', () => {
    const core = new MapServerCore({ sites: SITES });
    const out = core.handle(register([record('10.1.1.1/32', '192.0.2.1')], { wantMapNotify: false }), ETR, T0);
    expect(out.event.kind).toBe('registered');
    expect(out.replies).toEqual([]);
  });

  it('answers Map-Requests for registered EIDs with the registered RLOCs, negatively otherwise', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), ETR, T0);
    const pos = reply(core, '10.1.1.1', T0 + 1000);
    expect(pos.nonce).toBe(99n);
    expect(pos.records[0]).toMatchObject({ eid: { address: '10.1.1.1', maskLength: 32 }, locators: [{ address: '192.0.2.1', priority: 1, weight: 100 }] });
    const neg = reply(core, '10.9.9.9', T0 + 1000);
    expect(neg.records[0]).toMatchObject({ locators: [], action: 2, ttl: 1 });
    const outside = reply(core, '172.16.0.1', T0 + 1000);
    expect(outside.records[0]).toMatchObject({ locators: [], action: 1, ttl: 15 });
    // RFC 9301 §5.4: a Map-Server's proxy reply sets neither the A bit nor any locator's L bit
    // (cloud-a registered its locator with L set).
    expect(pos.records[0]).toMatchObject({ authoritative: false, locators: [{ local: false }] });
    expect(neg.records[0]!.authoritative).toBe(false);
  });

  it('sends the Map-Reply to the ITR-RLOC at the inner UDP source port (RFC 9301 §5.8)', () => {
    const core = new MapServerCore({ sites: SITES });
    const out = core.handle(mapRequest('10.1.1.1', 45678), { address: '127.0.0.1', port: 1111 }, T0);
    expect(out.replies[0]!.to).toEqual({ address: '127.0.0.1', port: 45678 });
  });

  it('answers a bare Map-Request (no ECM) to its sender, with the longest matching prefix', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.0.0/16', '192.0.2.1'), record('10.1.1.1/32', '192.0.2.2')]), ETR, T0);
    const bare = encodeLispMessage({
      type: 'map-request', authoritative: false, mapDataPresent: false, probe: false, smr: false, pitr: false, smrInvoked: false,
      nonce: 7n, sourceEid: null, itrRlocs: ['127.0.0.1'], records: [{ address: '10.1.1.1', maskLength: 32 }, { address: '10.1.9.9', maskLength: 32 }],
    });
    const out = core.handle(bare, { address: '127.0.0.1', port: 4444 }, T0 + 1);
    expect(out.replies[0]!.to).toEqual({ address: '127.0.0.1', port: 4444 });
    const m = decodeLispMessage(out.replies[0]!.data);
    expect(m).toMatchObject({ type: 'map-reply', nonce: 7n });
    if (m.type !== 'map-reply') throw new Error('expected a map-reply');
    expect(m.records.map((r) => [r.eid.address, r.eid.maskLength, r.locators[0]?.address])).toEqual([
      ['10.1.1.1', 32, '192.0.2.2'],
      ['10.1.0.0', 16, '192.0.2.1'],
    ]);
  });

  it('expires a registration not refreshed within 3 minutes (RFC 9301 §8.2), and keeps a refreshed one', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1'), record('10.1.1.2/32', '192.0.2.1')]), ETR, T0);
    core.handle(register([record('10.1.1.2/32', '192.0.2.1')], {}, 'key-a', T0 + 120_000), ETR, T0 + 120_000);
    expect(reply(core, '10.1.1.1', T0 + 179_000).records[0]!.locators).toHaveLength(1);
    expect(reply(core, '10.1.1.1', T0 + 180_000).records[0]!.locators).toHaveLength(0);
    expect(reply(core, '10.1.1.2', T0 + 180_000).records[0]!.locators).toHaveLength(1);
    expect(core.registrations(T0 + 180_000).map((r) => r.eid.address)).toEqual(['10.1.1.2']);
  });

  it('uses the Record TTL as the timeout when the T bit is set', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1', 10)], { useTtlForTimeout: true }), ETR, T0);
    expect(reply(core, '10.1.1.1', T0 + 9 * 60_000).records[0]!.locators).toHaveLength(1);
    expect(reply(core, '10.1.1.1', T0 + 10 * 60_000).records[0]!.locators).toHaveLength(0);
  });

  it('withdraws a registration with Record TTL 0 and confirms with a Map-Notify', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), ETR, T0);
    const nonce = registerNonceAt(T0 + 1);
    const out = core.handle(register([record('10.1.1.1/32', '', 0)], { nonce }), ETR, T0 + 1);
    expect(out.event).toMatchObject({ kind: 'withdrawn', site: 'cloud-a', eids: ['10.1.1.1/32'] });
    expect(decodeLispMessage(out.replies[0]!.data)).toMatchObject({ type: 'map-notify', nonce });
    expect(reply(core, '10.1.1.1', T0 + 2).records[0]!.locators).toHaveLength(0);
  });

  it('a withdrawal is a record with TTL 0 or without locators: the registration is gone, not served with its TTL', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), ETR, T0);
    const noLocators = { ...record('10.1.1.1/32', '192.0.2.1'), locators: [] };
    expect(core.handle(register([noLocators], {}, 'key-a', T0 + 1), ETR, T0 + 1).event).toMatchObject({ kind: 'withdrawn', eids: ['10.1.1.1/32'] });
    expect(core.registrations(T0 + 2)).toEqual([]);
    expect(reply(core, '10.1.1.1', T0 + 2).records[0]).toMatchObject({ locators: [], ttl: 1, action: 2 });
  });

  it('a site may not register a prefix another site holds, even inside its own grant (LISP_EID_HELD)', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), ETR, T0);
    const out = core.handle(register([record('10.1.1.1/32', '198.51.100.1')], {}, 'key-b', T0 + 10), ETR, T0 + 10);
    expect(out.event).toMatchObject({ kind: 'rejected', site: 'cloud-b', error: { code: 'LISP_EID_HELD', details: { holder: 'cloud-a' } } });
    expect(out.replies).toEqual([]);
    // nor a covering or a more specific prefix of it
    expect(core.handle(register([record('10.1.0.0/16', '198.51.100.1')], {}, 'key-b', T0 + 11), ETR, T0 + 11).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_EID_HELD' } });
    expect(reply(core, '10.1.1.1', T0 + 30).records[0]!.locators[0]!.address).toBe('192.0.2.1');
    // once the holder withdraws, the EID is free for a site whose grant covers it
    core.handle(register([record('10.1.1.1/32', '', 0)], {}, 'key-a', T0 + 40), ETR, T0 + 40);
    expect(core.handle(register([record('10.1.1.1/32', '198.51.100.1')], {}, 'key-b', T0 + 50), ETR, T0 + 50).event.kind).toBe('registered');
    expect(reply(core, '10.1.1.1', T0 + 60).records[0]!.locators[0]!.address).toBe('198.51.100.1');
  });

  it('refuses a replayed Map-Register, one whose nonce does not increase, and a stale one (RFC 9301 §5.6)', () => {
    const core = new MapServerCore({ sites: SITES });
    const first = register([record('10.1.1.1/32', '192.0.2.1')], { nonce: registerNonceAt(T0, 5) });
    expect(core.handle(first, ETR, T0).event.kind).toBe('registered');
    core.handle(register([record('10.1.1.1/32', '', 0)], { nonce: registerNonceAt(T0 + 5) }), ETR, T0 + 5);
    // the captured registration, sent again: refused, and the withdrawal stands
    expect(core.handle(first, ETR, T0 + 10).event).toMatchObject({ kind: 'rejected', site: 'cloud-a', error: { code: 'LISP_STALE_NONCE' } });
    expect(core.registrations(T0 + 10)).toEqual([]);
    // a lower nonce, though never seen
    expect(core.handle(register([record('10.1.1.1/32', '192.0.2.1')], { nonce: registerNonceAt(T0, 9) }), ETR, T0 + 10).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_STALE_NONCE' } });
    // stale on a fresh server (e.g. after a restart): dated more than the window before now
    const fresh = new MapServerCore({ sites: SITES, nonceWindowSeconds: 120 });
    expect(fresh.handle(first, ETR, T0 + 121_000).event).toMatchObject({ kind: 'rejected', error: { code: 'LISP_STALE_NONCE' } });
    expect(fresh.handle(register([record('10.1.1.1/32', '192.0.2.1')], {}, 'key-a', T0 + 121_000), ETR, T0 + 121_000).event.kind).toBe('registered');
  });

  it('keeps one nonce per site: another site\'s nonces do not interfere', () => {
    const core = new MapServerCore({ sites: SITES });
    expect(core.handle(register([record('10.1.1.1/32', '192.0.2.1')], { nonce: registerNonceAt(T0, 50) }), ETR, T0).event.kind).toBe('registered');
    expect(core.handle(register([record('10.2.2.2/32', '198.51.100.1')], { nonce: registerNonceAt(T0, 1) }, 'key-b'), ETR, T0).event.kind).toBe('registered');
  });
});

describe('map server: unsolicited Map-Notify when a prefix moves to another site (RFC 9301 §5.7)', () => {
  const A = { address: '127.0.0.1', port: 41000 };
  const B = { address: '127.0.0.1', port: 42000 };

  it('tells the old site, signed with its key, and retransmits until the Map-Notify-Ack', () => {
    let n = 100n;
    const core = new MapServerCore({ sites: SITES, trust: TRUST, nonce: () => n++, notifyRetransmitMs: 3000, notifyRetries: 2 });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), A, T0);
    expect(answer(core.handle(handOver({ eids: ['10.1.1.1'], from: 'cloud-a', to: 'cloud-b', offerId: 'o-1' }, CLOUD.a, 'key-b', T0 + 5), B, T0 + 5), 'key-b'))
      .toEqual({ accepted: true, code: '' });
    const out = core.handle(register([record('10.1.1.1/32', '198.51.100.1')], {}, 'key-b', T0 + 10), B, T0 + 10);
    expect(out.replies.map((r) => r.to)).toEqual([B, A]);
    expect(out.also).toEqual([{ kind: 'mapping-moved', eids: ['10.1.1.1/32'], from: 'cloud-a', to: 'cloud-b', notified: A, offerId: 'o-1' }]);
    const unsolicited = out.replies[1]!.data;
    expect(decodeLispMessage(unsolicited)).toMatchObject({ type: 'map-notify', nonce: 100n, records: [{ locators: [{ address: '198.51.100.1' }] }] });
    expect(() => verifyAuthData(unsolicited, 2, 'key-a')).not.toThrow();
    // a refresh by cloud-b is not a new move
    expect(core.handle(register([record('10.1.1.1/32', '198.51.100.1')], {}, 'key-b', T0 + 20), B, T0 + 20).replies).toHaveLength(1);
    // and cloud-a may no longer register it (it handed it over), though its grant covers it
    expect(core.handle(register([record('10.1.1.1/32', '192.0.2.1')], {}, 'key-a', T0 + 30), A, T0 + 30).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_EID_HELD', details: { holder: 'cloud-b' } } });
    // not yet due, then due
    expect(core.tick(T0 + 1000)).toEqual([]);
    const again = core.tick(T0 + 3010);
    expect(again.map((r) => [r.event.kind, r.replies[0]?.to])).toEqual([['notify-retransmitted', A]]);
    expect(again[0]!.replies[0]!.data).toEqual(unsolicited);
    // cloud-a acknowledges: no more retransmissions
    const ack = encodeLispMessage({ ...(decodeLispMessage(unsolicited) as Extract<LispMessage, { type: 'map-notify' }>), type: 'map-notify-ack' }, { key: 'key-a' });
    expect(core.handle(ack, A, T0 + 3100).event).toMatchObject({ kind: 'map-notify-ack', site: 'cloud-a', nonce: 100n, acknowledged: true });
    expect(core.tick(T0 + 60_000)).toEqual([]);
  });

  it('gives up after its retries when the old site never acknowledges', () => {
    const core = new MapServerCore({ sites: SITES, trust: TRUST, nonce: () => 5n, notifyRetransmitMs: 1000, notifyRetries: 2 });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), A, T0);
    core.handle(handOver({ eids: ['10.1.1.1/32'], from: 'cloud-a', to: 'cloud-b', offerId: 'o-2' }, CLOUD.a, 'key-b'), B, T0);
    expect(core.handle(register([record('10.1.1.1/32', '198.51.100.1')], {}, 'key-b'), B, T0).also).toHaveLength(1);
    const kinds = [1000, 2000, 3000, 4000].map((t) => core.tick(T0 + t).map((r) => r.event.kind));
    expect(kinds).toEqual([['notify-retransmitted'], ['notify-retransmitted'], ['notify-unacknowledged'], []]);
  });
});

describe('map server: EID hand-over signed under the Intercloud Root', () => {
  // cloud-c has its own key id and a grant elsewhere; a fourth site overlaps cloud-a's grant.
  const SITES3 = [
    { name: 'cloud-a', keyId: 0, key: 'key-a', allowedPrefixes: ['10.0.0.0/9'] },
    { name: 'cloud-b', keyId: 0, key: 'key-b', allowedPrefixes: ['10.128.0.0/10'] },
    { name: 'cloud-c', keyId: 0, key: 'key-c', allowedPrefixes: ['10.192.0.0/10'] },
  ];
  const A = { address: '127.0.0.1', port: 41000 };
  const B = { address: '127.0.0.1', port: 42000 };
  const C = { address: '127.0.0.1', port: 43000 };
  const VM = '10.77.0.5/32';
  function setup(): MapServerCore {
    const core = new MapServerCore({ sites: SITES3, trust: TRUST });
    expect(core.handle(register([record(VM, '192.0.2.1')], {}, 'key-a'), A, T0).event.kind).toBe('registered');
    return core;
  }
  const holderOf = (core: MapServerCore, at: number): string | undefined => core.lookup(VM, at)?.site;

  it('without a hand-over, another site cannot register the EID (outside its grant)', () => {
    const core = setup();
    expect(core.handle(register([record(VM, '198.51.100.1')], {}, 'key-b', T0 + 1), B, T0 + 1).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_EID_HELD' } });
    expect(holderOf(core, T0 + 2)).toBe('cloud-a');
  });

  it('a hand-over the holder signed moves the EID to the site it names, and only that site', () => {
    const core = setup();
    const h = { eids: [VM], from: 'cloud-a', to: 'cloud-b', offerId: 'offer-1' };
    // cloud-c presenting cloud-b's hand-over gets nothing
    expect(answer(core.handle(handOver(h, CLOUD.a, 'key-c', T0 + 1), C, T0 + 1), 'key-c')).toEqual({ accepted: false, code: 'LISP_HAND_OVER_INVALID' });
    expect(answer(core.handle(handOver(h, CLOUD.a, 'key-b', T0 + 2), B, T0 + 2), 'key-b')).toEqual({ accepted: true, code: '' });
    expect(core.handle(register([record(VM, '203.0.113.1')], {}, 'key-c', T0 + 3), C, T0 + 3).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_EID_HELD' } });
    expect(core.handle(register([record(VM, '198.51.100.1')], {}, 'key-b', T0 + 4), B, T0 + 4).event).toMatchObject({ kind: 'registered', site: 'cloud-b' });
    expect(holderOf(core, T0 + 5)).toBe('cloud-b');
    expect(core.lookup(VM, T0 + 5)?.handedOverBy).toEqual({ site: 'cloud-a', offerId: 'offer-1' });
    // the source's withdrawal afterwards is confirmed and changes nothing
    const w = core.handle(register([record(VM, '', 0)], {}, 'key-a', T0 + 6), A, T0 + 6);
    expect(w.event).toMatchObject({ kind: 'withdrawn', site: 'cloud-a' });
    expect(w.replies).toHaveLength(1);
    expect(holderOf(core, T0 + 7)).toBe('cloud-b');
    // the target's withdrawal ends it: the EID returns to the site whose grant covers it
    core.handle(register([record(VM, '', 0)], {}, 'key-b', T0 + 8), B, T0 + 8);
    expect(holderOf(core, T0 + 9)).toBeUndefined();
    expect(core.handle(register([record(VM, '198.51.100.1')], {}, 'key-b', T0 + 10), B, T0 + 10).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_EID_NOT_ALLOWED' } });
    expect(core.handle(register([record(VM, '192.0.2.1')], {}, 'key-a', T0 + 11), A, T0 + 11).event.kind).toBe('registered');
  });

  it('refuses a hand-over signed by a certified cloud that does not hold the EID', () => {
    const core = setup();
    // cloud-c signs "cloud-c hands 10.77.0.5 to cloud-c"
    const self = core.handle(handOver({ eids: [VM], from: 'cloud-c', to: 'cloud-c', offerId: 'x' }, CLOUD.c, 'key-c', T0 + 1), C, T0 + 1);
    expect(answer(self, 'key-c')).toEqual({ accepted: false, code: 'LISP_HAND_OVER_INVALID' });
    expect(self.event).toMatchObject({ kind: 'rejected', site: 'cloud-c', error: { code: 'LISP_HAND_OVER_INVALID', details: { from: 'cloud-c', holder: 'cloud-a' } } });
    // cloud-c signs in cloud-a's name
    const forged = core.handle(handOver({ eids: [VM], from: 'cloud-a', to: 'cloud-c', offerId: 'x' }, CLOUD.c, 'key-c', T0 + 2), C, T0 + 2);
    expect(forged.event).toMatchObject({ kind: 'rejected', error: { code: 'LISP_HAND_OVER_INVALID', details: { from: 'cloud-a', signer: 'cloud-c' } } });
    expect(core.handle(register([record(VM, '203.0.113.1')], {}, 'key-c', T0 + 3), C, T0 + 3).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_EID_HELD' } });
    expect(holderOf(core, T0 + 4)).toBe('cloud-a');
  });

  it('refuses an expired hand-over, a replayed one, one signed outside the Root and one of a revoked signer', () => {
    const core = setup();
    const h = { eids: [VM], from: 'cloud-a', to: 'cloud-b', offerId: 'offer-2' };
    const expired = core.handle(handOver(h, CLOUD.a, 'key-b', T0 - 700_000, 600_000), B, T0 + 1);
    expect(expired.event).toMatchObject({ kind: 'rejected', error: { code: 'LISP_STALE_NONCE' } });
    const late = handOver(h, CLOUD.a, 'key-b', T0 + 2, 60_000);
    // presented after its expiry (and its clock-skew allowance), with a fresh nonce
    const envelope = (decodeLispMessage(late) as { handOver: string }).handOver;
    const relabelled = encodeLispMessage({ type: 'eid-hand-over', nonce: registerNonceAt(T0 + 200_000), keyId: 0, algorithmId: 2, authData: Buffer.alloc(0), handOver: envelope }, { key: 'key-b' });
    expect(core.handle(relabelled, B, T0 + 200_000).event).toMatchObject({ kind: 'rejected', error: { code: 'LISP_HAND_OVER_INVALID', details: { trustCode: 'TRUST_MESSAGE_EXPIRED' } } });
    // a root nobody configured
    const otherRootKeys = generateKeyPair();
    const otherRoot = createRootCertificate({ ...otherRootKeys, now: new Date(T0) });
    const k = generateKeyPair();
    const impostor = { certificate: issueGatewayCertificate({ certificate: otherRoot, privateKey: otherRootKeys.privateKey }, { cloudId: 'cloud-a', publicKey: k.publicKey, now: new Date(T0) }), privateKey: k.privateKey };
    expect(core.handle(handOver(h, impostor, 'key-b', T0 + 200_001), B, T0 + 200_001).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_HAND_OVER_INVALID', details: { trustCode: 'TRUST_UNKNOWN_SIGNER' } } });
    // cloud-a's certificate revoked
    const crl = parseCrlDer(buildCrl({
      issuer: ROOT, signingKey: rootKeys.privateKey, thisUpdate: new Date(T0), nextUpdate: new Date(T0 + 86_400_000),
      revoked: [{ serial: CLOUD.a.certificate.serial, revokedAt: new Date(T0) }], crlNumber: 1,
    }));
    const strict = new MapServerCore({ sites: SITES3, trust: { roots: [ROOT], crls: [crl] } });
    strict.handle(register([record(VM, '192.0.2.1')], {}, 'key-a', T0 + 200_002), A, T0 + 200_002);
    expect(strict.handle(handOver(h, CLOUD.a, 'key-b', T0 + 200_003), B, T0 + 200_003).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_HAND_OVER_INVALID', details: { trustCode: 'TRUST_REVOKED' } } });
    // replay: a used hand-over presented again after the EID went back is refused
    const ok = handOver(h, CLOUD.a, 'key-b', T0 + 200_010);
    expect(answer(core.handle(ok, B, T0 + 200_010), 'key-b').accepted).toBe(true);
    // the same datagram again: its nonce is not above the last
    expect(core.handle(ok, B, T0 + 200_011).event).toMatchObject({ kind: 'rejected', error: { code: 'LISP_STALE_NONCE' } });
    core.handle(register([record(VM, '198.51.100.1')], {}, 'key-b', T0 + 200_012), B, T0 + 200_012);
    core.handle(register([record(VM, '', 0)], {}, 'key-b', T0 + 200_013), B, T0 + 200_013);
    core.handle(register([record(VM, '192.0.2.1')], {}, 'key-a', T0 + 200_014), A, T0 + 200_014);
    const env = (decodeLispMessage(ok) as { handOver: string }).handOver;
    const again = encodeLispMessage({ type: 'eid-hand-over', nonce: registerNonceAt(T0 + 200_020), keyId: 0, algorithmId: 2, authData: Buffer.alloc(0), handOver: env }, { key: 'key-b' });
    expect(core.handle(again, B, T0 + 200_020).event).toMatchObject({ kind: 'rejected', error: { code: 'LISP_HAND_OVER_INVALID', details: { replayed: true } } });
    expect(holderOf(core, T0 + 200_021)).toBe('cloud-a');
  });

  it('an unused hand-over lapses at its expiry; the holder keeps the EID', () => {
    const core = setup();
    core.handle(handOver({ eids: [VM], from: 'cloud-a', to: 'cloud-b', offerId: 'o' }, CLOUD.a, 'key-b', T0 + 1, 60_000), B, T0 + 1);
    core.handle(register([record(VM, '192.0.2.1')], {}, 'key-a', T0 + 61_000), A, T0 + 61_000);
    expect(core.handle(register([record(VM, '198.51.100.1')], {}, 'key-b', T0 + 62_000), B, T0 + 62_000).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_EID_HELD' } });
  });

  it('holds a bounded number of hand-overs per site', () => {
    const core = new MapServerCore({ sites: SITES3, trust: TRUST, maxHandOversPerSite: 2 });
    const own = (n: number, at: number): ReturnType<MapServerCore['handle']> =>
      core.handle(handOver({ eids: [`10.192.0.${n}`], from: 'cloud-c', to: 'cloud-c', offerId: `o${n}` }, CLOUD.c, 'key-c', at), C, at);
    // each one used at once (registered), so only the memory of used ones grows
    for (const n of [1, 2]) {
      expect(answer(own(n, T0 + n * 10), 'key-c').accepted).toBe(true);
      expect(core.handle(register([record(`10.192.0.${n}/32`, '203.0.113.1')], {}, 'key-c', T0 + n * 10 + 1), C, T0 + n * 10 + 1).event.kind).toBe('registered');
    }
    expect(own(3, T0 + 30).event).toMatchObject({ kind: 'rejected', error: { code: 'LISP_HAND_OVER_INVALID', details: { remembered: 2, max: 2 } } });
  });

  it('without a configured Root every hand-over is refused', () => {
    const core = new MapServerCore({ sites: SITES3 });
    expect(answer(core.handle(handOver({ eids: [VM], from: 'cloud-a', to: 'cloud-b', offerId: 'o' }, CLOUD.a, 'key-b'), B, T0), 'key-b'))
      .toEqual({ accepted: false, code: 'LISP_HAND_OVER_INVALID' });
  });
});

describe('map server: state kept across a restart (snapshot / restore)', () => {
  const SITES3 = [
    { name: 'cloud-a', keyId: 0, key: 'key-a', allowedPrefixes: ['10.0.0.0/9'] },
    { name: 'cloud-b', keyId: 0, key: 'key-b', allowedPrefixes: ['10.128.0.0/10'] },
  ];
  it('a handed-over EID stays with its new holder, and a Map-Register captured before the restart stays a replay', () => {
    const A = { address: '127.0.0.1', port: 41000 };
    const B = { address: '127.0.0.1', port: 42000 };
    const VM = '10.77.0.5/32';
    const before = new MapServerCore({ sites: SITES3, trust: TRUST });
    const captured = register([record(VM, '192.0.2.1')], {}, 'key-a', T0);
    before.handle(captured, A, T0);
    before.handle(handOver({ eids: [VM], from: 'cloud-a', to: 'cloud-b', offerId: 'o' }, CLOUD.a, 'key-b', T0 + 1), B, T0 + 1);
    before.handle(register([record(VM, '198.51.100.1')], {}, 'key-b', T0 + 2), B, T0 + 2);
    expect(before.dirty).toBe(true);
    const snap = JSON.parse(JSON.stringify(before.snapshot(T0 + 3))) as ReturnType<MapServerCore['snapshot']>;
    expect(before.dirty).toBe(false);

    const after = new MapServerCore({ sites: SITES3, trust: TRUST });
    after.restore(snap, T0 + 10_000);
    expect(after.lookup(VM, T0 + 10_000)).toMatchObject({ site: 'cloud-b', handedOverBy: { site: 'cloud-a', offerId: 'o' } });
    // cloud-b's refresh is accepted though the EID is outside its grant; cloud-a's is refused
    expect(after.handle(register([record(VM, '198.51.100.1')], {}, 'key-b', T0 + 11_000), B, T0 + 11_000).event.kind).toBe('registered');
    expect(after.handle(register([record(VM, '192.0.2.1')], {}, 'key-a', T0 + 12_000), A, T0 + 12_000).event)
      .toMatchObject({ kind: 'rejected', error: { code: 'LISP_EID_HELD' } });
    // the Map-Register captured before the restart (within the nonce window) is still a replay
    const fresh = new MapServerCore({ sites: SITES3, trust: TRUST });
    fresh.restore(snap, T0 + 13_000);
    expect(fresh.handle(captured, A, T0 + 13_000).event).toMatchObject({ kind: 'rejected', error: { code: 'LISP_STALE_NONCE' } });
  });

  it('refuses something that is not a snapshot (LISP_CONFIG)', () => {
    const core = new MapServerCore({ sites: SITES3 });
    expect(() => core.restore({ v: 2 } as never, T0)).toThrow(expect.objectContaining({ code: 'LISP_CONFIG' }));
    expect(() => core.restore({ v: 1, registrations: [{ eid: 'nonsense', site: 'cloud-a', expiresAt: T0 + 1 }], lastNonces: {}, grants: [], seenHandOvers: [] } as never, T0))
      .toThrow(expect.objectContaining({ code: 'LISP_CONFIG' }));
  });
});

describe('map server: negative Map-Replies cover the least-specific unregistered prefix (RFC 9301 §8.1, RFC 6833 §6.1)', () => {
  it('inside a site\'s space: the widest prefix around the EID that overlaps no registration, within that space', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), ETR, T0);
    expect(reply(core, '10.1.1.3', T0 + 1).records[0]).toMatchObject({ eid: { address: '10.1.1.2', maskLength: 31 }, locators: [], action: 2 });
    expect(reply(core, '10.200.0.1', T0 + 1).records[0]).toMatchObject({ eid: { address: '10.128.0.0', maskLength: 9 } });
    // nothing registered: the site's whole configured prefix
    expect(reply(new MapServerCore({ sites: SITES }), '10.9.9.9', T0).records[0]).toMatchObject({ eid: { address: '10.0.0.0', maskLength: 8 } });
  });

  it('outside every site: the widest prefix that overlaps no configured EID space (natively forward)', () => {
    const core = new MapServerCore({ sites: SITES });
    expect(reply(core, '172.16.0.1', T0).records[0]).toMatchObject({ eid: { address: '128.0.0.0', maskLength: 2 }, action: 1, ttl: 15 });
    expect(reply(core, '11.0.0.1', T0).records[0]).toMatchObject({ eid: { address: '11.0.0.0', maskLength: 8 }, action: 1 });
  });
});

describe('map server: bad input is rejected with a code and no answer, and the server goes on', () => {
  function rejected(core: MapServerCore, datagram: Buffer): string {
    const out = core.handle(datagram, ETR, T0);
    expect(out.replies).toEqual([]);
    if (out.event.kind !== 'rejected') throw new Error(`expected a rejection, got '${out.event.kind}'`);
    return out.event.error.code;
  }

  it('bad HMAC', () => {
    const core = new MapServerCore({ sites: SITES });
    expect(rejected(core, register([record('10.1.1.1/32', '192.0.2.1')], {}, 'wrong-key'))).toBe('LISP_BAD_HMAC');
    const tampered = register([record('10.1.1.1/32', '192.0.2.1')]);
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 1) ^ 1, tampered.length - 1);
    expect(rejected(core, tampered)).toBe('LISP_BAD_HMAC');
    expect(core.registrations(T0)).toEqual([]);
  });

  it('unknown key id', () => {
    const core = new MapServerCore({ sites: SITES });
    expect(rejected(core, register([record('10.1.1.1/32', '192.0.2.1')], { keyId: 9 }))).toBe('LISP_UNKNOWN_KEY_ID');
  });

  it('an EID prefix outside the site\'s allowed prefixes (the whole message is refused)', () => {
    const core = new MapServerCore({ sites: SITES });
    expect(rejected(core, register([record('10.1.1.1/32', '192.0.2.1'), record('2001:db8::1/128', '192.0.2.1')], {}, 'key-b')))
      .toBe('LISP_EID_NOT_ALLOWED');
    expect(rejected(core, register([record('10.0.0.0/7', '192.0.2.1')]))).toBe('LISP_EID_NOT_ALLOWED');
    expect(core.registrations(T0)).toEqual([]);
  });

  it('truncated packets, wrong lengths and unknown types', () => {
    const core = new MapServerCore({ sites: SITES });
    const good = register([record('10.1.1.1/32', '192.0.2.1')]);
    expect(rejected(core, good.subarray(0, 20))).toBe('LISP_TRUNCATED');
    expect(rejected(core, Buffer.concat([good, Buffer.alloc(3)]))).toBe('LISP_BAD_LENGTH');
    const unknown = Buffer.from(good);
    unknown[0] = 0x60;
    expect(rejected(core, unknown)).toBe('LISP_UNKNOWN_TYPE');
    // and a good registration still works afterwards
    expect(core.handle(good, ETR, T0).event.kind).toBe('registered');
  });

  it('a Map-Reply sent to the map server is refused as an unexpected type', () => {
    const core = new MapServerCore({ sites: SITES });
    const mr = encodeLispMessage({ type: 'map-reply', probe: false, echoNonceCapable: false, security: false, nonce: 1n, records: [] });
    expect(rejected(core, mr)).toBe('LISP_UNKNOWN_TYPE');
  });

  it('refuses bad site configs with LISP_CONFIG', () => {
    expect(() => new MapServerCore({ sites: [{ name: 'x', keyId: 300, key: 'k', allowedPrefixes: [] }] })).toThrow(expect.objectContaining({ code: 'LISP_CONFIG' }));
    expect(() => new MapServerCore({ sites: [{ name: 'x', keyId: 1, key: 'k', allowedPrefixes: ['10.0.0.0/40'] }] })).toThrow(expect.objectContaining({ code: 'LISP_CONFIG' }));
  });
});
