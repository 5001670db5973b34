/**
 * The bucket names and object keys this project sends to an object store. A peer's storage offer
 * names buckets and keys too, so these checks run on everything that comes from outside.
 */
import { storeError } from './errors.js';

/** Longest object key, in UTF-8 bytes (S3's limit; Swift's default `max_object_name_length`). */
export const MAX_OBJECT_KEY_BYTES = 1024;

/**
 * Checks an S3 bucket name (AWS's general-purpose bucket rules): 3–63 characters of `a-z`, `0-9`,
 * `-` and `.`, starting and ending with a letter or digit, no `..`, not shaped like an IPv4
 * address, no reserved `xn--`/`sthree-` prefix or `-s3alias`/`--ol-s3` suffix.
 * @throws `STORE_NAME_INVALID`
 */
export function validateBucketName(bucket: string): string {
  const bad = (why: string): never => {
    throw storeError('STORE_NAME_INVALID', `bucket name ${JSON.stringify(bucket.slice(0, 80))} ${why}`, { details: { bucket: bucket.slice(0, 80) } });
  };
  if (bucket.length < 3 || bucket.length > 63) bad('must be 3 to 63 characters long');
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(bucket)) bad("may hold only a-z, 0-9, '-' and '.', starting and ending with a letter or digit");
  if (bucket.includes('..')) bad("must not hold '..'");
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) bad('must not look like an IP address');
  if (/^(xn--|sthree-)/.test(bucket) || /(-s3alias|--ol-s3)$/.test(bucket)) bad('uses a prefix or suffix S3 reserves');
  return bucket;
}

/**
 * Checks an object key: 1 to {@link MAX_OBJECT_KEY_BYTES} UTF-8 bytes of well-formed Unicode, no
 * control characters, no leading `/`, and no `.` or `..` path segment (HTTP clients and proxies
 * normalise those away, so the key stored would not be the key sent).
 * @throws `STORE_NAME_INVALID`
 */
export function validateObjectKey(key: string): string {
  const shown = JSON.stringify(key.slice(0, 80));
  const bad = (why: string): never => {
    throw storeError('STORE_NAME_INVALID', `object key ${shown} ${why}`, { details: { key: key.slice(0, 80) } });
  };
  if (key.length === 0) bad('is empty');
  if (/\p{Cs}/u.test(key)) bad('is not well-formed unicode (a lone surrogate)');
  if (Buffer.byteLength(key, 'utf8') > MAX_OBJECT_KEY_BYTES) bad(`is longer than ${MAX_OBJECT_KEY_BYTES} utf-8 bytes`);
  if (/[\u0000-\u001f\u007f]/.test(key)) bad('holds a control character');
  if (key.startsWith('/')) bad("starts with '/'");
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) bad("has a '.' or '..' segment");
  return key;
}
