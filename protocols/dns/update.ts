/**
 * RFC 2136 dynamic update messages for a VM's address records, built with dns-packet.
 * Pure. By default the update replaces the A and AAAA RRsets of one name: it deletes both
 * RRsets (RFC 2136 §2.5.2) and adds the given addresses (§2.5.1); no addresses deletes the
 * name's addresses. Mode `add` only adds the given addresses to the name's records (§2.5.1),
 * mode `delete` only deletes those addresses from them (§2.5.4), leaving any other.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { dnsError } from './errors.js';
import { dnsPacket } from './packet.js';
import { listRecords } from './records.js';

/** RFC 2136 §1: the UPDATE opcode, in the header's OPCODE field. */
export const OPCODE_UPDATE = 5;

/** RFC 1035 §4.1.1 / RFC 2136 §2.2 response codes, by number. */
export const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 6: 'YXDOMAIN', 7: 'YXRRSET', 8: 'NXRRSET', 9: 'NOTAUTH', 10: 'NOTZONE',
};

/** One address update: the records of `name` in `zone` become exactly `addresses`. */
export interface AddressUpdate {
  /** Message ID (16 bits). */
  id: number;
  /** The zone (`vms.intercloud.test`). */
  zone: string;
  /** A name inside the zone (`web1.vms.intercloud.test`). */
  name: string;
  /** IPv4/IPv6 addresses; empty deletes the name's A/AAAA records. */
  addresses: string[];
  /** TTL of the added records (seconds). */
  ttl: number;
  /**
   * What the update does with the name's existing A/AAAA records: `replace` (default) makes
   * them exactly `addresses`; `add` adds `addresses` to them (§2.5.1); `delete` deletes just
   * `addresses` from them (§2.5.4). `add` and `delete` leave every other address alone.
   */
  mode?: 'replace' | 'add' | 'delete';
}

/** RFC 2136 §1.3: CLASS NONE, which marks "delete an RR from an RRset" (§2.5.4). */
const CLASS_NONE = 254;

function canonicalName(n: string): string {
  return n.replace(/\.$/, '').toLowerCase();
}

/** Checks that `name` lies inside `zone` (RFC 2136 §3.4.1.3: else NOTZONE); throws DNS_CONFIG. */
export function checkInZone(name: string, zone: string): void {
  const n = canonicalName(name);
  const z = canonicalName(zone);
  if (!z || !(n === z || n.endsWith(`.${z}`))) {
    throw dnsError('DNS_CONFIG', `name '${name}' is not inside zone '${zone}'`, { details: { name, zone } });
  }
}

/** Encodes the UPDATE message (unsigned; sign it with `signRequest`). */
export function buildAddressUpdate(u: AddressUpdate): Buffer {
  checkInZone(u.name, u.zone);
  for (const a of u.addresses) {
    if (!isIPv4(a) && !isIPv6(a)) throw dnsError('DNS_CONFIG', `'${a}' is not an ipv4 or ipv6 address`, { details: { address: a } });
  }
  if (!Number.isInteger(u.ttl) || u.ttl < 0 || u.ttl > 0x7fffffff) throw dnsError('DNS_CONFIG', `ttl '${u.ttl}' is out of range`);
  const name = canonicalName(u.name);
  const mode = u.mode ?? 'replace';
  // RFC 2136 §2.5.2 "Delete An RRset": class ANY, TTL 0, RDLENGTH 0, TYPE = the RRset's type.
  // dns-packet writes raw RDATA for its `UNKNOWN_<type>` names, which is how an empty RDATA is written.
  const rrsetDeletions = mode === 'replace'
    ? [1, 28].map((type) => ({ name, type: `UNKNOWN_${type}`, class: 'ANY', ttl: 0, data: Buffer.alloc(0) }))
    : [];
  // §2.5.1 "Add To An RRset": class IN, the TTL and RDATA of the record. §2.5.4 "Delete An RR
  // From An RRset" is the same record with class NONE and TTL 0: dns-packet has no name for
  // class NONE, so those records are written as IN and their class patched below.
  const records = u.addresses.map((a) => ({ name, type: isIPv4(a) ? 'A' : 'AAAA', class: 'IN', ttl: mode === 'delete' ? 0 : u.ttl, data: a }));
  const message = dnsPacket.encode({
    type: 'query',
    id: u.id,
    flags: OPCODE_UPDATE << 11,
    // RFC 2136 §2.3 Zone section: ZNAME, ZTYPE SOA, ZCLASS IN.
    questions: [{ name: canonicalName(u.zone), type: 'SOA', class: 'IN' }],
    answers: [], // §2.4 prerequisites: none
    authorities: [...rrsetDeletions, ...records] as never, // §2.5 update section
  });
  if (mode === 'delete') {
    for (const r of listRecords(message)) {
      if (r.section !== 'update') continue;
      dnsPacket.name.decode(message, r.offset);
      message.writeUInt16BE(CLASS_NONE, r.offset + dnsPacket.name.decode.bytes + 2);
    }
  }
  return message;
}

/** The header of a response to an update. */
export interface UpdateResponseHeader {
  id: number;
  isResponse: boolean;
  opcode: number;
  rcode: number;
  rcodeName: string;
}

/** Reads the header of a DNS message (DNS_BAD_MESSAGE when shorter than a header). */
export function readHeader(msg: Buffer): UpdateResponseHeader {
  if (msg.length < 12) throw dnsError('DNS_BAD_MESSAGE', `dns message of ${msg.length} bytes is shorter than its header`);
  const flags = msg.readUInt16BE(2);
  const rcode = flags & 0xf;
  return { id: msg.readUInt16BE(0), isResponse: (flags & 0x8000) !== 0, opcode: (flags >> 11) & 0xf, rcode, rcodeName: RCODE_NAMES[rcode] ?? `RCODE${rcode}` };
}
