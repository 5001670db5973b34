/**
 * A minimal in-memory {@link ObjectStore} for the replication tests (branch storage-adapter's fake
 * had not landed when these were written). It keeps the contract's parts replication relies on:
 * size and SHA-256 checked on put, ETag = MD5 of the content, If-Match on get, not-found
 * semantics, listings in UTF-8 byte order with startAfter, reads checked against size, SHA-256 and MD5. Tests can reach behind it (`raw`) to
 * delete or corrupt objects, and inject failures (`failNext`).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { storeError, type ObjectInfo, type ObjectStore, type StoreErrorCode } from '../../../adapters/storage/index.js';
import { verifiedBody } from '../../../adapters/storage/integrity.js';

interface Stored { bytes: Buffer; etag: string; sha256?: string; lastModified: Date; metadata: Record<string, string> }

export class MemoryStore implements ObjectStore {
  readonly kind = 'memory';
  readonly buckets = new Map<string, Map<string, Stored>>();
  /** Calls by method name. */
  readonly calls: Record<string, number> = {};
  /** Failures to inject: method → codes thrown by the next calls. */
  readonly failNext: Record<string, StoreErrorCode[]> = {};
  /** Called during a getObject before it answers (to change an object while it is copied). */
  onGet?: (bucket: string, key: string) => void;

  constructor(readonly region = 'eu-west') {}

  raw(bucket: string): Map<string, Stored> {
    const b = this.buckets.get(bucket);
    if (!b) throw new Error(`no bucket ${bucket}`);
    return b;
  }

  /** Writes behind the agent's back (no sha256 metadata unless given). */
  rawPut(bucket: string, key: string, bytes: Buffer, sha256?: string): void {
    this.raw(bucket).set(key, { bytes, etag: md5(bytes), ...(sha256 ? { sha256 } : {}), lastModified: new Date(), metadata: {} });
  }

  #enter(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    const code = this.failNext[method]?.shift();
    if (code) throw storeError(code, `memory: injected '${code}' on '${method}'`);
  }

  #bucket(bucket: string): Map<string, Stored> {
    const b = this.buckets.get(bucket);
    if (!b) throw storeError('STORE_BUCKET_NOT_FOUND', `memory: no bucket '${bucket}'`);
    return b;
  }

  async createBucket(bucket: string): Promise<void> {
    this.#enter('createBucket');
    if (!this.buckets.has(bucket)) this.buckets.set(bucket, new Map());
  }

  async headBucket(bucket: string): Promise<boolean> {
    return this.buckets.has(bucket);
  }

  async deleteBucket(bucket: string): Promise<void> {
    this.buckets.delete(bucket);
  }

  async putObject(bucket: string, key: string, body: Readable | Uint8Array, options: { sizeBytes: number; sha256: string; metadata?: Readonly<Record<string, string>>; signal?: AbortSignal }): Promise<ObjectInfo> {
    this.#enter('putObject');
    const b = this.#bucket(bucket);
    let bytes: Buffer;
    if (body instanceof Uint8Array) bytes = Buffer.from(body);
    else {
      const parts: Buffer[] = [];
      for await (const p of body) parts.push(p as Buffer);
      bytes = Buffer.concat(parts);
    }
    if (bytes.length < options.sizeBytes) throw storeError('STORE_STREAM_SHORT', `memory: '${key}' body is short`);
    if (bytes.length > options.sizeBytes) throw storeError('STORE_STREAM_LONG', `memory: '${key}' body is long`);
    if (createHash('sha256').update(bytes).digest('hex') !== options.sha256) throw storeError('STORE_INTEGRITY', `memory: '${key}' sha-256 mismatch`);
    const s: Stored = { bytes, etag: md5(bytes), sha256: options.sha256, lastModified: new Date(), metadata: { ...(options.metadata ?? {}) } };
    b.set(key, s);
    return info(key, s);
  }

  async getObject(bucket: string, key: string, options: { ifMatch?: string } = {}): Promise<{ info: ObjectInfo; body: Readable }> {
    this.#enter('getObject');
    this.onGet?.(bucket, key);
    const s = this.#bucket(bucket).get(key);
    if (!s) throw storeError('STORE_OBJECT_NOT_FOUND', `memory: no object '${key}'`);
    if (options.ifMatch !== undefined && options.ifMatch !== s.etag) throw storeError('STORE_PRECONDITION_FAILED', `memory: '${key}' changed`);
    // Checked as it is delivered, as the contract's adapters do (the replicator relies on it).
    const i = info(key, s);
    return { info: i, body: verifiedBody(Readable.from([s.bytes]), { prefix: 'memory', sizeBytes: i.sizeBytes, etag: i.etag, ...(i.sha256 ? { sha256: i.sha256 } : {}), mapError: (e) => storeError('STORE_UNAVAILABLE', String(e)) }) };
  }

  async headObject(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    this.#enter('headObject');
    const s = this.#bucket(bucket).get(key);
    return s ? info(key, s) : undefined;
  }

  async listObjects(bucket: string, options: { prefix?: string; startAfter?: string; maxKeys?: number } = {}) {
    this.#enter('listObjects');
    const keys = [...this.#bucket(bucket).keys()]
      .filter((k) => k.startsWith(options.prefix ?? ''))
      .filter((k) => options.startAfter === undefined || Buffer.compare(Buffer.from(k), Buffer.from(options.startAfter)) > 0)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const max = options.maxKeys ?? 1000;
    const page = keys.slice(0, max);
    const objects = page.map((k) => {
      const s = this.raw(bucket).get(k)!;
      return { key: k, sizeBytes: s.bytes.length, etag: s.etag, lastModified: s.lastModified };
    });
    return keys.length > max ? { objects, nextStartAfter: page[page.length - 1]! } : { objects };
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    this.#enter('deleteObject');
    this.#bucket(bucket).delete(key);
  }

  /** Takes whole bodies in one step: no upload is ever left behind. */
  async abortStaleUploads(bucket: string): Promise<string[]> {
    this.#enter('abortStaleUploads');
    this.#bucket(bucket);
    return [];
  }

  async close(): Promise<void> {}
}

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

function info(key: string, s: Stored): ObjectInfo {
  return { key, sizeBytes: s.bytes.length, etag: s.etag, lastModified: s.lastModified, metadata: s.metadata, ...(s.sha256 ? { sha256: s.sha256 } : {}) };
}
