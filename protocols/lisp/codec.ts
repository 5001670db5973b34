/**
 * Encoder and decoder of LISP control messages (RFC 9301 §5; RFC 6833 where it differs).
 * Pure: bytes in, typed values out, and back. Every malformed input is a coded
 * {@link LispError}: LISP_TRUNCATED, LISP_BAD_LENGTH, LISP_UNKNOWN_TYPE, LISP_UNSUPPORTED_AFI …
 */
import { addressBits, addressToBytes, afiOf, bytesToAddress, maskBytes, type EidPrefix, type IpAfi } from './address.js';
import { algorithmOf, signInPlace } from './auth.js';
import { AFI, ALGORITHM_ID, AUTH_DATA_LENGTH, LISP_TYPE, SHARED_EXTENSION_SUBTYPE } from './constants.js';
import { lispError } from './errors.js';
import type {
  AuthenticatedMessage, EidHandOverAnswer, EidHandOverMessage, EncapsulatedControlMessage, InnerHeader, LispMessage, Locator, MapReply,
  MapRequest, MappingRecord,
} from './messages.js';

// ---------------------------------------------------------------- writer

class Writer {
  private chunks: Buffer[] = [];
  private cur = Buffer.alloc(256);
  private pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.pos));
    this.cur = Buffer.alloc(Math.max(256, n));
    this.pos = 0;
  }
  u8(v: number): void { this.room(1); this.cur[this.pos++] = v & 0xff; }
  u16(v: number): void { this.room(2); this.cur.writeUInt16BE(v & 0xffff, this.pos); this.pos += 2; }
  u32(v: number): void { this.room(4); this.cur.writeUInt32BE(v >>> 0, this.pos); this.pos += 4; }
  u64(v: bigint): void { this.room(8); this.cur.writeBigUInt64BE(BigInt.asUintN(64, v), this.pos); this.pos += 8; }
  bytes(b: Uint8Array): void { this.room(b.length); this.cur.set(b, this.pos); this.pos += b.length; }
  finish(): Buffer {
    this.chunks.push(this.cur.subarray(0, this.pos));
    return this.chunks.length === 1 ? Buffer.from(this.chunks[0]!) : Buffer.concat(this.chunks);
  }
}

function checkRange(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw lispError('LISP_BAD_FIELD', `lisp field '${name}' = '${v}' is outside 0–${max}`, { details: { field: name, value: v } });
  }
  return v;
}

function writeAddress(w: Writer, address: string | null): void {
  if (address === null) { w.u16(AFI.none); return; }
  w.u16(afiOf(address));
  w.bytes(addressToBytes(address));
}

function checkEidPrefix(eid: EidPrefix): void {
  const afi = afiOf(eid.address);
  checkRange('eid mask-len', eid.maskLength, addressBits(afi));
}

function writeRecord(w: Writer, r: MappingRecord): void {
  checkEidPrefix(r.eid);
  const afi = afiOf(r.eid.address);
  // RFC 9301 §5.4 Record TTL | Locator Count | EID mask-len | ACT|A|Reserved | Rsvd|Map-Version | EID-Prefix-AFI | EID-Prefix
  w.u32(checkRange('record ttl', r.ttl, 0xffffffff));
  w.u8(checkRange('locator count', r.locators.length, 255));
  w.u8(r.eid.maskLength);
  w.u16((checkRange('act', r.action, 7) << 13) | (r.authoritative ? 0x1000 : 0));
  w.u16(checkRange('map-version', r.mapVersion, 0xfff));
  w.u16(afi);
  w.bytes(maskBytes(addressToBytes(r.eid.address), r.eid.maskLength));
  for (const l of r.locators) writeLocator(w, l);
}

function writeLocator(w: Writer, l: Locator): void {
  // RFC 9301 §5.4 Priority | Weight | M Priority | M Weight | Unused Flags |L|p|R| Loc-AFI | Locator
  w.u8(checkRange('priority', l.priority, 255));
  w.u8(checkRange('weight', l.weight, 255));
  w.u8(checkRange('m priority', l.multicastPriority, 255));
  w.u8(checkRange('m weight', l.multicastWeight, 255));
  w.u16((l.local ? 4 : 0) | (l.probed ? 2 : 0) | (l.reachable ? 1 : 0));
  writeAddress(w, l.address);
}

function writeAuthenticated(w: Writer, m: AuthenticatedMessage, firstWord: number): void {
  w.u32(firstWord | checkRange('record count', m.records.length, 255));
  w.u64(m.nonce);
  // RFC 9301 §5.6 Key ID (8) | Algorithm ID (8) | Authentication Data Length (16);
  // RFC 6833 read the first 16 bits as one Key ID.
  w.u8(checkRange('key id', m.keyId, 255));
  w.u8(checkRange('algorithm id', m.algorithmId, 255));
  w.u16(checkRange('authentication data length', m.authData.length, 0xffff));
  w.bytes(m.authData);
  for (const r of m.records) writeRecord(w, r);
  if (m.xtr) {
    if (m.xtr.xtrId.length !== 16) throw lispError('LISP_BAD_LENGTH', `xtr-id must be 16 bytes, not '${m.xtr.xtrId.length}'`);
    w.bytes(m.xtr.xtrId);
    w.u64(m.xtr.siteId);
  }
}

function ipChecksum(buf: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += ((buf[i] ?? 0) << 8) | (buf[i + 1] ?? 0);
  if (buf.length % 2 === 1) sum += (buf[buf.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** RFC 9301 §5.8: the inner IPv4/IPv6 + UDP header followed by `payload`. */
function encodeInner(inner: InnerHeader, payload: Buffer): Buffer {
  const afi = afiOf(inner.source);
  if (afiOf(inner.destination) !== afi) {
    throw lispError('LISP_BAD_ADDRESS', `ecm inner source '${inner.source}' and destination '${inner.destination}' differ in family`);
  }
  const src = addressToBytes(inner.source);
  const dst = addressToBytes(inner.destination);
  const udpLen = 8 + payload.length;
  const udp = Buffer.alloc(udpLen);
  udp.writeUInt16BE(checkRange('inner udp source port', inner.sourcePort, 0xffff), 0);
  udp.writeUInt16BE(checkRange('inner udp destination port', inner.destinationPort, 0xffff), 2);
  udp.writeUInt16BE(udpLen, 4);
  payload.copy(udp, 8);
  // UDP checksum over the pseudo-header (RFC 768; RFC 8200 §8.1 for IPv6).
  const pseudo = Buffer.concat([src, dst, Buffer.from([0, 17, (udpLen >> 8) & 0xff, udpLen & 0xff])]);
  const sum = ~ipChecksum(udp, ipChecksum(pseudo)) & 0xffff;
  udp.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
  let ip: Buffer;
  if (afi === AFI.ipv4) {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + udpLen, 2);
    ip[8] = checkRange('inner ttl', inner.ttl, 255);
    ip[9] = 17;
    src.copy(ip, 12);
    dst.copy(ip, 16);
    ip.writeUInt16BE(~ipChecksum(ip) & 0xffff, 10);
  } else {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(udpLen, 4);
    ip[6] = 17;
    ip[7] = checkRange('inner hop limit', inner.ttl, 255);
    src.copy(ip, 8);
    dst.copy(ip, 24);
  }
  return Buffer.concat([ip, udp]);
}

/** Options of {@link encodeLispMessage}. */
export interface EncodeOptions {
  /**
   * The site's shared key: when given, an authenticated message (Map-Register, Map-Notify,
   * Map-Notify-Ack) is signed — its `authData` is replaced by the HMAC of the algorithm
   * named by `algorithmId`.
   */
  key?: Uint8Array | string;
}

/**
 * Encodes a LISP control message. Authenticated messages are signed when `options.key` is
 * given (the `authData` of the value is then ignored except for its algorithm's length).
 */
export function encodeLispMessage(message: LispMessage, options: EncodeOptions = {}): Buffer {
  const w = new Writer();
  switch (message.type) {
    case 'map-register':
    case 'map-notify':
    case 'map-notify-ack': {
      const m = options.key === undefined ? message : { ...message, authData: Buffer.alloc(AUTH_DATA_LENGTH[algorithmOf(message.algorithmId)]) };
      let first: number;
      if (m.type === 'map-register') {
        // RFC 9301 §5.6 |Type=3|P|S|I|Reserved|E|T|a|R|M|Record Count|
        first = (LISP_TYPE.mapRegister << 28) | (m.proxyReply ? 1 << 27 : 0) | (m.securityCapable ? 1 << 26 : 0)
          | (m.xtr ? 1 << 25 : 0) | (m.useTtlForTimeout ? 1 << 11 : 0) | (m.wantMapNotify ? 1 << 8 : 0);
      } else {
        // RFC 9301 §5.7 |Type=4/5|I|R|Reserved|Record Count|
        first = ((m.type === 'map-notify' ? LISP_TYPE.mapNotify : LISP_TYPE.mapNotifyAck) << 28) | (m.xtr ? 1 << 27 : 0);
      }
      writeAuthenticated(w, m, first >>> 0);
      const out = w.finish();
      return options.key === undefined ? out : signInPlace(out, algorithmOf(m.algorithmId), options.key);
    }
    case 'map-request': {
      const m = message;
      if (m.itrRlocs.length < 1 || m.itrRlocs.length > 32) {
        throw lispError('LISP_BAD_FIELD', `a map-request carries 1–32 itr-rlocs, not '${m.itrRlocs.length}'`);
      }
      if (m.mapDataPresent !== (m.mapReply !== undefined)) {
        throw lispError('LISP_BAD_FIELD', 'map-request m bit and piggybacked map-reply record disagree');
      }
      // RFC 9301 §5.2 |Type=1|A|M|P|S|p|s|R|R|Rsvd|L|D|IRC|Record Count|
      const first = (LISP_TYPE.mapRequest << 28) | (m.authoritative ? 1 << 27 : 0) | (m.mapDataPresent ? 1 << 26 : 0)
        | (m.probe ? 1 << 25 : 0) | (m.smr ? 1 << 24 : 0) | (m.pitr ? 1 << 23 : 0) | (m.smrInvoked ? 1 << 22 : 0)
        | ((m.itrRlocs.length - 1) << 8) | checkRange('record count', m.records.length, 255);
      w.u32(first >>> 0);
      w.u64(m.nonce);
      writeAddress(w, m.sourceEid);
      for (const rloc of m.itrRlocs) writeAddress(w, rloc);
      for (const eid of m.records) {
        checkEidPrefix(eid);
        w.u8(0);
        w.u8(eid.maskLength);
        w.u16(afiOf(eid.address));
        w.bytes(maskBytes(addressToBytes(eid.address), eid.maskLength));
      }
      if (m.mapReply) writeRecord(w, m.mapReply);
      return w.finish();
    }
    case 'map-reply': {
      const m = message;
      // RFC 9301 §5.4 |Type=2|P|E|S|Reserved|Record Count|
      w.u32(((LISP_TYPE.mapReply << 28) | (m.probe ? 1 << 27 : 0) | (m.echoNonceCapable ? 1 << 26 : 0)
        | (m.security ? 1 << 25 : 0) | checkRange('record count', m.records.length, 255)) >>> 0);
      w.u64(m.nonce);
      for (const r of m.records) writeRecord(w, r);
      return w.finish();
    }
    case 'eid-hand-over':
    case 'eid-hand-over-answer': {
      const m = options.key === undefined ? message : { ...message, authData: Buffer.alloc(AUTH_DATA_LENGTH[algorithmOf(message.algorithmId)]) };
      // RFC 9304 §2 |Type=15|Sub-type (12)|Reserved (16)|, then the Map-Register's auth header (RFC 9301 §5.6).
      const subtype = m.type === 'eid-hand-over' ? SHARED_EXTENSION_SUBTYPE.eidHandOver : SHARED_EXTENSION_SUBTYPE.eidHandOverAnswer;
      w.u32(((LISP_TYPE.sharedExtension << 28) | (subtype << 16)) >>> 0);
      w.u64(m.nonce);
      w.u8(checkRange('key id', m.keyId, 255));
      w.u8(checkRange('algorithm id', m.algorithmId, 255));
      w.u16(checkRange('authentication data length', m.authData.length, 0xffff));
      w.bytes(m.authData);
      if (m.type === 'eid-hand-over') {
        const body = Buffer.from(m.handOver, 'utf8');
        w.u16(checkRange('hand-over length', body.length, 0xffff));
        w.bytes(body);
      } else {
        const code = Buffer.from(m.code, 'ascii');
        w.u8(m.accepted ? 0 : 1);
        w.u8(checkRange('code length', code.length, 255));
        w.bytes(code);
      }
      const out = w.finish();
      return options.key === undefined ? out : signInPlace(out, algorithmOf(m.algorithmId), options.key);
    }
    case 'encapsulated-control-message': {
      const m = message;
      if (m.message.type === 'encapsulated-control-message') {
        throw lispError('LISP_BAD_FIELD', 'an encapsulated control message cannot carry another one');
      }
      // RFC 9301 §5.8 |Type=8|S|D|E|M|Reserved|
      w.u32(((LISP_TYPE.encapsulatedControlMessage << 28) | (m.security ? 1 << 27 : 0) | (m.ddtOriginated ? 1 << 26 : 0)
        | (m.toEtr ? 1 << 25 : 0) | (m.toMapServer ? 1 << 24 : 0)) >>> 0);
      w.bytes(encodeInner(m.inner, encodeLispMessage(m.message, options)));
      return w.finish();
    }
  }
}

// ---------------------------------------------------------------- reader

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer, readonly what: string) {}
  need(n: number, field: string): void {
    if (this.pos + n > this.buf.length) {
      throw lispError('LISP_TRUNCATED', `${this.what} ends at byte ${this.buf.length} inside '${field}' (needs ${this.pos + n})`, {
        details: { message: this.what, field, offset: this.pos, length: this.buf.length },
      });
    }
  }
  u8(field: string): number { this.need(1, field); return this.buf[this.pos++]!; }
  u16(field: string): number { this.need(2, field); const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v; }
  u32(field: string): number { this.need(4, field); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v; }
  u64(field: string): bigint { this.need(8, field); const v = this.buf.readBigUInt64BE(this.pos); this.pos += 8; return v; }
  bytes(n: number, field: string): Buffer { this.need(n, field); const v = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return v; }
  end(): void {
    if (this.pos !== this.buf.length) {
      throw lispError('LISP_BAD_LENGTH', `${this.what} has ${this.buf.length - this.pos} bytes past its last field`, {
        details: { message: this.what, offset: this.pos, length: this.buf.length },
      });
    }
  }
}

function readAfi(r: Reader, field: string, allowNone = false): IpAfi | typeof AFI.none {
  const afi = r.u16(`${field} afi`);
  if (afi === AFI.ipv4 || afi === AFI.ipv6 || (allowNone && afi === AFI.none)) return afi as IpAfi | typeof AFI.none;
  throw lispError('LISP_UNSUPPORTED_AFI', `${r.what} field '${field}' has afi '${afi}' (only 1 = ipv4 and 2 = ipv6 are handled)`, {
    details: { message: r.what, field, afi, offset: r.pos - 2 },
  });
}

function readAddress(r: Reader, field: string): string {
  const afi = readAfi(r, field) as IpAfi;
  return bytesToAddress(r.bytes(afi === AFI.ipv4 ? 4 : 16, field));
}

function readMaskLen(r: Reader, maskLength: number, afi: IpAfi, field: string): void {
  if (maskLength > addressBits(afi)) {
    throw lispError('LISP_BAD_LENGTH', `${r.what} field '${field}' mask length '${maskLength}' exceeds ${addressBits(afi)}`, {
      details: { message: r.what, field, maskLength },
    });
  }
}

function readRecord(r: Reader): MappingRecord {
  const ttl = r.u32('record ttl');
  const locCount = r.u8('locator count');
  const maskLength = r.u8('eid mask-len');
  const actA = r.u16('act');
  const mapVersion = r.u16('map-version') & 0xfff;
  const afi = readAfi(r, 'eid-prefix') as IpAfi;
  readMaskLen(r, maskLength, afi, 'eid mask-len');
  const address = bytesToAddress(maskBytes(r.bytes(afi === AFI.ipv4 ? 4 : 16, 'eid-prefix'), maskLength));
  const locators: Locator[] = [];
  for (let i = 0; i < locCount; i++) {
    const priority = r.u8('priority');
    const weight = r.u8('weight');
    const multicastPriority = r.u8('m priority');
    const multicastWeight = r.u8('m weight');
    const flags = r.u16('locator flags');
    locators.push({
      address: readAddress(r, 'locator'), priority, weight, multicastPriority, multicastWeight,
      local: (flags & 4) !== 0, probed: (flags & 2) !== 0, reachable: (flags & 1) !== 0,
    });
  }
  return { ttl, eid: { address, maskLength }, action: actA >> 13, authoritative: (actA & 0x1000) !== 0, mapVersion, locators };
}

function readAuthenticated(r: Reader, first: number): Omit<AuthenticatedMessage, 'type' | 'proxyReply' | 'securityCapable' | 'useTtlForTimeout' | 'wantMapNotify'> & { xtrPresent: boolean } {
  const type = first >>> 28;
  const xtrPresent = type === LISP_TYPE.mapRegister ? (first & (1 << 25)) !== 0 : (first & (1 << 27)) !== 0;
  const count = first & 0xff;
  const nonce = r.u64('nonce');
  const keyId = r.u8('key id');
  const algorithmId = r.u8('algorithm id');
  const authLen = r.u16('authentication data length');
  if (algorithmId !== ALGORITHM_ID.none) {
    const algorithm = algorithmOf(algorithmId);
    if (authLen !== AUTH_DATA_LENGTH[algorithm]) {
      throw lispError('LISP_BAD_LENGTH', `${r.what} authentication data length '${authLen}' is not ${AUTH_DATA_LENGTH[algorithm]} for ${algorithm}`, {
        details: { message: r.what, authLength: authLen, algorithmId },
      });
    }
  }
  const authData = Buffer.from(r.bytes(authLen, 'authentication data'));
  const records: MappingRecord[] = [];
  for (let i = 0; i < count; i++) records.push(readRecord(r));
  const base = { nonce, keyId, algorithmId, authData, records, xtrPresent };
  if (xtrPresent) return { ...base, xtr: { xtrId: Buffer.from(r.bytes(16, 'xtr-id')), siteId: r.u64('site-id') } };
  return base;
}

function decodeInner(r: Reader): { inner: InnerHeader; payload: Buffer } {
  const version = (r.buf[r.pos] ?? 0) >> 4;
  const start = r.pos;
  let source: string;
  let destination: string;
  let ttl: number;
  if (version === 4) {
    const vihl = r.u8('inner ip version');
    const ihl = (vihl & 0x0f) * 4;
    r.u8('inner ip tos');
    const total = r.u16('inner ip total length');
    r.bytes(4, 'inner ip id/fragment');
    ttl = r.u8('inner ip ttl');
    const proto = r.u8('inner ip protocol');
    r.u16('inner ip checksum');
    source = bytesToAddress(r.bytes(4, 'inner ip source'));
    destination = bytesToAddress(r.bytes(4, 'inner ip destination'));
    if (ihl < 20 || total !== r.buf.length - start) {
      throw lispError('LISP_BAD_LENGTH', `ecm inner ipv4 header length '${ihl}' / total length '${total}' do not match the ${r.buf.length - start} bytes carried`, {
        details: { headerLength: ihl, totalLength: total, carried: r.buf.length - start },
      });
    }
    r.bytes(ihl - 20, 'inner ip options');
    if (proto !== 17) throw lispError('LISP_BAD_FIELD', `ecm inner ipv4 protocol '${proto}' is not udp (17)`, { details: { protocol: proto } });
  } else if (version === 6) {
    r.u32('inner ipv6 version/class/label');
    const payloadLength = r.u16('inner ipv6 payload length');
    const next = r.u8('inner ipv6 next header');
    ttl = r.u8('inner ipv6 hop limit');
    source = bytesToAddress(r.bytes(16, 'inner ipv6 source'));
    destination = bytesToAddress(r.bytes(16, 'inner ipv6 destination'));
    if (payloadLength !== r.buf.length - r.pos) {
      throw lispError('LISP_BAD_LENGTH', `ecm inner ipv6 payload length '${payloadLength}' does not match the ${r.buf.length - r.pos} bytes carried`, {
        details: { payloadLength, carried: r.buf.length - r.pos },
      });
    }
    if (next !== 17) throw lispError('LISP_BAD_FIELD', `ecm inner ipv6 next header '${next}' is not udp (17)`, { details: { nextHeader: next } });
  } else {
    r.need(1, 'inner ip version');
    throw lispError('LISP_BAD_FIELD', `ecm inner ip version '${version}' is not 4 or 6`, { details: { version } });
  }
  const sourcePort = r.u16('inner udp source port');
  const destinationPort = r.u16('inner udp destination port');
  const udpLength = r.u16('inner udp length');
  r.u16('inner udp checksum');
  if (udpLength !== r.buf.length - r.pos + 8) {
    throw lispError('LISP_BAD_LENGTH', `ecm inner udp length '${udpLength}' does not match the ${r.buf.length - r.pos + 8} bytes carried`, {
      details: { udpLength, carried: r.buf.length - r.pos + 8 },
    });
  }
  const payload = r.bytes(r.buf.length - r.pos, 'inner payload');
  return { inner: { source, destination, sourcePort, destinationPort, ttl }, payload };
}

const TYPE_NAMES: Record<number, string> = {
  [LISP_TYPE.mapRequest]: 'map-request',
  [LISP_TYPE.mapReply]: 'map-reply',
  [LISP_TYPE.mapRegister]: 'map-register',
  [LISP_TYPE.mapNotify]: 'map-notify',
  [LISP_TYPE.mapNotifyAck]: 'map-notify-ack',
  [LISP_TYPE.encapsulatedControlMessage]: 'encapsulated-control-message',
  [LISP_TYPE.sharedExtension]: 'shared-extension',
};

/** RFC 9304 Shared Extension Message with one of our sub-types (the EID hand-over and its answer). */
function readSharedExtension(r: Reader, first: number): EidHandOverMessage | EidHandOverAnswer {
  const subtype = (first >>> 16) & 0xfff;
  if (subtype !== SHARED_EXTENSION_SUBTYPE.eidHandOver && subtype !== SHARED_EXTENSION_SUBTYPE.eidHandOverAnswer) {
    throw lispError('LISP_UNKNOWN_TYPE', `lisp shared extension sub-type '${subtype}' is not handled`, { details: { type: LISP_TYPE.sharedExtension, subtype } });
  }
  const nonce = r.u64('nonce');
  const keyId = r.u8('key id');
  const algorithmId = r.u8('algorithm id');
  const authLen = r.u16('authentication data length');
  const algorithm = algorithmOf(algorithmId);
  if (authLen !== AUTH_DATA_LENGTH[algorithm]) {
    throw lispError('LISP_BAD_LENGTH', `${r.what} authentication data length '${authLen}' is not ${AUTH_DATA_LENGTH[algorithm]} for ${algorithm}`, {
      details: { message: r.what, authLength: authLen, algorithmId },
    });
  }
  const authData = Buffer.from(r.bytes(authLen, 'authentication data'));
  if (subtype === SHARED_EXTENSION_SUBTYPE.eidHandOver) {
    const len = r.u16('hand-over length');
    const handOver = r.bytes(len, 'hand-over').toString('utf8');
    return { type: 'eid-hand-over', nonce, keyId, algorithmId, authData, handOver };
  }
  const status = r.u8('status');
  if (status > 1) throw lispError('LISP_BAD_FIELD', `eid hand-over answer status '${status}' is not 0 or 1`, { details: { field: 'status', value: status } });
  const codeLen = r.u8('code length');
  const code = r.bytes(codeLen, 'code').toString('ascii');
  return { type: 'eid-hand-over-answer', nonce, keyId, algorithmId, authData, accepted: status === 0, code };
}

/** The LISP type number of an encoded message (first 4 bits), without decoding the rest. */
export function peekLispType(buf: Uint8Array): number {
  if (buf.length < 1) throw lispError('LISP_TRUNCATED', 'empty lisp message', { details: { length: 0 } });
  return (buf[0] ?? 0) >> 4;
}

/**
 * Decodes one LISP control message (a whole UDP payload). Authentication data is returned
 * as received, not checked: use {@link verifyAuthData} with the site's key.
 */
export function decodeLispMessage(input: Uint8Array): LispMessage {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const type = peekLispType(buf);
  const name = TYPE_NAMES[type];
  if (name === undefined) {
    throw lispError('LISP_UNKNOWN_TYPE', `lisp message type '${type}' is not handled`, { details: { type } });
  }
  const r = new Reader(buf, name);
  const first = r.u32('header');
  let out: LispMessage;
  switch (type) {
    case LISP_TYPE.mapRegister: {
      const { xtrPresent: _x, ...a } = readAuthenticated(r, first);
      out = {
        type: 'map-register',
        proxyReply: (first & (1 << 27)) !== 0,
        securityCapable: (first & (1 << 26)) !== 0,
        useTtlForTimeout: (first & (1 << 11)) !== 0,
        wantMapNotify: (first & (1 << 8)) !== 0,
        ...a,
      };
      break;
    }
    case LISP_TYPE.mapNotify:
    case LISP_TYPE.mapNotifyAck: {
      const { xtrPresent: _x, ...a } = readAuthenticated(r, first);
      out = { type: type === LISP_TYPE.mapNotify ? 'map-notify' : 'map-notify-ack', ...a };
      break;
    }
    case LISP_TYPE.mapRequest: {
      const irc = ((first >> 8) & 0x1f) + 1;
      const count = first & 0xff;
      const nonce = r.u64('nonce');
      const srcAfi = readAfi(r, 'source-eid', true);
      const sourceEid = srcAfi === AFI.none ? null : bytesToAddress(r.bytes(srcAfi === AFI.ipv4 ? 4 : 16, 'source-eid'));
      const itrRlocs: string[] = [];
      for (let i = 0; i < irc; i++) itrRlocs.push(readAddress(r, 'itr-rloc'));
      const records: EidPrefix[] = [];
      for (let i = 0; i < count; i++) {
        r.u8('record reserved');
        const maskLength = r.u8('eid mask-len');
        const afi = readAfi(r, 'eid-prefix') as IpAfi;
        readMaskLen(r, maskLength, afi, 'eid mask-len');
        records.push({ address: bytesToAddress(maskBytes(r.bytes(afi === AFI.ipv4 ? 4 : 16, 'eid-prefix'), maskLength)), maskLength });
      }
      const mapDataPresent = (first & (1 << 26)) !== 0;
      const m: MapRequest = {
        type: 'map-request',
        authoritative: (first & (1 << 27)) !== 0,
        mapDataPresent,
        probe: (first & (1 << 25)) !== 0,
        smr: (first & (1 << 24)) !== 0,
        pitr: (first & (1 << 23)) !== 0,
        smrInvoked: (first & (1 << 22)) !== 0,
        nonce, sourceEid, itrRlocs, records,
      };
      if (mapDataPresent) m.mapReply = readRecord(r);
      out = m;
      break;
    }
    case LISP_TYPE.sharedExtension:
      out = readSharedExtension(r, first);
      break;
    case LISP_TYPE.mapReply: {
      const count = first & 0xff;
      const nonce = r.u64('nonce');
      const records: MappingRecord[] = [];
      for (let i = 0; i < count; i++) records.push(readRecord(r));
      const m: MapReply = {
        type: 'map-reply', probe: (first & (1 << 27)) !== 0, echoNonceCapable: (first & (1 << 26)) !== 0,
        security: (first & (1 << 25)) !== 0, nonce, records,
      };
      out = m;
      break;
    }
    default: {
      const { inner, payload } = decodeInner(r);
      if (payload.length > 0 && peekLispType(payload) === LISP_TYPE.encapsulatedControlMessage) {
        throw lispError('LISP_BAD_FIELD', 'an encapsulated control message carries another one');
      }
      const m: EncapsulatedControlMessage = {
        type: 'encapsulated-control-message',
        security: (first & (1 << 27)) !== 0,
        ddtOriginated: (first & (1 << 26)) !== 0,
        toEtr: (first & (1 << 25)) !== 0,
        toMapServer: (first & (1 << 24)) !== 0,
        inner,
        message: decodeLispMessage(payload),
      };
      out = m;
    }
  }
  r.end();
  return out;
}
