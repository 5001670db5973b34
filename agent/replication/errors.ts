/**
 * Error codes of replication (`REPL_…`): what each means and whether retrying can help.
 * A replica's FAILED state carries one of these (or the store's / transfer's own code).
 */
import { defineErrorCodes, IntercloudError, type IntercloudErrorOptions } from '../../protocols/errors/index.js';

/** The `REPL_…` codes. */
export const REPL_ERRORS = defineErrorCodes('replication', {
  REPL_CONFIG: { doc: 'the subcontract or replication options are invalid', retryable: false },
  REPL_JOURNAL: { doc: 'the replication journal is unreadable or belongs to another subcontract', retryable: false },
  REPL_SOURCE_CHANGED: { doc: 'the object changed or vanished at the source while it was being copied; it is queued again', retryable: true },
  REPL_VERIFY_FAILED: { doc: 'what the peer says it stored does not match what was sent (size, sha-256 or etag)', retryable: true },
  REPL_PEER_REJECTED: { doc: 'the peer refused a whole request or did not confirm a delete (its code, if any, in details.peerCode)', retryable: true },
  REPL_PEER_UNAVAILABLE: { doc: 'the peer did not answer a replication request in time or the channel failed', retryable: true },
  REPL_BAD_MESSAGE: { doc: 'a replication message from the peer is malformed', retryable: false },
  REPL_CLOSED: { doc: 'the replicator was stopped before the operation completed', retryable: true },
  REPL_SUBCONTRACT_ENDED: { doc: "the subcontract's end time has passed: the peer stores no further objects of it", retryable: false },
  REPL_PEER_BUSY: { doc: "the peer is receiving other batches of the subcontract that already declare its whole reservation; the batch is sent again later", retryable: true },
  REPL_OVER_RESERVATION: { doc: 'storing the object would take the subcontract beyond the bytes or objects the peer reserved for it', retryable: false },
});

/** One of the replication codes. */
export type ReplCode = keyof typeof REPL_ERRORS;

/** Builds a replication error. */
export function replError(code: ReplCode, message: string, options: IntercloudErrorOptions = {}): IntercloudError<ReplCode> {
  return new IntercloudError(code, message, options);
}
