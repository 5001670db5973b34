/**
 * Error codes of time agreement (`TIME_…`): reading the host's sync daemon and the
 * clock-skew policy.
 */
import { defineErrorCodes, IntercloudError } from '../errors/index.js';

/** The `TIME_…` codes: what each means and whether retrying can help. */
export const TIME_ERRORS = defineErrorCodes('time', {
  TIME_CLOCK_SKEW: { doc: 'the clock offset to a peer exceeds the configured bound: time-sensitive steps are refused (reason clock-skew)', retryable: true },
  TIME_BAD_OUTPUT: { doc: 'the output of chronyc or pmc could not be parsed', retryable: false },
  TIME_NO_DAEMON: { doc: 'no time-sync daemon answered (chronyd via chronyc, ptp4l via pmc)', retryable: true },
});

/** One of the time error codes. */
export type TimeCode = keyof typeof TIME_ERRORS;

/** Builds a time error. */
export function timeError(
  code: TimeCode,
  message: string,
  options: { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean } = {},
): IntercloudError<TimeCode> {
  return new IntercloudError(code, message, options);
}
