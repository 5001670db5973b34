/**
 * Error codes of the object-store adapters.
 *
 * `STORE_…` codes are the contract's own: callers branch on them without knowing the backend.
 * Their `details` keep the backend's own fields (HTTP status, S3 error code, request id).
 */
import { defineErrorCodes, IntercloudError } from '../../protocols/errors/index.js';
import type { IntercloudErrorOptions } from '../../protocols/errors/index.js';

/** Codes every object-store adapter raises. */
export const StoreErrors = defineErrorCodes('storage', {
  STORE_CONFIG_INVALID: { doc: 'the object-store adapter configuration is invalid', retryable: false },
  STORE_UNKNOWN_BACKEND: { doc: 'no object-store adapter is registered under this name', retryable: false },
  STORE_NAME_INVALID: { doc: 'the bucket name or object key is not one this project sends to a store', retryable: false },
  STORE_ARGUMENT_INVALID: { doc: "a call's declared size, sha-256, metadata, content type or page size is malformed", retryable: false },
  STORE_BUCKET_NOT_FOUND: { doc: 'the bucket does not exist', retryable: false },
  STORE_BUCKET_NOT_EMPTY: { doc: 'the bucket still holds objects', retryable: false },
  STORE_OBJECT_NOT_FOUND: { doc: 'the object does not exist', retryable: false },
  STORE_PRECONDITION_FAILED: { doc: 'the object changed since it was listed (etag no longer matches)', retryable: true },
  STORE_STREAM_SHORT: { doc: 'an object body ended before its declared size', retryable: true },
  STORE_STREAM_LONG: { doc: 'an object body carried more bytes than its declared size', retryable: false },
  STORE_INTEGRITY: { doc: 'the bytes do not match their declared sha-256 or md5, or the stored object does not match what was sent', retryable: true },
  STORE_FULL: { doc: 'the store has no room for the object (507 insufficient storage, quota exceeded)', retryable: true },
  STORE_REFUSED: { doc: 'the store refused our credentials or the operation (401/403)', retryable: false },
  STORE_UNAVAILABLE: { doc: 'the store cannot be reached or answered with a server error', retryable: true },
  STORE_RESPONSE_INVALID: { doc: 'the store answered with something we cannot read', retryable: false },
  STORE_ABORTED: { doc: 'the operation was cancelled by its abort signal', retryable: true },
});

/** Any code an object-store adapter may raise. */
export type StoreErrorCode = keyof typeof StoreErrors;

/** Makes an adapter error: `storeError('STORE_OBJECT_NOT_FOUND', "s3(cloud-b): no object 'a/b' in 'x'")`. */
export function storeError(code: StoreErrorCode, message: string, options?: IntercloudErrorOptions): IntercloudError<StoreErrorCode> {
  return new IntercloudError(code, message, options);
}

/** Throws `STORE_ABORTED` when `signal` has aborted. */
export function throwIfStoreAborted(prefix: string, op: string, signal?: AbortSignal): void {
  if (signal?.aborted) throw storeError('STORE_ABORTED', `${prefix}: '${op}' was cancelled`, { cause: signal.reason });
}
