import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildAddressUpdate, listRecords, readHeader, readTsig, signRequest, verifyResponse, type TsigKey } from '../../../protocols/dns/index.js';

/** A name in DNS wire format (RFC 1035 §3.1), written out independently of the implementation. */
function wire(name: string): Buffer {
  return Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
}

const KEY: TsigKey = { name: 'intercloud-update', algorithm: 'hmac-sha256', secret: Buffer.from(Array.from({ length: 32 }, (_, i) => i)) };
const UPDATE = { id: 0x1234, zone: 'vms.intercloud.test', name: 'web1.vms.intercloud.test', addresses: ['10.77.0.5'], ttl: 60 };

describe('RFC 2136 update message', () => {
  it('is an UPDATE for the zone that deletes the A and AAAA RRsets and adds the addresses', () => {
    const msg = buildAddressUpdate({ ...UPDATE, addresses: ['10.77.0.5', '2001:db8::5'] });
    expect(readHeader(msg)).toMatchObject({ id: 0x1234, isResponse: false, opcode: 5 });
    expect(listRecords(msg).map((r) => [r.section, r.name, r.type, r.class, r.ttl, r.rdata?.toString('hex')])).toEqual([
      ['zone', 'vms.intercloud.test', 6, 1, undefined, undefined],
      // RFC 2136 §2.5.2 delete the A and AAAA RRsets: class ANY, TTL 0, no RDATA
      ['update', 'web1.vms.intercloud.test', 1, 255, 0, ''],
      ['update', 'web1.vms.intercloud.test', 28, 255, 0, ''],
      // §2.5.1 add to an RRset
      ['update', 'web1.vms.intercloud.test', 1, 1, 60, '0a4d0005'],
      ['update', 'web1.vms.intercloud.test', 28, 1, 60, '20010db8000000000000000000000005'],
    ]);
  });

  it('in add mode only adds the addresses to the RRsets (RFC 2136 §2.5.1), deleting nothing', () => {
    const msg = buildAddressUpdate({ ...UPDATE, addresses: ['10.77.0.5', '2001:db8::5'], mode: 'add' });
    expect(listRecords(msg).map((r) => [r.section, r.name, r.type, r.class, r.ttl, r.rdata?.toString('hex')])).toEqual([
      ['zone', 'vms.intercloud.test', 6, 1, undefined, undefined],
      ['update', 'web1.vms.intercloud.test', 1, 1, 60, '0a4d0005'],
      ['update', 'web1.vms.intercloud.test', 28, 1, 60, '20010db8000000000000000000000005'],
    ]);
  });

  it('in delete mode deletes just those RRs (RFC 2136 §2.5.4: class NONE, TTL 0, the RDATA)', () => {
    const msg = buildAddressUpdate({ ...UPDATE, addresses: ['10.77.0.5', '2001:db8::5'], mode: 'delete' });
    expect(readHeader(msg)).toMatchObject({ id: 0x1234, isResponse: false, opcode: 5 });
    expect(listRecords(msg).map((r) => [r.section, r.name, r.type, r.class, r.ttl, r.rdata?.toString('hex')])).toEqual([
      ['zone', 'vms.intercloud.test', 6, 1, undefined, undefined],
      ['update', 'web1.vms.intercloud.test', 1, 254, 0, '0a4d0005'],
      ['update', 'web1.vms.intercloud.test', 28, 254, 0, '20010db8000000000000000000000005'],
    ]);
    // Byte for byte as RFC 1035 §4.1.3 lays the first RR out, written independently.
    const rr = Buffer.concat([wire('web1.vms.intercloud.test'), Buffer.from([0, 1, 0, 254, 0, 0, 0, 0, 0, 4, 10, 77, 0, 5])]);
    expect(msg.includes(rr)).toBe(true);
  });

  it('refuses names outside the zone and non-addresses with DNS_CONFIG', () => {
    expect(() => buildAddressUpdate({ ...UPDATE, name: 'web1.other.test' })).toThrow(expect.objectContaining({ code: 'DNS_CONFIG' }));
    expect(() => buildAddressUpdate({ ...UPDATE, name: 'xvms.intercloud.test' })).toThrow(expect.objectContaining({ code: 'DNS_CONFIG' }));
    expect(() => buildAddressUpdate({ ...UPDATE, addresses: ['web1'] })).toThrow(expect.objectContaining({ code: 'DNS_CONFIG' }));
  });
});

describe('TSIG (RFC 8945)', () => {
  it('signs with the MAC Python\'s hmac computes over the message and the TSIG variables (golden)', () => {
    const { signed, mac } = signRequest(buildAddressUpdate(UPDATE), KEY, 1_700_000_000);
    // python3: hmac.new(key, msg + wire(keyname) + ANY + ttl 0 + wire(alg) + time48 + fudge + error + otherlen, sha256)
    expect(mac.toString('hex')).toBe('e7274bb49749377194df19c9493c76b114d295e39c0c046af1cb3fb687b18766');
    expect(signed.readUInt16BE(10)).toBe(1); // ARCOUNT
    const t = readTsig(signed);
    expect(t?.record).toMatchObject({ keyName: 'intercloud-update', algorithm: 'hmac-sha256', timeSigned: 1_700_000_000, fudge: 300, originalId: 0x1234, error: 0 });
    expect(t?.record.mac).toEqual(mac);
    expect(t?.unsigned).toEqual(buildAddressUpdate(UPDATE));
  });

  it('verifies a response signed over the request MAC, and refuses a tampered or foreign one', () => {
    const { mac } = signRequest(buildAddressUpdate(UPDATE), KEY, 1_700_000_000);
    const response = Buffer.from(buildAddressUpdate(UPDATE));
    response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
    // the server's side, written out from RFC 8945 §5.3 with node's hmac
    const vars = Buffer.concat([
      wire('intercloud-update'), Buffer.from([0, 255, 0, 0, 0, 0]), wire('hmac-sha256'),
      Buffer.from([0, 0, 0x65, 0x53, 0xf1, 0x01]), Buffer.from([1, 44, 0, 0, 0, 0]),
    ]);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(mac.length);
    const serverMac = createHmac('sha256', KEY.secret).update(Buffer.concat([len, mac, response, vars])).digest();
    const rdata = Buffer.concat([wire('hmac-sha256'), Buffer.from([0, 0, 0x65, 0x53, 0xf1, 0x01, 1, 44, 0, 32]), serverMac, Buffer.from([0x12, 0x34, 0, 0, 0, 0])]);
    const rr = Buffer.concat([wire('intercloud-update'), Buffer.from([0, 250, 0, 255, 0, 0, 0, 0, 0, rdata.length]), rdata]);
    const signed = Buffer.concat([response, rr]);
    signed.writeUInt16BE(1, 10);
    expect(verifyResponse(signed, mac, KEY).timeSigned).toBe(0x6553f101);
    const tampered = Buffer.from(signed);
    tampered.writeUInt8(tampered.readUInt8(20) ^ 1, 20);
    expect(() => verifyResponse(tampered, mac, KEY)).toThrow(expect.objectContaining({ code: 'DNS_TSIG_BAD_RESPONSE' }));
    expect(() => verifyResponse(signed, mac, { ...KEY, secret: Buffer.alloc(32) })).toThrow(expect.objectContaining({ code: 'DNS_TSIG_BAD_RESPONSE' }));
    expect(() => verifyResponse(response, mac, KEY)).toThrow(expect.objectContaining({ code: 'DNS_TSIG_BAD_RESPONSE' }));
    // The key's name identifies a credential: no error names it (errors end up in logs).
    for (const [r, k] of [[tampered, KEY], [signed, { ...KEY, secret: Buffer.alloc(32) }], [signed, { ...KEY, name: 'other-key' }]] as const) {
      const err = (() => { try { verifyResponse(r, mac, k); return undefined; } catch (e) { return e as Error; } })();
      expect(err).toBeDefined();
      expect(JSON.stringify({ message: err?.message, ...err })).not.toMatch(/intercloud-update/i);
    }
  });

  it('reports a truncated response as DNS_BAD_MESSAGE', () => {
    const { signed } = signRequest(buildAddressUpdate(UPDATE), KEY, 1_700_000_000);
    expect(() => readTsig(signed.subarray(0, signed.length - 5))).toThrow(expect.objectContaining({ code: 'DNS_BAD_MESSAGE' }));
    expect(() => readHeader(Buffer.alloc(5))).toThrow(expect.objectContaining({ code: 'DNS_BAD_MESSAGE' }));
  });
});
