/**
 * `dns-packet` with the parts of its run-time API that its type declarations omit: the
 * name codec and the per-section decoders (used to find the TSIG RR at the end of a
 * message), and the `UNKNOWN_<n>` type names it uses for raw RDATA.
 */
import dnsPacketModule from 'dns-packet';

interface SectionCodec {
  decode: ((buf: Buffer, offset?: number) => unknown) & { bytes: number };
}

/** The subset of dns-packet this area uses, typed. */
export interface DnsPacketApi {
  encode: typeof dnsPacketModule.encode;
  decode: typeof dnsPacketModule.decode;
  name: {
    encode: (name: string) => Buffer;
    decode: ((buf: Buffer, offset?: number) => string) & { bytes: number };
  };
  question: SectionCodec;
  answer: SectionCodec;
}

/** dns-packet (MIT), used for DNS message encoding; see the README for what is ours. */
export const dnsPacket = dnsPacketModule as unknown as DnsPacketApi;
