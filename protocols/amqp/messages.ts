/**
 * Control messages of a transfer (pure codec): JSON bodies, a discriminated union on `type`.
 *
 * Sender → receiver, on the transfer's data queue, in order with the chunk frames:
 * - `manifest`: what is coming (size, chunk size, deadline); answered by `status`.
 * - `end`: every chunk has been published once; carries the manifest again (so it is
 *   self-contained after a broker restart) and the SHA-256 of the whole source. Re-sent as a
 *   poll until the receiver answers `committed`, `need` or `abort`.
 *
 * Receiver → sender, on the transfer's control queue:
 * - `status`: the chunks the receiver holds durably (base64 bitmap) and the hashes it can
 *   copy locally (its content index), so a restarted sender re-sends only what is lacking.
 * - `need`: chunk ranges to send (again) as data: corrupted in flight, lost with a broker,
 *   or a `ref` whose bytes the receiver did not find.
 * - `committed`: the target file is in place and its SHA-256 matched.
 * - `codecs`: the payload codecs the receiver decodes (issue 16), sent before every `status`;
 *   a sender compresses `data` frames only with a codec listed there. A message of its own, not
 *   a field of `status`, so that a sender from before it (strict schema) ignores it as a body it
 *   cannot decode instead of refusing the `status`.
 *
 * Either way: `abort` (deadline passed, abort signal, or a failure such as a full disk).
 *
 * A body is a frame when it starts with the frame magic, a control message otherwise
 * ({@link classifyBody}).
 */
import { z } from 'zod';
import { xferError } from './errors.js';
import { FRAME_MAGIC, isTransferId } from './frame.js';
import { validRanges, type ChunkRanges } from './chunk-set.js';

/** Version of the control messages; a receiver refuses other versions. */
export const CONTROL_VERSION = 1;

const cloudId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a cloud id is lowercase letters, digits and dashes');
const transferId = z.string().refine(isTransferId, 'a transfer id is a lowercase uuid');
const hex256 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha-256 is 64 lowercase hex digits');
const ranges = z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive()]));

const manifestSchema = z.strictObject({
  transferId,
  from: cloudId,
  to: cloudId,
  /** A name for humans and logs (file or object name); not a path. */
  name: z.string().max(255),
  size: z.number().int().nonnegative(),
  chunkSize: z.number().int().min(4096).max(64 * 1024 * 1024),
  chunkCount: z.number().int().nonnegative(),
  /** Deadline, milliseconds since the epoch; after it the transfer is aborted on both sides. */
  expiresAt: z.number().int().positive(),
});

/** What a transfer moves: sent first and again with `end`. */
export type Manifest = z.infer<typeof manifestSchema>;

/**
 * Most content-index hashes a receiver offers in one `status` (each ~67 bytes of JSON): chunks
 * beyond them travel as data, never wrongly. With a full bitmap (2^24 chunks, ~2.8 MiB in
 * base64) a `status` stays under {@link MAX_TRANSFER_MESSAGE_BYTES}.
 */
export const MAX_STATUS_HASHES = 100_000;

/**
 * The largest message a transfer sends: a `status` with a full bitmap and
 * {@link MAX_STATUS_HASHES} hashes (~9.5 MiB), or a data frame of a
 * `MAX_RECEIVED_CHUNK_SIZE` chunk (4 MiB), with room to spare. The receiving cloud's broker caps
 * messages at this (`max_message_size`, scripts/services.d/30-rabbitmq.sh; RabbitMQ's default is
 * 128 MiB): a sender that ignores its own manifest can make a receiver hold at most its prefetch
 * of these (8 × 16 MiB), not 8 × 128 MiB. Either side refuses a longer control message unread
 * ({@link decodeControl}): the broker that carries it may be the peer's.
 */
export const MAX_TRANSFER_MESSAGE_BYTES = 16 * 1024 * 1024 + 4096;

const base = { v: z.literal(CONTROL_VERSION), transferId };
const abortReason = z.enum(['expired', 'aborted', 'failed']);

const controlSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('manifest'), ...base, manifest: manifestSchema }),
  z.strictObject({ type: z.literal('end'), ...base, manifest: manifestSchema, digest: hex256 }),
  z.strictObject({
    type: z.literal('status'),
    ...base,
    chunkCount: z.number().int().nonnegative(),
    have: z.string(),
    /** SHA-256 (hex) of chunks the receiver can copy from its content index. */
    hashes: z.array(hex256).max(MAX_STATUS_HASHES),
  }),
  z.strictObject({ type: z.literal('need'), ...base, chunks: ranges }),
  /** Codec names (`frame.ts` `FRAME_CODEC`); a sender ignores names it does not know. */
  z.strictObject({ type: z.literal('codecs'), ...base, codecs: z.array(z.string().max(32)).max(16) }),
  z.strictObject({ type: z.literal('committed'), ...base, digest: hex256, size: z.number().int().nonnegative() }),
  z.strictObject({
    type: z.literal('abort'),
    ...base,
    reason: abortReason,
    /** The `XFER_…` code behind a `failed` abort (e.g. `XFER_DISK_FULL`). */
    code: z.string().max(64).optional(),
    message: z.string().max(1024).optional(),
  }),
]);

/** Any control message. */
export type ControlMessage = z.infer<typeof controlSchema>;
/** The `type` of a control message. */
export type ControlType = ControlMessage['type'];
/** The control message of one `type`. */
export type ControlOf<T extends ControlType> = Extract<ControlMessage, { type: T }>;
/** Why a transfer was aborted. */
export type AbortReason = z.infer<typeof abortReason>;

/** Checks a manifest (ids, sizes, chunk count consistent with size and chunk size). */
export function parseManifest(value: unknown): Manifest {
  const r = manifestSchema.safeParse(value);
  if (!r.success) throw xferError('XFER_BAD_FRAME', `invalid manifest: ${r.error.issues.map(describeIssue).join('; ')}`);
  checkManifest(r.data);
  return r.data;
}

function checkManifest(m: Manifest): void {
  const expected = Math.ceil(m.size / m.chunkSize);
  if (m.chunkCount !== expected) {
    throw xferError('XFER_BAD_FRAME', `manifest chunk count '${m.chunkCount}' does not match size '${m.size}' / chunk size '${m.chunkSize}'`);
  }
  if (m.from === m.to) throw xferError('XFER_BAD_FRAME', `manifest sender and receiver are both '${m.from}'`);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  return `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`;
}

/** Encodes a control message as UTF-8 JSON. */
export function encodeControl(msg: ControlMessage): Buffer {
  return Buffer.from(JSON.stringify(msg), 'utf8');
}

/** Decodes and validates a control message (schema, versions, ranges, manifest consistency). */
export function decodeControl(body: Buffer): ControlMessage {
  if (body.length > MAX_TRANSFER_MESSAGE_BYTES) {
    throw xferError('XFER_BAD_FRAME', `control message of ${body.length} bytes, more than the ${MAX_TRANSFER_MESSAGE_BYTES} a transfer sends`);
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw xferError('XFER_BAD_FRAME', 'control message is not json', { cause: err });
  }
  const r = controlSchema.safeParse(json);
  if (!r.success) throw xferError('XFER_BAD_FRAME', `invalid control message: ${r.error.issues.map(describeIssue).join('; ')}`);
  const msg = r.data;
  if (msg.type === 'manifest' || msg.type === 'end') {
    checkManifest(msg.manifest);
    if (msg.manifest.transferId !== msg.transferId) throw xferError('XFER_BAD_FRAME', 'manifest transfer id differs from the message\'s');
  }
  if (msg.type === 'need' && !validRanges(msg.chunks, Number.MAX_SAFE_INTEGER)) {
    throw xferError('XFER_BAD_FRAME', 'need ranges are not ascending, non-empty and disjoint');
  }
  return msg;
}

/** Builds a `need` message (a helper so that ranges are typed as the codec expects). */
export function needMessage(transferIdValue: string, chunks: ChunkRanges): ControlOf<'need'> {
  return { type: 'need', v: CONTROL_VERSION, transferId: transferIdValue, chunks: chunks.map(([a, b]) => [a, b] as [number, number]) };
}

/** Whether a body on a data queue is a chunk frame or a control message. */
export function classifyBody(body: Buffer): 'frame' | 'control' {
  return body.length >= 4 && body.readUInt32BE(0) === FRAME_MAGIC ? 'frame' : 'control';
}
