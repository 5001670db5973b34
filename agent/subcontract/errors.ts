/**
 * Error codes of storage subcontracts (`SUBCONTRACT_…`, issue 14), documented in the README's
 * error table (a unit test checks each is).
 */
import { defineErrorCodes, IntercloudError, type IntercloudErrorOptions } from '../../protocols/errors/index.js';

/** Every code this area raises, with its one-line description. */
export const SUBCONTRACT_ERRORS = defineErrorCodes('subcontract', {
  SUBCONTRACT_NO_PEER: { doc: 'no trusted cloud that is online lists an allowed region, storage federation and enough free object storage in its signed catalog entry', retryable: true },
  SUBCONTRACT_PEER_UNFIT: { doc: "the named cloud's signed catalog entry lists none of the allowed regions, no storage federation, too little free object storage or a higher price", retryable: false },
  SUBCONTRACT_REJECTED: { doc: 'the peer rejected the storage offer (its reason in details)', retryable: false },
  SUBCONTRACT_BAD_ACCEPT: { doc: 'the accept is not one this cloud can use: not by the offered cloud, for another offer, without a bucket, a region outside the allowed set, an invalid bucket name or a data endpoint not under the peer\'s cloud', retryable: false },
  SUBCONTRACT_BUCKET_TAKEN: { doc: 'the bucket named for the subcontract exists already and was not made by it: refused, never adopted', retryable: false },
  SUBCONTRACT_NO_STORE: { doc: 'this cloud has no object store configured for the region of the subcontract', retryable: false },
  SUBCONTRACT_NOT_EMPTY: { doc: "after the subcontract ended, the peer's bucket for it still exists or holds objects", retryable: true },
  SUBCONTRACT_UNKNOWN: { doc: 'no subcontract of this id and offer from the asking cloud', retryable: false },
  SUBCONTRACT_NOT_STARTED: { doc: 'the peer did not begin the subcontract before its reservation lapsed', retryable: false },
  SUBCONTRACT_NO_SOURCE: { doc: "the bucket to subcontract does not exist in this cloud's store of the source region", retryable: false },
  SUBCONTRACT_NOT_ACTIVE: { doc: 'the subcontract is not replicating now (not begun yet, ended, or a peer\'s): status, verify, put and end need a live subcontract of this cloud', retryable: false },
  SUBCONTRACT_RETURN_INCOMPLETE: { doc: 'at the end of a `return` subcontract this cloud no longer holds every object the peer held', retryable: false },
});

/** A subcontract area error code. */
export type SubcontractCode = keyof typeof SUBCONTRACT_ERRORS;

/** Builds a subcontract area error. */
export function subcontractError(code: SubcontractCode, message: string, options: IntercloudErrorOptions = {}): IntercloudError<SubcontractCode> {
  return new IntercloudError(code, message, options);
}
