/**
 * A certified peer playing against the other side of a subcontract (issue 14; found by a review
 * playing a hostile cloud): B's receiver over an in-memory store, and the messages' codec.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_REPL_TEXT, ReplicaReceiver, STAGING_HEADROOM_BYTES, checkStagingRoom, decodeReplMessage, encodeReplMessage, type BatchObject,
} from '../../../agent/replication/index.js';
import { MemoryStore } from './memory-store.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const REQ = '00000000-0000-4000-8000-000000000000';
let dir: string;
let store: MemoryStore;
let n = 0;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hostile-'));
  store = new MemoryStore();
  await store.createBucket('dst');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function stage(key: string, body: Buffer): { path: string; objects: BatchObject[] } {
  const path = join(dir, `${n++}.batch`);
  writeFileSync(path, body);
  return { path, objects: [{ key, etag: '"e"', size: body.length, sha256: sha(body), offset: 0 }] };
}

/** Holds each put of the store until `release()`; `started` resolves when one is held. */
function slowPuts(s: MemoryStore): { started: () => Promise<void>; release: () => void } {
  let release: () => void = () => undefined;
  let onStart: () => void = () => undefined;
  const put = s.putObject.bind(s);
  s.putObject = async (...args) => {
    const gate = new Promise<void>((r) => { release = r; });
    onStart();
    await gate;
    return put(...args);
  };
  return { started: () => new Promise<void>((r) => { onStart = r; }), release: () => release() };
}

describe('a hostile A at B', () => {
  it("deletes a key while its put is under way: the delete waits for the put, and the reservation still counts what B holds", async () => {
    const puts = slowPuts(store);
    const rx = new ReplicaReceiver(store, 'dst', 8, { capacityBytes: 1000, maxObjects: 2 });
    for (let i = 0; i < 3; i++) {
      const s = stage(`k${i}`, randomBytes(600));
      const inPut = puts.started();
      const stored = rx.storeBatch(s.objects, s.path);
      await inPut;
      const deleted = rx.deleteKeys([`k${i}`]);
      puts.release();
      expect((await stored)[0]).toMatchObject({ ok: true });
      expect(await deleted).toEqual([`k${i}`]);
    }
    expect((await store.listObjects('dst')).objects).toEqual([]);
    // What is left of the reservation is what B holds: one 600-byte object fits, a second does not.
    store.putObject = MemoryStore.prototype.putObject.bind(store);
    const a = stage('a', randomBytes(600));
    const b = stage('b', randomBytes(600));
    expect((await rx.storeBatch(a.objects, a.path))[0]).toMatchObject({ ok: true });
    expect((await rx.storeBatch(b.objects, b.path))[0]).toMatchObject({ ok: false, code: 'REPL_OVER_RESERVATION' });
  });

  it('writes a key another request is writing: that object is refused as busy (sent again later), the other goes on', async () => {
    const puts = slowPuts(store);
    const rx = new ReplicaReceiver(store, 'dst', 8, { capacityBytes: 10_000 });
    const first = stage('k', randomBytes(100));
    const inPut = puts.started();
    const stored = rx.storeBatch(first.objects, first.path);
    await inPut;
    const second = stage('k', randomBytes(100));
    expect((await rx.storeBatch(second.objects, second.path))[0]).toMatchObject({ ok: false, code: 'REPL_PEER_BUSY', retryable: true });
    puts.release();
    expect((await stored)[0]).toMatchObject({ ok: true, sha256: first.objects[0]!.sha256 });
  });

  it('names one large object ten thousand times in a deep audit: B reads it once; a second deep audit meanwhile is refused as busy', async () => {
    const big = randomBytes(1 << 20);
    store.rawPut('dst', 'big', big, sha(big));
    const msg = decodeReplMessage(encodeReplMessage({ type: 'audit', v: 1, requestId: REQ, subcontractId: 'sc', keys: Array<string>(10_000).fill('big'), deep: true }));
    if (msg.type !== 'audit') throw new Error('not an audit');
    const rx = new ReplicaReceiver(store, 'dst');
    const one = rx.audit(msg.keys, { deep: true });
    await expect(rx.audit(['big'], { deep: true })).rejects.toMatchObject({ code: 'REPL_PEER_BUSY', retryable: true });
    expect(await one).toEqual([{ key: 'big', present: true, size: big.length, sha256: sha(big), etag: expect.any(String) }]);
    expect(store.calls['getObject']).toBe(1);
    // A shallow audit is not held up by it.
    expect(await rx.audit(['big', 'nope'])).toHaveLength(2);
  });

  it('sends empty objects under long keys: the keys count against the reservation', async () => {
    const rx = new ReplicaReceiver(store, 'dst', 8, { capacityBytes: 10 * 1024 });
    const e = sha(Buffer.alloc(0));
    const objects = Array.from({ length: 100 }, (_, i) => ({ key: `${'x'.repeat(1000)}${String(i).padStart(3, '0')}`, etag: '"e"', size: 0, sha256: e, offset: 0 }));
    writeFileSync(join(dir, 'empty'), '');
    const rs = await rx.storeBatch(objects, join(dir, 'empty'));
    // 10 keys of 1,003 bytes fit in 10 KiB, not 100.
    expect(rs.filter((r) => r.ok)).toHaveLength(10);
    expect(rs.filter((r) => !r.ok && r.code === 'REPL_OVER_RESERVATION')).toHaveLength(90);
    expect(store.raw('dst').size).toBe(10);
  });
});

describe('a hostile B at A', () => {
  it("answers with an error text of a mebibyte: refused as malformed; ours are cut to the bound when sent", () => {
    const huge = 'x'.repeat(1 << 20);
    const raw = Buffer.from(JSON.stringify({ type: 'error', v: 1, requestId: REQ, code: 'REPL_PEER_REJECTED', message: huge, retryable: true }));
    expect(() => decodeReplMessage(raw)).toThrow(expect.objectContaining({ code: 'REPL_BAD_MESSAGE' }));
    const receipt = Buffer.from(JSON.stringify({ type: 'stored', v: 1, requestId: REQ, receipts: [{ key: 'k', ok: false, code: 'X', message: huge, retryable: true }] }));
    expect(() => decodeReplMessage(receipt)).toThrow(expect.objectContaining({ code: 'REPL_BAD_MESSAGE' }));
    const etag = Buffer.from(JSON.stringify({ type: 'stored', v: 1, requestId: REQ, receipts: [{ key: 'k', ok: true, size: 1, sha256: 'a'.repeat(64), etag: huge }] }));
    expect(() => decodeReplMessage(etag)).toThrow(expect.objectContaining({ code: 'REPL_BAD_MESSAGE' }));
    const ours = decodeReplMessage(encodeReplMessage({ type: 'error', v: 1, requestId: REQ, code: 'STORE_UNAVAILABLE', message: huge, retryable: true }));
    expect(ours.type === 'error' && ours.message.length).toBe(MAX_REPL_TEXT);
  });
});

describe("B's staging disk against a batch as large as the reservation", () => {
  it('admits a batch only with room for it, the batches being received and the headroom; else busy, to be sent again', () => {
    const GiB = 2 ** 30;
    expect(() => checkStagingRoom(GiB, 2 * GiB, 0)).not.toThrow();
    expect(() => checkStagingRoom(GiB, 2 * GiB, GiB)).toThrow(expect.objectContaining({ code: 'REPL_PEER_BUSY', retryable: true }));
    expect(() => checkStagingRoom(GiB, GiB + STAGING_HEADROOM_BYTES, 0)).not.toThrow();
    expect(() => checkStagingRoom(GiB, GiB + STAGING_HEADROOM_BYTES - 1, 0)).toThrow(/does not fit on the staging disk/);
  });
});
