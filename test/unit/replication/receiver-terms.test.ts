/**
 * B's receiver holds A to the terms B accepted: nothing stored past the end, nothing beyond the
 * reserved bytes or objects (counted from B's bucket, kept by B's own writes and deletes, taken
 * synchronously so writers of one batch never share the last room).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeObjectStore } from '../../../adapters/storage/fake/fake-object-store.js';
import { ReplicaReceiver, type BatchObject, type ObjectReceipt } from '../../../agent/replication/index.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
let dir: string;
let store: FakeObjectStore;
let n = 0;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'repl-terms-'));
  store = new FakeObjectStore({ name: 'b', region: 'eu-west', partSizeBytes: 8 * 1024 * 1024, capacityBytes: 1 << 30 });
  await store.createBucket('dst');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Stages `bodies` (key → bytes) end to end in one file, as a transfer leaves them at B. */
function stage(bodies: Array<[string, Buffer]>): { path: string; objects: BatchObject[] } {
  const path = join(dir, `${n++}.batch`);
  writeFileSync(path, Buffer.concat(bodies.map(([, b]) => b)));
  let offset = 0;
  const objects = bodies.map(([key, body]) => {
    const o = { key, etag: '"e"', size: body.length, sha256: sha(body), offset };
    offset += body.length;
    return o;
  });
  return { path, objects };
}

const codes = (rs: ObjectReceipt[]): Array<string | true> => rs.map((r) => (r.ok ? true : r.code));

describe('ReplicaReceiver terms', () => {
  it('past the end refuses every object, not retryable, and stores nothing', async () => {
    let now = 1_000;
    const rx = new ReplicaReceiver(store, 'dst', 8, { ends: new Date(2_000).toISOString(), now: () => now });
    const a = stage([['a', randomBytes(10)]]);
    expect(codes(await rx.storeBatch(a.objects, a.path))).toEqual([true]);
    now = 2_000;
    const b = stage([['b', randomBytes(10)], ['c', randomBytes(10)]]);
    const rs = await rx.storeBatch(b.objects, b.path);
    expect(rs).toMatchObject([{ ok: false, code: 'REPL_SUBCONTRACT_ENDED', retryable: false }, { ok: false, code: 'REPL_SUBCONTRACT_ENDED', retryable: false }]);
    expect((await store.listObjects('dst')).objects.map((o) => o.key)).toEqual(['a']);
  });

  it('counts what the bucket held before (bytes and keys), refuses beyond the bytes even with 8 writers at once, and an overwrite counts only its growth', async () => {
    await store.putObject('dst', 'old', Buffer.alloc(400), { sizeBytes: 400, sha256: sha(Buffer.alloc(400)) });
    // Keys count with the bytes: 'old' takes 403, each 100-byte `kN` 102.
    const rx = new ReplicaReceiver(store, 'dst', 8, { capacityBytes: 403 + 6 * 102 });
    // 403 held: room for 6 of these objects, not 8
    const batch = stage(Array.from({ length: 8 }, (_, i) => [`k${i}`, randomBytes(100)] as [string, Buffer]));
    const rs = await rx.storeBatch(batch.objects, batch.path);
    expect(rs.filter((r) => r.ok)).toHaveLength(6);
    expect(rs.filter((r) => !r.ok).map((r) => !r.ok && [r.code, r.retryable])).toEqual([['REPL_OVER_RESERVATION', false], ['REPL_OVER_RESERVATION', false]]);
    expect((await store.listObjects('dst')).objects.reduce((s, o) => s + o.sizeBytes, 0)).toBe(1000);
    // the same size again fits; a larger one does not
    const same = stage([['old', randomBytes(400)]]);
    expect(codes(await rx.storeBatch(same.objects, same.path))).toEqual([true]);
    const grow = stage([['old', randomBytes(401)]]);
    expect(codes(await rx.storeBatch(grow.objects, grow.path))).toEqual(['REPL_OVER_RESERVATION']);
  });

  it('refuses beyond the objects reserved; a delete at B frees its room; a failed write gives its room back', async () => {
    const rx = new ReplicaReceiver(store, 'dst', 8, { maxObjects: 2 });
    const two = stage([['a', randomBytes(10)], ['b', randomBytes(10)]]);
    expect(codes(await rx.storeBatch(two.objects, two.path))).toEqual([true, true]);
    const third = stage([['c', randomBytes(10)]]);
    expect(codes(await rx.storeBatch(third.objects, third.path))).toEqual(['REPL_OVER_RESERVATION']);
    expect(await rx.deleteKeys(['a'])).toEqual(['a']);
    // a write that fails (the sha-256 announced is not the bytes') does not keep the room it took
    const bad = stage([['d', randomBytes(10)]]);
    const wrong = [{ ...bad.objects[0]!, sha256: sha(Buffer.from('other')) }];
    expect(codes(await rx.storeBatch(wrong, bad.path))).toEqual(['REPL_VERIFY_FAILED']);
    expect(codes(await rx.storeBatch(third.objects, third.path))).toEqual([true]);
    expect((await store.listObjects('dst')).objects.map((o) => o.key)).toEqual(['b', 'c']);
  });
});

describe('ReplicaReceiver.admitBatch: a batch refused before B stages a byte of it', () => {
  const obj = (key: string, size: number, offset = 0): BatchObject => ({ key, etag: '"e"', size, sha256: '0'.repeat(64), offset });

  it('refuses a batch declaring more bytes than the whole reservation, whatever the bucket holds', () => {
    const rx = new ReplicaReceiver(store, 'dst', 8, { capacityBytes: 1000 });
    expect(() => rx.admitBatch([obj('a', 600), obj('b', 401, 600)])).toThrow(expect.objectContaining({ code: 'REPL_OVER_RESERVATION', details: { capacityBytes: 1000 } }));
    expect(() => rx.admitBatch([obj('a', 2 ** 50)])).toThrow(expect.objectContaining({ code: 'REPL_OVER_RESERVATION' }));
    expect(() => rx.admitBatch([obj('a', 600), obj('b', 400, 600)])).not.toThrow();
  });

  it('refuses a batch naming a key twice (what B stages would be counted once)', () => {
    const rx = new ReplicaReceiver(store, 'dst', 8, { capacityBytes: 1000 });
    expect(() => rx.admitBatch([obj('a', 10), obj('b', 10, 10), obj('a', 10, 20)])).toThrow(expect.objectContaining({ code: 'REPL_BAD_MESSAGE' }));
  });

  it('admits batches being received together up to the reservation: the one beyond is busy (retryable) until another is released', () => {
    const rx = new ReplicaReceiver(store, 'dst', 8, { capacityBytes: 1000 });
    const first = rx.admitBatch([obj('a', 600)]);
    expect(() => rx.admitBatch([obj('b', 401)])).toThrow(expect.objectContaining({ code: 'REPL_PEER_BUSY', retryable: true, details: { capacityBytes: 1000, admittedBytes: 600 } }));
    const second = rx.admitBatch([obj('b', 400)]);
    first();
    first(); // a second release changes nothing
    expect(() => rx.admitBatch([obj('c', 601)])).toThrow(expect.objectContaining({ code: 'REPL_PEER_BUSY' }));
    const third = rx.admitBatch([obj('c', 600)]);
    second();
    third();
    expect(() => rx.admitBatch([obj('d', 1000)])).not.toThrow();
  });

  it('leaves the count of objects to storeBatch, object by object: a batch over it is admitted', () => {
    const rx = new ReplicaReceiver(store, 'dst', 8, { maxObjects: 1 });
    expect(() => rx.admitBatch([obj('a', 10), obj('b', 10, 10)])).not.toThrow();
  });
});
