/**
 * Broker resource names of a transfer (pure). Every resource of a transfer embeds both cloud
 * ids, so a broker permission regex per cloud ({@link permissionPattern}) makes each transfer's
 * exchange and queues reachable only by its two clouds. Publishing goes to the transfer's own
 * direct exchange — never the default exchange, which any user with write access to
 * `amq.default` could use to inject into any queue.
 */
import { xferError } from './errors.js';
import { isTransferId } from './frame.js';

const CLOUD_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The broker names of one transfer. */
export interface TransferTopology {
  /** Direct exchange both sides publish to. */
  readonly exchange: string;
  /** Sender → receiver: manifest, chunk frames, end. Routing key `data`. */
  readonly dataQueue: string;
  /** Receiver → sender: status, need, committed, abort. Routing key `ctl`. */
  readonly controlQueue: string;
}

/** Routing keys inside a transfer's exchange. */
export const ROUTING = { data: 'data', control: 'ctl' } as const;

/**
 * A queue unused this long is deleted by the broker (RabbitMQ `x-expires`): the last-resort
 * cleanup when both sides died. Both sides declare queues with identical arguments, so it is a
 * protocol constant.
 */
export const QUEUE_IDLE_EXPIRY_MS = 24 * 3600 * 1000;

/**
 * Length limits of a transfer's queues (RabbitMQ `x-max-length`, `x-max-length-bytes`) with
 * `x-overflow: reject-publish`: past them the broker nacks the publish instead of holding it,
 * so one peer cannot make the broker hold an unbounded backlog (issue 12 finding 9). An honest
 * sender has at most its window unconfirmed and the receiver drains the data queue as it
 * writes; a nacked chunk is sent again after the sender's reconnect pause, so the limit only
 * slows a sender that runs far ahead of a stalled receiver. Both sides declare the queues with
 * these same arguments (the broker refuses a declaration that differs), so they are protocol
 * constants: changing them is a breaking change for transfers in flight.
 */
export const QUEUE_LIMITS = {
  data: { maxLength: 65_536, maxLengthBytes: 256 * 1024 * 1024 },
  control: { maxLength: 1_024, maxLengthBytes: 64 * 1024 * 1024 },
} as const;

/**
 * The broker policy (RabbitMQ `PUT /api/policies/VHOST/NAME`) that bounds every queue a transfer
 * name may take, whoever declares it: a peer's grant lets it declare its transfers' queues, and
 * one that declares first chooses their arguments (none: unbounded). A policy's length limits and
 * expiry apply beside a queue's own, the smaller winning, so a classic queue is held to at most the
 * data queue's limits whatever it was declared with (its own `x-overflow` wins over the policy's:
 * a peer may make its queue drop its oldest messages instead of refusing new ones, still within
 * the limits). A stream is not held by it: the agent deletes those (`sweepForeignQueues`). The
 * agent puts the policy in place before it grants any peer anything (`BrokerGrants`).
 */
export const TRANSFER_QUEUE_POLICY = {
  name: 'intercloud-transfer-queues',
  body: {
    pattern: '^xfer\\.',
    'apply-to': 'queues',
    priority: 0,
    definition: {
      'max-length': QUEUE_LIMITS.data.maxLength,
      'max-length-bytes': QUEUE_LIMITS.data.maxLengthBytes,
      overflow: 'reject-publish',
      expires: QUEUE_IDLE_EXPIRY_MS,
    },
  },
} as const;

/** Names of the transfer `transferId` from cloud `from` to cloud `to`. */
export function transferTopology(from: string, to: string, transferId: string): TransferTopology {
  for (const id of [from, to]) if (!CLOUD_RE.test(id)) throw xferError('XFER_CONFIG', `cloud id '${id}' is not valid`);
  if (!isTransferId(transferId)) throw xferError('XFER_CONFIG', `transfer id '${transferId}' is not a lowercase uuid`);
  const exchange = `xfer.${from}.${to}.${transferId}`;
  return { exchange, dataQueue: `${exchange}.data`, controlQueue: `${exchange}.ctl` };
}

/**
 * The RabbitMQ permission regex (configure, write and read alike) for `cloudId`: the resources
 * of transfers it sends or receives, nothing else.
 */
export function permissionPattern(cloudId: string): string {
  if (!CLOUD_RE.test(cloudId)) throw xferError('XFER_CONFIG', `cloud id '${cloudId}' is not valid`);
  const id = cloudId.replace(/-/g, '\\-');
  return `^xfer\\.(${id}\\.[a-z0-9-]+|[a-z0-9-]+\\.${id})\\.[0-9a-f-]{36}(\\.(data|ctl))?$`;
}

const PREFIX_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}$/;

/**
 * True when `prefix` is a transfer prefix: the first three groups of a lowercase uuid (16 hex
 * digits, `xxxxxxxx-xxxx-xxxx`), the form a storage subcontract's transfer ids all start with
 * (agent/replication `transferPrefix`). Only this form goes into a permission regex.
 */
export function isTransferPrefix(prefix: string): boolean {
  return PREFIX_RE.test(prefix);
}

/**
 * The RabbitMQ permission regex (configure, write and read alike) a target grants peer `from`
 * on its own broker: the exchange and queues of exactly the transfers `transferIds` from `from`
 * into `to`, and of every transfer from `from` into `to` whose id starts with one of
 * `transferPrefixes` (a storage subcontract's open-ended series of transfers, its request
 * channel included, issue 14) — nothing else (no ids and no prefixes match nothing). The target
 * widens and narrows it as it accepts offers and as their jobs or subcontracts end (issue 13).
 * Throws `XFER_CONFIG` for a cloud id, transfer id or prefix ({@link isTransferPrefix}) that is
 * not in its fixed form, so nothing a peer chose reaches the regex unchecked.
 */
export function grantPattern(from: string, to: string, transferIds: readonly string[], transferPrefixes: readonly string[] = []): string {
  for (const id of [from, to]) if (!CLOUD_RE.test(id)) throw xferError('XFER_CONFIG', `cloud id '${id}' is not valid`);
  for (const id of transferIds) if (!isTransferId(id)) throw xferError('XFER_CONFIG', `transfer id '${id}' is not a lowercase uuid`);
  for (const p of transferPrefixes) {
    if (!isTransferPrefix(p)) throw xferError('XFER_CONFIG', `transfer prefix '${p}' is not the first three groups of a lowercase uuid`);
  }
  // Matches no name, not even '' (the default exchange).
  if (transferIds.length === 0 && transferPrefixes.length === 0) return '(?!)';
  const esc = (c: string): string => c.replace(/-/g, '\\-');
  // Exact ids, then each prefix followed by exactly the uuid's last two groups: a prefix covers
  // all of its subcontract's transfers and no longer or shorter lookalike.
  const alternatives = [
    ...[...new Set(transferIds)].sort().map(esc),
    ...[...new Set(transferPrefixes)].sort().map((p) => `${esc(p)}\\-[0-9a-f]{4}\\-[0-9a-f]{12}`),
  ].join('|');
  return `^xfer\\.${esc(from)}\\.${esc(to)}\\.(${alternatives})(\\.(data|ctl))?$`;
}
