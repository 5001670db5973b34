/**
 * A target's broker handing the sender many copies of `committed` (it controls the control queue,
 * and amqplib does not hold a broker to the prefetch it was asked for): the sender keeps one
 * unacked, until its journal holds it, and acks every other copy at once, so that no number of
 * copies, each up to the message cap, piles up in its memory. `sendTransfer` over a stand-in
 * broker session whose control queue delivers the copies as soon as the sender consumes it.
 */
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConsumeMessage } from 'amqplib';
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('../../../protocols/amqp/connection.js', async (importOriginal) => ({
  ...(await importOriginal<typeof connection>()),
  connectBroker: vi.fn(),
  assertTopology: vi.fn(async () => undefined),
  deleteTopology: vi.fn(async () => undefined),
}));

import * as connection from '../../../protocols/amqp/connection.js';
import { CONTROL_VERSION, encodeControl, sendTransfer } from '../../../protocols/amqp/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('sender: copies of committed from the target', () => {
  it('keeps one copy unacked and acks the other nineteen as they arrive', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xfer-copies-'));
    dirs.push(dir);
    const src = join(dir, 'disk.raw');
    await fs.writeFile(src, Buffer.alloc(64 * 1024, 7));
    const acked: number[] = [];
    let ackedWhenDelivered = -1;
    const committed = encodeControl({ v: CONTROL_VERSION, type: 'committed', transferId: TID, digest: 'a'.repeat(64), size: 64 * 1024 });
    vi.mocked(connection.connectBroker).mockImplementation(async () => {
      const ch = {
        on: () => ch,
        prefetch: async () => undefined,
        consume: async (_q: string, deliver: (m: ConsumeMessage | null) => void) => {
          for (let tag = 1; tag <= 20; tag++) deliver({ content: committed, fields: { deliveryTag: tag }, properties: {} } as unknown as ConsumeMessage);
          ackedWhenDelivered = acked.length;
          return { consumerTag: 'c' };
        },
        publish: (_x: string, _k: string, _body: Buffer, _o: unknown, confirmed: (err: unknown) => void) => {
          setImmediate(() => confirmed(null));
          return true;
        },
        ack: (m: ConsumeMessage) => { acked.push(m.fields.deliveryTag); },
        close: async () => undefined,
      };
      const conn = { on: () => conn, createConfirmChannel: async () => ch, close: async () => undefined };
      return conn as never;
    });
    const ac = new AbortController();
    const sending = sendTransfer({
      broker: { url: 'amqps://127.0.0.1:1/none', ca: 'x', cert: 'x', key: 'x' }, transferId: TID, from: 'cloud-a', to: 'cloud-b',
      source: src, expiresAt: Date.now() + 60_000, journalDir: dir, signal: ac.signal, reconnectDelayMs: 10,
    }).catch((err: unknown) => err);
    for (let i = 0; i < 200 && ackedWhenDelivered < 0; i++) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await sending;
    expect(ackedWhenDelivered).toBe(19);
    expect(acked.slice(0, 19)).toEqual(Array.from({ length: 19 }, (_, i) => i + 2));
  });
});
