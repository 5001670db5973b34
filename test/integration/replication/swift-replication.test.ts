/**
 * Replication A → B between the REAL Swift of cloud-a (A's store) and of cloud-b (B's store), both
 * through the `s3` adapter (services.json → `swift`), over the AMQP replica peer on cloud-b's real
 * broker (a vhost of its own, `replica-broker.ts`). Every assertion about B's copy is made on B's
 * Swift itself (HEAD + GET, SHA-256 compared), besides the replicator's status. One case kills
 * cloud-b's Swift proxy and starts it again with `scripts/services up swift`: the file holds the
 * federation lock for its whole run and is in vitest.config.ts's EXCLUSIVE list.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../../adapters/storage/index.js';
import {
  AmqpReplicaPeer, ReplicaReceiver, Replicator, serveReplicaPeer, type ReplicaServer, type ReplicationEvent, type Subcontract,
} from '../../../agent/replication/index.js';
import { lockFederation } from '../../../scripts/federation-lock.js';
import { replicaVhost, type ReplicaVhost } from './replica-broker.js';
import { MiB, dropBucket, rawSwiftClient, readAll, s3Store, sha, sleep, swift, until, type SwiftCloud } from './swift-rig.js';

const run = promisify(execFile);
const SERVICES = resolve(import.meta.dirname, '../../../scripts/services');
const RUN = `${process.pid}-${randomUUID().slice(0, 8)}`;
const SRC = `repl-src-${RUN}`;
const DST = `repl-dst-${RUN}`;

/** Swift's own API (tempauth token): sets or removes a container's byte quota (container_quotas answers 413). */
async function containerQuota(e: SwiftCloud, bucket: string, bytes: number | undefined): Promise<void> {
  const auth = await fetch(`${e.endpoint}/auth/v1.0`, {
    headers: { 'x-auth-user': e.accessKeyId, 'x-auth-key': readFileSync(e.secretAccessKeyFile, 'utf8').trim() },
  });
  const token = auth.headers.get('x-auth-token');
  const storage = auth.headers.get('x-storage-url');
  if (!auth.ok || token === null || storage === null) throw new Error(`tempauth login to ${e.endpoint} failed: http ${auth.status}`);
  const headers: Record<string, string> = { 'x-auth-token': token };
  if (bytes === undefined) headers['x-remove-container-meta-quota-bytes'] = 'x';
  else headers['x-container-meta-quota-bytes'] = String(bytes);
  const res = await fetch(`${storage}/${bucket}`, { method: 'POST', headers });
  if (res.status !== 204) throw new Error(`setting the quota of '${bucket}' failed: http ${res.status}`);
}

const sub: Subcontract = {
  id: `sc-${randomUUID()}`, from: 'cloud-a', to: 'cloud-b', source: { bucket: SRC, prefix: '' }, target: { bucket: DST },
  ackMode: 'async', bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
};

let dir = '';
let storeA: ObjectStore;
let storeB: ObjectStore;
let vhost: ReplicaVhost | undefined;
let server: ReplicaServer | undefined;
let peer: AmqpReplicaPeer | undefined;
let unlock: (() => Promise<void>) | undefined;
const timings: string[] = [];

/** Writes `bytes` into A's Swift as any client of cloud-a would: not through the replicator. */
async function putA(key: string, bytes: Buffer): Promise<void> {
  await storeA.putObject(SRC, key, bytes, { sizeBytes: bytes.length, sha256: sha(bytes) });
}

/** B's Swift holds exactly `bytes` under `key`: HEAD (size, sha-256 metadata) and GET (bytes hashed). */
async function expectAtB(key: string, bytes: Buffer): Promise<void> {
  const head = await storeB.headObject(DST, key);
  expect(head, `${key} at B`).toMatchObject({ sizeBytes: bytes.length, sha256: sha(bytes) });
  const got = await storeB.getObject(DST, key);
  expect(sha(await readAll(got.body)), `${key} bytes at B`).toBe(sha(bytes));
}

/** A replicator for one case: its own prefix of A's bucket, its own journal; events recorded with their time. */
async function replicator(prefix: string, opts: { bandwidth?: number; backoff?: { baseMs: number; capMs: number; maxAttempts: number } } = {}) {
  const r = await Replicator.open({
    subcontract: { ...sub, source: { bucket: SRC, prefix }, bandwidthBytesPerSecond: opts.bandwidth ?? 0 }, store: storeA, peer: peer!,
    journalPath: join(dir, `journal-${prefix.slice(0, -1)}`), stagingDir: join(dir, `staging-${prefix.slice(0, -1)}`),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
  });
  const events: Array<{ at: number; e: ReplicationEvent }> = [];
  r.onEvent((e) => events.push({ at: Date.now(), e }));
  return { r, events };
}

beforeAll(async () => {
  unlock = await lockFederation();
}, 1_000 * (Number(process.env['INTERCLOUD_LOCK_WAIT_S'] ?? 600) + 60));

beforeAll(async () => {
  dir = mkdtempSync(join(process.env['INTERCLOUD_TEST_TMP'] ?? tmpdir(), 'repl-swift-'));
  storeA = s3Store('cloud-a');
  storeB = s3Store('cloud-b');
  await storeA.createBucket(SRC);
  await storeB.createBucket(DST);
  vhost = await replicaVhost(`replication-swift-${RUN}`, sub);
  server = await serveReplicaPeer({ broker: vhost.loginAs('cloud-b'), subcontract: sub, receiver: new ReplicaReceiver(storeB, DST), workDir: join(dir, 'b'), concurrency: 4 });
  peer = new AmqpReplicaPeer({ broker: vhost.loginAs('cloud-a'), subcontract: sub, journalDir: join(dir, 'a-xfer'), answerTimeoutMs: 30_000, transfer: { reconnectDelayMs: 300, endRetryMs: 500 } });
}, 60_000);

afterAll(async () => {
  try {
    process.stdout.write(`swift replication timings:\n${timings.join('\n')}\n`);
    await peer?.close();
    await server?.close();
    await vhost?.close();
    await containerQuota(swift('cloud-b'), DST, undefined).catch(() => undefined);
    if (storeA) await dropBucket(storeA, SRC);
    if (storeB) await dropBucket(storeB, DST);
    await storeA?.close();
    await storeB?.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await unlock?.();
  }
}, 120_000);

describe('replication between the real Swift of cloud-a and cloud-b', () => {
  it('objects written into A behind the agent (KiB and multipart) are found by a pass and verified at B', async () => {
    const t0 = Date.now();
    const objs = new Map<string, Buffer>();
    for (const [i, size] of [1024, 5 * 1024, 40_000, 20 * MiB + 12_345].entries()) objs.set(`mixed/${i}`, randomBytes(size));
    for (const [k, v] of objs) await putA(k, v);
    // the big one is a multipart object at A (ETag md5-of-md5s-3)
    expect((await storeA.headObject(SRC, 'mixed/3'))!.etag).toMatch(/-3"?$/);
    const { r } = await replicator('mixed/');
    r.start();
    await r.runPass();
    const seen = r.status();
    expect(seen.objects.pending + seen.objects.completed).toBe(4);
    expect(seen.objects.pending).toBeGreaterThan(0); // 20 MiB through the broker cannot be done already
    await r.idle(AbortSignal.timeout(120_000));
    const total = [...objs.values()].reduce((n, b) => n + b.length, 0);
    const st = r.status();
    expect(st).toMatchObject({ objects: { pending: 0, completed: 4, failed: 0 }, pendingBytes: 0, objectsMoved: 4 });
    expect(st.bytesMoved).toBeGreaterThanOrEqual(total);
    for (const [k, v] of objs) await expectAtB(k, v);
    await r.stop();
    timings.push(`mixed sizes: ${Date.now() - t0} ms`);
  }, 180_000);

  it("B's Swift proxy killed mid-replication: retries with STORE_UNAVAILABLE, nothing COMPLETED while B is down, all complete once it is back", async () => {
    const t0 = Date.now();
    const objs = new Map<string, Buffer>();
    for (const [i, size] of [2048, 300_000, 1 * MiB, 16 * MiB].entries()) objs.set(`down/${i}`, randomBytes(size));
    for (const [k, v] of objs) await putA(k, v);
    const { r, events } = await replicator('down/', { bandwidth: 4 * MiB, backoff: { baseMs: 500, capMs: 2000, maxAttempts: 1000 } });
    const pidFile = swift('cloud-b').pidFiles.proxy;
    const victim = Number(readFileSync(pidFile, 'utf8').trim());
    r.start();
    await r.runPass();
    // the 16 MiB object paces at 4 MiB/s: kill B's proxy while its bytes flow
    await sleep(1500);
    expect(r.object('down/3')!.state).toBe('PENDING');
    process.kill(victim, 'SIGKILL');
    const downAt = Date.now();
    for (let i = 0; i < 100 && existsSync(`/proc/${victim}`) && !readFileSync(`/proc/${victim}/status`, 'utf8').includes('State:\tZ'); i++) await sleep(50);
    let upAt = Infinity;
    try {
      // every object not completed before the kill fails at B with B's own coded reason, and is retried
      const owed = [...objs.keys()].filter((k) => r.object(k)!.state !== 'COMPLETED');
      expect(owed).toContain('down/3');
      await until('every owed object to have failed at least twice with STORE_UNAVAILABLE', () => owed.every((k) => {
        const o = r.object(k)!;
        return o.state === 'PENDING' && o.attempts >= 2 && o.lastError?.code === 'STORE_UNAVAILABLE';
      }), 90_000);
      const st = r.status();
      expect(st.objects.pending).toBe(owed.length);
      expect(st.nextAttemptAt).toBeDefined();
      for (const k of owed) expect(events.some(({ e }) => e.type === 'replica-retry' && e.key === k && e.code === 'STORE_UNAVAILABLE'), k).toBe(true);
    } finally {
      await run(SERVICES, ['up', 'swift'], { timeout: 120_000 });
      upAt = Date.now();
    }
    expect(Number(readFileSync(pidFile, 'utf8').trim())).not.toBe(victim);
    await r.idle(AbortSignal.timeout(120_000));
    // nothing was reported COMPLETED between the kill and the proxy's return
    expect(events.filter(({ at, e }) => e.type === 'replica-completed' && at > downAt + 200 && at < upAt).map(({ e }) => e)).toEqual([]);
    expect(r.status().objects).toMatchObject({ pending: 0, completed: 4, failed: 0 });
    for (const [k, v] of objs) await expectAtB(k, v);
    await r.stop();
    timings.push(`proxy killed: ${Date.now() - t0} ms (B down ${upAt - downAt} ms)`);
  }, 300_000);

  it('repair: an audit finds a replica deleted at B and one overwritten at B (same size and sha-256 metadata) and sends both again', async () => {
    const t0 = Date.now();
    const objs = new Map<string, Buffer>();
    for (const [i, size] of [3000, 70_000, 9 * MiB].entries()) objs.set(`repair/${i}`, randomBytes(size));
    for (const [k, v] of objs) await putA(k, v);
    const { r } = await replicator('repair/');
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(120_000));
    expect(r.status().objects).toMatchObject({ pending: 0, completed: 3, failed: 0 });
    expect((await r.audit()).requeued).toBe(0);

    await storeB.deleteObject(DST, 'repair/0');
    // other bytes of the same size, with the metadata claiming the right sha-256: only B's ETag tells
    const forged = randomBytes(70_000);
    const raw = rawSwiftClient('cloud-b');
    try {
      await raw.send(new PutObjectCommand({ Bucket: DST, Key: 'repair/1', Body: forged, Metadata: { 'intercloud-sha256': sha(objs.get('repair/1')!) } }));
    } finally {
      raw.destroy();
    }
    const rep = await r.audit();
    expect(rep.missing).toEqual(['repair/0']);
    expect(rep.corrupt).toEqual(['repair/1']);
    expect(rep.requeued).toBe(2);
    await r.idle(AbortSignal.timeout(120_000));
    expect(r.status().objects).toMatchObject({ pending: 0, completed: 3, failed: 0 });
    for (const [k, v] of objs) await expectAtB(k, v);
    expect((await r.audit({ deep: true })).requeued).toBe(0);
    await r.stop();
    timings.push(`repair: ${Date.now() - t0} ms`);
  }, 240_000);

  it("B full (a quota on B's container): STORE_FULL and retried, never COMPLETED, complete once the quota is lifted", async () => {
    const t0 = Date.now();
    const objs = new Map<string, Buffer>();
    for (const [i, size] of [4096, 2 * MiB].entries()) objs.set(`full/${i}`, randomBytes(size));
    for (const [k, v] of objs) await putA(k, v);
    await containerQuota(swift('cloud-b'), DST, 1);
    const { r, events } = await replicator('full/', { backoff: { baseMs: 500, capMs: 2000, maxAttempts: 1000 } });
    try {
      r.start();
      await r.runPass();
      await until('both objects to have failed twice with STORE_FULL', () => [...objs.keys()].every((k) => {
        const o = r.object(k)!;
        return o.state === 'PENDING' && o.attempts >= 2 && o.lastError?.code === 'STORE_FULL';
      }), 90_000);
      expect(events.some(({ e }) => e.type === 'replica-completed')).toBe(false);
      for (const k of objs.keys()) expect(await storeB.headObject(DST, k), k).toBeUndefined();
    } finally {
      await containerQuota(swift('cloud-b'), DST, undefined);
    }
    await r.idle(AbortSignal.timeout(120_000));
    expect(r.status().objects).toMatchObject({ pending: 0, completed: 2, failed: 0 });
    for (const [k, v] of objs) await expectAtB(k, v);
    await r.stop();
    timings.push(`B full: ${Date.now() - t0} ms`);
  }, 240_000);

  it('an object changed at A while it is copied ends at B as the new version, the old one never reported COMPLETED once the change is known', async () => {
    const t0 = Date.now();
    const v1 = randomBytes(16 * MiB);
    const v2 = randomBytes(MiB);
    await putA('change/big', v1);
    // 16 MiB at 2 MiB/s: the copy of v1 travels for about 8 s
    const { r, events } = await replicator('change/', { bandwidth: 2 * MiB, backoff: { baseMs: 300, capMs: 1000, maxAttempts: 50 } });
    r.start();
    await r.runPass();
    await until('the copy of v1 to be in flight', () => r.status().inFlightObjects > 0, 30_000);
    await sleep(500);
    await putA('change/big', v2);
    await r.runPass(); // the replicator now knows A holds v2
    const knownAt = Date.now();
    const completions = () => events.filter(({ e }) => e.type === 'replica-completed') as Array<{ at: number; e: Extract<ReplicationEvent, { type: 'replica-completed' }> }>;
    // the race this case is about: v1's copy was still on its way when the change became known
    expect(completions(), 'v1 completed before the change was known: the case did not run').toEqual([]);
    expect(r.object('change/big')!.state).toBe('PENDING');
    await r.idle(AbortSignal.timeout(120_000));
    expect(r.status().objects).toMatchObject({ pending: 0, completed: 1, failed: 0 });
    await expectAtB('change/big', v2);
    // whatever B confirmed for v1 after that, no completion but v2's was reported
    expect(completions().map(({ e }) => e.size)).toEqual([v2.length]);
    expect(completions()[0]!.at).toBeGreaterThan(knownAt);
    await r.stop();
    timings.push(`changed while copied: ${Date.now() - t0} ms`);
  }, 240_000);
});
