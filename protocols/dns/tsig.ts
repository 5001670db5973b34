/**
 * TSIG (RFC 8945) for DNS messages encoded by `dns-packet`: signing a request and verifying
 * the signed response. Pure: the time is a parameter. Only HMAC-SHA256 (the algorithm
 * BIND's `tsig-keygen` makes by default) and HMAC-SHA512 are offered.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { dnsPacket } from './packet.js';
import { dnsError } from './errors.js';
import { listRecords } from './records.js';

/** RFC 8945 §6: algorithm names. */
export const TSIG_ALGORITHMS = {
  'hmac-sha256': 'sha256',
  'hmac-sha512': 'sha512',
} as const;

/** A TSIG algorithm name. */
export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;

/** A TSIG key as BIND's `key` clause has it. */
export interface TsigKey {
  /** Key name (`intercloud-update.`), compared case-insensitively. */
  name: string;
  algorithm: TsigAlgorithm;
  /** The shared secret (decoded from BIND's base64). */
  secret: Buffer;
}

/** RFC 8945 §4.2 / IANA: TSIG RR type, and the error values of its Error field. */
export const TSIG_TYPE = 250;
const CLASS_ANY = 255;
/** TSIG Error field values (RFC 8945 §3, IANA "DNS RCODEs"). */
export const TSIG_ERROR_NAMES: Record<number, string> = { 0: 'NOERROR', 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' };

/** The TSIG RR of a message, decoded. */
export interface TsigRecord {
  keyName: string;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  otherData: Buffer;
}

function wireName(name: string): Buffer {
  // RFC 8945 §4.3.3: names in canonical wire format — lowercase, uncompressed.
  return dnsPacket.name.encode(name.toLowerCase());
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function u48(v: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(v, 0, 6);
  return b;
}

/** RFC 8945 §4.3.3 TSIG Variables. */
function tsigVariables(keyName: string, algorithm: string, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([
    wireName(keyName), u16(CLASS_ANY), Buffer.alloc(4), wireName(algorithm), u48(timeSigned), u16(fudge), u16(error), u16(other.length), other,
  ]);
}

function hmac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(TSIG_ALGORITHMS[key.algorithm], key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * Appends a TSIG RR to `message` (a whole encoded DNS message without one) and returns the
 * signed message and its MAC (needed to verify the response). RFC 8945 §5.1.
 */
export function signRequest(message: Buffer, key: TsigKey, timeSigned: number, fudge = 300): { signed: Buffer; mac: Buffer } {
  if (message.length < 12) throw dnsError('DNS_BAD_MESSAGE', `dns message of ${message.length} bytes has no header`);
  const id = message.readUInt16BE(0);
  const mac = hmac(key, [message, tsigVariables(key.name, key.algorithm, timeSigned, fudge, 0, Buffer.alloc(0))]);
  const rdata = Buffer.concat([
    wireName(key.algorithm), u48(timeSigned), u16(fudge), u16(mac.length), mac, u16(id), u16(0), u16(0),
  ]);
  const rr = Buffer.concat([wireName(key.name), u16(TSIG_TYPE), u16(CLASS_ANY), Buffer.alloc(4), u16(rdata.length), rdata]);
  const signed = Buffer.concat([message, rr]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10); // ARCOUNT
  return { signed, mac };
}


/** Offset of the last RR of `message` (where a TSIG RR must be), or -1 when ARCOUNT is 0. */
function lastRecordOffset(message: Buffer): number {
  const records = listRecords(message);
  const last = records[records.length - 1];
  return last && last.section === 'additional' ? last.offset : -1;
}

/** Reads the TSIG RR at the end of `message` (with the message before it), or undefined when there is none. */
export function readTsig(message: Buffer): { record: TsigRecord; unsigned: Buffer } | undefined {
  let start: number;
  try {
    start = lastRecordOffset(message);
  } catch (err) {
    throw dnsError('DNS_BAD_MESSAGE', 'cannot parse the dns response', { cause: err });
  }
  if (start < 0) return undefined;
  try {
    let o = start;
    const keyName = dnsPacket.name.decode(message, o);
    o += dnsPacket.name.decode.bytes;
    if (message.readUInt16BE(o) !== TSIG_TYPE) return undefined;
    o += 10; // type, class, ttl, rdlength
    const algorithm = dnsPacket.name.decode(message, o);
    o += dnsPacket.name.decode.bytes;
    const timeSigned = message.readUIntBE(o, 6);
    const fudge = message.readUInt16BE(o + 6);
    const macSize = message.readUInt16BE(o + 8);
    o += 10;
    const mac = Buffer.from(message.subarray(o, o + macSize));
    o += macSize;
    const originalId = message.readUInt16BE(o);
    const error = message.readUInt16BE(o + 2);
    const otherLen = message.readUInt16BE(o + 4);
    const otherData = Buffer.from(message.subarray(o + 6, o + 6 + otherLen));
    if (o + 6 + otherLen !== message.length) throw new RangeError('tsig rdata does not end the message');
    const unsigned = Buffer.from(message.subarray(0, start));
    unsigned.writeUInt16BE(message.readUInt16BE(10) - 1, 10);
    unsigned.writeUInt16BE(originalId, 0);
    return { record: { keyName, algorithm, timeSigned, fudge, mac, originalId, error, otherData }, unsigned };
  } catch (err) {
    throw dnsError('DNS_BAD_MESSAGE', 'the tsig record of the dns response is malformed', { cause: err });
  }
}

/**
 * Verifies the TSIG of a response to a request whose MAC was `requestMac` (RFC 8945 §5.3):
 * the response MAC covers the request MAC, the response without its TSIG RR, and the TSIG
 * variables. Throws DNS_TSIG_BAD_RESPONSE when unsigned or not matching.
 */
export function verifyResponse(response: Buffer, requestMac: Buffer, key: TsigKey): TsigRecord {
  const found = readTsig(response);
  if (!found) throw dnsError('DNS_TSIG_BAD_RESPONSE', 'the dns response carries no tsig record');
  const { record, unsigned } = found;
  // Key names stay out of errors and their details: they identify a credential, and errors are logged.
  const sameKey = record.keyName.toLowerCase() === key.name.replace(/\.$/, '').toLowerCase();
  if (!sameKey || record.mac.length === 0) {
    throw dnsError('DNS_TSIG_BAD_RESPONSE', `the dns response is signed ${sameKey ? 'with our key' : 'with another key'} and a ${record.mac.length}-byte mac`, {
      details: { sameKey, tsigError: TSIG_ERROR_NAMES[record.error] ?? record.error },
    });
  }
  const expected = hmac(key, [
    u16(requestMac.length), requestMac, unsigned,
    tsigVariables(key.name, record.algorithm, record.timeSigned, record.fudge, record.error, record.otherData),
  ]);
  if (expected.length !== record.mac.length || !timingSafeEqual(expected, record.mac)) {
    throw dnsError('DNS_TSIG_BAD_RESPONSE', 'the tsig mac of the dns response does not verify under our key');
  }
  return record;
}

/** A TSIG key as a BIND key file holds it: its secret still base64, as `DnsUpdateOptions.key` takes it. */
export interface TsigKeyFile {
  name: string;
  algorithm: TsigAlgorithm;
  /** base64, as `tsig-keygen` writes it. */
  secret: string;
}

/**
 * Reads a BIND key file (`tsig-keygen`'s output, what `nsupdate -k` reads):
 * `key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`. Pure: the caller reads the file.
 * Throws `DNS_CONFIG` (never quoting the secret) when it holds no such key.
 */
export function parseTsigKeyFile(text: string): TsigKeyFile {
  const m = /key\s+"?([A-Za-z0-9._-]+)"?\s*\{([^}]*)\}/.exec(text);
  const algorithm = m ? /algorithm\s+"?([a-z0-9-]+)"?\s*;/i.exec(m[2]!)?.[1]?.toLowerCase() : undefined;
  const secret = m ? /secret\s+"([A-Za-z0-9+/=]+)"\s*;/.exec(m[2]!)?.[1] : undefined;
  if (!m || algorithm === undefined || secret === undefined) {
    throw dnsError('DNS_CONFIG', 'not a bind key file: write it as tsig-keygen does, key "NAME" { algorithm hmac-sha256; secret "BASE64"; };');
  }
  if (!(algorithm in TSIG_ALGORITHMS)) {
    throw dnsError('DNS_CONFIG', `tsig algorithm '${algorithm}' is not supported: use one of ${Object.keys(TSIG_ALGORITHMS).map((a) => `'${a}'`).join(', ')}`);
  }
  return { name: m[1]!, algorithm: algorithm as TsigAlgorithm, secret };
}
