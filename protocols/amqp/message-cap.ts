/**
 * Does this cloud's broker cap messages at {@link MAX_TRANSFER_MESSAGE_BYTES}? A transfer
 * receiver holds each unacked message whole, so the cap (RabbitMQ's `max_message_size`) is what
 * bounds what a sending peer can make it hold; RabbitMQ's default is 128 MiB. Asked of the broker
 * itself (I/O): one message a byte over the cap, published into a probe transfer's own queue.
 */
import { randomUUID } from 'node:crypto';
import { assertTopology, connectBroker, deleteTopology, type BrokerOptions } from './connection.js';
import { MAX_TRANSFER_MESSAGE_BYTES } from './messages.js';
import { ROUTING, transferTopology } from './naming.js';

/** The sender name of the probe's transfer (a name no cloud is given: it is this module's). */
export const MESSAGE_CAP_PROBE = 'message-cap-probe';

/**
 * `capped`: the broker refused a message of {@link MAX_TRANSFER_MESSAGE_BYTES} + 1 bytes (its
 * channel closed with PRECONDITION_FAILED); `uncapped`: it took it (the probe removes it).
 * `cloudId` is this cloud, the probe transfer's receiver: its permissions cover the probe's
 * exchange and queues, as they cover any transfer into it. Other failures throw.
 */
export async function probeMessageCap(broker: BrokerOptions, cloudId: string): Promise<'capped' | 'uncapped'> {
  const topo = transferTopology(MESSAGE_CAP_PROBE, cloudId, randomUUID());
  const conn = await connectBroker(broker);
  try {
    const admin = await conn.createChannel();
    admin.on('error', () => undefined);
    await assertTopology(admin, topo, false);
    try {
      const ch = await conn.createConfirmChannel();
      const refused = new Promise<'capped'>((resolve, reject) => ch.on('error', (err: Error) => {
        if (/PRECONDITION_FAILED|PRECONDITION-FAILED|406/.test(err.message)) resolve('capped');
        else reject(err);
      }));
      const taken = new Promise<'uncapped'>((resolve, reject) => {
        ch.publish(topo.exchange, ROUTING.data, Buffer.alloc(MAX_TRANSFER_MESSAGE_BYTES + 1), {}, (err) => (err ? reject(err) : resolve('uncapped')));
      });
      taken.catch(() => undefined);
      const answer = await Promise.race([refused, taken]);
      if (answer === 'uncapped') await ch.close().catch(() => undefined);
      return answer;
    } finally {
      await deleteTopology(admin, [topo.dataQueue, topo.controlQueue], topo.exchange).catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}
