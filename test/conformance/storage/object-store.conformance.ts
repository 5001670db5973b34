/**
 * The object-store conformance suite: the contract of `adapters/storage/contract.ts`, run against
 * every adapter (the in-memory fake in the unit project, the `s3` adapter on each cloud's real
 * Swift in the integration project). Each backend's test file calls {@link objectStoreConformance}
 * with a harness; what the harness checks it asks of the store directly, not through the adapter.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore, PutObjectOptions } from '../../../adapters/storage/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

/** What a backend's test file provides. */
export interface StoreHarness {
  /** Backend name in test titles. */
  readonly name: string;
  /** Makes the adapter under test (services are up). */
  create(): Promise<ObjectStore>;
  /** An adapter of the same kind whose store cannot be reached: what it refuses before sending shows in its code. */
  createUnreachable(): Promise<ObjectStore>;
  /** The adapter's part size: bodies up to it go up in one PUT. */
  readonly partSizeBytes: number;
  /** Multipart uploads (or puts) still pending in `bucket`, asked of the store itself (S3 ListMultipartUploads). */
  pendingUploads(bucket: string): Promise<number>;
  /** Starts an upload of `key` in `bucket` that is never completed, as a put killed with its process leaves one. */
  leaveUpload(bucket: string, key: string): Promise<void>;
  /** Whether `key` is in `bucket`, asked of the store itself. */
  rawExists(bucket: string, key: string): Promise<boolean>;
  /** Flips stored bytes behind the adapter's back, keeping the object's ETag and metadata (when the backend can). */
  corrupt?(bucket: string, key: string): Promise<void>;
  /** Leaves `bucket` without room for even a small object (a quota, a full disk); resolves with the undo. */
  fill(bucket: string): Promise<() => Promise<void>>;
}

const MiB = 1024 * 1024;

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function md5(b: Uint8Array): Buffer {
  return createHash('md5').update(b).digest();
}

/** The ETag an S3 store answers, computed here independently of the adapters. */
function s3Etag(data: Buffer, partSize: number): string {
  if (data.length <= partSize) return md5(data).toString('hex');
  const md5s: Buffer[] = [];
  for (let at = 0; at < data.length; at += partSize) md5s.push(md5(data.subarray(at, at + partSize)));
  return `${md5(Buffer.concat(md5s)).toString('hex')}-${md5s.length}`;
}

/** A stream of `data` in chunks of an odd size, so chunk and part boundaries do not line up. */
function chunked(data: Buffer, chunk = 64 * 1024 + 7): Readable {
  return Readable.from((function* () {
    for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, at + chunk);
  })(), { objectMode: false });
}

/** A stream that produces `total` bytes slowly and calls `onProduced` with the count so far. */
function slowStream(total: number, onProduced: (n: number) => void): Readable {
  return Readable.from((async function* () {
    let n = 0;
    while (n < total) {
      const c = Math.min(MiB, total - n);
      await sleep(5);
      n += c;
      onProduced(n);
      yield randomBytes(c);
    }
  })(), { objectMode: false });
}

async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (err === undefined) return undefined;
  return isIntercloudError(err) ? err.code : `not an adapter error: ${String(err)}`;
}

function putOptions(data: Buffer, over: Partial<PutObjectOptions> = {}): PutObjectOptions {
  return { sizeBytes: data.length, sha256: sha256(data), ...over };
}

/** Registers the suite for one backend. */
export function objectStoreConformance(h: StoreHarness): void {
  describe(`object-store conformance: ${h.name}`, () => {
    let store: ObjectStore;
    const run = randomBytes(3).toString('hex');
    const bucket = `ct-${run}`;
    const P = h.partSizeBytes;

    beforeAll(async () => {
      store = await h.create();
      await store.createBucket(bucket);
    });
    afterAll(async () => {
      if (store === undefined) return;
      for (const b of [bucket, `ct-${run}-b2`]) {
        if (!(await store.headBucket(b))) continue;
        for (;;) {
          const page = await store.listObjects(b);
          for (const o of page.objects) await store.deleteObject(b, o.key);
          if (page.nextStartAfter === undefined) break;
        }
        await store.deleteBucket(b);
      }
      await store.close();
    });

    /** Puts `data`, reads it back, and checks bytes, ETag, size and SHA-256 everywhere. */
    async function roundTrip(key: string, data: Buffer, from: 'stream' | 'buffer'): Promise<void> {
      const body = from === 'stream' ? chunked(data) : new Uint8Array(data.buffer, data.byteOffset, data.length);
      const put = await store.putObject(bucket, key, body, putOptions(data));
      const etag = s3Etag(data, P);
      expect(put).toMatchObject({ key, sizeBytes: data.length, sha256: sha256(data), etag });
      expect(await store.headObject(bucket, key)).toMatchObject({ key, sizeBytes: data.length, sha256: sha256(data), etag });
      const read = await store.getObject(bucket, key);
      expect(read.info).toMatchObject({ sizeBytes: data.length, etag });
      const back = await drain(read.body);
      expect(back.length).toBe(data.length);
      expect(sha256(back)).toBe(sha256(data));
      expect((await store.listObjects(bucket, { prefix: key })).objects.find((o) => o.key === key)).toMatchObject({ sizeBytes: data.length, etag });
    }

    it('creates a bucket twice, sees it, and deletes absent buckets and objects without complaint', async () => {
      const b2 = `ct-${run}-b2`;
      expect(await store.headBucket(b2)).toBe(false);
      await store.createBucket(b2);
      await store.createBucket(b2);
      expect(await store.headBucket(b2)).toBe(true);
      await store.deleteObject(b2, 'never-there');
      await store.deleteObject(b2, 'never-there');
      await store.deleteBucket(b2);
      await store.deleteBucket(b2);
      expect(await store.headBucket(b2)).toBe(false);
    });

    it('round-trips 0, 1, part-size and part-size+1 bytes from streams and buffers, byte-identical', async () => {
      for (const [size, from] of [[0, 'stream'], [0, 'buffer'], [1, 'stream'], [1, 'buffer'], [P, 'stream'], [P + 1, 'stream'], [P + 1, 'buffer']] as const) {
        await roundTrip(`sizes/${size}-${from}`, randomBytes(size), from);
      }
    });

    it('round-trips a ~40 MiB multipart object from a stream, with the md5-of-md5s etag', async () => {
      const data = randomBytes(40 * MiB + 12_345);
      await roundTrip('big/forty', data, 'stream');
      const info = await store.headObject(bucket, 'big/forty');
      expect(info!.etag).toMatch(new RegExp(`^[0-9a-f]{32}-${Math.ceil(data.length / P)}$`));
    }, 240_000);

    it('keeps metadata and content type, hides the project\'s own keys, and lists without metadata', async () => {
      const data = Buffer.from('metadata round trip');
      const metadata = { 'origin-cloud': 'cloud-a', 'x-trace': 'Trace 42/ok' };
      const put = await store.putObject(bucket, 'meta/one', data, putOptions(data, { metadata, contentType: 'text/plain' }));
      expect(put.metadata).toEqual(metadata);
      expect(put.contentType).toBe('text/plain');
      const head = await store.headObject(bucket, 'meta/one');
      expect(head!.metadata).toEqual(metadata);
      expect(head!.contentType).toBe('text/plain');
      expect(Object.keys(head!.metadata).some((k) => k.startsWith('intercloud-'))).toBe(false);
      const read = await store.getObject(bucket, 'meta/one');
      expect(read.info.metadata).toEqual(metadata);
      expect((await drain(read.body)).toString()).toBe('metadata round trip');
      const listed = (await store.listObjects(bucket, { prefix: 'meta/' })).objects;
      expect(listed.map((o) => Object.keys(o).sort())).toEqual([['etag', 'key', 'lastModified', 'sizeBytes']]);
    });

    it('lists in UTF-8 byte order, page by page with startAfter and maxKeys, and by prefix', async () => {
      // JavaScript's UTF-16 order puts '😀' (D83D…) before 'ｚ' (FF5A); UTF-8 order (EF BD… < F0 9F…) does not.
      const names = ['a', 'b', 'z', 'é', 'ｚ', '😀', 'a b', 'x/y', 'A', '~'];
      for (const n of names) await store.putObject(bucket, `list/${n}`, Buffer.from(n), putOptions(Buffer.from(n)));
      await store.putObject(bucket, 'listless', Buffer.from('x'), putOptions(Buffer.from('x')));
      const expected = names.map((n) => `list/${n}`).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const seen: string[] = [];
      let startAfter: string | undefined;
      let pages = 0;
      for (;;) {
        const page = await store.listObjects(bucket, { prefix: 'list/', maxKeys: 3, ...(startAfter !== undefined ? { startAfter } : {}) });
        expect(page.objects.length).toBeLessThanOrEqual(3);
        seen.push(...page.objects.map((o) => o.key));
        pages += 1;
        if (page.nextStartAfter === undefined) break;
        expect(page.nextStartAfter).toBe(page.objects[page.objects.length - 1]!.key);
        startAfter = page.nextStartAfter;
      }
      expect(seen).toEqual(expected);
      expect(pages).toBe(Math.ceil(names.length / 3));
      expect(expected.indexOf('list/ｚ')).toBeLessThan(expected.indexOf('list/😀'));
      expect((await store.listObjects(bucket, { prefix: 'list/', startAfter: 'list/z' })).objects.map((o) => o.key)).toEqual(['list/~', 'list/é', 'list/ｚ', 'list/😀']);
      expect((await store.listObjects(bucket, { prefix: 'list/x/' })).objects.map((o) => o.key)).toEqual(['list/x/y']);
      expect((await store.listObjects(bucket, { prefix: 'nothing-here/' }))).toEqual({ objects: [] });
    });

    it('takes the same bytes twice (same etag) and replaces an object with new bytes', async () => {
      const a = Buffer.from('first version');
      const b = Buffer.from('second version, longer');
      const one = await store.putObject(bucket, 'idem/k', a, putOptions(a));
      const two = await store.putObject(bucket, 'idem/k', chunked(a, 3), putOptions(a));
      expect(two.etag).toBe(one.etag);
      const three = await store.putObject(bucket, 'idem/k', b, putOptions(b));
      expect(three.etag).not.toBe(one.etag);
      expect((await drain((await store.getObject(bucket, 'idem/k')).body)).toString()).toBe('second version, longer');
    });

    it('says not found as the contract does: undefined head, STORE_OBJECT_NOT_FOUND, STORE_BUCKET_NOT_FOUND', async () => {
      const absent = `ct-${run}-absent`;
      expect(await store.headObject(bucket, 'nope/none')).toBeUndefined();
      expect(await codeOf(store.getObject(bucket, 'nope/none'))).toBe('STORE_OBJECT_NOT_FOUND');
      expect(await codeOf(store.headObject(absent, 'k'))).toBe('STORE_BUCKET_NOT_FOUND');
      expect(await codeOf(store.getObject(absent, 'k'))).toBe('STORE_BUCKET_NOT_FOUND');
      expect(await codeOf(store.listObjects(absent))).toBe('STORE_BUCKET_NOT_FOUND');
      expect(await codeOf(store.deleteObject(absent, 'k'))).toBe('STORE_BUCKET_NOT_FOUND');
      expect(await codeOf(store.putObject(absent, 'k', Buffer.from('x'), putOptions(Buffer.from('x'))))).toBe('STORE_BUCKET_NOT_FOUND');
      expect(await store.headBucket(absent)).toBe(false);
      await store.deleteBucket(absent);
    });

    it('refuses to delete a bucket that holds objects', async () => {
      const b2 = `ct-${run}-b2`;
      await store.createBucket(b2);
      await store.putObject(b2, 'k', Buffer.from('x'), putOptions(Buffer.from('x')));
      expect(await codeOf(store.deleteBucket(b2))).toBe('STORE_BUCKET_NOT_EMPTY');
      await store.deleteObject(b2, 'k');
      await store.deleteBucket(b2);
      expect(await store.headBucket(b2)).toBe(false);
    });

    it('refuses a body whose sha256 is not the declared one and stores nothing (single part)', async () => {
      const data = randomBytes(1000);
      const wrong = sha256(Buffer.from('something else'));
      expect(await codeOf(store.putObject(bucket, 'bad/sha-small', chunked(data), putOptions(data, { sha256: wrong })))).toBe('STORE_INTEGRITY');
      expect(await codeOf(store.putObject(bucket, 'bad/sha-small', data, putOptions(data, { sha256: wrong })))).toBe('STORE_INTEGRITY');
      expect(await store.headObject(bucket, 'bad/sha-small')).toBeUndefined();
      expect(await h.rawExists(bucket, 'bad/sha-small')).toBe(false);
    });

    it('refuses a multipart body whose sha256 is not the declared one: no object, no pending upload', async () => {
      const data = randomBytes(2 * P + 5);
      const declared = sha256(randomBytes(2 * P + 5));
      expect(await codeOf(store.putObject(bucket, 'bad/sha-big', chunked(data), putOptions(data, { sha256: declared })))).toBe('STORE_INTEGRITY');
      expect(await store.headObject(bucket, 'bad/sha-big')).toBeUndefined();
      expect(await h.rawExists(bucket, 'bad/sha-big')).toBe(false);
      expect(await h.pendingUploads(bucket)).toBe(0);
    }, 120_000);

    it('refuses short and long bodies (single part and multipart) and stores nothing', async () => {
      const small = randomBytes(100);
      expect(await codeOf(store.putObject(bucket, 'bad/short', chunked(small.subarray(0, 60)), putOptions(small)))).toBe('STORE_STREAM_SHORT');
      expect(await codeOf(store.putObject(bucket, 'bad/short', small.subarray(0, 60), putOptions(small)))).toBe('STORE_STREAM_SHORT');
      expect(await codeOf(store.putObject(bucket, 'bad/long', chunked(Buffer.concat([small, small])), putOptions(small)))).toBe('STORE_STREAM_LONG');
      expect(await codeOf(store.putObject(bucket, 'bad/long', Buffer.concat([small, Buffer.from('!')]), putOptions(small)))).toBe('STORE_STREAM_LONG');
      const big = randomBytes(2 * P + 1);
      expect(await codeOf(store.putObject(bucket, 'bad/short-big', chunked(big.subarray(0, P + 5)), putOptions(big)))).toBe('STORE_STREAM_SHORT');
      const declared = big.subarray(0, P + 10);
      expect(await codeOf(store.putObject(bucket, 'bad/long-big', chunked(big), putOptions(declared)))).toBe('STORE_STREAM_LONG');
      for (const k of ['bad/short', 'bad/long', 'bad/short-big', 'bad/long-big']) {
        expect(await store.headObject(bucket, k), k).toBeUndefined();
        expect(await h.rawExists(bucket, k), k).toBe(false);
      }
      expect(await h.pendingUploads(bucket)).toBe(0);
    }, 120_000);

    it('aborted mid-upload: rejects with STORE_ABORTED and leaves no object and no pending upload', async () => {
      for (const [key, total, abortAt] of [['abort/big', 40 * MiB, 2 * P + MiB], ['abort/small', Math.max(1, P - 1), Math.floor(P / 2)]] as const) {
        const ac = new AbortController();
        const body = slowStream(total, (n) => { if (n >= abortAt) ac.abort(new Error('test cancels the upload')); });
        const declared = { sizeBytes: total, sha256: '0'.repeat(64), signal: ac.signal };
        const t0 = Date.now();
        expect(await codeOf(store.putObject(bucket, key, body, declared)), key).toBe('STORE_ABORTED');
        expect(Date.now() - t0, 'rejects soon after the abort, not at the end of the body').toBeLessThan(30_000);
        expect(body.destroyed).toBe(true);
        expect(await store.headObject(bucket, key), key).toBeUndefined();
        expect(await h.rawExists(bucket, key), key).toBe(false);
      }
      expect(await h.pendingUploads(bucket)).toBe(0);
      const ac = new AbortController();
      ac.abort();
      expect(await codeOf(store.headObject(bucket, 'abort/x', { signal: ac.signal }))).toBe('STORE_ABORTED');
      expect(await codeOf(store.listObjects(bucket, { signal: ac.signal }))).toBe('STORE_ABORTED');
    }, 120_000);

    it('aborts the uploads a killed put left, only those started before the time given, and no object', async () => {
      const b2 = `ct-${run}-b2`;
      await store.createBucket(b2);
      await h.leaveUpload(b2, 'left/one');
      await h.leaveUpload(b2, 'left/two');
      expect(await h.pendingUploads(b2)).toBe(2);
      // none started before the epoch: all are kept
      expect(await store.abortStaleUploads(b2, new Date(0))).toEqual([]);
      expect(await h.pendingUploads(b2)).toBe(2);
      expect((await store.abortStaleUploads(b2, new Date(Date.now() + 60_000))).sort()).toEqual(['left/one', 'left/two']);
      expect(await h.pendingUploads(b2)).toBe(0);
      expect(await store.abortStaleUploads(b2, new Date(Date.now() + 60_000))).toEqual([]);
      expect(await h.rawExists(b2, 'left/one')).toBe(false);
      expect(await codeOf(store.abortStaleUploads(`ct-${run}-absent`, new Date()))).toBe('STORE_BUCKET_NOT_FOUND');
    });

    it('aborting a read ends its body with STORE_ABORTED', async () => {
      const data = randomBytes(3 * MiB);
      await store.putObject(bucket, 'abort/read', data, putOptions(data));
      const ac = new AbortController();
      const read = await store.getObject(bucket, 'abort/read', { signal: ac.signal });
      ac.abort(new Error('test cancels the read'));
      expect(await codeOf(drain(read.body))).toBe('STORE_ABORTED');
    });

    it('a store without room rejects a put with STORE_FULL (retryable) and stores nothing', async () => {
      const data = randomBytes(1000);
      const undo = await h.fill(bucket);
      try {
        const err = await store.putObject(bucket, 'full/k', data, putOptions(data)).then(() => undefined, (e: unknown) => e);
        expect(isIntercloudError(err) ? [err.code, err.retryable] : err).toEqual(['STORE_FULL', true]);
      } finally {
        await undo();
      }
      expect(await store.headObject(bucket, 'full/k')).toBeUndefined();
      await store.putObject(bucket, 'full/k', data, putOptions(data));
    });

    it('reads with ifMatch: the current etag works, a stale one is STORE_PRECONDITION_FAILED', async () => {
      const a = Buffer.from('version a');
      const b = Buffer.from('version b');
      const old = await store.putObject(bucket, 'cond/k', a, putOptions(a));
      const now = await store.putObject(bucket, 'cond/k', b, putOptions(b));
      expect(await codeOf(store.getObject(bucket, 'cond/k', { ifMatch: old.etag }))).toBe('STORE_PRECONDITION_FAILED');
      const read = await store.getObject(bucket, 'cond/k', { ifMatch: now.etag });
      expect((await drain(read.body)).toString()).toBe('version b');
      const big = randomBytes(P + 1);
      const mp = await store.putObject(bucket, 'cond/big', big, putOptions(big));
      expect(sha256(await drain((await store.getObject(bucket, 'cond/big', { ifMatch: mp.etag })).body))).toBe(sha256(big));
      expect(await codeOf(store.getObject(bucket, 'cond/big', { ifMatch: `${'0'.repeat(32)}-2` }))).toBe('STORE_PRECONDITION_FAILED');
    });

    it('refuses invalid names and arguments before sending anything', async () => {
      const down = await h.createUnreachable();
      const one = Buffer.from('x');
      try {
        expect(await codeOf(down.createBucket('Bad_Bucket'))).toBe('STORE_NAME_INVALID');
        expect(await codeOf(down.headBucket('ab'))).toBe('STORE_NAME_INVALID');
        expect(await codeOf(down.deleteBucket('192.168.0.1'))).toBe('STORE_NAME_INVALID');
        expect(await codeOf(down.putObject(bucket, '../escape', one, putOptions(one)))).toBe('STORE_NAME_INVALID');
        expect(await codeOf(down.getObject(bucket, 'a/./b'))).toBe('STORE_NAME_INVALID');
        expect(await codeOf(down.headObject(bucket, ''))).toBe('STORE_NAME_INVALID');
        expect(await codeOf(down.deleteObject(bucket, 'nul\u0000'))).toBe('STORE_NAME_INVALID');
        expect(await codeOf(down.listObjects('UPPER'))).toBe('STORE_NAME_INVALID');
        expect(await codeOf(down.putObject(bucket, 'k', one, { sizeBytes: 1, sha256: 'ABC' }))).toBe('STORE_ARGUMENT_INVALID');
        expect(await codeOf(down.putObject(bucket, 'k', one, { sizeBytes: -1, sha256: sha256(one) }))).toBe('STORE_ARGUMENT_INVALID');
        expect(await codeOf(down.putObject(bucket, 'k', one, putOptions(one, { metadata: { 'intercloud-sha256': 'x' } })))).toBe('STORE_ARGUMENT_INVALID');
        expect(await codeOf(down.putObject(bucket, 'k', one, putOptions(one, { metadata: { Upper: 'x' } })))).toBe('STORE_ARGUMENT_INVALID');
        expect(await codeOf(down.putObject(bucket, 'k', one, putOptions(one, { metadata: { k: ' padded ' } })))).toBe('STORE_ARGUMENT_INVALID');
        expect(await codeOf(down.listObjects(bucket, { maxKeys: 0 }))).toBe('STORE_ARGUMENT_INVALID');
        expect(await codeOf(down.listObjects(bucket, { maxKeys: 1001 }))).toBe('STORE_ARGUMENT_INVALID');
        // And a valid call does reach for the store, which is not there.
        const err = await down.headBucket(bucket).then(() => undefined, (e: unknown) => e);
        expect(isIntercloudError(err) ? [err.code, err.retryable] : err).toEqual(['STORE_UNAVAILABLE', true]);
      } finally {
        await down.close();
      }
    });

    if (h.corrupt !== undefined) it('a read of bytes corrupted behind the store\'s back ends with STORE_INTEGRITY', async () => {
      const data = randomBytes(4096);
      await store.putObject(bucket, 'rot/k', data, putOptions(data));
      await h.corrupt!(bucket, 'rot/k');
      const read = await store.getObject(bucket, 'rot/k');
      expect(await codeOf(drain(read.body))).toBe('STORE_INTEGRITY');
    });
  });
}
