/**
 * Connecting to the broker (I/O): AMQP 0-9-1 over TLS with the cloud's certificate and SASL
 * EXTERNAL (the broker maps the certificate's CN — the cloud id — to the user), the server
 * verified against the Intercloud Root. Also declares a transfer's topology.
 */
import { readFileSync } from 'node:fs';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { isIntercloudError } from '../errors/index.js';
import { xferError, type XferError } from './errors.js';
import { installFrameReader } from './frame-reader.js';
import { MAX_TRANSFER_MESSAGE_BYTES } from './messages.js';
import { QUEUE_IDLE_EXPIRY_MS, QUEUE_LIMITS, ROUTING, type TransferTopology } from './naming.js';

/** The frame size amqplib asks the broker for (its `frameMax` default, 128 KiB), headers included. */
const AMQPLIB_FRAME_MAX = 0x20000;

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
  /**
   * Largest message this side takes from the broker (default {@link MAX_TRANSFER_MESSAGE_BYTES}):
   * a delivery announcing more closes the connection with `XFER_TOO_LARGE` before its body is
   * read. A broker that is a peer's (a sender consumes the target's control queue) is not held
   * to our `max_message_size`.
   */
  readonly maxMessageBytes?: number;
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
  // amqplib refuses an incoming frame larger than this (its default is 64 MiB, whatever frame size
  // was negotiated): the negotiated maximum, so a broker's frame header cannot make the frame
  // reader (frame-reader.ts) allocate more than one frame of it.
  url.searchParams.set('maxFrameSize', String(Math.max(Number(url.searchParams.get('frameMax') ?? 0), AMQPLIB_FRAME_MAX)));
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
    const model = await Promise.race([attempt, timeout]);
    installFrameReader(model, { maxMessageBytes: options.maxMessageBytes ?? MAX_TRANSFER_MESSAGE_BYTES });
    return model;
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

const LEGACY_CONTROL_QUEUE = 'legacyControlQueue';

/** True for {@link assertTopology}'s error about a control queue an earlier agent declared non-durable. */
export function isLegacyControlQueue(err: unknown): boolean {
  return isIntercloudError(err) && (err as XferError).details[LEGACY_CONTROL_QUEUE] === true;
}

/**
 * Declares the transfer's exchange and queues (idempotent; both sides call it). `durable`
 * makes them survive a broker restart (only useful with persistent messages). Queues vanish
 * after {@link QUEUE_IDLE_EXPIRY_MS} unused. The control queue is durable whatever `durable`
 * says — the receiver's persistent `committed` answer must outlive a broker restart, since the
 * receiver stops once it was confirmed — unless `controlDurable` is false: as an agent before
 * that change declared it. A control queue that exists with other arguments (such an agent's,
 * for a transfer in flight across an upgrade) fails the declaration with a retryable
 * `XFER_BROKER` whose details say `legacyControlQueue`: the caller's next session declares it
 * non-durable.
 */
export async function assertTopology(ch: Channel, topo: TransferTopology, durable: boolean, o: { controlDurable?: boolean } = {}): Promise<void> {
  const args = (limits: { maxLength: number; maxLengthBytes: number }) => ({
    'x-expires': QUEUE_IDLE_EXPIRY_MS,
    'x-max-length': limits.maxLength,
    'x-max-length-bytes': limits.maxLengthBytes,
    'x-overflow': 'reject-publish',
  });
  const controlDurable = o.controlDurable ?? true;
  await ch.assertExchange(topo.exchange, 'direct', { durable, autoDelete: false });
  await ch.assertQueue(topo.dataQueue, { durable, autoDelete: false, arguments: args(QUEUE_LIMITS.data) });
  try {
    await ch.assertQueue(topo.controlQueue, { durable: controlDurable, autoDelete: false, arguments: args(QUEUE_LIMITS.control) });
  } catch (err) {
    // 406 PRECONDITION_FAILED: the queue exists with other arguments (`durable` among them).
    if ((err as { code?: unknown }).code !== 406 || !controlDurable) throw err;
    throw xferError('XFER_BROKER', `control queue '${topo.controlQueue}' exists with other arguments (declared non-durable, as by an agent of an earlier version?): declared non-durable on the next attempt`, {
      cause: err, retryable: true, details: { replyCode: 406, [LEGACY_CONTROL_QUEUE]: true },
    });
  }
  await ch.bindQueue(topo.dataQueue, topo.exchange, ROUTING.data);
  await ch.bindQueue(topo.controlQueue, topo.exchange, ROUTING.control);
}

/** Deletes the given queues and, optionally, the exchange (idempotent). */
export async function deleteTopology(ch: Channel, queues: readonly string[], exchange?: string): Promise<void> {
  for (const q of queues) await ch.deleteQueue(q);
  if (exchange) await ch.deleteExchange(exchange);
}

/** Errno values of a broker that cannot be reached (retryable), as opposed to a wrong one. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'EADDRNOTAVAIL']);

/**
 * Proves that the broker at `host:port` holds a certificate for `identity` under `ca`
 * (issue 13) before this cloud presents its own certificate there: a TLS 1.3 handshake with
 * no client certificate and `identity` as the server name (chain and name are checked by
 * Node's verification), then closed — no AMQP byte is sent. In TLS 1.3 the server's
 * certificate comes before it asks for ours, so the check completes even at a broker that
 * requires client certificates. Resolves when it does; throws `XFER_BROKER_IDENTITY` (not
 * retryable) when the server's certificate does not chain or does not carry `identity`, or
 * the server does not speak TLS; `XFER_BROKER` (retryable) when it cannot be reached.
 */
export async function probeBrokerIdentity(options: {
  host: string; port: number; identity: string; ca: string | Buffer; crl?: string | Buffer; timeoutMs?: number;
}): Promise<void> {
  const { connect } = await import('node:tls');
  const where = `${options.host}:${options.port}`;
  await new Promise<void>((resolve, reject) => {
    const socket = connect({
      host: options.host, port: options.port, servername: options.identity, ca: [pem(options.ca)],
      ...(options.crl ? { crl: [pem(options.crl)] } : {}),
      minVersion: 'TLSv1.3',
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(xferError('XFER_BROKER', `broker '${where}' did not complete a tls handshake in ${options.timeoutMs ?? 10_000} ms`, { retryable: true }));
    }, options.timeoutMs ?? 10_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const code = typeof err.code === 'string' ? err.code : undefined;
      if (code !== undefined && UNREACHABLE.has(code)) {
        reject(xferError('XFER_BROKER', `cannot reach broker '${where}': ${err.message}`, { cause: err, details: { errno: code }, retryable: true }));
      } else {
        reject(xferError('XFER_BROKER_IDENTITY', `the server at '${where}' did not prove identity '${options.identity}': ${err.message}`, {
          cause: err, details: { errno: code, identity: options.identity },
        }));
      }
    });
  });
}
