/**
 * `publishConfirmed` (protocols/amqp/session-util.ts) against stand-ins of a confirm channel: a
 * broker that confirms, one that refuses, and one in a resource alarm that confirms nothing.
 */
import type { ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { publishConfirmed } from '../../../protocols/amqp/session-util.js';

/** A confirm channel whose broker answers each publish with `answer` (never, when undefined). */
function channel(answer: (cb: (err: unknown) => void) => void): ConfirmChannel {
  return { publish: (_x: string, _k: string, _b: Buffer, _o: unknown, cb: (err: unknown) => void) => { answer(cb); return true; } } as unknown as ConfirmChannel;
}

describe('publishConfirmed', () => {
  it('resolves on the confirm', async () => {
    await expect(publishConfirmed(channel((cb) => setImmediate(() => cb(null))), 'x', 'ctl', Buffer.from('m'), false, 1000)).resolves.toBeUndefined();
  });

  it('rejects a refused message with a retryable XFER_BROKER', async () => {
    await expect(publishConfirmed(channel((cb) => setImmediate(() => cb(new Error('message nacked')))), 'x', 'ctl', Buffer.from('m'), false, 1000))
      .rejects.toMatchObject({ code: 'XFER_BROKER' });
  });

  it('gives up on a broker that confirms nothing (a resource alarm) after the bound, retryably', async () => {
    const t0 = Date.now();
    const err = await publishConfirmed(channel(() => undefined), 'x', 'ctl', Buffer.from('m'), false, 100).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'XFER_BROKER', retryable: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
  });
});
