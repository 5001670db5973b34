/**
 * Small helpers shared by the sender and receiver (I/O side): confirmed publishing, an
 * abortable sleep, closing channel-then-connection in the right order.
 */
import type { Channel, ChannelModel, ConfirmChannel, Message } from 'amqplib';
import { brokerError } from './connection.js';
import { xferError } from './errors.js';

/**
 * Longest wait for the broker's confirm of one control message. A broker in a resource alarm
 * (memory, disk) stops reading its publishers and confirms nothing; without a bound, whoever
 * waits for the confirm — a receiver winding down after its expiry — would wait for ever.
 */
export const CONFIRM_TIMEOUT_MS = 30_000;

/**
 * Publishes `body` to `exchange`/`routingKey` and resolves when the broker confirms it; rejects
 * with a retryable `XFER_BROKER` when it refuses it, or confirms nothing in `timeoutMs`.
 */
export function publishConfirmed(
  ch: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Buffer,
  persistent: boolean,
  timeoutMs = CONFIRM_TIMEOUT_MS,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(xferError('XFER_BROKER', `broker confirmed no message to '${exchange}' in ${timeoutMs} ms (a resource alarm?)`, { retryable: true }));
    }, timeoutMs);
    timer.unref();
    try {
      ch.publish(exchange, routingKey, body, { persistent, mandatory: false }, (err) => {
        clearTimeout(timer);
        if (err) reject(brokerError(err, `broker did not confirm a message to '${exchange}'`));
        else resolve();
      });
    } catch (err) {
      clearTimeout(timer);
      reject(brokerError(err, `cannot publish to '${exchange}'`));
    }
  });
}

/** Resolves after `ms`, or early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Closes the channel, then the connection. The order matters: closing the connection first
 * drops acks still buffered on the channel, and the broker redelivers those messages.
 * Errors while closing an already broken connection are returned, not thrown.
 */
export async function closeQuietly(ch: { close(): Promise<void> } | undefined, conn: ChannelModel | undefined): Promise<unknown[]> {
  const errors: unknown[] = [];
  if (ch) await ch.close().catch((err: unknown) => errors.push(err));
  if (conn) await conn.close().catch((err: unknown) => errors.push(err));
  return errors;
}

/** A promise with its resolve/reject exposed. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
  readonly settled: boolean;
}

/** Makes a {@link Deferred}. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = (v) => {
      settled = true;
      res(v);
    };
    reject = (e) => {
      settled = true;
      rej(e);
    };
  });
  promise.catch(() => undefined);
  return {
    promise,
    resolve: (v) => resolve(v),
    reject: (e) => reject(e),
    get settled() {
      return settled;
    },
  };
}

/**
 * Acks `msg` on `ch`. A channel that closed meanwhile (broker gone) makes amqplib throw; that
 * becomes a retryable `XFER_BROKER`: the message is redelivered after the reconnect.
 */
export function ackOn(ch: Channel, msg: Message): void {
  try {
    ch.ack(msg);
  } catch (err) {
    throw xferError('XFER_BROKER', 'cannot ack: the channel is closed', { cause: err, retryable: true });
  }
}
