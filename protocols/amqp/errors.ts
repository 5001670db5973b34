/**
 * Error codes of the reliable transfer (`XFER_…`). Every failure of a transfer, on either
 * side, is an {@link IntercloudError} with one of these codes; AMQP reply codes and errno
 * values are kept in `details`.
 */
import { defineErrorCodes, IntercloudError } from '../errors/index.js';

/** The `XFER_…` codes: what each means and whether retrying can help. */
export const XFER_ERRORS = defineErrorCodes('transfer', {
  XFER_BAD_FRAME: { doc: 'a chunk frame or control message is malformed (bad magic, length, checksum or field)', retryable: false },
  XFER_DIGEST_MISMATCH: { doc: 'the assembled file does not match the sender\'s whole digest', retryable: false },
  XFER_SOURCE_CHANGED: { doc: 'the source no longer matches what an earlier attempt of the same transfer sent', retryable: false },
  XFER_DISK_FULL: { doc: 'the target file system has no space left for the staging file', retryable: false },
  XFER_IO: { doc: 'reading the source or writing the staging file, journal or target failed', retryable: false },
  XFER_EXPIRED: { doc: 'the transfer passed its deadline before it was committed', retryable: false },
  XFER_ABORTED: { doc: 'the transfer was aborted by this side (abort signal) or by the peer', retryable: false },
  XFER_BROKER: { doc: 'the amqp broker refused an operation or the connection failed', retryable: true },
  XFER_BROKER_IDENTITY: { doc: 'the data endpoint is not the accepting cloud\'s broker: its uri or identity is not the cloud\'s, or the broker\'s certificate does not carry that identity', retryable: false },
  XFER_BROKER_AUTH: { doc: 'the amqp broker refused the certificate login (sasl external) or a permission', retryable: false },
  XFER_JOURNAL: { doc: 'a transfer journal is unreadable or belongs to another transfer', retryable: false },
  XFER_CONFIG: { doc: 'transfer options are invalid (ids, chunk size, window, paths)', retryable: false },
  XFER_TOO_LARGE: { doc: 'the manifest declares more bytes or chunks than the receiver takes for this transfer', retryable: false },
});

/** One of the transfer's error codes. */
export type XferCode = keyof typeof XFER_ERRORS;

/** An {@link IntercloudError} with a transfer code. */
export type XferError = IntercloudError<XferCode>;

/** Builds a transfer error (shorthand used by every file of this area). */
export function xferError(
  code: XferCode,
  message: string,
  options: { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean } = {},
): XferError {
  return new IntercloudError(code, message, options);
}
