/**
 * B's receiver reads each staged slice once: straight into `putObject`, which checks the size and
 * the SHA-256 A announced as the bytes flow and stores nothing on a mismatch. The staged file's
 * opens are counted through a wrapped `node:fs` (the receiver's only way to the staged bytes).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type * as NodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeObjectStore } from '../../../adapters/storage/fake/fake-object-store.js';
import { ReplicaReceiver } from '../../../agent/replication/index.js';
import type { BatchObject } from '../../../agent/replication/messages.js';

const opened = vi.hoisted(() => ({ paths: [] as string[] }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof NodeFs>();
  const note = (p: unknown): void => {
    if (typeof p === 'string' && p.endsWith('.batch')) opened.paths.push(p);
  };
  const createReadStream = ((p: Parameters<typeof fs.createReadStream>[0], o?: Parameters<typeof fs.createReadStream>[1]) => {
    note(p);
    return fs.createReadStream(p, o);
  }) as typeof fs.createReadStream;
  const open = (async (...args: Parameters<typeof fs.promises.open>) => {
    note(args[0]);
    return fs.promises.open(...args);
  }) as typeof fs.promises.open;
  const promises = { ...fs.promises, open };
  return { ...fs, default: { ...fs, createReadStream, promises }, createReadStream, promises };
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MIB = 1024 * 1024;

let dir: string;
let store: FakeObjectStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'repl-recv-'));
  store = new FakeObjectStore({ name: 'b', region: 'eu-west', partSizeBytes: 8 * MIB, capacityBytes: 1024 * MIB });
  await store.createBucket('dst');
  opened.paths.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Stages `bodies` end to end in one file, as a transfer leaves them at B. */
function stage(bodies: Buffer[]): { path: string; objects: BatchObject[] } {
  const path = join(dir, 'x.batch');
  writeFileSync(path, Buffer.concat(bodies));
  let offset = 0;
  const objects = bodies.map((body, i) => {
    const o = { key: `k/${i}`, etag: `"e${i}"`, size: body.length, sha256: sha(body), offset };
    offset += body.length;
    return o;
  });
  return { path, objects };
}

describe('replica receiver', () => {
  it('reads each staged object once (one open of the staged file per object), large and small', async () => {
    const bodies = [randomBytes(12 * MIB), randomBytes(100 * 1024), randomBytes(3 * MIB)];
    const { path, objects } = stage(bodies);
    const receipts = await new ReplicaReceiver(store, 'dst').storeBatch(objects, path);
    expect(receipts.map((r) => r.ok)).toEqual([true, true, true]);
    for (const [i, body] of bodies.entries()) expect((await store.headObject('dst', `k/${i}`))?.sha256).toBe(sha(body));
    expect(opened.paths).toHaveLength(objects.length);
  });

  it('stores nothing and answers REPL_VERIFY_FAILED when a staged slice does not match the SHA-256 A announced', async () => {
    const bodies = [randomBytes(10 * MIB), randomBytes(2048)];
    const { path, objects } = stage(bodies);
    const lying = objects.map((o) => ({ ...o, sha256: sha(Buffer.from(o.key)) }));
    const receipts = await new ReplicaReceiver(store, 'dst').storeBatch(lying, path);
    for (const r of receipts) expect(r).toMatchObject({ ok: false, code: 'REPL_VERIFY_FAILED', retryable: true });
    expect(await store.headObject('dst', 'k/0')).toBeUndefined();
    expect(await store.headObject('dst', 'k/1')).toBeUndefined();
    expect(store.pendingUploads()).toBe(0);
  });

  it('answers REPL_VERIFY_FAILED for an object the staged file ends inside, and stores nothing', async () => {
    const bodies = [randomBytes(4096), randomBytes(9 * MIB)];
    const { path, objects } = stage(bodies);
    writeFileSync(path, Buffer.concat(bodies).subarray(0, 4096 + MIB)); // the transfer left less than announced
    const receipts = await new ReplicaReceiver(store, 'dst').storeBatch(objects, path);
    expect(receipts[0]).toMatchObject({ ok: true });
    expect(receipts[1]).toMatchObject({ ok: false, code: 'REPL_VERIFY_FAILED' });
    expect(await store.headObject('dst', 'k/1')).toBeUndefined();
  });
});
