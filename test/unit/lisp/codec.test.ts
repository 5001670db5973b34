import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RegisterNonces, bytesToAddress, canonicalAddress, decodeLispMessage, encodeLispMessage, negativePrefix, nonceTimeMs, parsePrefix,
  prefixContains, registerNonceAt, verifyAuthData,
  type LispMessage, type Locator, type MappingRecord,
} from '../../../protocols/lisp/index.js';

// Golden vectors: a Map-Register assembled field by field from RFC 9301 §5.6, with its
// Authentication Data computed by Python's `hmac` module (an independent producer) under
// the key 'intercloud'.
//   30000101                 type 3, M bit (bit 23), record count 1
//   0102030405060708         nonce
//   00 01 0014               key id 0, algorithm id 1 (HMAC-SHA-1-96), 20 bytes of auth data
//   …                        authentication data
//   000005a0                 record ttl 1440 minutes
//   01 20 1000               1 locator, /32, ACT 0 + A bit
//   0000 0001 0a000001       map-version 0, AFI 1, EID 10.0.0.1
//   01 64 ff 00 0005 0001 c000020a   priority 1, weight 100, m-pri 255, m-weight 0, L|R, AFI 1, 192.0.2.10
const GOLDEN_SHA1 = '30000101010203040506070800010014547d155c3efcbff5746b5385f37c36a175fe1dd0000005a001201000000000010a0000010164ff0000050001c000020a';
const GOLDEN_SHA256 = '30000101010203040506070800020020bb781e42dfcf38b7fa97caeff9d324b938cf556106448875beab9505f64f473f000005a001201000000000010a0000010164ff0000050001c000020a';

const goldenRecord: MappingRecord = {
  ttl: 1440, eid: { address: '10.0.0.1', maskLength: 32 }, action: 0, authoritative: true, mapVersion: 0,
  locators: [{ address: '192.0.2.10', priority: 1, weight: 100, multicastPriority: 255, multicastWeight: 0, local: true, probed: false, reachable: true }],
};

function goldenRegister(algorithmId: number): LispMessage {
  return {
    type: 'map-register', proxyReply: false, securityCapable: false, useTtlForTimeout: false, wantMapNotify: true,
    nonce: 0x0102030405060708n, keyId: 0, algorithmId, authData: Buffer.alloc(0), records: [goldenRecord],
  };
}

describe('lisp codec golden vectors', () => {
  it('encodes a Map-Register with HMAC-SHA-1-96 byte for byte', () => {
    expect(encodeLispMessage(goldenRegister(1), { key: 'intercloud' }).toString('hex')).toBe(GOLDEN_SHA1);
  });

  it('encodes a Map-Register with HMAC-SHA-256-128 byte for byte', () => {
    expect(encodeLispMessage(goldenRegister(2), { key: 'intercloud' }).toString('hex')).toBe(GOLDEN_SHA256);
  });

  it('decodes the golden vector and verifies its HMAC', () => {
    const buf = Buffer.from(GOLDEN_SHA256, 'hex');
    const m = decodeLispMessage(buf);
    expect(m).toMatchObject({ type: 'map-register', wantMapNotify: true, nonce: 0x0102030405060708n, keyId: 0, algorithmId: 2, records: [goldenRecord] });
    expect(() => verifyAuthData(buf, 2, 'intercloud')).not.toThrow();
    expect(() => verifyAuthData(buf, 2, 'other-key')).toThrow(expect.objectContaining({ code: 'LISP_BAD_HMAC' }));
  });
});

// The EID hand-over (a Shared Extension Message, RFC 9304, with our sub-types) and its answer,
// assembled field by field, HMAC-SHA-256 by Python's `hmac` under 'intercloud':
//   fffe0000            type 15, sub-type 0xffe (hand-over), reserved
//   0102030405060708    nonce
//   01 02 0020          key id 1, algorithm id 2, 32 bytes of auth data, then the auth data
//   0007 7b2278223a317d hand-over length 7, '{"x":1}'
const GOLDEN_HAND_OVER = 'fffe000001020304050607080102002080884b4a4a14e9f8b9dbc4e0139b367c2bcbc7d0f2e39ea079610a690bcd262000077b2278223a317d';
//   ffff0000 … 01 0d 'LISP_EID_HELD'   sub-type 0xfff (answer), status 1 (refused), code length 13, code
const GOLDEN_HAND_OVER_ANSWER = 'ffff0000010203040506070801020020f0d31cf69e24ad762adaba070f982ff6d055262b65718d34afa89ecff8ed5052010d4c4953505f4549445f48454c44';

describe('eid hand-over messages: golden vectors', () => {
  const base = { nonce: 0x0102030405060708n, keyId: 1, algorithmId: 2, authData: Buffer.alloc(0) };
  it('encodes the hand-over and its answer byte for byte', () => {
    expect(encodeLispMessage({ type: 'eid-hand-over', ...base, handOver: '{"x":1}' }, { key: 'intercloud' }).toString('hex')).toBe(GOLDEN_HAND_OVER);
    expect(encodeLispMessage({ type: 'eid-hand-over-answer', ...base, accepted: false, code: 'LISP_EID_HELD' }, { key: 'intercloud' }).toString('hex'))
      .toBe(GOLDEN_HAND_OVER_ANSWER);
  });

  it('decodes them and their HMAC verifies under the key only', () => {
    const h = Buffer.from(GOLDEN_HAND_OVER, 'hex');
    expect(decodeLispMessage(h)).toMatchObject({ type: 'eid-hand-over', nonce: base.nonce, keyId: 1, algorithmId: 2, handOver: '{"x":1}' });
    expect(() => verifyAuthData(h, 2, 'intercloud')).not.toThrow();
    expect(() => verifyAuthData(h, 2, 'other')).toThrow(expect.objectContaining({ code: 'LISP_BAD_HMAC' }));
    expect(decodeLispMessage(Buffer.from(GOLDEN_HAND_OVER_ANSWER, 'hex'))).toMatchObject({ type: 'eid-hand-over-answer', accepted: false, code: 'LISP_EID_HELD' });
  });

  it('refuses truncations, trailing bytes, a bad status and an unknown sub-type', () => {
    const h = Buffer.from(GOLDEN_HAND_OVER, 'hex');
    for (let len = 0; len < h.length; len++) {
      expect(() => decodeLispMessage(h.subarray(0, len))).toThrow(expect.objectContaining({ code: expect.stringMatching(/^LISP_(TRUNCATED|BAD_LENGTH)$/) }));
    }
    expect(() => decodeLispMessage(Buffer.concat([h, Buffer.alloc(1)]))).toThrow(expect.objectContaining({ code: 'LISP_BAD_LENGTH' }));
    const a = Buffer.from(GOLDEN_HAND_OVER_ANSWER, 'hex');
    a[48] = 2;
    expect(() => decodeLispMessage(a)).toThrow(expect.objectContaining({ code: 'LISP_BAD_FIELD' }));
    const sub = Buffer.from(h);
    sub[1] = 0x00;
    expect(() => decodeLispMessage(sub)).toThrow(expect.objectContaining({ code: 'LISP_UNKNOWN_TYPE', details: { type: 15, subtype: 0xf00 } }));
  });
});

describe('map-register nonces increase and carry the sender\'s clock (RFC 9301 §5.6)', () => {
  it('are the time in ms over 16 bits of counter', () => {
    expect(registerNonceAt(0x0102030405, 0x0607)).toBe(0x01020304050607n);
    expect(nonceTimeMs(registerNonceAt(1_700_000_000_123, 99))).toBe(1_700_000_000_123);
  });

  it('strictly increase even when the clock stands still or steps back', () => {
    const n = new RegisterNonces();
    const seen = [n.next(1000), n.next(1000), n.next(999), n.next(2000)];
    expect(seen).toEqual([registerNonceAt(1000), registerNonceAt(1000, 1), registerNonceAt(1000, 2), registerNonceAt(2000)]);
  });
});

describe('negative prefixes (RFC 6833 §6.1: the least-specific prefix matching the query and no known EID-prefix)', () => {
  const p = parsePrefix;
  it('is the widest prefix around the EID that overlaps nothing known, within the bound', () => {
    expect(negativePrefix(p('10.1.1.3/32'), [p('10.1.1.1/32')], p('10.0.0.0/8'))).toEqual(p('10.1.1.2/31'));
    expect(negativePrefix(p('10.1.1.3/32'), [], p('10.0.0.0/8'))).toEqual(p('10.0.0.0/8'));
    expect(negativePrefix(p('172.16.0.1/32'), [p('10.0.0.0/8')])).toEqual(p('128.0.0.0/1'));
    expect(negativePrefix(p('2001:db8::3/128'), [p('2001:db8::/127')])).toEqual(p('2001:db8::2/127'));
    expect(negativePrefix(p('2001:db9::1/128'), [p('2001:db8::/32'), p('10.0.0.0/8')])).toEqual(p('2001:db9::/32'));
  });
});

// ---------------------------------------------------------------- property-based round trips

const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => bytesToAddress(b));
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => bytesToAddress(b));
const address = fc.oneof(ipv4, ipv6);
const prefix = fc.oneof(
  fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })),
  fc.tuple(ipv6, fc.integer({ min: 0, max: 128 })),
).map(([a, len]) => parsePrefix(`${a}/${len}`));
const u8 = fc.integer({ min: 0, max: 255 });
const nonce = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const locator: fc.Arbitrary<Locator> = fc.record({
  address, priority: u8, weight: u8, multicastPriority: u8, multicastWeight: u8, local: fc.boolean(), probed: fc.boolean(), reachable: fc.boolean(),
});
const record: fc.Arbitrary<MappingRecord> = fc.record({
  ttl: fc.integer({ min: 0, max: 0xffffffff }), eid: prefix, action: fc.integer({ min: 0, max: 7 }), authoritative: fc.boolean(),
  mapVersion: fc.integer({ min: 0, max: 0xfff }), locators: fc.array(locator, { maxLength: 4 }),
});
const xtr = fc.option(fc.record({ xtrId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b)), siteId: nonce }), { nil: undefined });
const algorithmId = fc.constantFrom(1, 2);
function withoutUndefinedXtr<T extends { xtr?: unknown }>(m: T): T {
  const { xtr: x, ...rest } = m;
  return (x === undefined ? rest : m) as T;
}

const mapRegister = fc.record({
  type: fc.constant('map-register' as const), proxyReply: fc.boolean(), securityCapable: fc.boolean(), useTtlForTimeout: fc.boolean(),
  wantMapNotify: fc.boolean(), nonce, keyId: u8, algorithmId, authData: fc.constant(Buffer.alloc(0)), records: fc.array(record, { maxLength: 4 }), xtr,
}).map(withoutUndefinedXtr);
const mapNotify = fc.record({
  type: fc.constantFrom('map-notify' as const, 'map-notify-ack' as const), nonce, keyId: u8, algorithmId,
  authData: fc.constant(Buffer.alloc(0)), records: fc.array(record, { maxLength: 4 }), xtr,
}).map(withoutUndefinedXtr);
const mapRequest = fc.record({
  type: fc.constant('map-request' as const), authoritative: fc.boolean(), probe: fc.boolean(), smr: fc.boolean(), pitr: fc.boolean(),
  smrInvoked: fc.boolean(), nonce, sourceEid: fc.option(address, { nil: null }), itrRlocs: fc.array(address, { minLength: 1, maxLength: 4 }),
  records: fc.array(prefix, { minLength: 1, maxLength: 4 }), mapReply: fc.option(record, { nil: undefined }),
}).map((m) => {
  const { mapReply, ...rest } = m;
  return mapReply === undefined ? { ...rest, mapDataPresent: false } : { ...rest, mapDataPresent: true, mapReply };
});
const mapReply = fc.record({
  type: fc.constant('map-reply' as const), probe: fc.boolean(), echoNonceCapable: fc.boolean(), security: fc.boolean(), nonce,
  records: fc.array(record, { maxLength: 4 }),
});
const ecm = fc.record({
  type: fc.constant('encapsulated-control-message' as const), security: fc.boolean(), ddtOriginated: fc.boolean(), toEtr: fc.boolean(),
  toMapServer: fc.boolean(),
  inner: fc.oneof(fc.tuple(ipv4, ipv4), fc.tuple(ipv6, ipv6)).chain(([source, destination]) => fc.record({
    source: fc.constant(source), destination: fc.constant(destination), sourcePort: fc.integer({ min: 0, max: 65535 }),
    destinationPort: fc.integer({ min: 0, max: 65535 }), ttl: u8,
  })),
  message: mapRequest,
});

describe('lisp codec round trips (fast-check)', () => {
  it('decode(encode(m)) = m for every message type', () => {
    fc.assert(fc.property(fc.oneof(mapRequest, mapReply, ecm), (m) => {
      expect(decodeLispMessage(encodeLispMessage(m as LispMessage))).toEqual(m);
    }), { numRuns: 300 });
  });

  it('signed messages decode to the same fields and verify under their key only', () => {
    fc.assert(fc.property(fc.oneof(mapRegister, mapNotify), fc.string({ minLength: 1, maxLength: 40 }), (m, key) => {
      const buf = encodeLispMessage(m as LispMessage, { key });
      const back = decodeLispMessage(buf);
      const { authData: _a, ...fields } = m;
      expect(back).toMatchObject(fields);
      expect(back.type === m.type && 'authData' in back && back.authData.length).toBe(m.algorithmId === 1 ? 20 : 32);
      verifyAuthData(buf, m.algorithmId, key);
      expect(() => verifyAuthData(buf, m.algorithmId, `${key}x`)).toThrow(expect.objectContaining({ code: 'LISP_BAD_HMAC' }));
    }), { numRuns: 200 });
  });

  it('every truncation of a valid message is LISP_TRUNCATED or LISP_BAD_LENGTH, never a crash', () => {
    fc.assert(fc.property(fc.oneof(mapRegister, mapRequest, mapReply, ecm), fc.nat(), (m, cut) => {
      const buf = encodeLispMessage(m as LispMessage, { key: 'k' });
      const len = cut % buf.length;
      try {
        decodeLispMessage(buf.subarray(0, len));
        // A cut exactly between records of an announced count still lacks those records.
        expect.unreachable(`decoded a message cut to ${len} of ${buf.length} bytes`);
      } catch (err) {
        expect(['LISP_TRUNCATED', 'LISP_BAD_LENGTH']).toContain((err as { code: string }).code);
      }
    }), { numRuns: 300 });
  });
});

describe('lisp codec bad input', () => {
  const good = Buffer.from(GOLDEN_SHA1, 'hex');

  it('rejects a truncated packet with LISP_TRUNCATED and the field it stopped in', () => {
    expect(() => decodeLispMessage(good.subarray(0, 30))).toThrow(expect.objectContaining({ code: 'LISP_TRUNCATED', details: expect.objectContaining({ field: 'authentication data' }) }));
    expect(() => decodeLispMessage(Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'LISP_TRUNCATED' }));
  });

  it('rejects an authentication data length that does not fit the algorithm (LISP_BAD_LENGTH)', () => {
    const bad = Buffer.from(good);
    bad.writeUInt16BE(12, 14); // HMAC-SHA-1 truncated to 96 bits is not what is carried
    expect(() => decodeLispMessage(bad)).toThrow(expect.objectContaining({ code: 'LISP_BAD_LENGTH' }));
  });

  it('rejects trailing bytes (LISP_BAD_LENGTH)', () => {
    expect(() => decodeLispMessage(Buffer.concat([good, Buffer.from([0])]))).toThrow(expect.objectContaining({ code: 'LISP_BAD_LENGTH' }));
  });

  it('rejects a mask length longer than the address (LISP_BAD_LENGTH)', () => {
    const bad = Buffer.from(good);
    bad[16 + 20 + 5] = 33; // eid mask-len of the record
    expect(() => decodeLispMessage(bad)).toThrow(expect.objectContaining({ code: 'LISP_BAD_LENGTH' }));
  });

  it('rejects unknown message types (LISP_UNKNOWN_TYPE)', () => {
    for (const type of [0, 6, 7, 9, 15]) {
      const bad = Buffer.from(good);
      bad[0] = (type << 4) | (bad[0]! & 0x0f);
      expect(() => decodeLispMessage(bad)).toThrow(expect.objectContaining({ code: 'LISP_UNKNOWN_TYPE', details: expect.objectContaining({ type }) }));
    }
  });

  it('rejects an unknown algorithm id (LISP_UNKNOWN_ALGORITHM)', () => {
    const bad = Buffer.from(good);
    bad[13] = 7;
    expect(() => decodeLispMessage(bad)).toThrow(expect.objectContaining({ code: 'LISP_UNKNOWN_ALGORITHM' }));
  });

  it('rejects an unsupported AFI (LISP_UNSUPPORTED_AFI)', () => {
    const bad = Buffer.from(good);
    bad.writeUInt16BE(16387, 16 + 20 + 10); // LCAF as eid-prefix-afi
    expect(() => decodeLispMessage(bad)).toThrow(expect.objectContaining({ code: 'LISP_UNSUPPORTED_AFI' }));
  });

  it('rejects an ECM whose inner lengths lie (LISP_BAD_LENGTH)', () => {
    const m = encodeLispMessage({
      type: 'encapsulated-control-message', security: false, ddtOriginated: false, toEtr: false, toMapServer: false,
      inner: { source: '127.0.0.1', destination: '10.0.0.1', sourcePort: 1234, destinationPort: 4342, ttl: 64 },
      message: { type: 'map-request', authoritative: false, mapDataPresent: false, probe: false, smr: false, pitr: false, smrInvoked: false, nonce: 1n, sourceEid: null, itrRlocs: ['127.0.0.1'], records: [{ address: '10.0.0.1', maskLength: 32 }] },
    });
    const bad = Buffer.from(m);
    bad.writeUInt16BE(bad.readUInt16BE(6) + 4, 6); // inner ipv4 total length
    expect(() => decodeLispMessage(bad)).toThrow(expect.objectContaining({ code: 'LISP_BAD_LENGTH' }));
  });

  it('refuses to encode out-of-range fields and bad addresses', () => {
    const m = goldenRegister(1);
    expect(() => encodeLispMessage({ ...m, keyId: 256 } as LispMessage)).toThrow(expect.objectContaining({ code: 'LISP_BAD_FIELD' }));
    expect(() => encodeLispMessage({ ...m, records: [{ ...goldenRecord, eid: { address: '10.0.0.300', maskLength: 32 } }] } as LispMessage))
      .toThrow(expect.objectContaining({ code: 'LISP_BAD_ADDRESS' }));
  });
});

describe('lisp addresses', () => {
  it('canonicalises ipv6 (RFC 5952) and masks prefixes', () => {
    expect(canonicalAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalAddress('::ffff:192.0.2.1')).toBe('::ffff:c000:201');
    expect(canonicalAddress('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(parsePrefix('10.1.2.3/8')).toEqual({ address: '10.0.0.0', maskLength: 8 });
    expect(parsePrefix('2001:db8::5')).toEqual({ address: '2001:db8::5', maskLength: 128 });
    expect(prefixContains(parsePrefix('10.0.0.0/8'), parsePrefix('10.9.9.9'))).toBe(true);
    expect(prefixContains(parsePrefix('10.0.0.0/8'), parsePrefix('11.0.0.1'))).toBe(false);
    expect(prefixContains(parsePrefix('10.0.0.0/8'), parsePrefix('2001:db8::1'))).toBe(false);
    expect(() => parsePrefix('10.0.0.0/33')).toThrow(expect.objectContaining({ code: 'LISP_BAD_ADDRESS' }));
  });
});
