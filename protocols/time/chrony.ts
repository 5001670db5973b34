/**
 * Parser of `chronyc -c tracking` (chrony 4.x CSV). Pure.
 *
 * Fields, in order (chronyc(1) "tracking"): Reference ID (hex), reference name or address,
 * stratum, reference time (seconds since the epoch), system time offset (seconds; positive
 * when the system clock is *slow* of NTP time — chronyc's text form prints "X seconds fast"
 * for a negative value), last offset, RMS offset, frequency (ppm; negative when chronyc's text says "slow"),
 * residual frequency, skew, root delay, root dispersion, update interval, leap status.
 */
import { timeError } from './errors.js';

/** The host's sync state as chronyd reports it. */
export interface ChronyTracking {
  source: 'chrony';
  referenceId: string;
  referenceName: string;
  stratum: number;
  /** When the reference was last updated (ms since the epoch), or null if never. */
  referenceTimeMs: number | null;
  /** How far the system clock is ahead of NTP time, in ms (positive = fast). */
  systemOffsetMs: number;
  /** Last measured offset (ms). */
  lastOffsetMs: number;
  /** RMS of recent offsets (ms). */
  rmsOffsetMs: number;
  /** Frequency error of the uncorrected system clock (ppm; positive = fast, negative = slow). */
  frequencyPpm: number;
  residualFrequencyPpm: number;
  skewPpm: number;
  /** Round trip to the stratum-1 root (ms). */
  rootDelayMs: number;
  rootDispersionMs: number;
  updateIntervalSeconds: number;
  /** `Normal`, `Insert second`, `Delete second` or `Not synchronised`. */
  leapStatus: string;
  /** True when chronyd has a reference and is not "Not synchronised". */
  synchronized: boolean;
}

function num(field: string, text: string | undefined): number {
  const v = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isFinite(v)) {
    throw timeError('TIME_BAD_OUTPUT', `chronyc tracking field '${field}' is '${text ?? ''}', not a number`, { details: { field, value: text } });
  }
  return v;
}

/** Parses the first line of `chronyc -c tracking`; TIME_BAD_OUTPUT when it is not 14 CSV fields. */
export function parseChronyTracking(output: string): ChronyTracking {
  const line = output.split('\n').find((l) => l.trim().length > 0) ?? '';
  const f = line.trim().split(',');
  if (f.length !== 14) {
    throw timeError('TIME_BAD_OUTPUT', `chronyc -c tracking printed ${f.length} fields, not 14`, { details: { output: output.slice(0, 200) } });
  }
  const refTime = num('ref time', f[3]);
  const leapStatus = f[13]!;
  const referenceId = f[0]!;
  return {
    source: 'chrony',
    referenceId,
    referenceName: f[1]!,
    stratum: num('stratum', f[2]),
    referenceTimeMs: refTime === 0 ? null : refTime * 1000,
    systemOffsetMs: -num('system time', f[4]) * 1000,
    lastOffsetMs: num('last offset', f[5]) * 1000,
    rmsOffsetMs: num('rms offset', f[6]) * 1000,
    frequencyPpm: num('frequency', f[7]),
    residualFrequencyPpm: num('residual freq', f[8]),
    skewPpm: num('skew', f[9]),
    rootDelayMs: num('root delay', f[10]) * 1000,
    rootDispersionMs: num('root dispersion', f[11]) * 1000,
    updateIntervalSeconds: num('update interval', f[12]),
    leapStatus,
    synchronized: referenceId !== '00000000' && leapStatus !== 'Not synchronised',
  };
}
