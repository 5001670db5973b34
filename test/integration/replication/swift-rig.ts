/**
 * A replication rig on the real servers, as swift-replication.test.ts assembles it: A's and B's
 * Swift through the `s3` adapter (services.json → `swift`), a replica peer on cloud-b's real broker
 * in a vhost of its own (`replica-broker.ts`), B's `serveReplicaPeer` + `ReplicaReceiver`, A's
 * `AmqpReplicaPeer`. Each fault test file builds one and checks B's copy on B's Swift itself.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect } from 'vitest';
import { createObjectStore, type ObjectStore } from '../../../adapters/storage/index.js';
import {
  AmqpReplicaPeer, ReplicaReceiver, Replicator, serveReplicaPeer, type ReceiverTerms, type ReplicaServer, type ReplicationEvent, type Subcontract,
} from '../../../agent/replication/index.js';
import type { BackoffPolicy } from '../../../agent/replication/backoff.js';
import { lockFederation } from '../../../scripts/federation-lock.js';
import { serviceEnv } from '../../helpers/services.js';
import { replicaVhost, type ReplicaVhost } from './replica-broker.js';

/** What the rig reads of services.json → `swift.<cloud>` (scripts/services.d/72-swift.sh). */
export interface SwiftCloud {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKeyFile: string;
  account: string;
  objectConf: string;
  devices: Array<{ name: string; path: string }>;
  pidFiles: { proxy: string; object: string };
}

export const MiB = 1024 * 1024;
export const swift = (cloud: 'cloud-a' | 'cloud-b'): SwiftCloud => serviceEnv<Record<string, SwiftCloud>>('swift')[cloud]!;
export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
export const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** A plain S3 client on `cloud`'s Swift: reads and writes behind the adapter's back (no checks of its own). */
export function rawSwiftClient(cloud: 'cloud-a' | 'cloud-b'): S3Client {
  const e = swift(cloud);
  return new S3Client({
    endpoint: e.endpoint, region: e.region, forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: readFileSync(e.secretAccessKeyFile, 'utf8').trim() },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The `s3` adapter on one cloud's Swift. */
export function s3Store(cloud: 'cloud-a' | 'cloud-b'): ObjectStore {
  const e = swift(cloud);
  return createObjectStore('s3', { name: cloud, endpoint: e.endpoint, region: e.region, accessKeyId: e.accessKeyId, secretAccessKeyFile: e.secretAccessKeyFile, partSizeBytes: 8 * MiB });
}

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Polls `pred` every 100 ms until it holds; fails with `what` after `ms`. */
export async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Deletes every object of `bucket` and the bucket (absent: nothing to do). */
export async function dropBucket(store: ObjectStore, bucket: string): Promise<void> {
  if (!(await store.headBucket(bucket))) return;
  for (let after: string | undefined; ;) {
    const page = await store.listObjects(bucket, after === undefined ? {} : { startAfter: after });
    for (const o of page.objects) await store.deleteObject(bucket, o.key);
    if (page.nextStartAfter === undefined) break;
    after = page.nextStartAfter;
  }
  await store.deleteBucket(bucket);
}

/** A rig: one subcontract from a bucket of A's Swift into a bucket of B's. */
export interface Rig {
  readonly sub: Subcontract;
  readonly dir: string;
  readonly storeA: ObjectStore;
  readonly storeB: ObjectStore;
  readonly vhost: ReplicaVhost;
  server: ReplicaServer;
  readonly peer: AmqpReplicaPeer;
  /** Writes into A's Swift as any client of cloud-a would: not through the replicator. */
  putA(key: string, bytes: Buffer): Promise<void>;
  /** B's Swift holds exactly `bytes` under `key`: HEAD (size, sha-256 metadata) and GET (bytes hashed). */
  expectAtB(key: string, bytes: Buffer): Promise<void>;
  /** A replicator on `prefix` with its own journal; its events recorded with their time. */
  replicator(prefix: string, opts?: { backoff?: BackoffPolicy; journal?: string; bandwidth?: number }): Promise<{ r: Replicator; events: Array<{ at: number; e: ReplicationEvent }> }>;
  /** Starts B's replica server again (after a restart of it or of the broker). */
  serve(): Promise<ReplicaServer>;
  close(): Promise<void>;
}

/** Builds a rig named `name` (buckets, vhost); `terms` are B's receiver terms. */
export async function replicationRig(name: string, terms?: ReceiverTerms): Promise<Rig> {
  const run = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const src = `${name}-src-${run}`;
  const dst = `${name}-dst-${run}`;
  const sub: Subcontract = {
    id: `sc-${randomUUID()}`, from: 'cloud-a', to: 'cloud-b', source: { bucket: src, prefix: '' }, target: { bucket: dst },
    ackMode: 'async', bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
  };
  const dir = mkdtempSync(join(process.env['INTERCLOUD_TEST_TMP'] ?? tmpdir(), `${name}-`));
  const storeA = s3Store('cloud-a');
  const storeB = s3Store('cloud-b');
  await storeA.createBucket(src);
  await storeB.createBucket(dst);
  const vhost = await replicaVhost(`${name}-${run}`, sub);
  const serve = (): Promise<ReplicaServer> => serveReplicaPeer({
    broker: vhost.loginAs('cloud-b'), subcontract: sub, receiver: new ReplicaReceiver(storeB, dst, 8, terms), workDir: join(dir, 'b'), concurrency: 4, reconnectDelayMs: 300,
  });
  const server = await serve();
  const peer = new AmqpReplicaPeer({ broker: vhost.loginAs('cloud-a'), subcontract: sub, journalDir: join(dir, 'a-xfer'), answerTimeoutMs: 15_000, transfer: { reconnectDelayMs: 300, endRetryMs: 500 } });
  const rig: Rig = {
    sub, dir, storeA, storeB, vhost, server, peer,
    async putA(key, bytes) {
      await storeA.putObject(src, key, bytes, { sizeBytes: bytes.length, sha256: sha(bytes) });
    },
    async expectAtB(key, bytes) {
      const head = await storeB.headObject(dst, key);
      expect(head, `${key} at B`).toMatchObject({ sizeBytes: bytes.length, sha256: sha(bytes) });
      const got = await storeB.getObject(dst, key);
      expect(sha(await readAll(got.body)), `${key} bytes at B`).toBe(sha(bytes));
    },
    async replicator(prefix, opts = {}) {
      const tag = opts.journal ?? prefix.replace(/\/$/, '');
      const r = await Replicator.open({
        subcontract: { ...sub, source: { bucket: src, prefix }, bandwidthBytesPerSecond: opts.bandwidth ?? 0 }, store: storeA, peer,
        journalPath: join(dir, `journal-${tag}`), stagingDir: join(dir, `staging-${tag}`),
        ...(opts.backoff ? { backoff: opts.backoff } : {}),
      });
      const events: Array<{ at: number; e: ReplicationEvent }> = [];
      r.onEvent((e) => events.push({ at: Date.now(), e }));
      return { r, events };
    },
    async serve() {
      rig.server = await serve();
      return rig.server;
    },
    async close() {
      try {
        await peer.close();
        await rig.server.close();
        await vhost.close();
        await dropBucket(storeA, src);
        await dropBucket(storeB, dst);
        await storeA.close();
        await storeB.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return rig;
}

/**
 * Registers a test file's hooks: at the end the rigs the file made closed. A file that kills or
 * restarts shared servers (`restartsServers`, one of vitest.config.ts's EXCLUSIVE files) also holds
 * the federation lock for the whole file, so no federation of agents (the demo, a benchmark) runs
 * meanwhile; any other rig lives in its own vhost and buckets and needs no lock.
 */
export function rigHooks(options: { readonly restartsServers: boolean }): { readonly rigs: Rig[] } {
  const slot = { rigs: [] as Rig[] };
  let unlock: (() => Promise<void>) | undefined;
  // lockFederation gives up (with who holds the lock) after INTERCLOUD_LOCK_WAIT_S, 600 s by default.
  beforeAll(async () => {
    if (options.restartsServers) unlock = await lockFederation();
  }, 1_000 * (Number(process.env['INTERCLOUD_LOCK_WAIT_S'] ?? 600) + 60));
  afterAll(async () => {
    try {
      for (const r of slot.rigs) await r.close();
    } finally {
      await unlock?.();
    }
  }, 60_000);
  return slot;
}
