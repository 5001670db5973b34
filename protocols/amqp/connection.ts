/**
 * Connecting to the broker (I/O): AMQP 0-9-1 over TLS with the cloud's certificate and SASL
 * EXTERNAL (the broker maps the certificate's CN — the cloud id — to the user), the server
 * verified against the Intercloud Root. Also declares a transfer's topology.
 */
import { readFileSync } from 'node:fs';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { isIntercloudError } from '../errors/index.js';
import { xferError, type XferError } from './errors.js';
import { QUEUE_IDLE_EXPIRY_MS, QUEUE_LIMITS, ROUTING, type TransferTopology } from './naming.js';

/** How to reach and log in to the broker. */
export interface BrokerOptions {
  /** `amqps://host:port/vhost`. */
  readonly url: string;
  /** PEM of the root(s) the broker's certificate must chain to (contents or a file path). */
  readonly ca: string | Buffer;
  /** The cloud's certificate and key, PEM (contents or file paths). */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** Name to verify the broker's certificate against when it differs from the url's host. */
  readonly servername?: string;
  /** AMQP heartbeat in seconds (default 10): how fast a dead broker is noticed. */
  readonly heartbeatSeconds?: number;
  /** Longest a connection attempt (TCP, TLS, AMQP handshake) may take, ms (default 10000). */
  readonly connectTimeoutMs?: number;
}

function pem(value: string | Buffer): Buffer {
  if (Buffer.isBuffer(value)) return value;
  return value.includes('-----BEGIN') ? Buffer.from(value) : readFileSync(value);
}

/** Opens a TLS connection with EXTERNAL login; errors are `XFER_BROKER_AUTH` or `XFER_BROKER`. */
export async function connectBroker(options: BrokerOptions): Promise<ChannelModel> {
  const url = new URL(options.url);
  if (url.protocol !== 'amqps:') throw xferError('XFER_CONFIG', `broker url '${options.url}' must use amqps: (tls)`);
  url.searchParams.set('heartbeat', String(options.heartbeatSeconds ?? 10));
  const limit = options.connectTimeoutMs ?? 10_000;
  const attempt = amqp.connect(url.toString(), {
    ca: [pem(options.ca)],
    cert: pem(options.cert),
    key: pem(options.key),
    ...(options.servername ? { servername: options.servername } : {}),
    credentials: amqp.credentials.external(),
    timeout: limit,
  });
  let timer: NodeJS.Timeout | undefined;
  // A broker that is still booting can accept TCP and never finish the AMQP handshake:
  // give up after `limit` (and close the connection should it still open later).
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      attempt.then((late) => late.close(), () => undefined).catch(() => undefined);
      reject(xferError('XFER_BROKER', `broker '${url.host}' did not complete the handshake in ${limit} ms`, { retryable: true }));
    }, limit);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } catch (err) {
    throw brokerError(err, `cannot connect to broker '${url.host}'`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Wraps an amqplib error: ACCESS_REFUSED (403) and a refused SASL login become
 * `XFER_BROKER_AUTH`; the rest `XFER_BROKER` (retryable). The AMQP reply code is kept.
 */
export function brokerError(err: unknown, what: string): XferError {
  if (isIntercloudError(err)) return err as XferError;
  const e = err as { code?: unknown; message?: string };
  const replyCode = typeof e.code === 'number' ? e.code : undefined;
  const details: Record<string, unknown> = { replyCode, errno: typeof e.code === 'string' ? e.code : undefined };
  const text = e.message ?? String(err);
  // AMQP 0-9-1 §1.9 reply codes: 403 access-refused, 530 not-allowed (e.g. unknown vhost).
  const auth = replyCode === 403 || replyCode === 530;
  return xferError(auth ? 'XFER_BROKER_AUTH' : 'XFER_BROKER', `${what}: ${text}`, { cause: err, details });
}

/**
 * Declares the transfer's exchange and queues (idempotent; both sides call it). `durable`
 * makes them survive a broker restart (only useful with persistent messages). Queues vanish
 * after {@link QUEUE_IDLE_EXPIRY_MS} unused.
 */
export async function assertTopology(ch: Channel, topo: TransferTopology, durable: boolean): Promise<void> {
  const args = (limits: { maxLength: number; maxLengthBytes: number }) => ({
    'x-expires': QUEUE_IDLE_EXPIRY_MS,
    'x-max-length': limits.maxLength,
    'x-max-length-bytes': limits.maxLengthBytes,
    'x-overflow': 'reject-publish',
  });
  await ch.assertExchange(topo.exchange, 'direct', { durable, autoDelete: false });
  await ch.assertQueue(topo.dataQueue, { durable, autoDelete: false, arguments: args(QUEUE_LIMITS.data) });
  await ch.assertQueue(topo.controlQueue, { durable, autoDelete: false, arguments: args(QUEUE_LIMITS.control) });
  await ch.bindQueue(topo.dataQueue, topo.exchange, ROUTING.data);
  await ch.bindQueue(topo.controlQueue, topo.exchange, ROUTING.control);
}

/** Deletes the given queues and, optionally, the exchange (idempotent). */
export async function deleteTopology(ch: Channel, queues: readonly string[], exchange?: string): Promise<void> {
  for (const q of queues) await ch.deleteQueue(q);
  if (exchange) await ch.deleteExchange(exchange);
}
