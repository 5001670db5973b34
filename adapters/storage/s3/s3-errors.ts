/**
 * Turns what `@aws-sdk/client-s3` throws into the contract's `STORE_…` codes, by HTTP status, S3
 * error code and Node's system error code — never by message text. `details` keep the store's own
 * fields: HTTP status, S3 code, request id (Swift's transaction id), and the bucket and key.
 */
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { isIntercloudError, messageOf } from '../../../protocols/errors/index.js';
import { storeError, type StoreErrorCode } from '../errors.js';

/** The fields of an SDK error we read (a service exception, or a Node system error the SDK passed on). */
interface SdkErrorFields {
  readonly name?: string;
  readonly code?: string;
  readonly Code?: string;
  readonly $fault?: string;
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string; readonly extendedRequestId?: string };
}

/** Node system errors (and the SDK's timeout) that mean the store could not be reached or stopped answering. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  'ECONNABORTED', 'ENETDOWN', 'EHOSTDOWN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
]);
const NETWORK_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
/** S3 codes for a store without room (Swift's quotas answer 413 → `EntityTooLarge`). */
const FULL_CODES = new Set(['EntityTooLarge', 'QuotaExceeded', 'InsufficientStorage', 'XMinioStorageFull']);
const INTEGRITY_CODES = new Set(['BadDigest', 'InvalidDigest', 'XAmzContentSHA256Mismatch']);

/** What was being done, for the message and `details`. */
export interface S3ErrorContext {
  /** `s3(cloud-b)`. */
  readonly prefix: string;
  /** The contract call, e.g. `putObject`. */
  readonly op: string;
  readonly bucket?: string;
  readonly key?: string;
  /** The caller's signal: when it has aborted, any failure is `STORE_ABORTED`. */
  readonly signal?: AbortSignal;
}

/** The store's own fields of an SDK error: HTTP status, S3 error code, request ids, Node error code. */
export function s3Fields(err: unknown): { status?: number; s3Code?: string; requestId?: string; extendedRequestId?: string; errno?: string } {
  if (typeof err !== 'object' || err === null) return {};
  const e = err as SdkErrorFields;
  const out: { status?: number; s3Code?: string; requestId?: string; extendedRequestId?: string; errno?: string } = {};
  if (e.$metadata?.httpStatusCode !== undefined) out.status = e.$metadata.httpStatusCode;
  if (e.$metadata?.requestId !== undefined) out.requestId = e.$metadata.requestId;
  if (e.$metadata?.extendedRequestId !== undefined) out.extendedRequestId = e.$metadata.extendedRequestId;
  // A service exception's name is the S3 error code (`NoSuchKey`); a bodiless HEAD answer has only
  // its status (`NotFound`, `Forbidden`), which says nothing the status does not.
  if (e.$fault !== undefined) {
    const code = e.Code ?? e.name;
    if (code !== undefined && code !== 'Unknown' && code !== 'UnknownError') out.s3Code = code;
  }
  if (typeof e.code === 'string') out.errno = e.code;
  return out;
}

/** The contract code for an S3 answer or transport failure. */
export function storeCodeOf(err: unknown): StoreErrorCode {
  const { status, s3Code, errno } = s3Fields(err);
  const name = typeof err === 'object' && err !== null ? (err as SdkErrorFields).name : undefined;
  if (s3Code === 'NoSuchBucket') return 'STORE_BUCKET_NOT_FOUND';
  if (s3Code === 'NoSuchKey') return 'STORE_OBJECT_NOT_FOUND';
  if (s3Code === 'BucketNotEmpty') return 'STORE_BUCKET_NOT_EMPTY';
  if (s3Code !== undefined && INTEGRITY_CODES.has(s3Code)) return 'STORE_INTEGRITY';
  if (s3Code === 'IncompleteBody') return 'STORE_STREAM_SHORT';
  if (status === 507 || (s3Code !== undefined && FULL_CODES.has(s3Code))) return 'STORE_FULL';
  if (status === 412 || s3Code === 'PreconditionFailed') return 'STORE_PRECONDITION_FAILED';
  if (status === 401 || status === 403) return 'STORE_REFUSED';
  if (status === 413) return 'STORE_FULL';
  if (status === 404) return 'STORE_OBJECT_NOT_FOUND';
  if (status === 501) return 'STORE_REFUSED';
  if (status !== undefined && status >= 500) return 'STORE_UNAVAILABLE';
  if (status !== undefined && status >= 400) return 'STORE_REFUSED';
  if ((errno !== undefined && NETWORK_CODES.has(errno)) || (name !== undefined && NETWORK_NAMES.has(name))) return 'STORE_UNAVAILABLE';
  if (status === undefined && name === 'AbortError') return 'STORE_UNAVAILABLE';
  return 'STORE_RESPONSE_INVALID';
}

/**
 * The adapter error for `err` thrown by the SDK during `ctx.op`: `STORE_ABORTED` when the caller's
 * signal aborted, an adapter error passed on as it is, otherwise {@link storeCodeOf} with the
 * store's fields in `details` and `err` as the cause.
 */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): IntercloudError {
  if (ctx.signal?.aborted) {
    if (isIntercloudError(err, 'STORE_ABORTED')) return err;
    return storeError('STORE_ABORTED', `${ctx.prefix}: '${ctx.op}' was cancelled`, { cause: ctx.signal.reason ?? err });
  }
  if (isIntercloudError(err)) return err;
  const code = storeCodeOf(err);
  const fields = s3Fields(err);
  const what = [ctx.bucket !== undefined ? `bucket '${ctx.bucket}'` : undefined, ctx.key !== undefined ? `key '${ctx.key}'` : undefined].filter(Boolean).join(', ');
  const answered = fields.status !== undefined ? ` (http ${fields.status}${fields.s3Code ? ` ${fields.s3Code}` : ''}${fields.requestId ? `, request ${fields.requestId}` : ''})` : '';
  const message = `${ctx.prefix}: ${ctx.op}${what ? ` ${what}` : ''} failed${answered}: ${messageOf(err)}`;
  return storeError(code, message, {
    cause: err,
    details: { op: ctx.op, ...(ctx.bucket !== undefined ? { bucket: ctx.bucket } : {}), ...(ctx.key !== undefined ? { key: ctx.key } : {}), ...fields },
  });
}
