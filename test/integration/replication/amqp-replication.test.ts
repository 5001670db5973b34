/**
 * Replication A → B over the real cloud-b broker (RabbitMQ, TLS, EXTERNAL login by each cloud's
 * own certificate), with in-memory object stores at both ends (the S3/Swift adapter is another
 * branch's work). The test runs in a vhost of its own on cloud-b's broker, so the grant it gives
 * cloud-a (the subcontract's one regex) never touches the grants live migrations hold on
 * `transfers`. It restarts nothing and needs no federation lock (the fault tests that restart the brokers run alone, in vitest.config.ts's EXCLUSIVE). Also measures the cost of one tiny batch and the rate of small and large objects.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AmqpReplicaPeer, ReplicaReceiver, Replicator, newTransferId, serveReplicaPeer, type ReplicaServer, type Subcontract,
} from '../../../agent/replication/index.js';
import { MemoryStore } from '../../unit/replication/memory-store.js';
import { ROUTING, connectBroker, transferTopology } from '../../../protocols/amqp/index.js';
import { publishConfirmed } from '../../../protocols/amqp/session-util.js';
import { channelTransferId } from '../../../agent/replication/subcontract.js';
import { replicaVhost, type ReplicaVhost } from './replica-broker.js';

const VHOST = `replication-it-${process.pid}`;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const sub: Subcontract = {
  id: `sc-${randomUUID()}`, from: 'cloud-a', to: 'cloud-b', source: { bucket: 'src', prefix: '' }, target: { bucket: 'dst' },
  ackMode: 'sync', bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
};

let dir = '';
let a: MemoryStore;
let b: MemoryStore;
let vhost: ReplicaVhost | undefined;
let server: ReplicaServer | undefined;
let peer: AmqpReplicaPeer | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(process.env['INTERCLOUD_TEST_TMP'] ?? tmpdir(), 'repl-it-'));
  // B on its own broker: every transfer into cloud-b (as on `transfers`); A: this subcontract only.
  vhost = await replicaVhost(VHOST, sub);
  a = new MemoryStore();
  b = new MemoryStore();
  await a.createBucket('src');
  await b.createBucket('dst');
  server = await serveReplicaPeer({ broker: vhost!.loginAs('cloud-b'), subcontract: sub, receiver: new ReplicaReceiver(b, 'dst'), workDir: join(dir, 'b'), concurrency: 4 });
  peer = new AmqpReplicaPeer({ broker: vhost!.loginAs('cloud-a'), subcontract: sub, journalDir: join(dir, 'a-xfer'), transfer: { reconnectDelayMs: 300, endRetryMs: 500 } });
}, 60_000);

afterAll(async () => {
  try {
    await peer?.close();
    await server?.close();
    await vhost?.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe("replication over cloud-b's broker", () => {
  it('replicates objects A → B, a sync write answers after B verified it, deletes and audits go the same way', async () => {
    const objs = new Map<string, Buffer>();
    for (const [i, size] of [1024, 4096, 70_000, 3 * 1024 * 1024, 0].entries()) {
      const bytes = randomBytes(size);
      a.rawPut('src', `it/${i}`, bytes, sha(bytes));
      objs.set(`it/${i}`, bytes);
    }
    const r = await Replicator.open({ subcontract: sub, store: a, peer: peer!, journalPath: join(dir, 'journal'), stagingDir: join(dir, 'a-staging') });
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(60_000));
    for (const [k, v] of objs) expect(b.raw('dst').get(k)?.bytes.equals(v), k).toBe(true);
    expect(r.status()).toMatchObject({ objects: { pending: 0, completed: 5, failed: 0 } });

    const body = randomBytes(10_000);
    const put = await r.put('it/sync', body, { sizeBytes: body.length, sha256: sha(body) });
    expect(put.replicated).toBe(true);
    expect(b.raw('dst').get('it/sync')!.bytes.equals(body)).toBe(true);

    a.raw('src').delete('it/1');
    await r.runPass();
    await r.idle(AbortSignal.timeout(30_000));
    expect(b.raw('dst').has('it/1')).toBe(false);

    b.raw('dst').delete('it/2');
    const rep = await r.audit();
    expect(rep.missing).toEqual(['it/2']);
    await r.idle(AbortSignal.timeout(30_000));
    expect(b.raw('dst').get('it/2')!.bytes.equals(objs.get('it/2')!)).toBe(true);
    await r.stop();
  }, 180_000);

  it("cloud-a's grant covers its subcontract's transfers and nothing else", async () => {
    const login = vhost!.loginAs('cloud-a');
    const conn = await amqp.connect(login.url, {
      ca: [readFileSync(login.ca)], cert: readFileSync(login.cert), key: readFileSync(login.key), ...(login.servername ? { servername: login.servername } : {}), credentials: amqp.credentials.external(),
    });
    conn.on('error', () => undefined);
    const tryDeclare = async (name: string): Promise<number | 'ok'> => {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      try {
        await ch.assertExchange(name, 'direct', { durable: false });
        await ch.deleteExchange(name);
        await ch.close();
        return 'ok';
      } catch (err) {
        return (err as { code?: number }).code ?? -1;
      }
    };
    expect(await tryDeclare(`xfer.cloud-a.cloud-b.${newTransferId(sub.id)}`)).toBe('ok');
    expect(await tryDeclare(`xfer.cloud-a.cloud-b.${newTransferId('another-subcontract')}`)).toBe(403);
    await conn.close().catch(() => undefined);
  }, 60_000);

  it('measures one tiny batch against many tiny objects per batch, and the rate of small and large objects', async () => {
    const journal = join(dir, `journal-bench-${randomUUID()}`);
    const store = new MemoryStore();
    a = store;
    await a.createBucket('src');
    const run = async (n: number, size: number, opts: { batchMaxObjects: number; concurrency: number }) => {
      const prefix = `b${randomUUID().slice(0, 8)}/`;
      for (let i = 0; i < n; i++) {
        const bytes = randomBytes(size);
        a.rawPut('src', `${prefix}${String(i).padStart(5, '0')}`, bytes, sha(bytes));
      }
      const r = await Replicator.open({ subcontract: { ...sub, source: { bucket: 'src', prefix } }, store: a, peer: peer!, journalPath: `${journal}-${prefix.slice(0, -1)}`, stagingDir: join(dir, 'a-staging'), ...opts });
      const t0 = performance.now();
      r.start();
      await r.runPass();
      await r.idle(AbortSignal.timeout(170_000));
      const ms = performance.now() - t0;
      expect(r.status().objects).toMatchObject({ pending: 0, completed: n, failed: 0 });
      await r.stop();
      return { n, size, ...opts, ms: Math.round(ms), perObjectMs: +(ms / n).toFixed(2), mbPerS: +((n * size) / ms / 1000).toFixed(2) };
    };
    const results = [
      await run(20, 1024, { batchMaxObjects: 1, concurrency: 1 }),
      await run(20, 1024, { batchMaxObjects: 1, concurrency: 4 }),
      await run(500, 1024, { batchMaxObjects: 256, concurrency: 4 }),
      await run(4, 16 * 1024 * 1024, { batchMaxObjects: 256, concurrency: 2 }),
    ];
    process.stdout.write(`replication bench (load ${loadavg().map((x) => x.toFixed(1)).join(' ')}):\n${results.map((x) => JSON.stringify(x)).join('\n')}\n`);
    // Batching must pay: 64 tiny objects per transfer cost far less per object than one per transfer.
    expect(results[2]!.perObjectMs).toBeLessThan(results[0]!.perObjectMs / 3);
  }, 600_000);
});

describe("B's agent restarted mid-batch", () => {
  it('loses nothing: the batch fails, is retried under a new transfer, and completes', async () => {
    const store = new MemoryStore();
    await store.createBucket('src');
    const big = randomBytes(24 * 1024 * 1024);
    store.rawPut('src', 'crash/big', big, sha(big));
    const small = randomBytes(2048);
    store.rawPut('src', 'crash/small', small, sha(small));
    const quickPeer = new AmqpReplicaPeer({ broker: vhost!.loginAs('cloud-a'), subcontract: sub, journalDir: join(dir, 'a-xfer2'), answerTimeoutMs: 4000, transfer: { reconnectDelayMs: 300, endRetryMs: 500 } });
    const r = await Replicator.open({
      subcontract: { ...sub, source: { bucket: 'src', prefix: 'crash/' }, bandwidthBytesPerSecond: 8 * 1024 * 1024 }, store, peer: quickPeer,
      journalPath: join(dir, 'journal-crash'), stagingDir: join(dir, 'a-staging-crash'), backoff: { baseMs: 200, capMs: 1000, maxAttempts: 20 },
    });
    const events: string[] = [];
    r.onEvent((e) => events.push(e.type === 'replica-retry' ? `retry:${e.key}:${e.code}` : e.type));
    r.start();
    await r.runPass();
    // The big object paces at 8 MiB/s: kill B's server while its bytes flow, start it again.
    await new Promise((res) => setTimeout(res, 1000));
    expect(r.object('crash/big')!.state).toBe('PENDING');
    await server!.close();
    await new Promise((res) => setTimeout(res, 500));
    server = await serveReplicaPeer({ broker: vhost!.loginAs('cloud-b'), subcontract: sub, receiver: new ReplicaReceiver(b, 'dst'), workDir: join(dir, 'b'), concurrency: 4 });
    await r.idle(AbortSignal.timeout(120_000));
    expect(events.some((e) => e.startsWith('retry:crash/big:'))).toBe(true);
    expect(b.raw('dst').get('crash/big')!.bytes.equals(big)).toBe(true);
    expect(b.raw('dst').get('crash/small')!.bytes.equals(small)).toBe(true);
    expect(r.status().objects).toMatchObject({ pending: 0, completed: 2, failed: 0 });
    await r.stop();
    await quickPeer.close();
  }, 180_000);

  it("a B whose broker hands A an answer over A's cap: the request fails with REPL_BAD_MESSAGE, not as an outage", async () => {
    // A subcontract of its own (its own vhost), with no server of B's: the only answer is the test's.
    const sub2: Subcontract = { ...sub, id: `sc-${randomUUID()}` };
    const vhost2 = await replicaVhost(`${VHOST}-big`, sub2);
    const capped = new AmqpReplicaPeer({ broker: { ...vhost2.loginAs('cloud-a'), maxMessageBytes: 64 * 1024 }, subcontract: sub2, journalDir: join(dir, 'a-big'), answerTimeoutMs: 30_000 });
    try {
      const asked = capped.audit(['k']).then(() => undefined, (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 1500)); // A connected, consuming its answers' queue
      const b2 = await connectBroker(vhost2.loginAs('cloud-b'));
      try {
        const ch = await b2.createConfirmChannel();
        const topo = transferTopology(sub2.from, sub2.to, channelTransferId(sub2.id));
        await publishConfirmed(ch, topo.exchange, ROUTING.control, Buffer.alloc(1024 * 1024, 0x20), false);
      } finally {
        await b2.close();
      }
      const t0 = Date.now();
      expect(await asked).toMatchObject({ code: 'REPL_BAD_MESSAGE', retryable: false });
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await capped.close();
      await vhost2.close();
    }
  }, 60_000);
});

