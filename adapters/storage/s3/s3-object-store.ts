/**
 * The `s3` object-store adapter: any S3 dialect (OpenStack Swift's `s3api`, Ceph RGW, MinIO, AWS) on
 * `@aws-sdk/client-s3`, with the integrity the contract promises done by the adapter itself:
 *
 * - bodies up to `partSizeBytes` go up in one PUT, larger ones as a multipart upload
 *   (CreateMultipartUpload / UploadPart / CompleteMultipartUpload, AbortMultipartUpload on any
 *   failure) — sent by hand rather than with `@aws-sdk/lib-storage`'s `Upload`, which copies one
 *   set of parameters into every UploadPart and so cannot send each part its own `Content-MD5`;
 * - every body or part carries `Content-MD5` (RFC 1864; S3 PutObject/UploadPart answer 400
 *   `BadDigest` on a mismatch, Swift and Ceph too), the SDK's own `x-amz-checksum-*` are off
 *   ("when required": with its defaults, streaming uploads to Swift get 501, and Swift and Ceph
 *   accept and ignore wrong values anyway);
 * - size and SHA-256 are checked while the body streams; the last part is sent only once both
 *   match, so a mismatch leaves no object and no pending upload;
 * - the SHA-256 goes into the object's metadata (`x-amz-meta-intercloud-sha256`) and the stored
 *   object is checked with HEAD before a put resolves: size, SHA-256, and the ETag against the one
 *   computed from the parts' MD5s (the MD5 itself for a single PUT, `md5-of-md5s-N` for multipart);
 * - reads check size, SHA-256 and (single-part) MD5 of what they deliver.
 *
 * Memory per put: at most `partConcurrency` parts in flight and one being filled.
 */
import { Agent as HttpAgent, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions as HttpsRequestOptions } from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import type * as S3Module from '@aws-sdk/client-s3';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import type {
  GetObjectOptions, ListObjectsOptions, ListPage, ObjectInfo, ObjectListing, ObjectRead, ObjectStore, PutObjectOptions, StoreCallOptions,
} from '../contract.js';
import { storeError, throwIfStoreAborted } from '../errors.js';
import {
  expectedEtag, isSha256Hex, MAX_PARTS, partCount, readBodyParts, RESERVED_METADATA_PREFIX, SHA256_METADATA_KEY, validateMaxKeys,
  validatePutOptions, verifiedBody, type BodyPart,
} from '../integrity.js';
import { validateBucketName, validateObjectKey } from '../names.js';
import { mapS3Error, s3Fields, type S3ErrorContext } from './s3-errors.js';

/** What the `s3` adapter needs, resolved (secrets read from their files). */
export interface S3ObjectStoreOptions {
  /** Cloud name, in messages (`s3(cloud-b): …`). */
  readonly name: string;
  /** `http(s)://host:port`, path-style (`/bucket/key`). */
  readonly endpoint: string;
  /** The storage region this store keeps data in, as the catalog names it. */
  readonly region: string;
  /** The region SigV4 signs for (Swift's `s3api` `location`). */
  readonly signingRegion: string;
  readonly accessKeyId: string;
  /** Secret: never logged, never in an error. */
  readonly secretAccessKey: string;
  /** PEM the endpoint's certificate must chain to (https only); the system's CAs when absent. */
  readonly ca?: string;
  /** Part size of multipart uploads; bodies up to it go up in one PUT. */
  readonly partSizeBytes: number;
  /** Parts of one upload in flight at once. */
  readonly partConcurrency: number;
  readonly connectTimeoutMs: number;
  /** A connection idle this long (no byte either way) fails with `STORE_UNAVAILABLE`: a hung store does not hang the agent. */
  readonly idleTimeoutMs: number;
  /** Attempts per request for the SDK's retries of 5xx, throttling and dropped connections (bodies are buffers, so retries are safe). */
  readonly maxAttempts: number;
  /** Sockets per store. */
  readonly maxSockets: number;
}

/**
 * Gives a socket an 'error' listener for its whole life. A store that answers a put before reading
 * its body and then closes the connection (Swift's 403 to a signature it refuses) leaves Node's
 * client writing the rest of the body after the answer has released the socket to the agent: the
 * write's EPIPE is then emitted on a socket no request listens to, and an unheard 'error' ends the
 * process. The request already has its answer, and the socket is destroyed with the error either way.
 */
function heardErrors(socket: Duplex | null | undefined): Duplex | null | undefined {
  socket?.on('error', () => undefined);
  return socket;
}

/** Keep-alive agents whose sockets never raise an unheard error (see {@link heardErrors}). */
class StoreHttpAgent extends HttpAgent {
  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return heardErrors(super.createConnection(options, callback));
  }
}
class StoreHttpsAgent extends HttpsAgent {
  override createConnection(options: HttpsRequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return heardErrors(super.createConnection(options, callback));
  }
}

/** `@aws-sdk/client-s3` and a client made with it. */
type S3Sdk = typeof S3Module & { readonly client: S3Module.S3Client };

let s3Sdk: Promise<typeof S3Module> | undefined;

/** Loads `@aws-sdk/client-s3` once per process, at the first store call; a failed load is tried again at the next. */
function loadS3Sdk(): Promise<typeof S3Module> {
  s3Sdk ??= import('@aws-sdk/client-s3').catch((err: unknown) => {
    s3Sdk = undefined;
    throw err;
  });
  return s3Sdk;
}

/** An SDK logger that says nothing: libraries don't log (the SDK would print its warnings to the console). */
const SILENT = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

function unquote(etag: string): string {
  return etag.replace(/^"|"$/g, '');
}

/** The S3 object store. Loads the SDK and opens no connection until the first call. */
export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3';
  readonly region: string;
  readonly #o: S3ObjectStoreOptions;
  readonly #prefix: string;
  #client: Promise<S3Sdk> | undefined;
  #closed = false;

  constructor(options: S3ObjectStoreOptions) {
    this.#o = options;
    this.region = options.region;
    this.#prefix = `s3(${options.name})`;
  }

  async createBucket(bucket: string, options: StoreCallOptions = {}): Promise<void> {
    validateBucketName(bucket);
    const ctx = this.#ctx('createBucket', options.signal, bucket);
    try {
      await this.#send(ctx, (o, sdk) => sdk.client.send(new sdk.CreateBucketCommand({ Bucket: bucket }), o));
    } catch (err) {
      // S3 §CreateBucket: 409 BucketAlreadyOwnedByYou is "it exists and is yours".
      if (s3Fields((err as IntercloudError).cause).s3Code === 'BucketAlreadyOwnedByYou') return;
      if (s3Fields((err as IntercloudError).cause).s3Code === 'BucketAlreadyExists') {
        throw storeError('STORE_REFUSED', `${this.#prefix}: bucket '${bucket}' exists and belongs to someone else`, { cause: err, details: { bucket, ...s3Fields((err as IntercloudError).cause) } });
      }
      throw err;
    }
  }

  async headBucket(bucket: string, options: StoreCallOptions = {}): Promise<boolean> {
    validateBucketName(bucket);
    return this.#bucketExists(this.#ctx('headBucket', options.signal, bucket));
  }

  async deleteBucket(bucket: string, options: StoreCallOptions = {}): Promise<void> {
    validateBucketName(bucket);
    try {
      await this.#send(this.#ctx('deleteBucket', options.signal, bucket), (o, sdk) => sdk.client.send(new sdk.DeleteBucketCommand({ Bucket: bucket }), o));
    } catch (err) {
      if ((err as IntercloudError).code === 'STORE_BUCKET_NOT_FOUND') return;
      throw err;
    }
  }

  async putObject(bucket: string, key: string, body: Readable | Uint8Array, options: PutObjectOptions): Promise<ObjectInfo> {
    validateBucketName(bucket);
    validateObjectKey(key);
    const prefix = `${this.#prefix}: put '${key}' in '${bucket}'`;
    validatePutOptions(prefix, options);
    const ctx = this.#ctx('putObject', options.signal, bucket, key);
    const count = partCount(options.sizeBytes, this.#o.partSizeBytes);
    if (count > MAX_PARTS) {
      throw storeError('STORE_ARGUMENT_INVALID', `${prefix}: ${options.sizeBytes} bytes need ${count} parts of ${this.#o.partSizeBytes}; S3 takes at most ${MAX_PARTS}: raise partSizeBytes`);
    }
    const metadata = { ...(options.metadata ?? {}), [SHA256_METADATA_KEY]: options.sha256 };
    const contentType = options.contentType ?? 'application/octet-stream';
    // Aborted by the caller's signal or by our own first failure: stops the reading and the parts in flight.
    const inner = new AbortController();
    const onOuterAbort = (): void => inner.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const parts = readBodyParts(body, { prefix, sizeBytes: options.sizeBytes, sha256: options.sha256, partSizeBytes: this.#o.partSizeBytes, signal: inner.signal });
    let etag: string;
    try {
      if (count === 1) {
        const sent = await this.#nextPart(parts, ctx);
        const out = await this.#send(ctx, (o, sdk) => sdk.client.send(new sdk.PutObjectCommand({
          Bucket: bucket, Key: key, Body: sent.data, ContentLength: sent.data.length, ContentMD5: sent.md5.toString('base64'),
          ContentType: contentType, Metadata: metadata,
        }), o));
        etag = expectedEtag([sent.md5], false);
        this.#checkEtag(prefix, 'the put answered', out.ETag, etag);
      } else {
        etag = await this.#multipart(bucket, key, parts, count, metadata, contentType, ctx, inner);
      }
    } finally {
      options.signal?.removeEventListener('abort', onOuterAbort);
      await parts.return(undefined);
    }

    const info = await this.headObject(bucket, key, options.signal ? { signal: options.signal } : {});
    const problems: string[] = [];
    if (info === undefined) problems.push('it is not there');
    else {
      if (info.sizeBytes !== options.sizeBytes) problems.push(`its size is ${info.sizeBytes}, not ${options.sizeBytes}`);
      if (info.sha256 !== options.sha256) problems.push(`its sha256 metadata is '${info.sha256 ?? '(none)'}', not '${options.sha256}'`);
      if (info.etag !== etag) problems.push(`its etag is '${info.etag}', not '${etag}'`);
    }
    if (problems.length > 0) {
      throw storeError('STORE_INTEGRITY', `${prefix}: the stored object does not match what was sent: ${problems.join('; ')}`, { details: { bucket, key, problems } });
    }
    return info!;
  }

  /** The next part of the body, its reading failures mapped for the caller's signal. */
  async #nextPart(parts: AsyncGenerator<BodyPart>, ctx: S3ErrorContext): Promise<BodyPart> {
    try {
      const next = await parts.next();
      if (next.done === true) throw storeError('STORE_STREAM_SHORT', `${ctx.prefix}: the body of '${ctx.key ?? ''}' gave no part`);
      return next.value;
    } catch (err) {
      throw mapS3Error(err, ctx);
    }
  }

  /**
   * Sends `parts` as a multipart upload (S3 §CreateMultipartUpload, §UploadPart with `Content-MD5`,
   * §CompleteMultipartUpload), at most `partConcurrency` parts at once; resolves with the ETag the
   * completed object must have. On any failure it aborts `inner` (stopping the reading and the parts
   * in flight) and the upload (§AbortMultipartUpload), so nothing is left pending.
   */
  async #multipart(
    bucket: string, key: string, parts: AsyncGenerator<BodyPart>, count: number, metadata: Record<string, string>, contentType: string,
    ctx: S3ErrorContext, inner: AbortController,
  ): Promise<string> {
    // The first part is read before the upload is created: a body that fails at once leaves no upload to abort.
    const first = await this.#nextPart(parts, ctx);
    const created = await this.#send(ctx, (o, sdk) => sdk.client.send(new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: metadata, ContentType: contentType }), o));
    const uploadId = created.UploadId;
    if (uploadId === undefined) throw storeError('STORE_RESPONSE_INVALID', `${ctx.prefix}: CreateMultipartUpload for '${key}' answered no UploadId`, { details: { bucket, key } });
    const partCtx: S3ErrorContext = { ...ctx, signal: inner.signal };
    const md5s = new Array<Buffer>(count);
    const etags = new Array<string>(count);
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    const fail = (err: unknown): void => {
      // The first failure wins; what it cancels fails after it with STORE_ABORTED.
      failure ??= mapS3Error(err, ctx);
      inner.abort(failure);
    };
    const send = (part: BodyPart): void => {
      md5s[part.partNumber - 1] = part.md5;
      const sending: Promise<void> = this.#send(partCtx, (o, sdk) => sdk.client.send(new sdk.UploadPartCommand({
        Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: part.partNumber, Body: part.data,
        ContentLength: part.data.length, ContentMD5: part.md5.toString('base64'),
      }), o)).then((out) => {
        this.#checkEtag(`${ctx.prefix}: part ${part.partNumber} of '${key}'`, 'the store answered', out.ETag, part.md5.toString('hex'));
        etags[part.partNumber - 1] = out.ETag!;
      }).catch(fail).finally(() => { inFlight.delete(sending); });
      inFlight.add(sending);
    };
    try {
      send(first);
      while (failure === undefined) {
        while (inFlight.size >= this.#o.partConcurrency) await Promise.race(inFlight);
        if (failure !== undefined) break;
        const next = await parts.next();
        if (next.done === true) break;
        send(next.value);
      }
    } catch (err) {
      fail(err);
    }
    try {
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      const done = await this.#send(ctx, (o, sdk) => sdk.client.send(new sdk.CompleteMultipartUploadCommand({
        Bucket: bucket, Key: key, UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }), o));
      const expected = expectedEtag(md5s, true);
      this.#checkEtag(`${ctx.prefix}: '${key}'`, 'CompleteMultipartUpload answered', done.ETag, expected);
      return expected;
    } catch (err) {
      await this.#abortUpload(bucket, key, uploadId, err);
      throw err;
    }
  }

  /** Aborts a multipart upload after `reason`; when that fails too, says so on the error it throws. */
  async #abortUpload(bucket: string, key: string, uploadId: string, reason: unknown): Promise<void> {
    try {
      await this.#send(this.#ctx('abortMultipartUpload', undefined, bucket, key), (o, sdk) => sdk.client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), o));
    } catch (err) {
      // NoSuchUpload: it is gone already (completed or aborted), nothing is left pending.
      if (s3Fields((err as IntercloudError).cause).s3Code === 'NoSuchUpload') return;
      if (typeof reason === 'object' && reason !== null && 'details' in reason) {
        Object.assign(reason, { details: { ...(reason as IntercloudError).details, uploadLeftPending: uploadId, abortFailed: (err as Error).message } });
      }
    }
  }

  async getObject(bucket: string, key: string, options: GetObjectOptions = {}): Promise<ObjectRead> {
    validateBucketName(bucket);
    validateObjectKey(key);
    const ctx = this.#ctx('getObject', options.signal, bucket, key);
    const out = await this.#send(ctx, (o, sdk) => sdk.client.send(new sdk.GetObjectCommand({
      Bucket: bucket, Key: key, ...(options.ifMatch !== undefined ? { IfMatch: `"${unquote(options.ifMatch)}"` } : {}),
    }), o));
    const body = out.Body as Readable | undefined;
    if (body === undefined || out.ContentLength === undefined || out.ETag === undefined || out.LastModified === undefined) {
      body?.destroy();
      throw storeError('STORE_RESPONSE_INVALID', `${ctx.prefix}: get '${key}' answered without a body, length, etag or date`, { details: { bucket, key } });
    }
    const info = this.#toInfo(key, out);
    return {
      info,
      body: verifiedBody(body, {
        prefix: `${ctx.prefix}: get '${key}' from '${bucket}'`, sizeBytes: info.sizeBytes, etag: info.etag,
        ...(info.sha256 !== undefined ? { sha256: info.sha256 } : {}), ...(options.signal ? { signal: options.signal } : {}),
        mapError: (err) => mapS3Error(err, ctx),
      }),
    };
  }

  async headObject(bucket: string, key: string, options: StoreCallOptions = {}): Promise<ObjectInfo | undefined> {
    validateBucketName(bucket);
    validateObjectKey(key);
    const ctx = this.#ctx('headObject', options.signal, bucket, key);
    try {
      const out = await this.#send(ctx, (o, sdk) => sdk.client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), o));
      if (out.ContentLength === undefined || out.ETag === undefined || out.LastModified === undefined) {
        throw storeError('STORE_RESPONSE_INVALID', `${ctx.prefix}: head '${key}' answered without a length, etag or date`, { details: { bucket, key } });
      }
      return this.#toInfo(key, out);
    } catch (err) {
      // A HEAD answer has no body, so a 404 does not say whether the key or the bucket is missing.
      if ((err as IntercloudError).code !== 'STORE_OBJECT_NOT_FOUND') throw err;
      if (await this.#bucketExists(ctx)) return undefined;
      throw storeError('STORE_BUCKET_NOT_FOUND', `${ctx.prefix}: no bucket '${bucket}'`, { cause: err, details: { bucket } });
    }
  }

  async listObjects(bucket: string, options: ListObjectsOptions = {}): Promise<ListPage> {
    validateBucketName(bucket);
    const ctx = this.#ctx('listObjects', options.signal, bucket);
    const maxKeys = validateMaxKeys(`${ctx.prefix}: list '${bucket}'`, options.maxKeys);
    const out = await this.#send(ctx, (o, sdk) => sdk.client.send(new sdk.ListObjectsV2Command({
      Bucket: bucket, MaxKeys: maxKeys,
      ...(options.prefix !== undefined && options.prefix !== '' ? { Prefix: options.prefix } : {}),
      ...(options.startAfter !== undefined ? { StartAfter: options.startAfter } : {}),
    }), o));
    const objects: ObjectListing[] = (out.Contents ?? []).map((o) => {
      if (o.Key === undefined || o.Size === undefined || o.ETag === undefined || o.LastModified === undefined) {
        throw storeError('STORE_RESPONSE_INVALID', `${ctx.prefix}: the listing of '${bucket}' holds an entry without a key, size, etag or date`, { details: { bucket } });
      }
      return { key: o.Key, sizeBytes: o.Size, etag: unquote(o.ETag), lastModified: o.LastModified };
    });
    if (out.IsTruncated === true) {
      const last = objects[objects.length - 1];
      if (last === undefined) throw storeError('STORE_RESPONSE_INVALID', `${ctx.prefix}: the listing of '${bucket}' says more follows but holds no key to go on from`, { details: { bucket } });
      return { objects, nextStartAfter: last.key };
    }
    return { objects };
  }

  async deleteObject(bucket: string, key: string, options: StoreCallOptions = {}): Promise<void> {
    validateBucketName(bucket);
    validateObjectKey(key);
    // S3 §DeleteObject: 204 whether or not the key existed; 404 NoSuchBucket for an absent bucket.
    await this.#send(this.#ctx('deleteObject', options.signal, bucket, key), (o, sdk) => sdk.client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }), o));
  }

  async abortStaleUploads(bucket: string, startedBefore: Date, options: StoreCallOptions = {}): Promise<string[]> {
    validateBucketName(bucket);
    const ctx = this.#ctx('abortStaleUploads', options.signal, bucket);
    const aborted: string[] = [];
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const out = await this.#send(ctx, (o, sdk) => sdk.client.send(new sdk.ListMultipartUploadsCommand({ Bucket: bucket, ...markers }), o));
      for (const u of out.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined || u.Initiated === undefined) {
          throw storeError('STORE_RESPONSE_INVALID', `${ctx.prefix}: the uploads of '${bucket}' list one without a key, an id or a start`, { details: { bucket } });
        }
        if (u.Initiated.getTime() >= startedBefore.getTime()) continue;
        try {
          await this.#send(this.#ctx('abortMultipartUpload', options.signal, bucket, u.Key), (o, sdk) => sdk.client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }), o));
        } catch (err) {
          // Completed or aborted meanwhile: nothing is left of it.
          if (s3Fields((err as IntercloudError).cause).s3Code === 'NoSuchUpload') continue;
          throw err;
        }
        aborted.push(u.Key);
      }
      if (out.IsTruncated !== true) return aborted;
      if (out.NextKeyMarker === undefined) {
        throw storeError('STORE_RESPONSE_INVALID', `${ctx.prefix}: the uploads of '${bucket}' say more follow but give no marker to go on from`, { details: { bucket } });
      }
      markers = { KeyMarker: out.NextKeyMarker, ...(out.NextUploadIdMarker !== undefined ? { UploadIdMarker: out.NextUploadIdMarker } : {}) };
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    // A client that never loaded has nothing to destroy.
    (await this.#client?.catch(() => undefined))?.client.destroy();
  }

  /**
   * The SDK and this store's client, loaded and made at the first call: the SDK costs an agent
   * about 10–14 MiB of resident memory, which a cloud that never configures an object store keeps.
   */
  #sdk(): Promise<S3Sdk> {
    const options = this.#o;
    this.#client ??= loadS3Sdk().then((sdk) => {
      const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
      return { ...sdk, client: new sdk.S3Client({
        endpoint: options.endpoint,
        region: options.signingRegion,
        forcePathStyle: true,
        credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: options.maxAttempts,
        retryMode: 'standard',
        logger: SILENT,
        // Options for the SDK's own Node handler; agents of ours, so 100-continue does not open a socket per part.
        requestHandler: {
          connectionTimeout: options.connectTimeoutMs,
          socketTimeout: options.idleTimeoutMs,
          httpAgent: new StoreHttpAgent(agentOptions),
          httpsAgent: new StoreHttpsAgent({ ...agentOptions, ...(options.ca !== undefined ? { ca: options.ca } : {}) }),
          logger: SILENT,
        },
      }) };
    });
    return this.#client;
  }

  #ctx(op: string, signal: AbortSignal | undefined, bucket?: string, key?: string): S3ErrorContext {
    return { prefix: this.#prefix, op, ...(bucket !== undefined ? { bucket } : {}), ...(key !== undefined ? { key } : {}), ...(signal ? { signal } : {}) };
  }

  async #bucketExists(ctx: S3ErrorContext): Promise<boolean> {
    try {
      await this.#send({ ...ctx, op: ctx.op === 'headBucket' ? 'headBucket' : `${ctx.op} (head bucket)` }, (o, sdk) => sdk.client.send(new sdk.HeadBucketCommand({ Bucket: ctx.bucket! }), o));
      return true;
    } catch (err) {
      if ((err as IntercloudError).code === 'STORE_OBJECT_NOT_FOUND' || (err as IntercloudError).code === 'STORE_BUCKET_NOT_FOUND') return false;
      throw err;
    }
  }

  /** Runs one SDK call with the caller's signal; every failure becomes an adapter error. */
  async #send<O>(ctx: S3ErrorContext, run: (options: { abortSignal?: AbortSignal }, sdk: S3Sdk) => Promise<O>): Promise<O> {
    throwIfStoreAborted(this.#prefix, ctx.op, ctx.signal);
    if (this.#closed) throw storeError('STORE_UNAVAILABLE', `${this.#prefix}: '${ctx.op}' after close`, { retryable: false });
    let sdk: S3Sdk;
    try {
      sdk = await this.#sdk();
    } catch (err) {
      // The SDK did not load (files missing or unreadable, too many open files): said so with a
      // code; the next call loads it again.
      this.#client = undefined;
      throw storeError('STORE_UNAVAILABLE', `${this.#prefix}: '${ctx.op}': cannot load @aws-sdk/client-s3: ${err instanceof Error ? err.message : String(err)}`, { cause: err, retryable: true });
    }
    try {
      return await run(ctx.signal ? { abortSignal: ctx.signal } : {}, sdk);
    } catch (err) {
      throw mapS3Error(err, ctx);
    }
  }

  #checkEtag(prefix: string, who: string, got: string | undefined, expected: string): void {
    if (got === undefined || unquote(got) !== expected) {
      throw storeError('STORE_INTEGRITY', `${prefix}: ${who} etag '${got ?? '(none)'}', not the '${expected}' of the bytes sent`, { details: { expected, etag: got } });
    }
  }

  #toInfo(key: string, out: { ContentLength?: number; ETag?: string; LastModified?: Date; Metadata?: Record<string, string>; ContentType?: string }): ObjectInfo {
    const metadata: Record<string, string> = {};
    let sha256: string | undefined;
    for (const [k, v] of Object.entries(out.Metadata ?? {})) {
      const name = k.toLowerCase();
      if (name === SHA256_METADATA_KEY) sha256 = isSha256Hex(v) ? v : undefined;
      else if (!name.startsWith(RESERVED_METADATA_PREFIX)) metadata[name] = v;
    }
    return {
      key, sizeBytes: out.ContentLength!, etag: unquote(out.ETag!), lastModified: out.LastModified!,
      ...(sha256 !== undefined ? { sha256 } : {}), metadata, ...(out.ContentType !== undefined ? { contentType: out.ContentType } : {}),
    };
  }
}
