/**
 * A storage subcontract's grant at the target's REAL broker (issues 13 and 14): cloud-b's
 * `BrokerGrants` (agent/daemon/broker-grants.ts) gives cloud-a, through cloud-b's RabbitMQ
 * management API on the `transfers` vhost, every transfer whose id has the subcontract's prefix,
 * in the same per-peer regex as a VM offer's exact ids, and withdraws it when the subcontract ends.
 * cloud-a and the attacker cloud-c log in with their own certificates (EXTERNAL); cloud-b, the
 * broker's owner, creates the resources of transfers cloud-a was not granted and checks them.
 *
 * It kills and restarts nothing. It does set cloud-a's permission on cloud-b's `transfers` vhost,
 * which cloud-b's agent sets during a migration, so it takes the federation lock (no agent runs
 * meanwhile) and puts back the permissions of cloud-a and cloud-c it found.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerGrants } from '../../../agent/daemon/broker-grants.js';
import { transferIdFor } from '../../../agent/daemon/transfer-ids.js';
import { channelTransferId, newTransferId, transferPrefix } from '../../../agent/replication/index.js';
import { QUEUE_LIMITS, ROUTING, TRANSFER_QUEUE_POLICY, transferTopology, type TransferTopology } from '../../../protocols/amqp/index.js';
import { assertTopology } from '../../../protocols/amqp/connection.js';
import { lockFederation } from '../../../scripts/federation-lock.js';
import { loadServicesFile } from '../../../scripts/local-federation.js';
import { brokerManagement } from '../../helpers/broker-management.js';
import { STATE_DIR } from '../../helpers/services.js';

const s = loadServicesFile(STATE_DIR);
const ROOT = readFileSync(s.pki.root, 'utf8');
const brokerB = s.brokers['cloud-b']!;
const VHOST = decodeURIComponent(new URL(brokerB.url).pathname.slice(1));

const SC1 = `it-grant-${process.pid}-${randomUUID()}`;
const SC2 = `it-grant-${process.pid}-${randomUUID()}`;
const SUB_OFFER = `sub-${randomUUID()}`;
const VM_OFFER = randomUUID();
/** cloud-a's transfers of subcontract SC1: the request channel and one object transfer. */
const mine = [channelTransferId(SC1), newTransferId(SC1)].map((id) => transferTopology('cloud-a', 'cloud-b', id));
/** A VM offer of cloud-a whose transfer's data queue cloud-a declares first, with its own arguments. */
const ATTACK_OFFER = randomUUID();
const attacked = transferTopology('cloud-a', 'cloud-b', transferIdFor(ATTACK_OFFER, '0'));
const policyPath = `/api/policies/${encodeURIComponent(VHOST)}/${TRANSFER_QUEUE_POLICY.name}`;
/** A VM offer of cloud-a whose transfer's data queue cloud-a declares first as a stream. */
const STREAM_OFFER = randomUUID();
const streamed = transferTopology('cloud-a', 'cloud-b', transferIdFor(STREAM_OFFER, '0'));
/** A VM offer of cloud-a that cloud-b granted beside the subcontract. */
const vmGranted = transferTopology('cloud-a', 'cloud-b', transferIdFor(VM_OFFER, '0'));
/** Live transfers into cloud-b that cloud-a was not granted: another subcontract's, another VM offer's. */
const others = [
  transferTopology('cloud-a', 'cloud-b', newTransferId(SC2)),
  transferTopology('cloud-a', 'cloud-b', channelTransferId(SC2)),
  transferTopology('cloud-a', 'cloud-b', transferIdFor(randomUUID(), '0')),
];

/** A call to cloud-b's management API, as its agent makes it. */
const mgmt = brokerManagement('cloud-b');

const permissionPath = (user: string): string => `/api/permissions/${encodeURIComponent(VHOST)}/${user}`;

/** Logs in to cloud-b's broker as `cloud` with its own certificate (EXTERNAL). */
function connectAs(cloud: string): Promise<amqp.ChannelModel> {
  const id = s.pki.clouds[cloud]!;
  return amqp.connect(brokerB.url, {
    ca: [ROOT], cert: readFileSync(id.cert), key: readFileSync(id.key), servername: brokerB.identity, credentials: amqp.credentials.external(),
  });
}

/** The AMQP reply code an operation on a fresh confirm channel failed with (403 access refused), or 'ok'. */
async function replyOf(conn: amqp.ChannelModel, op: (ch: amqp.ConfirmChannel) => Promise<unknown>): Promise<number | 'ok'> {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => undefined);
  try {
    await op(ch);
    await ch.close();
    return 'ok';
  } catch (err) {
    // The broker's reply code; anything else (a failed expectation) is the test's own failure.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

/** The first message `queue` delivers to a consumer (basic.consume), acknowledged. */
async function consumeOne(ch: amqp.Channel, queue: string): Promise<string> {
  let consuming: Promise<amqp.Replies.Consume> | undefined;
  const body = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing delivered from '${queue}'`)), 10_000);
    consuming = ch.consume(queue, (m) => {
      if (!m) return;
      clearTimeout(timer);
      ch.ack(m);
      resolve(m.content.toString());
    });
    consuming.catch((err: unknown) => { clearTimeout(timer); reject(err as Error); });
  });
  await ch.cancel((await consuming!).consumerTag);
  return body;
}

/** As the sender and receiver do: declare the transfer, publish on both routing keys, consume both queues. */
async function roundTrip(ch: amqp.ConfirmChannel, t: TransferTopology): Promise<void> {
  await assertTopology(ch, t, false);
  const tag = randomUUID();
  ch.publish(t.exchange, ROUTING.data, Buffer.from(`data ${tag}`));
  ch.publish(t.exchange, ROUTING.control, Buffer.from(`ctl ${tag}`));
  await ch.waitForConfirms();
  expect(await consumeOne(ch, t.dataQueue)).toBe(`data ${tag}`);
  expect(await consumeOne(ch, t.controlQueue)).toBe(`ctl ${tag}`);
}

/** What `cloud` can do to transfer `t` at cloud-b's broker: 'ok', an AMQP reply code per operation, or the login's failure. */
async function accessOf(cloud: string, t: TransferTopology): Promise<Record<string, number | string>> {
  let conn: amqp.ChannelModel;
  try {
    conn = await connectAs(cloud);
  } catch (err) {
    return { login: String((err as { code?: unknown }).code ?? err) };
  }
  try {
    return {
      declare: await replyOf(conn, (ch) => ch.assertQueue(t.dataQueue, { durable: false })),
      consume: await replyOf(conn, (ch) => ch.get(t.dataQueue)),
      // A refused publish closes the channel: the next call on it fails with the publish's code.
      publish: await replyOf(conn, async (ch) => { ch.publish(t.exchange, ROUTING.data, Buffer.from('intruder')); await ch.checkExchange(t.exchange); }),
    };
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** cloud-b, the owner, counts the messages in a queue (passive declare). */
async function messagesIn(owner: amqp.ChannelModel, queue: string): Promise<number> {
  const ch = await owner.createChannel();
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await ch.close();
  }
}

const saved = new Map<string, unknown>();
let unlock: (() => Promise<void>) | undefined;
let owner: amqp.ChannelModel | undefined;
let grants: BrokerGrants;

beforeAll(async () => {
  unlock = await lockFederation();
  for (const user of ['cloud-a', 'cloud-c']) {
    const r = await mgmt('GET', permissionPath(user));
    expect([200, 404]).toContain(r.status);
    const p = r.body as { configure: string; write: string; read: string } | null;
    saved.set(user, r.status === 200 && p ? { configure: p.configure, write: p.write, read: p.read } : undefined);
  }
  grants = new BrokerGrants({
    url: brokerB.management.url, user: brokerB.management.user,
    password: (await fs.readFile(brokerB.management.passwordFile, 'utf8')).trim(), vhost: VHOST, cloudId: 'cloud-b',
  });
  // The transfers cloud-a was not granted exist, each with one message, as a live peer's would.
  owner = await connectAs('cloud-b');
  const ch = await owner.createConfirmChannel();
  for (const t of others) {
    await assertTopology(ch, t, false);
    ch.publish(t.exchange, ROUTING.data, Buffer.from('theirs'));
  }
  await ch.waitForConfirms();
  await ch.close();
}, 660_000);

afterAll(async () => {
  try {
    if (owner) {
      const ch = await owner.createChannel();
      for (const t of [...mine, vmGranted, attacked, streamed, ...others]) {
        await ch.deleteQueue(t.dataQueue);
        await ch.deleteQueue(t.controlQueue);
        await ch.deleteExchange(t.exchange);
      }
      await ch.close();
      await owner.close();
    }
    for (const [user, perm] of saved) {
      if (perm === undefined) expect([204, 404]).toContain((await mgmt('DELETE', permissionPath(user))).status);
      else expect((await mgmt('PUT', permissionPath(user), perm)).status).toBeLessThan(300);
    }
  } finally {
    await unlock?.();
  }
}, 120_000);

const refused = { declare: 403, consume: 403, publish: 403 };

describe("a storage subcontract's grant at cloud-b's broker (transfers vhost)", () => {
  it("lets cloud-a declare, publish and consume on the subcontract's transfers beside its VM offer's, and nothing else", async () => {
    await grants.grant({ peer: 'cloud-a', offerId: VM_OFFER, transferIds: [transferIdFor(VM_OFFER, '0')] });
    await grants.grant({ peer: 'cloud-a', offerId: SUB_OFFER, transferIds: [], transferPrefixes: [transferPrefix(SC1)] });
    const conn = await connectAs('cloud-a');
    try {
      for (const t of [...mine, vmGranted]) expect(await replyOf(conn, (ch) => roundTrip(ch, t)), t.exchange).toBe('ok');
    } finally {
      await conn.close().catch(() => undefined);
    }
    // Another subcontract's transfers and a VM transfer it was not granted: refused, and untouched.
    for (const t of others) {
      expect(await accessOf('cloud-a', t), t.exchange).toEqual(refused);
      expect(await messagesIn(owner!, t.dataQueue), t.dataQueue).toBe(1);
    }
  });

  it('gives cloud-c nothing: not even the vhost', async () => {
    expect((await mgmt('GET', permissionPath('cloud-c'))).status).toBe(404);
    for (const t of [mine[1]!, vmGranted, others[0]!]) {
      const access = await accessOf('cloud-c', t);
      expect(Object.keys(access)).toEqual(['login']);
    }
  });

  it("withdraws the subcontract's transfers when it ends (the VM offer's stay), then everything", async () => {
    await grants.withdraw('cloud-a', SUB_OFFER);
    for (const t of mine) expect(await accessOf('cloud-a', t), t.exchange).toEqual(refused);
    const conn = await connectAs('cloud-a');
    try {
      expect(await replyOf(conn, (ch) => roundTrip(ch, vmGranted))).toBe('ok');
    } finally {
      await conn.close().catch(() => undefined);
    }
    await grants.withdraw('cloud-a', VM_OFFER);
    expect((await mgmt('GET', permissionPath('cloud-a'))).status).toBe(404);
    for (const t of [...mine, vmGranted]) expect(Object.keys(await accessOf('cloud-a', t))).toEqual(['login']);
  });

  it("holds a queue cloud-a declares first, with arguments of its own, to the data queue's limits (the policy put before its grant)", async () => {
    // A broker that never had the policy (an operator's own): the first grant puts it there.
    expect([204, 404]).toContain((await mgmt('DELETE', policyPath)).status);
    const fresh = new BrokerGrants({
      url: brokerB.management.url, user: brokerB.management.user,
      password: (await fs.readFile(brokerB.management.passwordFile, 'utf8')).trim(), vhost: VHOST, cloudId: 'cloud-b',
    });
    await fresh.grant({ peer: 'cloud-a', offerId: ATTACK_OFFER, transferIds: [transferIdFor(ATTACK_OFFER, '0')] });
    expect((await mgmt('GET', policyPath)).body).toMatchObject({ pattern: TRANSFER_QUEUE_POLICY.body.pattern, definition: TRANSFER_QUEUE_POLICY.body.definition });
    const conn = await connectAs('cloud-a');
    try {
      const ch = await conn.createConfirmChannel();
      // Durable, ten million messages long, never expiring: as cloud-a asks, before cloud-b's receiver could.
      await ch.assertExchange(attacked.exchange, 'direct', { durable: false });
      await ch.assertQueue(attacked.dataQueue, { durable: true, arguments: { 'x-max-length': 10_000_000 } });
      await ch.bindQueue(attacked.dataQueue, attacked.exchange, ROUTING.data);
      const n = QUEUE_LIMITS.data.maxLength + 1;
      let nacked = 0;
      const confirms: Array<Promise<void>> = [];
      for (let i = 0; i < n; i++) {
        confirms.push(new Promise<void>((resolve) => {
          ch.publish(attacked.exchange, ROUTING.data, Buffer.from('x'), {}, (err) => { if (err) nacked++; resolve(); });
        }));
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(confirms);
      const held = await messagesIn(owner!, attacked.dataQueue);
      console.info(`cloud-a's own queue: ${n} published, ${nacked} refused, ${held} held`);
      expect(held).toBe(QUEUE_LIMITS.data.maxLength);
      expect(nacked).toBe(1);
    } finally {
      await conn.close().catch(() => undefined);
      await fresh.withdraw('cloud-a', ATTACK_OFFER);
    }
  }, 120_000);
  it("deletes a granted queue name cloud-a declared as a stream (which no policy bounds), and no classic queue", async () => {
    await grants.grant({ peer: 'cloud-a', offerId: STREAM_OFFER, transferIds: [transferIdFor(STREAM_OFFER, '0')] });
    const conn = await connectAs('cloud-a');
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertExchange(streamed.exchange, 'direct', { durable: false });
      await ch.assertQueue(streamed.dataQueue, { durable: true, arguments: { 'x-queue-type': 'stream', 'x-stream-max-segment-size-bytes': 3_000_000_000 } });
      await ch.bindQueue(streamed.dataQueue, streamed.exchange, ROUTING.data);
      ch.publish(streamed.exchange, ROUTING.data, Buffer.alloc(1024 * 1024));
      await ch.waitForConfirms();
    } finally {
      await conn.close().catch(() => undefined);
    }
    const classicBefore = (await mgmt('GET', `/api/queues/${encodeURIComponent(VHOST)}?columns=name,type`)).body as Array<{ name: string; type: string }>;
    expect(classicBefore.find((q) => q.name === streamed.dataQueue)?.type).toBe('stream');
    // As the agent does: the deletion over AMQP as cloud-b (its management user has no vhost permission).
    const deleted = await grants.sweepForeignQueues(async (names) => {
      const ch = await owner!.createChannel();
      for (const n of names) await ch.deleteQueue(n);
      await ch.close();
    });
    expect(deleted).toContain(streamed.dataQueue);
    const after = (await mgmt('GET', `/api/queues/${encodeURIComponent(VHOST)}?columns=name,type`)).body as Array<{ name: string; type: string }>;
    expect(after.map((q) => q.name)).not.toContain(streamed.dataQueue);
    // Every classic queue there before is there still (the others' transfers among them).
    for (const q of classicBefore.filter((c) => c.type === 'classic')) expect(after.map((a) => a.name)).toContain(q.name);
    await grants.withdraw('cloud-a', STREAM_OFFER);
  }, 60_000);
});
