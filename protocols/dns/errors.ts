/**
 * Error codes of DNS dynamic update (`DNS_…`). The server's RCODE and TSIG error are kept
 * in `details` (`rcode`, `tsigError`), as the server sent them.
 */
import { defineErrorCodes, IntercloudError } from '../errors/index.js';

/** The `DNS_…` codes: what each means and whether retrying can help. */
export const DNS_ERRORS = defineErrorCodes('dns', {
  DNS_TSIG_REJECTED: { doc: 'the server refused the tsig signature of the update (badkey, badsig, badtime, badtrunc)', retryable: false },
  DNS_TSIG_BAD_RESPONSE: { doc: 'the response is not signed, or its tsig does not verify under our key', retryable: false },
  DNS_UPDATE_REFUSED: { doc: 'the server answered the update with an error rcode (refused, notauth, notzone, servfail …)', retryable: false },
  DNS_BAD_MESSAGE: { doc: 'a dns message could not be built or parsed (names, addresses, truncated response)', retryable: false },
  DNS_NO_ANSWER: { doc: 'the dns server did not answer after all retries', retryable: true },
  DNS_CONFIG: { doc: 'dns update options are invalid (zone, name outside the zone, key, algorithm)', retryable: false },
});

/** One of the DNS error codes. */
export type DnsCode = keyof typeof DNS_ERRORS;

/** Builds a DNS error. */
export function dnsError(
  code: DnsCode,
  message: string,
  options: { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean } = {},
): IntercloudError<DnsCode> {
  return new IntercloudError(code, message, options);
}
