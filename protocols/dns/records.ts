/**
 * Walks the resource records of a DNS message by their RDLENGTH (RFC 1035 §4.1.3), without
 * interpreting RDATA — so empty-RDATA deletions (RFC 2136 §2.5.2) and TSIG RRs are read
 * as sent. Names go through dns-packet's decoder (compression-aware).
 */
import { dnsPacket } from './packet.js';

/** RFC 2136 §2: the sections of an UPDATE (zone, prerequisite, update, additional). */
export type Section = 'zone' | 'prerequisite' | 'update' | 'additional';

/** One record (or zone/question entry) of a message. */
export interface RawRecord {
  section: Section;
  /** Where the record starts in the message. */
  offset: number;
  name: string;
  type: number;
  class: number;
  /** Absent for zone-section entries. */
  ttl?: number;
  rdata?: Buffer;
}

/** Every entry of every section, in order; throws (RangeError/Error) on a truncated message. */
export function listRecords(message: Buffer): RawRecord[] {
  if (message.length < 12) throw new RangeError(`dns message of ${message.length} bytes has no header`);
  const counts = [4, 6, 8, 10].map((o) => message.readUInt16BE(o));
  const sections: Section[] = ['zone', 'prerequisite', 'update', 'additional'];
  const out: RawRecord[] = [];
  let o = 12;
  sections.forEach((section, i) => {
    for (let n = 0; n < (counts[i] ?? 0); n++) {
      const offset = o;
      const name = dnsPacket.name.decode(message, o);
      o += dnsPacket.name.decode.bytes;
      if (o + 4 > message.length) throw new RangeError(`dns record at ${offset} is truncated`);
      const type = message.readUInt16BE(o);
      const klass = message.readUInt16BE(o + 2);
      o += 4;
      if (section === 'zone') { out.push({ section, offset, name, type, class: klass }); continue; }
      if (o + 6 > message.length) throw new RangeError(`dns record at ${offset} is truncated`);
      const ttl = message.readUInt32BE(o);
      const len = message.readUInt16BE(o + 4);
      o += 6;
      if (o + len > message.length) throw new RangeError(`dns record at ${offset} is truncated`);
      out.push({ section, offset, name, type, class: klass, ttl, rdata: Buffer.from(message.subarray(o, o + len)) });
      o += len;
    }
  });
  return out;
}
