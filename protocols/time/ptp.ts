/**
 * Parser of linuxptp's `pmc -u -b 0 'GET TIME_STATUS_NP'` (the ptp4l-specific management
 * TLV). Pure. The response block is `<portIdentity> seq N RESPONSE MANAGEMENT TIME_STATUS_NP`
 * followed by `name value` lines; master_offset is in nanoseconds.
 */
import { timeError } from './errors.js';

/** The host's PTP state as ptp4l reports it. */
export interface PtpTimeStatus {
  source: 'ptp';
  /** The responding port identity (`clockId-portNumber`). */
  portIdentity: string;
  /** Offset of this clock from the grandmaster, in ms (ptp4l's master_offset, ns → ms). */
  masterOffsetMs: number;
  /** Ingress time of the last sync (ns since the PTP epoch), as text to keep precision. */
  ingressTime: string;
  cumulativeScaledRateOffset: number;
  /** Whether a grandmaster is present (false: ptp4l is its own master or alone). */
  gmPresent: boolean;
  gmIdentity: string;
  /** True when a grandmaster is present. */
  synchronized: boolean;
}

/** Parses pmc's TIME_STATUS_NP response; TIME_NO_DAEMON when pmc got no response. */
export function parsePmcTimeStatus(output: string): PtpTimeStatus {
  const lines = output.split('\n');
  const head = lines.findIndex((l) => /RESPONSE MANAGEMENT TIME_STATUS_NP/.test(l));
  if (head < 0) {
    throw timeError('TIME_NO_DAEMON', 'pmc got no TIME_STATUS_NP response (is ptp4l running?)', { details: { output: output.slice(0, 200) } });
  }
  const portIdentity = lines[head]!.trim().split(/\s+/)[0] ?? '';
  const fields = new Map<string, string>();
  for (const l of lines.slice(head + 1)) {
    const m = /^\s+(\w+)\s+(\S+)\s*$/.exec(l);
    if (!m) break;
    fields.set(m[1]!, m[2]!);
  }
  const get = (k: string): string => {
    const v = fields.get(k);
    if (v === undefined) throw timeError('TIME_BAD_OUTPUT', `pmc TIME_STATUS_NP has no '${k}'`, { details: { field: k } });
    return v;
  };
  const offset = Number(get('master_offset'));
  const rate = Number(get('cumulativeScaledRateOffset'));
  if (!Number.isFinite(offset) || !Number.isFinite(rate)) {
    throw timeError('TIME_BAD_OUTPUT', `pmc master_offset '${get('master_offset')}' is not a number`);
  }
  const gmPresent = get('gmPresent') === 'true';
  return {
    source: 'ptp', portIdentity, masterOffsetMs: offset / 1e6, ingressTime: get('ingress_time'), cumulativeScaledRateOffset: rate,
    gmPresent, gmIdentity: get('gmIdentity'), synchronized: gmPresent,
  };
}
