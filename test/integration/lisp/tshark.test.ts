/**
 * Every LISP message the project encodes is sent over loopback UDP, captured by Debian's
 * tshark and decoded by Wireshark's LISP dissector with the fields we expect; the HMACs
 * match Python's `hmac` over the same bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import {
  Registrar, decodeLispMessage, encodeLispMessage, lookupEid, startMapServer, type MapNotify, type MappingRecord, type RunningMapServer,
} from '../../../protocols/lisp/index.js';
import { pythonHmac, readLispFields, readPayloads, startCapture } from './tshark-helpers.js';

const PORT = 14442;
const KEY_A = 'cloud-a-lisp-key';
const KEY_B = 'cloud-b-lisp-key';
const FIELDS = [
  'lisp.type', 'lisp.nonce', 'lisp.mreg.flags.wmn', 'lisp.keyid', 'lisp.authlen', 'lisp.auth', 'lisp.mapping.eid.ipv4', 'lisp.mapping.eid.ipv6',
  'lisp.mapping.eid.masklen', 'lisp.mapping.ttl', 'lisp.mapping.loccnt', 'lisp.mapping.act', 'lisp.loc.locator', 'lisp.loc.priority',
  'lisp.loc.weight', 'lisp.mreq.record.prefix.ipv4', 'lisp.mreq.record.prefix.ipv6', '_ws.malformed',
];

let server: RunningMapServer;
let packets: Array<Record<string, string[]>>;
let payloads: string[];
const nonces: Record<string, bigint> = {};
let negative: MappingRecord;
let positive: MappingRecord;

function hex(n: bigint): string {
  return `0x${n.toString(16).padStart(16, '0')}`;
}

beforeAll(async () => {
  server = await startMapServer({
    host: '127.0.0.1', port: PORT, sites: [
      { name: 'cloud-a', keyId: 0, key: KEY_A, allowedPrefixes: ['10.20.0.0/16'] },
      { name: 'cloud-b', keyId: 3, key: KEY_B, allowedPrefixes: ['2001:db8:5::/48'] },
    ],
  });
  const capture = await startCapture(PORT, 11);
  const a = await Registrar.open({
    mapServer: { host: '127.0.0.1', port: PORT }, keyId: 0, algorithm: 'hmac-sha-1-96', key: KEY_A, refreshIntervalMs: 0,
    rlocs: [{ address: '192.0.2.10', priority: 1, weight: 60 }, { address: '198.51.100.7', priority: 2, weight: 40 }],
  });
  const b = await Registrar.open({
    mapServer: { host: '127.0.0.1', port: PORT }, keyId: 3, algorithm: 'hmac-sha-256-128', key: KEY_B, refreshIntervalMs: 0,
    rlocs: [{ address: '2001:db8:ffff::1', priority: 5, weight: 100 }], recordTtlMinutes: 30,
  });
  let n: MapNotify = await a.register(['10.20.0.5']);                          // 1-2 Map-Register SHA-1 + Map-Notify
  nonces['a'] = n.nonce;
  n = await b.register(['2001:db8:5::9']);                                       // 3-4 Map-Register SHA-256 (IPv6) + Map-Notify
  nonces['b'] = n.nonce;
  positive = await lookupEid('10.20.0.5', { resolver: { host: '127.0.0.1', port: PORT } });   // 5-6 ECM(Map-Request) + Map-Reply
  negative = await lookupEid('10.20.0.99', { resolver: { host: '127.0.0.1', port: PORT } });  // 7-8 ECM + negative Map-Reply
  const ack = encodeLispMessage({                                                // 9 Map-Notify-Ack
    type: 'map-notify-ack', nonce: 0x0a0b0c0d0e0f1011n, keyId: 0, algorithmId: 1, authData: Buffer.alloc(0),
    records: [{ ttl: 1440, eid: { address: '10.20.0.5', maskLength: 32 }, action: 0, authoritative: true, mapVersion: 0, locators: [] }],
  }, { key: KEY_A });
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.send(ack, PORT, '127.0.0.1', () => resolve()));
  s.close();
  n = await a.withdraw(['10.20.0.5']);                                           // 10-11 withdraw + Map-Notify
  nonces['w'] = n.nonce;
  await Promise.all([a.close(), b.close()]);
  await capture.done;
  packets = await readLispFields(capture.file, PORT, FIELDS);
  payloads = await readPayloads(capture.file);
}, 60_000);

afterAll(async () => {
  await server?.close();
});

describe('tshark decodes every message we encode', () => {
  it('captured all eleven messages, none malformed', () => {
    expect(packets).toHaveLength(11);
    for (const p of packets) expect(p['_ws.malformed']).toEqual([]);
  });

  it('Map-Register with HMAC-SHA-1-96, IPv4 EID and two IPv4 RLOCs', () => {
    const p = packets[0]!;
    expect(p['lisp.type']).toEqual(['3']);
    expect(p['lisp.nonce']).toEqual([hex(nonces['a']!)]);
    expect(p['lisp.mreg.flags.wmn']).toEqual(['1']);
    // tshark reads the RFC 6833 16-bit key id: RFC 9301 key id 0, algorithm id 1
    expect(p['lisp.keyid']).toEqual(['0x0001']);
    expect(p['lisp.authlen']).toEqual(['20']);
    expect(p['lisp.mapping.eid.ipv4']).toEqual(['10.20.0.5']);
    expect(p['lisp.mapping.eid.masklen']).toEqual(['32']);
    expect(p['lisp.mapping.ttl']).toEqual(['1440']);
    expect(p['lisp.loc.locator']).toEqual(['192.0.2.10', '198.51.100.7']);
    expect(p['lisp.loc.priority']).toEqual(['1', '2']);
    expect(p['lisp.loc.weight']).toEqual(['60', '40']);
  });

  it('the Map-Server\'s Map-Notify echoes nonce, key id and the record', () => {
    const p = packets[1]!;
    expect(p['lisp.type']).toEqual(['4']);
    expect(p['lisp.nonce']).toEqual([hex(nonces['a']!)]);
    expect(p['lisp.keyid']).toEqual(['0x0001']);
    expect(p['lisp.authlen']).toEqual(['20']);
    expect(p['lisp.mapping.eid.ipv4']).toEqual(['10.20.0.5']);
    expect(p['lisp.loc.locator']).toEqual(['192.0.2.10', '198.51.100.7']);
  });

  it('Map-Register with HMAC-SHA-256-128, IPv6 EID and RLOC, key id 3', () => {
    const p = packets[2]!;
    expect(p['lisp.type']).toEqual(['3']);
    expect(p['lisp.nonce']).toEqual([hex(nonces['b']!)]);
    expect(p['lisp.keyid']).toEqual(['0x0302']);
    expect(p['lisp.authlen']).toEqual(['32']);
    expect(p['lisp.mapping.eid.ipv6']).toEqual(['2001:db8:5::9']);
    expect(p['lisp.mapping.eid.masklen']).toEqual(['128']);
    expect(p['lisp.mapping.ttl']).toEqual(['30']);
    expect(p['lisp.loc.locator']).toEqual(['2001:db8:ffff::1']);
    expect(p['lisp.loc.priority']).toEqual(['5']);
    expect(p['lisp.loc.weight']).toEqual(['100']);
    expect(packets[3]!['lisp.type']).toEqual(['4']);
    expect(packets[3]!['lisp.mapping.eid.ipv6']).toEqual(['2001:db8:5::9']);
  });

  it('Map-Request inside an Encapsulated Control Message, answered by a Map-Reply with the RLOCs', () => {
    const req = packets[4]!;
    expect(req['lisp.type']).toEqual(['8', '1']);
    expect(req['lisp.mreq.record.prefix.ipv4']).toEqual(['10.20.0.5']);
    const rep = packets[5]!;
    expect(rep['lisp.type']).toEqual(['2']);
    expect(rep['lisp.nonce']).toEqual(req['lisp.nonce']);
    expect(rep['lisp.mapping.eid.ipv4']).toEqual(['10.20.0.5']);
    expect(rep['lisp.loc.locator']).toEqual(['192.0.2.10', '198.51.100.7']);
    expect(rep['lisp.loc.weight']).toEqual(['60', '40']);
    expect(positive.locators.map((l) => l.address)).toEqual(['192.0.2.10', '198.51.100.7']);
  });

  it('a negative Map-Reply for an unregistered EID: no locators, Send-Map-Request action', () => {
    const rep = packets[7]!;
    expect(packets[6]!['lisp.mreq.record.prefix.ipv4']).toEqual(['10.20.0.99']);
    expect(rep['lisp.type']).toEqual(['2']);
    expect(rep['lisp.mapping.loccnt']).toEqual(['0']);
    expect(rep['lisp.mapping.act']).toEqual(['2']);
    expect(negative.locators).toEqual([]);
  });

  it('Map-Notify-Ack and the withdrawal (record TTL 0) with its Map-Notify', () => {
    // Wireshark 4.0 knows type 5 but does not dissect the body of a Map-Notify-Ack (new in
    // RFC 9301); its bytes are checked by the HMAC test below and by our own decoder.
    expect(packets[8]!['lisp.type']).toEqual(['5']);
    expect(decodeLispMessage(Buffer.from(payloads[8]!, 'hex'))).toMatchObject({ type: 'map-notify-ack', nonce: 0x0a0b0c0d0e0f1011n });
    const w = packets[9]!;
    expect(w['lisp.type']).toEqual(['3']);
    expect(w['lisp.nonce']).toEqual([hex(nonces['w']!)]);
    expect(w['lisp.mapping.ttl']).toEqual(['0']);
    expect(w['lisp.mapping.loccnt']).toEqual(['0']);
    expect(packets[10]!['lisp.type']).toEqual(['4']);
  });
});

describe('HMACs match Python\'s hmac over the same bytes', () => {
  const cases: Array<[number, string, 'sha1' | 'sha256', number]> = [
    [0, KEY_A, 'sha1', 20], [1, KEY_A, 'sha1', 20], [2, KEY_B, 'sha256', 32], [3, KEY_B, 'sha256', 32], [8, KEY_A, 'sha1', 20], [9, KEY_A, 'sha1', 20],
  ];
  it.each(cases)('packet %i', async (i, key, digest, len) => {
    const bytes = Buffer.from(payloads[i]!, 'hex');
    const carried = bytes.subarray(16, 16 + len).toString('hex');
    const zeroed = Buffer.from(bytes);
    zeroed.fill(0, 16, 16 + len);
    expect(await pythonHmac(zeroed.toString('hex'), key, digest)).toBe(carried);
    if (i !== 8) expect(packets[i]!['lisp.auth']?.[0]?.replace(/:/g, '')).toBe(carried);
  });
});
