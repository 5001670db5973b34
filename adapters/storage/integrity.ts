/**
 * The integrity rules every object-store adapter applies the same way (the contract's "integrity is
 * ours"): checking a put's declared size, SHA-256 and metadata; cutting a body into parts while
 * checking its size and SHA-256 as the bytes flow; the ETag a store must answer for what was sent;
 * and a read body that checks the bytes it delivers against the object's description.
 *
 * No I/O of its own: it consumes the caller's stream and hands out buffers.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { IntercloudError } from '../../protocols/errors/index.js';
import { isIntercloudError } from '../../protocols/errors/index.js';
import type { PutObjectOptions } from './contract.js';
import { storeError, type StoreErrorCode } from './errors.js';

/** Metadata key (without `x-amz-meta-`) holding the SHA-256 the writer declared. */
export const SHA256_METADATA_KEY = 'intercloud-sha256';
/** Metadata keys with this prefix are the project's own: callers neither set nor see them. */
export const RESERVED_METADATA_PREFIX = 'intercloud-';
/** Largest object a put takes: S3's limit (5 TiB). */
export const MAX_OBJECT_BYTES = 5 * 1024 ** 4;
/** Most parts a multipart upload may have (S3's limit). */
export const MAX_PARTS = 10_000;
/** User metadata limits: S3 allows 2 KiB of keys and values in all; Swift 128-byte keys, 256-byte values. */
export const MAX_METADATA_BYTES = 2048;
const MAX_METADATA_KEY_BYTES = 128;
const MAX_METADATA_VALUE_BYTES = 256;

const SHA256_HEX = /^[0-9a-f]{64}$/;
const MD5_HEX = /^[0-9a-f]{32}$/;
const METADATA_KEY = /^[a-z0-9][a-z0-9-]*$/;
/** Printable ASCII without leading or trailing blanks (HTTP trims those, so they would not round-trip). */
const METADATA_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;
const CONTENT_TYPE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

/** Whether `s` is a SHA-256 in lowercase hex. */
export function isSha256Hex(s: string | undefined): s is string {
  return s !== undefined && SHA256_HEX.test(s);
}

/**
 * Checks what a put declares besides the bytes: a whole size in 0..5 TiB, a lowercase-hex SHA-256,
 * metadata keys `[a-z0-9-]` outside the project's `intercloud-` prefix with printable-ASCII values
 * (no leading or trailing blanks), 2 KiB in all, and a printable content type.
 * @throws `STORE_ARGUMENT_INVALID`
 */
export function validatePutOptions(prefix: string, options: PutObjectOptions): void {
  const bad = (why: string): never => {
    throw storeError('STORE_ARGUMENT_INVALID', `${prefix}: ${why}`);
  };
  const { sizeBytes, sha256, metadata, contentType } = options;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > MAX_OBJECT_BYTES) bad(`size ${String(sizeBytes)} is not a whole number of bytes from 0 to 5 TiB`);
  if (!isSha256Hex(sha256)) bad(`sha256 ${JSON.stringify(String(sha256).slice(0, 80))} is not 64 lowercase hex digits`);
  if (contentType !== undefined && !CONTENT_TYPE.test(contentType)) bad(`content type ${JSON.stringify(contentType.slice(0, 80))} is not 1 to 255 printable ascii characters`);
  let total = 0;
  for (const [key, value] of Object.entries(metadata ?? {})) {
    const shown = JSON.stringify(key.slice(0, 80));
    if (!METADATA_KEY.test(key) || key.length > MAX_METADATA_KEY_BYTES) bad(`metadata key ${shown} must be 1 to 128 characters of a-z, 0-9 and '-'`);
    if (key.startsWith(RESERVED_METADATA_PREFIX)) bad(`metadata key ${shown} uses the project's own prefix '${RESERVED_METADATA_PREFIX}'`);
    if (typeof value !== 'string' || !METADATA_VALUE.test(value) || value.length > MAX_METADATA_VALUE_BYTES) {
      bad(`metadata value of ${shown} must be at most 256 printable ascii characters without leading or trailing blanks`);
    }
    total += key.length + value.length;
  }
  total += SHA256_METADATA_KEY.length + 64;
  if (total > MAX_METADATA_BYTES) bad(`metadata takes ${total} bytes with the project's own key; at most ${MAX_METADATA_BYTES} are allowed`);
}

/** Checks a listing's `maxKeys` (1..1000) and returns it, 1000 when absent. @throws `STORE_ARGUMENT_INVALID` */
export function validateMaxKeys(prefix: string, maxKeys: number | undefined): number {
  if (maxKeys === undefined) return 1000;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1 || maxKeys > 1000) {
    throw storeError('STORE_ARGUMENT_INVALID', `${prefix}: maxKeys ${String(maxKeys)} is not a whole number from 1 to 1000`);
  }
  return maxKeys;
}

/** How many parts an object of `sizeBytes` goes up in: 1 up to `partSizeBytes` (a single PUT), else one per started part. */
export function partCount(sizeBytes: number, partSizeBytes: number): number {
  return sizeBytes <= partSizeBytes ? 1 : Math.ceil(sizeBytes / partSizeBytes);
}

/**
 * The ETag an S3 store gives an object sent as these parts' MD5s: the MD5 itself for a single PUT,
 * else `<md5 of the concatenated binary part md5s>-<count>` (what S3, Swift's s3api and Ceph answer
 * for a completed multipart upload).
 */
export function expectedEtag(partMd5s: readonly Buffer[], multipart: boolean): string {
  if (!multipart) return partMd5s[0]!.toString('hex');
  return `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}`;
}

/** One part of a body, checked and ready to send. */
export interface BodyPart {
  /** 1-based. */
  readonly partNumber: number;
  readonly data: Buffer;
  /** MD5 of `data` (for `Content-MD5`). */
  readonly md5: Buffer;
  /** The last part: it is handed out only once the whole body was read and its size and SHA-256 match. */
  readonly last: boolean;
}

/** What {@link readBodyParts} checks. */
export interface ReadPartsOptions {
  readonly prefix: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly partSizeBytes: number;
  readonly signal?: AbortSignal;
}

/**
 * Cuts `body` into the parts an object of `sizeBytes` goes up in ({@link partCount}), checking as the
 * bytes flow: more bytes than declared → `STORE_STREAM_LONG` at once; the stream ending early or
 * failing → `STORE_STREAM_SHORT`; a SHA-256 other than declared → `STORE_INTEGRITY`; the signal →
 * `STORE_ABORTED`. The last part comes out only after the stream has ended and both checks passed,
 * so a caller that sends it last (and completes only after it) never stores unchecked bytes.
 * Memory: one part being filled (a stream's parts are copied into their own buffers; a buffer's
 * are views of it). The stream is destroyed when reading stops early.
 */
export async function* readBodyParts(body: Readable | Uint8Array, o: ReadPartsOptions): AsyncGenerator<BodyPart> {
  const count = partCount(o.sizeBytes, o.partSizeBytes);
  const lengthOf = (n: number): number => (n < count ? o.partSizeBytes : o.sizeBytes - (count - 1) * o.partSizeBytes);
  const sha = createHash('sha256');
  const finish = (received: number): void => {
    if (received < o.sizeBytes) {
      throw storeError('STORE_STREAM_SHORT', `${o.prefix}: the body ended after ${received} of its ${o.sizeBytes} bytes`, { details: { received, declared: o.sizeBytes } });
    }
    const actual = sha.digest('hex');
    if (actual !== o.sha256) {
      throw storeError('STORE_INTEGRITY', `${o.prefix}: the body's sha256 is '${actual}', not the declared '${o.sha256}'`, { details: { declared: o.sha256, actual } });
    }
  };
  const tooLong = (atLeast: number): IntercloudError<StoreErrorCode> =>
    storeError('STORE_STREAM_LONG', `${o.prefix}: the body holds more than its declared ${o.sizeBytes} bytes`, { details: { atLeast, declared: o.sizeBytes } });
  if (o.signal?.aborted) throw aborted(o.prefix, o.signal);

  if (!(body instanceof Readable)) {
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (bytes.length > o.sizeBytes) throw tooLong(bytes.length);
    sha.update(bytes);
    finish(bytes.length);
    for (let n = 1; n <= count; n++) {
      if (o.signal?.aborted) throw aborted(o.prefix, o.signal);
      const data = bytes.subarray((n - 1) * o.partSizeBytes, (n - 1) * o.partSizeBytes + lengthOf(n));
      yield { partNumber: n, data, md5: md5Of(data), last: n === count };
    }
    return;
  }

  // Destroying the stream on abort wakes a read that waits for a slow producer.
  const onAbort = (): void => { body.destroy(aborted(o.prefix, o.signal)); };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let partNumber = 1;
    let part = Buffer.allocUnsafe(lengthOf(1));
    let filled = 0;
    let received = 0;
    let pending: BodyPart | undefined;
    try {
      for await (const chunk of body as AsyncIterable<Buffer | string>) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        if (received + bytes.length > o.sizeBytes) throw tooLong(received + bytes.length);
        received += bytes.length;
        sha.update(bytes);
        let at = 0;
        while (at < bytes.length) {
          const n = Math.min(part.length - filled, bytes.length - at);
          bytes.copy(part, filled, at, at + n);
          filled += n;
          at += n;
          if (filled === part.length && partNumber < count) {
            yield { partNumber, data: part, md5: md5Of(part), last: false };
            partNumber += 1;
            part = Buffer.allocUnsafe(lengthOf(partNumber));
            filled = 0;
          }
        }
        if (o.signal?.aborted) throw aborted(o.prefix, o.signal);
      }
      if (received === o.sizeBytes) pending = { partNumber, data: part, md5: md5Of(part), last: true };
    } catch (err) {
      if (o.signal?.aborted) throw aborted(o.prefix, o.signal);
      if (isIntercloudError(err)) throw err;
      throw storeError('STORE_STREAM_SHORT', `${o.prefix}: the body failed after ${received} of its ${o.sizeBytes} bytes`, { cause: err, details: { received, declared: o.sizeBytes } });
    }
    finish(received);
    yield pending!;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

function md5Of(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

function aborted(prefix: string, signal: AbortSignal | undefined): IntercloudError<StoreErrorCode> {
  return storeError('STORE_ABORTED', `${prefix}: the operation was cancelled`, { cause: signal?.reason });
}

/** What {@link verifiedBody} checks the delivered bytes against. */
export interface ExpectedContent {
  readonly prefix: string;
  readonly sizeBytes: number;
  /** Checked when present (objects written through the contract have it). */
  readonly sha256?: string;
  /** The object's ETag: a plain MD5 is checked too (multipart ETags are not an MD5 of the content). */
  readonly etag: string;
  readonly signal?: AbortSignal;
  /** Turns a failure of the source (a broken connection) into an adapter error. */
  readonly mapError: (err: unknown) => IntercloudError;
}

/**
 * A byte stream of `source` that checks what it delivers: a body ending early errors with
 * `STORE_STREAM_SHORT`, one running over with `STORE_STREAM_LONG`, bytes whose SHA-256 (or, for a
 * single-part object, MD5) differs from the object's description with `STORE_INTEGRITY` — after
 * the last byte, so a reader must wait for the stream's end before trusting what it wrote. A source
 * failure is mapped with `mapError`; the signal ends it with `STORE_ABORTED`. Destroying the
 * returned stream destroys the source.
 */
export function verifiedBody(source: Readable, e: ExpectedContent): Readable {
  const sha = e.sha256 !== undefined ? createHash('sha256') : undefined;
  const md5 = MD5_HEX.test(e.etag) ? createHash('md5') : undefined;
  const onAbort = (): void => { source.destroy(aborted(e.prefix, e.signal)); };
  async function* check(): AsyncGenerator<Buffer> {
    let received = 0;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (received > e.sizeBytes) {
          throw storeError('STORE_STREAM_LONG', `${e.prefix}: the object's body holds more than its ${e.sizeBytes} bytes`, { details: { atLeast: received, expected: e.sizeBytes } });
        }
        sha?.update(chunk);
        md5?.update(chunk);
        yield chunk;
      }
    } catch (err) {
      if (e.signal?.aborted) throw aborted(e.prefix, e.signal);
      if (isIntercloudError(err)) throw err;
      throw e.mapError(err);
    } finally {
      e.signal?.removeEventListener('abort', onAbort);
    }
    if (received < e.sizeBytes) {
      throw storeError('STORE_STREAM_SHORT', `${e.prefix}: the object's body ended after ${received} of its ${e.sizeBytes} bytes`, { details: { received, expected: e.sizeBytes } });
    }
    const gotSha = sha?.digest('hex');
    if (gotSha !== undefined && gotSha !== e.sha256) {
      throw storeError('STORE_INTEGRITY', `${e.prefix}: the object's bytes have sha256 '${gotSha}', not the '${e.sha256}' it was written with`, { details: { expected: e.sha256, actual: gotSha } });
    }
    const gotMd5 = md5?.digest('hex');
    if (gotMd5 !== undefined && gotMd5 !== e.etag) {
      throw storeError('STORE_INTEGRITY', `${e.prefix}: the object's bytes have md5 '${gotMd5}', not its etag '${e.etag}'`, { details: { expected: e.etag, actual: gotMd5 } });
    }
  }
  if (e.signal?.aborted) onAbort();
  else e.signal?.addEventListener('abort', onAbort, { once: true });
  return Readable.from(check(), { objectMode: false });
}
