/**
 * DNS dynamic update (RFC 2136) signed with TSIG (RFC 8945), for clouds whose addressing
 * is plain DNS: the migration's re-address step calls {@link updateDnsRecord}. Message
 * encoding is `dns-packet`'s; the TSIG signer/verifier is ours.
 */
export { DNS_ERRORS, dnsError, type DnsCode } from './errors.js';
export {
  TSIG_ALGORITHMS, TSIG_ERROR_NAMES, parseTsigKeyFile, readTsig, signRequest, verifyResponse, type TsigAlgorithm, type TsigKey, type TsigKeyFile, type TsigRecord,
} from './tsig.js';
export { OPCODE_UPDATE, RCODE_NAMES, buildAddressUpdate, checkInZone, readHeader, type AddressUpdate, type UpdateResponseHeader } from './update.js';
export { listRecords, type RawRecord, type Section } from './records.js';
export { addDnsAddresses, deleteDnsAddresses, updateDnsRecord, type DnsUpdateOptions, type DnsUpdateResult } from './client.js';
