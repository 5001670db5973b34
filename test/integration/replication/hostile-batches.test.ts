/**
 * Issue 14, "a peer asking for more than its reservation", played over the real cloud-b broker by
 * a hostile cloud-a: it holds a valid subcontract (1 MiB reserved at B) and writes its own
 * requests on the subcontract's request channel with a raw amqplib client, as any certified peer
 * can. B must refuse, before it receives or stages a byte:
 * - a batch declaring more bytes than the whole reservation (`REPL_OVER_RESERVATION`), one object
 *   or many, even 2^52 bytes;
 * - a batch naming a key twice (`REPL_BAD_MESSAGE`);
 * - a batch sent while others being received already declare the reservation (`REPL_PEER_BUSY`,
 *   retryable: an honest A sends it again);
 * - a batch whose bytes would travel in another subcontract's transfer, and a request naming
 *   another subcontract (`REPL_CONFIG`);
 * - a malformed request, and one whose request id names a path out of B's staging folder
 *   (dropped, unanswered; the file it names untouched);
 * and then serve the honest requests of the same peer as before. B's bucket holds nothing of the
 * refused batches, its staging folder stays empty, and no transfer queue of theirs is declared.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Channel, ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AmqpReplicaPeer, ReplicaReceiver, Replicator, channelTransferId, decodeReplMessage, encodeReplMessage, newTransferId, serveReplicaPeer,
  type BatchObject, type ReplicaServer, type ReplMessage, type Subcontract,
} from '../../../agent/replication/index.js';
import { ROUTING, connectBroker, transferTopology } from '../../../protocols/amqp/index.js';
import { MemoryStore } from '../../unit/replication/memory-store.js';
import { replicaVhost, type ReplicaVhost } from './replica-broker.js';

const MiB = 1024 * 1024;
const VHOST = `hostile-batches-${process.pid}`;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const sub: Subcontract = {
  id: `sc-${randomUUID()}`, from: 'cloud-a', to: 'cloud-b', source: { bucket: 'src', prefix: '' }, target: { bucket: 'dst' },
  ackMode: 'sync', bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
};
const topo = transferTopology(sub.from, sub.to, channelTransferId(sub.id));

let dir = '';
let b: MemoryStore;
let vhost: ReplicaVhost | undefined;
let server: ReplicaServer | undefined;
let attacker: { conn: ChannelModel; ch: Channel; consumerTag: string; answers: Map<string, ReplMessage> } | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(process.env['INTERCLOUD_TEST_TMP'] ?? tmpdir(), 'hostile-batches-'));
  vhost = await replicaVhost(VHOST, sub);
  b = new MemoryStore();
  await b.createBucket('dst');
  server = await serveB();
  // cloud-a's own client on the request channel B declared: it publishes what it likes and reads B's answers
  const conn = await connectBroker(vhost.loginAs('cloud-a'));
  conn.on('error', () => undefined);
  const ch = await conn.createConfirmChannel();
  const answers = new Map<string, ReplMessage>();
  const { consumerTag } = await ch.consume(topo.controlQueue, (msg) => {
    if (!msg) return;
    ch.ack(msg);
    const m = decodeReplMessage(msg.content);
    answers.set(m.requestId, m);
  });
  attacker = { conn, ch, consumerTag, answers };
}, 60_000);

afterAll(async () => {
  try {
    await attacker?.conn.close().catch(() => undefined);
    await server?.close();
    await vhost?.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

/** B serving the subcontract: 1 MiB and 100 objects reserved. */
function serveB(): Promise<ReplicaServer> {
  return serveReplicaPeer({
    broker: vhost!.loginAs('cloud-b'), subcontract: sub, receiver: new ReplicaReceiver(b, 'dst', 8, { capacityBytes: MiB, maxObjects: 100 }), workDir: join(dir, 'b'),
  });
}

/** Publishes `body` on the request channel as cloud-a. */
async function publish(body: Buffer): Promise<void> {
  const ch = attacker!.ch as Channel & { waitForConfirms(): Promise<void> };
  ch.publish(topo.exchange, ROUTING.data, body, { persistent: false, contentType: 'application/json' });
  await ch.waitForConfirms();
}

/** B's answer to request `requestId`, waited for up to `ms`. */
async function answerTo(requestId: string, ms = 10_000): Promise<ReplMessage> {
  const until = Date.now() + ms;
  for (;;) {
    const a = attacker!.answers.get(requestId);
    if (a) return a;
    if (Date.now() > until) throw new Error(`no answer to '${requestId}' in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Objects packed end to end with the sizes given (their hashes are of nothing A will send). */
function objects(sizes: readonly number[], key = (i: number) => `hostile/${i}`): BatchObject[] {
  let offset = 0;
  return sizes.map((size, i) => {
    const o = { key: key(i), etag: 'e', size, sha256: sha(Buffer.from(String(i))), offset };
    offset += size;
    return o;
  });
}

/** Sends a replicate request for `objs` (in a new transfer of the subcontract unless given) and returns B's answer. */
async function replicate(objs: BatchObject[], over: Partial<{ subcontractId: string; transferId: string }> = {}): Promise<{ answer: ReplMessage; transferId: string; ms: number }> {
  const requestId = randomUUID();
  const transferId = over.transferId ?? newTransferId(sub.id);
  const t0 = Date.now();
  await publish(encodeReplMessage({ type: 'replicate', v: 1, requestId, subcontractId: over.subcontractId ?? sub.id, transferId, objects: objs }));
  return { answer: await answerTo(requestId), transferId, ms: Date.now() - t0 };
}

/** Whether B declared the data queue of `transferId` (a passive check on a channel of its own: a 404 closes it). */
async function queueDeclared(transferId: string): Promise<boolean> {
  const ch = await attacker!.conn.createChannel();
  ch.on('error', () => undefined);
  try {
    await ch.checkQueue(transferTopology(sub.from, sub.to, transferId).dataQueue);
    await ch.close();
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

function expectRefused(a: ReplMessage, code: string): void {
  expect(a.type).toBe('error');
  expect(a.type === 'error' ? [a.code, a.retryable] : []).toEqual([code, false]);
}

function expectNothingStagedOrStored(): void {
  const staging = join(dir, 'b', 'staging');
  expect(existsSync(staging) ? readdirSync(staging) : []).toEqual([]);
  expect([...(b.raw('dst')?.keys() ?? [])].filter((k) => k.startsWith('hostile/'))).toEqual([]);
}

describe('a subcontract holder asking B for more than it reserved, over the real broker', () => {
  it('a batch declaring more bytes than the whole reservation is refused at once: nothing received, staged or stored', async () => {
    for (const sizes of [[2 * MiB], [600 * 1024, 600 * 1024], [2 ** 52]]) {
      const { answer, transferId, ms } = await replicate(objects(sizes));
      expectRefused(answer, 'REPL_OVER_RESERVATION');
      // refused before B waits for a byte: no transfer queue of it, and no wait for the transfer's expiry
      expect(ms).toBeLessThan(5_000);
      expect(await queueDeclared(transferId)).toBe(false);
      expectNothingStagedOrStored();
    }
  });

  it('batches sent together get no more than the reservation between them: the one beyond is busy while the first waits for its bytes', async () => {
    // the first is admitted and B waits for its transfer, whose bytes never come
    const requestId = randomUUID();
    const pending = newTransferId(sub.id);
    await publish(encodeReplMessage({ type: 'replicate', v: 1, requestId, subcontractId: sub.id, transferId: pending, objects: objects([700 * 1024]) }));
    const until = Date.now() + 10_000;
    while (!(await queueDeclared(pending))) {
      expect(Date.now()).toBeLessThan(until);
      await new Promise((r) => setTimeout(r, 50));
    }
    const second = await replicate(objects([400 * 1024], (i) => `hostile/second-${i}`));
    expect(second.answer.type === 'error' ? [second.answer.code, second.answer.retryable] : second.answer).toEqual(['REPL_PEER_BUSY', true]);
    expect(await queueDeclared(second.transferId)).toBe(false);
    expect(attacker!.answers.has(requestId)).toBe(false);
    // B restarted: what it was receiving is dropped with its staging (A would send it again)
    await server!.close();
    server = await serveB();
    const staging = join(dir, 'b', 'staging');
    for (const stop = Date.now() + 5_000; existsSync(staging) && readdirSync(staging).length > 0 && Date.now() < stop;) await new Promise((r) => setTimeout(r, 50));
    expectNothingStagedOrStored();
  });

  it('a batch naming a key twice is refused as a bad message', async () => {
    const { answer, transferId } = await replicate(objects([1000, 1000], () => 'hostile/twice'));
    expectRefused(answer, 'REPL_BAD_MESSAGE');
    expect(await queueDeclared(transferId)).toBe(false);
    expectNothingStagedOrStored();
  });

  it("a batch whose bytes would come in another subcontract's transfer, or naming another subcontract, is refused", async () => {
    const other = await replicate(objects([1000]), { transferId: newTransferId(`sc-${randomUUID()}`) });
    expectRefused(other.answer, 'REPL_CONFIG');
    const foreign = await replicate(objects([1000]), { subcontractId: `sc-${randomUUID()}` });
    expectRefused(foreign.answer, 'REPL_CONFIG');
    expect(await queueDeclared(foreign.transferId)).toBe(false);
    expectNothingStagedOrStored();
  });

  it("a request id naming a path out of B's staging folder is dropped: the file there is neither written nor removed", async () => {
    // B stages a batch in its work folder (dir/b/staging); the victim lies two levels up
    const victim = join(dir, 'victim.batch');
    writeFileSync(victim, 'not the peer\'s');
    const requestId = '../../victim';
    // refused later in B's handling (a foreign transfer), so B would remove its "staging file" at once
    await publish(Buffer.from(JSON.stringify({
      type: 'replicate', v: 1, requestId, subcontractId: sub.id, transferId: newTransferId(`sc-${randomUUID()}`), objects: objects([1000]),
    })));
    // answered in order: once a later request has its answer, this one would have had its own
    expectRefused((await replicate(objects([2 * MiB]))).answer, 'REPL_OVER_RESERVATION');
    expect(attacker!.answers.has(requestId)).toBe(false);
    expect(readFileSync(victim, 'utf8')).toBe('not the peer\'s');
    expectNothingStagedOrStored();
  });

  it('drops a malformed request and serves the same peer honestly afterwards, within its reservation', async () => {
    const requestId = randomUUID();
    await publish(Buffer.from(JSON.stringify({ type: 'replicate', v: 1, requestId, subcontractId: sub.id, objects: [{ key: 'hostile/x', size: -5 }] })));
    await publish(Buffer.from('{not json'));
    // answered in order: once a later request has its answer, the malformed ones would have theirs
    expectRefused((await replicate(objects([2 * MiB]))).answer, 'REPL_OVER_RESERVATION');
    expect(attacker!.answers.has(requestId)).toBe(false);
    // the honest peer below reads B's answers from the same queue
    await attacker!.ch.cancel(attacker!.consumerTag);
    const a = new MemoryStore();
    await a.createBucket('src');
    const body = randomBytes(300_000);
    a.rawPut('src', 'honest/1', body, sha(body));
    const peer = new AmqpReplicaPeer({ broker: vhost!.loginAs('cloud-a'), subcontract: sub, journalDir: join(dir, 'a-xfer'), transfer: { reconnectDelayMs: 300, endRetryMs: 500 } });
    const r = await Replicator.open({ subcontract: sub, store: a, peer, journalPath: join(dir, 'journal'), stagingDir: join(dir, 'a-staging') });
    try {
      r.start();
      await r.runPass();
      await r.idle(AbortSignal.timeout(60_000));
      expect(r.object('honest/1')!.state).toBe('COMPLETED');
      expect(b.raw('dst')!.get('honest/1')!.bytes.equals(body)).toBe(true);
    } finally {
      await r.stop();
      await peer.close();
    }
    expectNothingStagedOrStored();
  });
});
