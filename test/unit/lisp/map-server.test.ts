import { describe, expect, it } from 'vitest';
import {
  MapServerCore, decodeLispMessage, encodeLispMessage, verifyAuthData, type LispMessage, type MapRegister, type MappingRecord,
} from '../../../protocols/lisp/index.js';

const SITES = [
  { name: 'cloud-a', keyId: 0, key: 'key-a', allowedPrefixes: ['10.0.0.0/8', '2001:db8::/32'] },
  { name: 'cloud-b', keyId: 0, key: 'key-b', allowedPrefixes: ['10.0.0.0/8'] },
  { name: 'cloud-c', keyId: 7, key: 'key-c', allowedPrefixes: ['192.168.50.0/24'] },
];
const ETR = { address: '127.0.0.1', port: 40001 };
const T0 = 1_700_000_000_000;

function record(eid: string, rloc: string, ttl = 1440): MappingRecord {
  const [address = '', len] = eid.split('/');
  return {
    ttl, eid: { address, maskLength: Number(len ?? (address.includes(':') ? 128 : 32)) }, action: 0, authoritative: true, mapVersion: 0,
    locators: ttl === 0 ? [] : [{ address: rloc, priority: 1, weight: 100, multicastPriority: 255, multicastWeight: 0, local: true, probed: false, reachable: true }],
  };
}

function register(records: MappingRecord[], over: Partial<MapRegister> = {}, key = 'key-a'): Buffer {
  const m: MapRegister = {
    type: 'map-register', proxyReply: true, securityCapable: false, useTtlForTimeout: false, wantMapNotify: true,
    nonce: 0xabcdefn, keyId: 0, algorithmId: 2, authData: Buffer.alloc(0), records, ...over,
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
    const out = core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), ETR, T0);
    expect(out.event).toMatchObject({ kind: 'registered', site: 'cloud-a', eids: ['10.1.1.1/32'], notified: true });
    expect(out.replies).toHaveLength(1);
    expect(out.replies[0]!.to).toEqual(ETR);
    const notify = decodeLispMessage(out.replies[0]!.data);
    expect(notify).toMatchObject({ type: 'map-notify', nonce: 0xabcdefn, keyId: 0, algorithmId: 2 });
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
    core.handle(register([record('10.1.1.2/32', '192.0.2.1')], { nonce: 2n }), ETR, T0 + 120_000);
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
    const out = core.handle(register([record('10.1.1.1/32', '', 0)], { nonce: 5n }), ETR, T0 + 1);
    expect(out.event).toMatchObject({ kind: 'withdrawn', site: 'cloud-a', eids: ['10.1.1.1/32'] });
    expect(decodeLispMessage(out.replies[0]!.data)).toMatchObject({ type: 'map-notify', nonce: 5n });
    expect(reply(core, '10.1.1.1', T0 + 2).records[0]!.locators).toHaveLength(0);
  });

  it('during a move the newest site wins; after the source withdraws only the target remains', () => {
    const core = new MapServerCore({ sites: SITES });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), ETR, T0);
    core.handle(register([record('10.1.1.1/32', '198.51.100.1')], {}, 'key-b'), ETR, T0 + 10);
    // the source refreshing does not take the EID back
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')], { nonce: 3n }), ETR, T0 + 20);
    expect(reply(core, '10.1.1.1', T0 + 30).records[0]!.locators[0]!.address).toBe('198.51.100.1');
    core.handle(register([record('10.1.1.1/32', '', 0)], { nonce: 4n }), ETR, T0 + 40);
    expect(reply(core, '10.1.1.1', T0 + 50).records[0]!.locators[0]!.address).toBe('198.51.100.1');
  });
});

describe('map server: unsolicited Map-Notify when a prefix moves to another site (RFC 9301 §5.7)', () => {
  const A = { address: '127.0.0.1', port: 41000 };
  const B = { address: '127.0.0.1', port: 42000 };

  it('tells the old site, signed with its key, and retransmits until the Map-Notify-Ack', () => {
    let n = 100n;
    const core = new MapServerCore({ sites: SITES, nonce: () => n++, notifyRetransmitMs: 3000, notifyRetries: 2 });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), A, T0);
    const out = core.handle(register([record('10.1.1.1/32', '198.51.100.1')], { nonce: 9n }, 'key-b'), B, T0 + 10);
    expect(out.replies.map((r) => r.to)).toEqual([B, A]);
    expect(out.also).toEqual([{ kind: 'mapping-moved', eids: ['10.1.1.1/32'], from: 'cloud-a', to: 'cloud-b', notified: A }]);
    const unsolicited = out.replies[1]!.data;
    expect(decodeLispMessage(unsolicited)).toMatchObject({ type: 'map-notify', nonce: 100n, records: [{ locators: [{ address: '198.51.100.1' }] }] });
    expect(() => verifyAuthData(unsolicited, 2, 'key-a')).not.toThrow();
    // a refresh by cloud-b is not a new move
    expect(core.handle(register([record('10.1.1.1/32', '198.51.100.1')], { nonce: 10n }, 'key-b'), B, T0 + 20).replies).toHaveLength(1);
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
    const core = new MapServerCore({ sites: SITES, nonce: () => 5n, notifyRetransmitMs: 1000, notifyRetries: 2 });
    core.handle(register([record('10.1.1.1/32', '192.0.2.1')]), A, T0);
    core.handle(register([record('10.1.1.1/32', '198.51.100.1')], {}, 'key-b'), B, T0);
    const kinds = [1000, 2000, 3000, 4000].map((t) => core.tick(T0 + t).map((r) => r.event.kind));
    expect(kinds).toEqual([['notify-retransmitted'], ['notify-retransmitted'], ['notify-unacknowledged'], []]);
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
