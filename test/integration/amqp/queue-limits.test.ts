/**
 * Issue 12 finding 9 (queue part): a transfer's queues have a length limit, past which the
 * broker refuses the publish (nack) instead of holding an unbounded backlog. The attacker is
 * cloud-c, a certified cloud, as the sending side of a transfer to cloud-b, with a plain
 * amqplib client on the real RabbitMQ; the queues are declared as cloud-b's receiver declares them.
 */
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { assertTopology, deleteTopology } from '../../../protocols/amqp/connection.js';
import { MAX_TRANSFER_MESSAGE_BYTES, QUEUE_LIMITS, ROUTING, connectBroker, probeMessageCap, transferTopology } from '../../../protocols/amqp/index.js';
import { type AmqpEnv, serviceEnv } from '../../helpers/services.js';
import { brokerFor, rabbit } from './helpers.js';

/**
 * cloud-b's receiver declares transfer `topo`'s queues (the protocol's own declaration), and
 * cloud-c, the attacker, logs in as a plain amqplib client with its certificate (SASL EXTERNAL).
 */
async function receiverAndAttacker(topo: ReturnType<typeof transferTopology>, closers: Array<() => Promise<void>>) {
  // The publish loops below keep the event loop busy for seconds under load: the helpers' 2 s
  // heartbeat (for the fault tests) let the broker drop this connection mid-test.
  const receiver = await connectBroker({ ...brokerFor('cloud-b'), heartbeatSeconds: 30 });
  closers.push(async () => receiver.close());
  const rch = await receiver.createChannel();
  await assertTopology(rch, topo, false);
  closers.push(async () => deleteTopology(rch, [topo.dataQueue, topo.controlQueue], topo.exchange));
  const r = rabbit();
  const u = r.users['cloud-c']!;
  const conn = await amqp.connect(r.url, {
    ca: [readFileSync(r.tls.ca)], cert: readFileSync(u.cert), key: readFileSync(u.key), servername: r.servername,
    credentials: amqp.credentials.external(),
  });
  closers.push(async () => conn.close().catch(() => undefined));
  return { rch, conn };
}

describe('transfer queues', () => {
  const topo = transferTopology('cloud-c', 'cloud-b', randomUUID());
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    // A connection the broker dropped may never answer a close: each gets 10 s.
    for (const close of closers.reverse()) await Promise.race([close().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
  });

  it('refuse messages past their length limit: 65,537 tiny publishes by cloud-c, the last one nacked', async () => {
    const { rch, conn } = await receiverAndAttacker(topo, closers);
    const ch = await conn.createConfirmChannel();
    const n = QUEUE_LIMITS.data.maxLength + 1;
    let acked = 0;
    let nacked = 0;
    const body = Buffer.from('x');
    const confirms: Array<Promise<void>> = [];
    for (let i = 0; i < n; i++) {
      confirms.push(new Promise<void>((resolve) => {
        ch.publish(topo.exchange, ROUTING.data, body, {}, (err) => {
          if (err) nacked++;
          else acked++;
          resolve();
        });
      }));
      if (i % 1000 === 999) await new Promise((res) => setImmediate(res));
    }
    await Promise.all(confirms);
    const q = await rch.checkQueue(topo.dataQueue);
    console.info(`data queue: ${acked} accepted, ${nacked} refused, ${q.messageCount} held`);
    expect(q.messageCount).toBe(QUEUE_LIMITS.data.maxLength);
    expect(nacked).toBe(1);
    expect(acked).toBe(QUEUE_LIMITS.data.maxLength);
  }, 120_000);

  it('take no message larger than a data frame of the largest chunk: cloud-c\'s one byte more is refused by the broker', async () => {
    // What a receiver holds is its prefetch times the largest message: RabbitMQ's default cap
    // (128 MiB) would let one sender make it hold gigabytes.
    const big = transferTopology('cloud-c', 'cloud-b', randomUUID());
    const { rch, conn } = await receiverAndAttacker(big, closers);
    const publish = async (bytes: number): Promise<'accepted' | string> => {
      const ch = await conn.createConfirmChannel();
      const closed = new Promise<string>((resolve) => ch.on('error', (err: Error) => resolve(err.message)));
      const confirmed = new Promise<'accepted' | string>((resolve) => {
        ch.publish(big.exchange, ROUTING.data, Buffer.alloc(bytes), {}, (err) => resolve(err ? `nacked: ${String(err)}` : 'accepted'));
      });
      const outcome = await Promise.race([confirmed, closed]);
      if (outcome === 'accepted') await ch.close();
      return outcome;
    };
    expect(await publish(MAX_TRANSFER_MESSAGE_BYTES)).toBe('accepted');
    const refused = await publish(MAX_TRANSFER_MESSAGE_BYTES + 1);
    console.info(`a message of ${MAX_TRANSFER_MESSAGE_BYTES + 1} bytes: ${refused}`);
    expect(refused).toMatch(/PRECONDITION_FAILED|larger than configured max size/);
    const q = await rch.checkQueue(big.dataQueue);
    expect(q.messageCount).toBe(1);
  }, 60_000);

  it('are capped, as the agent asks at start: the probe says capped here, uncapped on a broker with RabbitMQ\'s default, and leaves nothing', async () => {
    const r = serviceEnv<AmqpEnv>('rabbitmq');
    const ctl = (...args: string[]): string => execFileSync(r.ctl, args, { encoding: 'utf8' });
    const setCap = (bytes: number): string => ctl('eval', `application:set_env(rabbit, max_message_size, ${bytes}).`);
    const queues = (): string => ctl('list_queues', '-p', r.vhost, 'name', '--quiet', '--no-table-headers');
    expect(await probeMessageCap(brokerFor('cloud-b'), 'cloud-b')).toBe('capped');
    try {
      // RabbitMQ's default; a channel reads it when it opens.
      setCap(128 * 1024 * 1024);
      expect(await probeMessageCap(brokerFor('cloud-b'), 'cloud-b')).toBe('uncapped');
    } finally {
      setCap(MAX_TRANSFER_MESSAGE_BYTES);
    }
    expect(await probeMessageCap(brokerFor('cloud-b'), 'cloud-b')).toBe('capped');
    expect(queues()).not.toMatch(/message-cap-probe/);
  }, 60_000);
});
