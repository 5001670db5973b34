/**
 * The one interface every object-store backend implements ({@link ObjectStore}), with its contract.
 * Storage subcontracts and replication see only this; backend details (S3 dialects, Swift) stay in
 * `adapters/storage/`.
 *
 * The contract in short:
 * - **Idempotent.** Creating a bucket that exists (ours), deleting an absent object or bucket and
 *   putting the same bytes again all succeed. A retry after any error is safe.
 * - **Not found.** `headObject` answers `undefined` for an absent object; `getObject` rejects with
 *   `STORE_OBJECT_NOT_FOUND`; any call on an absent bucket rejects with `STORE_BUCKET_NOT_FOUND`
 *   (except `deleteBucket` and `headBucket`).
 * - **Integrity is ours, not the store's.** A put declares the object's exact size and SHA-256; the
 *   adapter checks both as the bytes flow and stores nothing (no object, no partial upload left
 *   behind) when they do not match. It sends a `Content-MD5` with every request body or part (the one
 *   integrity header S3 dialects check), records the SHA-256 in the object's metadata, and verifies
 *   the stored object (size, ETag, SHA-256) before it resolves. A store's `x-amz-checksum-*` support
 *   is never relied on: Swift and Ceph accept and ignore wrong values.
 * - **Cancellation.** Every call takes an `AbortSignal`; an aborted call rejects with `STORE_ABORTED`
 *   as soon as it can and leaves no partial object (multipart uploads are aborted).
 * - **Names.** Bucket names and object keys are checked before anything is sent
 *   ({@link validateBucketName}, {@link validateObjectKey}): `STORE_NAME_INVALID`.
 */
import type { Readable } from 'node:stream';

/** Options every call takes. */
export interface StoreCallOptions {
  /** Cancels the call: it rejects with `STORE_ABORTED` and leaves nothing half-written. */
  readonly signal?: AbortSignal;
}

/** One object as a listing shows it (S3 listings carry no user metadata). */
export interface ObjectListing {
  readonly key: string;
  readonly sizeBytes: number;
  /**
   * The store's entity tag without quotes. For a single-part object it is the MD5 (hex) of the
   * content; for a multipart one `<md5 of the parts' md5s>-<part count>`. It changes whenever the
   * content changes, so a listing can tell a changed object without reading it.
   */
  readonly etag: string;
  readonly lastModified: Date;
}

/** One object as `headObject`, `getObject` and `putObject` describe it. */
export interface ObjectInfo extends ObjectListing {
  /**
   * SHA-256 (lowercase hex) of the content, as the writer declared it in the object's metadata
   * (`x-amz-meta-intercloud-sha256`); absent for objects written by others. Objects written through
   * {@link ObjectStore.putObject} always have it, checked against the bytes at write time.
   */
  readonly sha256?: string;
  /** User metadata, lowercase keys without the `x-amz-meta-` prefix, without the project's own keys. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly contentType?: string;
}

/** What {@link ObjectStore.putObject} needs besides the bytes. */
export interface PutObjectOptions extends StoreCallOptions {
  /** Exact length of the body. A shorter or longer body is refused (`STORE_STREAM_SHORT` / `_LONG`). */
  readonly sizeBytes: number;
  /** SHA-256 (lowercase hex) of the body. A mismatch is refused (`STORE_INTEGRITY`). */
  readonly sha256: string;
  /** User metadata to store with the object (keys lowercase `[a-z0-9-]`, values printable ASCII). */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly contentType?: string;
}

/** What {@link ObjectStore.getObject} takes. */
export interface GetObjectOptions extends StoreCallOptions {
  /**
   * Only if the object still has this ETag: otherwise `STORE_PRECONDITION_FAILED` (the object was
   * changed since it was listed; list again). Replication reads with it.
   */
  readonly ifMatch?: string;
}

/** An object being read: its description and its bytes. */
export interface ObjectRead {
  readonly info: ObjectInfo;
  /**
   * The content; it errors (with an adapter error) if the connection breaks before the end. The
   * adapter checks what it delivers against {@link info}: size (`STORE_STREAM_SHORT`/`_LONG`),
   * SHA-256 when the object has one, and MD5 when the ETag is one (`STORE_INTEGRITY`). Those
   * checks end the stream after its last byte, so a reader trusts the bytes only once it has
   * seen the stream end without error.
   */
  readonly body: Readable;
}

/** What {@link ObjectStore.listObjects} takes. */
export interface ListObjectsOptions extends StoreCallOptions {
  /** Only keys that start with this. */
  readonly prefix?: string;
  /** Only keys after this one (exclusive): how a listing resumes from a checkpoint. */
  readonly startAfter?: string;
  /** At most this many objects in the page (1..1000; the store may return fewer). */
  readonly maxKeys?: number;
}

/** One page of a listing, keys in ascending order of their UTF-8 bytes. */
export interface ListPage {
  readonly objects: readonly ObjectListing[];
  /** Present when more keys follow: pass it as `startAfter` to read the next page. */
  readonly nextStartAfter?: string;
}

/**
 * An object store of one cloud (one endpoint, one set of credentials, one region).
 * Every method rejects with an adapter error (`IntercloudError` with a `STORE_…` code).
 */
export interface ObjectStore {
  /** Registered adapter name (`s3`, `fake`). */
  readonly kind: string;
  /** The storage region this store keeps data in (the name the catalog advertises). */
  readonly region: string;

  /** Creates the bucket; succeeds if it exists already and is ours. */
  createBucket(bucket: string, options?: StoreCallOptions): Promise<void>;
  /** Whether the bucket exists (and we may use it). */
  headBucket(bucket: string, options?: StoreCallOptions): Promise<boolean>;
  /** Deletes an empty bucket; succeeds if absent; `STORE_BUCKET_NOT_EMPTY` if it holds objects. */
  deleteBucket(bucket: string, options?: StoreCallOptions): Promise<void>;

  /**
   * Stores an object (replacing one of the same key) from a stream or a buffer, checked as
   * described in the module's contract, and resolves with the stored object's description once
   * the store has it. Large bodies go up in parts, each with its own `Content-MD5`.
   */
  putObject(bucket: string, key: string, body: Readable | Uint8Array, options: PutObjectOptions): Promise<ObjectInfo>;
  /** Reads an object; `STORE_OBJECT_NOT_FOUND` if absent. */
  getObject(bucket: string, key: string, options?: GetObjectOptions): Promise<ObjectRead>;
  /** Describes an object, or `undefined` if absent. */
  headObject(bucket: string, key: string, options?: StoreCallOptions): Promise<ObjectInfo | undefined>;
  /** One page of the bucket's objects in key order. */
  listObjects(bucket: string, options?: ListObjectsOptions): Promise<ListPage>;
  /** Deletes an object; succeeds if absent. */
  deleteObject(bucket: string, key: string, options?: StoreCallOptions): Promise<void>;

  /**
   * Aborts the multipart uploads of `bucket` started before `startedBefore` and never completed:
   * what a process killed in the middle of a put leaves behind, holding the store's space until
   * someone aborts it (S3 ListMultipartUploads, AbortMultipartUpload). Resolves with the key of
   * each upload it aborted. A bucket only this agent writes can be swept of everything started
   * before the agent itself; a bucket others write to needs an age no upload of theirs reaches.
   */
  abortStaleUploads(bucket: string, startedBefore: Date, options?: StoreCallOptions): Promise<string[]>;

  /** Releases connections; calls after it reject. */
  close(): Promise<void>;
}
