/**
 * An in-memory {@link ObjectStore} for unit tests and dry runs: the same contract as the S3 adapter
 * (the same size and SHA-256 checks as the bytes flow, the ETag an S3 store would answer for the
 * same parts, listings in UTF-8 byte order, the same not-found answers), and hooks to play what a
 * real store does to its callers: fill up (`STORE_FULL`), go away (`STORE_UNAVAILABLE`), lose or
 * corrupt an object behind the agent's back, or answer slowly.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  GetObjectOptions, ListObjectsOptions, ListPage, ObjectInfo, ObjectRead, ObjectStore, PutObjectOptions, StoreCallOptions,
} from '../contract.js';
import { storeError, throwIfStoreAborted } from '../errors.js';
import { expectedEtag, partCount, readBodyParts, validateMaxKeys, validatePutOptions, verifiedBody } from '../integrity.js';
import { validateBucketName, validateObjectKey } from '../names.js';

/** Configuration of the fake. */
export interface FakeObjectStoreConfig {
  /** Name in messages (`fake(NAME): …`). */
  readonly name: string;
  /** The region it says it keeps data in. */
  readonly region: string;
  /** Bodies larger than this are "multipart": their ETag is `<md5 of part md5s>-<n>`, as the S3 adapter's. */
  readonly partSizeBytes: number;
  /** Bytes it holds at most: a put beyond them fails with `STORE_FULL`, as a store answering 507. */
  readonly capacityBytes: number;
}

/** What tests switch on to play a misbehaving store. */
export interface FakeObjectStoreFaults {
  /** Every put fails with `STORE_FULL` (507 insufficient storage), whatever the capacity. */
  full: boolean;
  /** Every call fails with `STORE_UNAVAILABLE` (connection refused). */
  unavailable: boolean;
  /** Every call waits this long first (honouring its signal), like a slow store. */
  latencyMs: number;
}

interface StoredObject {
  readonly bytes: Buffer;
  readonly etag: string;
  readonly sha256: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly contentType: string;
  readonly lastModified: Date;
}

/** Ascending order of the keys' UTF-8 bytes (what S3 and Swift list in; not JavaScript's UTF-16 order). */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The in-memory object store. */
export class FakeObjectStore implements ObjectStore {
  readonly kind = 'fake';
  readonly region: string;
  /** Switch these on in tests; see {@link FakeObjectStoreFaults}. */
  readonly faults: FakeObjectStoreFaults = { full: false, unavailable: false, latencyMs: 0 };
  readonly #config: FakeObjectStoreConfig;
  readonly #prefix: string;
  readonly #buckets = new Map<string, Map<string, StoredObject>>();
  #uploading = 0;
  /** Uploads left by a put that never finished ({@link leaveUpload}), by bucket. */
  readonly #abandoned = new Map<string, Array<{ key: string; startedAt: Date }>>();
  #requests = 0;
  #closed = false;

  constructor(config: FakeObjectStoreConfig) {
    this.#config = config;
    this.region = config.region;
    this.#prefix = `fake(${config.name})`;
  }

  /** Calls that reached the store (name and argument checks come first and do not count). */
  get requests(): number {
    return this.#requests;
  }

  /** Puts whose bytes are still arriving and uploads left behind (a real store's pending multipart uploads). */
  pendingUploads(): number {
    let left = 0;
    for (const uploads of this.#abandoned.values()) left += uploads.length;
    return this.#uploading + left;
  }

  /** Leaves an upload of `key` in `bucket` that never completes, as a put killed with its process does. */
  leaveUpload(bucket: string, key: string, startedAt = new Date()): void {
    this.#bucket(bucket);
    const uploads = this.#abandoned.get(bucket) ?? [];
    uploads.push({ key, startedAt });
    this.#abandoned.set(bucket, uploads);
  }

  /** Bytes stored in all buckets. */
  usedBytes(): number {
    let n = 0;
    for (const objects of this.#buckets.values()) for (const o of objects.values()) n += o.bytes.length;
    return n;
  }

  /** Removes an object without telling anyone (a replica lost behind the agent's back). */
  loseObject(bucket: string, key: string): boolean {
    return this.#buckets.get(bucket)?.delete(key) ?? false;
  }

  /**
   * Flips one byte of a stored object and keeps its ETag and SHA-256 metadata, as bit rot on a
   * store's disk would: listings and heads do not show it, reading it does (`STORE_INTEGRITY`).
   */
  corruptObject(bucket: string, key: string, at = 0): void {
    const objects = this.#buckets.get(bucket);
    const o = objects?.get(key);
    if (o === undefined || o.bytes.length === 0) throw new RangeError(`fake: no non-empty object '${key}' in '${bucket}' to corrupt`);
    const bytes = Buffer.from(o.bytes);
    bytes[at % bytes.length] = bytes[at % bytes.length]! ^ 0xff;
    objects!.set(key, { ...o, bytes });
  }

  async createBucket(bucket: string, options: StoreCallOptions = {}): Promise<void> {
    validateBucketName(bucket);
    await this.#enter('createBucket', options.signal);
    if (!this.#buckets.has(bucket)) this.#buckets.set(bucket, new Map());
  }

  async headBucket(bucket: string, options: StoreCallOptions = {}): Promise<boolean> {
    validateBucketName(bucket);
    await this.#enter('headBucket', options.signal);
    return this.#buckets.has(bucket);
  }

  async abortStaleUploads(bucket: string, startedBefore: Date, options: StoreCallOptions = {}): Promise<string[]> {
    validateBucketName(bucket);
    await this.#enter('abortStaleUploads', options.signal);
    this.#bucket(bucket);
    const uploads = this.#abandoned.get(bucket) ?? [];
    const stale = uploads.filter((u) => u.startedAt.getTime() < startedBefore.getTime());
    this.#abandoned.set(bucket, uploads.filter((u) => !stale.includes(u)));
    return stale.map((u) => u.key);
  }

  async deleteBucket(bucket: string, options: StoreCallOptions = {}): Promise<void> {
    validateBucketName(bucket);
    await this.#enter('deleteBucket', options.signal);
    const objects = this.#buckets.get(bucket);
    if (objects === undefined) return;
    if (objects.size > 0) throw storeError('STORE_BUCKET_NOT_EMPTY', `${this.#prefix}: bucket '${bucket}' still holds ${objects.size} objects`, { details: { bucket } });
    this.#buckets.delete(bucket);
  }

  async putObject(bucket: string, key: string, body: Readable | Uint8Array, options: PutObjectOptions): Promise<ObjectInfo> {
    validateBucketName(bucket);
    validateObjectKey(key);
    const prefix = `${this.#prefix}: put '${key}' in '${bucket}'`;
    validatePutOptions(prefix, options);
    await this.#enter('putObject', options.signal);
    this.#bucket(bucket);
    const parts: Buffer[] = [];
    const md5s: Buffer[] = [];
    this.#uploading += 1;
    try {
      for await (const part of readBodyParts(body, { prefix, sizeBytes: options.sizeBytes, sha256: options.sha256, partSizeBytes: this.#config.partSizeBytes, ...(options.signal ? { signal: options.signal } : {}) })) {
        parts.push(Buffer.from(part.data));
        md5s.push(part.md5);
        this.#checkRoom(prefix, bucket, key, parts.reduce((n, p) => n + p.length, 0));
      }
    } finally {
      this.#uploading -= 1;
    }
    this.#checkRoom(prefix, bucket, key, options.sizeBytes);
    const objects = this.#bucket(bucket);
    const stored: StoredObject = {
      bytes: Buffer.concat(parts),
      etag: expectedEtag(md5s, partCount(options.sizeBytes, this.#config.partSizeBytes) > 1),
      sha256: options.sha256,
      metadata: { ...(options.metadata ?? {}) },
      contentType: options.contentType ?? 'application/octet-stream',
      // S3 stores second precision.
      lastModified: new Date(Math.floor(Date.now() / 1000) * 1000),
    };
    objects.set(key, stored);
    return this.#info(key, stored);
  }

  async getObject(bucket: string, key: string, options: GetObjectOptions = {}): Promise<ObjectRead> {
    validateBucketName(bucket);
    validateObjectKey(key);
    await this.#enter('getObject', options.signal);
    const o = this.#bucket(bucket).get(key);
    if (o === undefined) throw storeError('STORE_OBJECT_NOT_FOUND', `${this.#prefix}: no object '${key}' in '${bucket}'`, { details: { bucket, key } });
    if (options.ifMatch !== undefined && options.ifMatch.replace(/^"|"$/g, '') !== o.etag) {
      throw storeError('STORE_PRECONDITION_FAILED', `${this.#prefix}: object '${key}' in '${bucket}' no longer has etag '${options.ifMatch}'`, { details: { bucket, key, ifMatch: options.ifMatch, etag: o.etag } });
    }
    const info = this.#info(key, o);
    const body = verifiedBody(Readable.from([o.bytes]), {
      prefix: `${this.#prefix}: get '${key}' from '${bucket}'`,
      sizeBytes: info.sizeBytes,
      sha256: o.sha256,
      etag: o.etag,
      ...(options.signal ? { signal: options.signal } : {}),
      mapError: (err) => storeError('STORE_UNAVAILABLE', `${this.#prefix}: reading '${key}' failed`, { cause: err }),
    });
    return { info, body };
  }

  async headObject(bucket: string, key: string, options: StoreCallOptions = {}): Promise<ObjectInfo | undefined> {
    validateBucketName(bucket);
    validateObjectKey(key);
    await this.#enter('headObject', options.signal);
    const o = this.#bucket(bucket).get(key);
    return o === undefined ? undefined : this.#info(key, o);
  }

  async listObjects(bucket: string, options: ListObjectsOptions = {}): Promise<ListPage> {
    validateBucketName(bucket);
    const maxKeys = validateMaxKeys(`${this.#prefix}: list '${bucket}'`, options.maxKeys);
    await this.#enter('listObjects', options.signal);
    const { prefix = '', startAfter } = options;
    const keys = [...this.#bucket(bucket).keys()]
      .filter((k) => k.startsWith(prefix) && (startAfter === undefined || byUtf8(k, startAfter) > 0))
      .sort(byUtf8);
    const page = keys.slice(0, maxKeys);
    const objects = page.map((key) => {
      const o = this.#bucket(bucket).get(key)!;
      return { key, sizeBytes: o.bytes.length, etag: o.etag, lastModified: o.lastModified };
    });
    return keys.length > maxKeys ? { objects, nextStartAfter: page[page.length - 1]! } : { objects };
  }

  async deleteObject(bucket: string, key: string, options: StoreCallOptions = {}): Promise<void> {
    validateBucketName(bucket);
    validateObjectKey(key);
    await this.#enter('deleteObject', options.signal);
    this.#bucket(bucket).delete(key);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Counts the call and plays the faults that apply to every call. */
  async #enter(op: string, signal: AbortSignal | undefined): Promise<void> {
    throwIfStoreAborted(this.#prefix, op, signal);
    if (this.#closed) throw storeError('STORE_UNAVAILABLE', `${this.#prefix}: '${op}' after close`, { retryable: false });
    this.#requests += 1;
    if (this.faults.latencyMs > 0) {
      try {
        await sleep(this.faults.latencyMs, undefined, signal ? { signal } : {});
      } catch (err) {
        throw storeError('STORE_ABORTED', `${this.#prefix}: '${op}' was cancelled`, { cause: err });
      }
    }
    if (this.faults.unavailable) {
      throw storeError('STORE_UNAVAILABLE', `${this.#prefix}: '${op}' failed: the store is unavailable (fault injected)`, { details: { op } });
    }
  }

  #bucket(bucket: string): Map<string, StoredObject> {
    const objects = this.#buckets.get(bucket);
    if (objects === undefined) throw storeError('STORE_BUCKET_NOT_FOUND', `${this.#prefix}: no bucket '${bucket}'`, { details: { bucket } });
    return objects;
  }

  /** `STORE_FULL` when the store is made full or `bytes` for `key` would not fit (the key's old copy is replaced). */
  #checkRoom(prefix: string, bucket: string, key: string, bytes: number): void {
    const replaced = this.#buckets.get(bucket)?.get(key)?.bytes.length ?? 0;
    const free = this.#config.capacityBytes - (this.usedBytes() - replaced);
    if (this.faults.full || bytes > free) {
      throw storeError('STORE_FULL', `${prefix}: the store has no room (${Math.max(0, free)} bytes free, 507 insufficient storage)`, { details: { status: 507, freeBytes: Math.max(0, free) } });
    }
  }

  #info(key: string, o: StoredObject): ObjectInfo {
    return {
      key, sizeBytes: o.bytes.length, etag: o.etag, lastModified: o.lastModified, sha256: o.sha256,
      metadata: { ...o.metadata }, contentType: o.contentType,
    };
  }
}
