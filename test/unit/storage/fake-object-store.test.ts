/** The fake's fault hooks: what tests of replication and repair play with it. */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { FakeObjectStore } from '../../../adapters/storage/index.js';
import { createObjectStore } from '../../../adapters/storage/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const opts = (b: Buffer) => ({ sizeBytes: b.length, sha256: sha(b) });

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  return err === undefined ? undefined : isIntercloudError(err) ? err.code : String(err);
}

async function fake(capacityBytes = 1024): Promise<FakeObjectStore> {
  const store = createObjectStore('fake', { name: 'unit', capacityBytes, partSizeBytes: 64 }) as FakeObjectStore;
  await store.createBucket('bucket');
  return store;
}

describe('fake object store faults', () => {
  it('is full beyond its capacity (STORE_FULL, retryable) and when told so; a full put stores nothing', async () => {
    const store = await fake(100);
    const a = Buffer.alloc(60, 1);
    await store.putObject('bucket', 'a', a, opts(a));
    const err = await store.putObject('bucket', 'b', a, opts(a)).then(() => undefined, (e: unknown) => e);
    expect(isIntercloudError(err) ? [err.code, err.retryable] : err).toEqual(['STORE_FULL', true]);
    expect(await store.headObject('bucket', 'b')).toBeUndefined();
    const small = Buffer.alloc(10, 2);
    await store.putObject('bucket', 'a', small, opts(small));
    store.faults.full = true;
    expect(await codeOf(store.putObject('bucket', 'c', small, opts(small)))).toBe('STORE_FULL');
    expect(store.usedBytes()).toBe(10);
  });

  it('is unavailable for every call when told so, and honours a signal while slow', async () => {
    const store = await fake();
    store.faults.unavailable = true;
    expect(await codeOf(store.headBucket('bucket'))).toBe('STORE_UNAVAILABLE');
    expect(await codeOf(store.listObjects('bucket'))).toBe('STORE_UNAVAILABLE');
    store.faults.unavailable = false;
    store.faults.latencyMs = 10_000;
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    const t0 = Date.now();
    expect(await codeOf(store.headBucket('bucket', { signal: ac.signal }))).toBe('STORE_ABORTED');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('loses and corrupts objects behind the agent\'s back: listing and head do not show rot, reading does', async () => {
    const store = await fake();
    const data = Buffer.from('precious bytes');
    const put = await store.putObject('bucket', 'k', Readable.from([data]), opts(data));
    store.corruptObject('bucket', 'k', 3);
    expect((await store.headObject('bucket', 'k'))!.etag).toBe(put.etag);
    const chunks: Buffer[] = [];
    const read = await store.getObject('bucket', 'k');
    const err = await (async () => { for await (const c of read.body) chunks.push(c as Buffer); })().then(() => undefined, (e: unknown) => e);
    expect(isIntercloudError(err) ? err.code : err).toBe('STORE_INTEGRITY');
    expect(store.loseObject('bucket', 'k')).toBe(true);
    expect(await store.headObject('bucket', 'k')).toBeUndefined();
  });
});
