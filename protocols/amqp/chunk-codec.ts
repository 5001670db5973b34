/**
 * Compression of chunk payloads (issue 16; pure computation, no I/O): which chunks are worth
 * compressing, compressing them, and decoding a received `data` frame's payload back into the
 * chunk — with a hard limit on what a peer can make the receiver inflate.
 *
 * The codec is DEFLATE without a zlib wrapper (RFC 1951) at level 1, from Node's own zlib: on a
 * real system image it halves the data chunks at about the speed of the chunk's SHA-256, and
 * inflates several times faster than that (`bench/transfer/codec.bench.ts` has the numbers
 * against brotli and the npm lz4/zstd bindings). The asynchronous calls run in libuv's thread
 * pool, off the event loop.
 *
 * - The sender probes first ({@link worthCompressing}: level 1 over a small sample, on the
 *   event loop, a fraction of the chunk's hash), and sends a chunk raw when the sample does not
 *   shrink to {@link COMPRESS_RATIO} — random data and compressed files pay only the probe.
 * - A chunk whose whole compressed form is not below {@link COMPRESS_RATIO} of it travels raw
 *   too ({@link compressChunk} answers `undefined`).
 * - The receiver inflates with `maxOutputLength` = the chunk's length from the header: a
 *   decompression bomb stops at that many bytes with `XFER_BAD_FRAME`, as does a payload that
 *   does not inflate, inflates short, or whose SHA-256 is not the header's ({@link decodeChunk}).
 */
import { promisify } from 'node:util';
import { deflateRaw, deflateRawSync, inflateRaw, inflateRawSync, type ZlibOptions } from 'node:zlib';
import { xferError } from './errors.js';
import { sha256, type Frame, type FrameCodec } from './frame.js';

/** The payload codecs this side decodes, as the receiver announces them (`codecs`). */
export const CHUNK_CODECS: readonly FrameCodec[] = ['deflate-raw'];

/** A chunk travels compressed only when compressing shrinks it to at most this fraction. */
export const COMPRESS_RATIO = 0.875;

/** Bytes of a chunk the sender's probe compresses: 4 samples of 4 KiB spread over it. */
export const PROBE_SAMPLE = 4 * 1024;
const PROBE_SAMPLES = 4;

/** DEFLATE level 1 (fastest): on image data it gives most of level 6's ratio at 3-4× its speed. */
const DEFLATE: ZlibOptions = { level: 1 };

const deflateRawAsync = promisify(deflateRaw) as (buf: Uint8Array, options: ZlibOptions) => Promise<Buffer>;
const inflateRawAsync = promisify(inflateRaw) as (buf: Uint8Array, options: ZlibOptions) => Promise<Buffer>;

/** Why a compressed payload was refused (`details.reason` of the `XFER_BAD_FRAME` error). */
export type BadPayloadReason = 'inflates-past-length' | 'inflate-failed' | 'inflates-short' | 'sha256-mismatch';

/**
 * The probe: whether `chunk` looks compressible. Compresses {@link PROBE_SAMPLE}-byte samples
 * from four places in it at level 1 (synchronously: ~16 KiB, far less than hashing the chunk)
 * and says yes when they shrink to {@link COMPRESS_RATIO}. Chunks of 16 KiB or less are taken
 * whole.
 */
export function worthCompressing(chunk: Uint8Array): boolean {
  const n = chunk.length;
  let sample: Uint8Array;
  if (n <= PROBE_SAMPLE * PROBE_SAMPLES) sample = chunk;
  else {
    const s = Buffer.allocUnsafe(PROBE_SAMPLE * PROBE_SAMPLES);
    const step = Math.floor((n - PROBE_SAMPLE) / (PROBE_SAMPLES - 1));
    for (let i = 0; i < PROBE_SAMPLES; i++) s.set(chunk.subarray(i * step, i * step + PROBE_SAMPLE), i * PROBE_SAMPLE);
    sample = s;
  }
  return deflateRawSync(sample, DEFLATE).length <= sample.length * COMPRESS_RATIO;
}

/**
 * Compresses `chunk` with `codec` in the thread pool. Resolves to the compressed bytes, or
 * `undefined` when they are not below {@link COMPRESS_RATIO} of the chunk (it travels raw).
 */
export async function compressChunk(chunk: Uint8Array, codec: FrameCodec = 'deflate-raw'): Promise<Buffer | undefined> {
  if (codec !== 'deflate-raw') throw xferError('XFER_CONFIG', `chunk codec '${codec}' cannot compress`);
  const z = await deflateRawAsync(chunk, DEFLATE);
  return z.length > 0 && z.length <= chunk.length * COMPRESS_RATIO ? z : undefined;
}

/** Synchronous {@link compressChunk} (tests and tools). */
export function compressChunkSync(chunk: Uint8Array, codec: FrameCodec = 'deflate-raw'): Buffer | undefined {
  if (codec !== 'deflate-raw') throw xferError('XFER_CONFIG', `chunk codec '${codec}' cannot compress`);
  const z = deflateRawSync(chunk, DEFLATE);
  return z.length > 0 && z.length <= chunk.length * COMPRESS_RATIO ? z : undefined;
}

/**
 * The chunk a `data` frame carries, checked against the SHA-256 in its header: a raw payload as
 * it is, a compressed one inflated in the thread pool into at most `frame.length` bytes.
 * Rejects with `XFER_BAD_FRAME` (`details.reason`: {@link BadPayloadReason}, `details.index`):
 * the receiver then asks for the chunk again. Inflating never holds more than the chunk's
 * length, whatever the payload claims (zlib's `maxOutputLength`).
 */
export async function decodeChunk(frame: Frame): Promise<Buffer> {
  if (frame.kind !== 'data' || frame.payload === undefined) {
    throw xferError('XFER_BAD_FRAME', `a '${frame.kind}' frame carries no chunk`, { details: { index: frame.index } });
  }
  const bytes = frame.codec === 'raw' ? frame.payload : await inflate(frame, (p, o) => inflateRawAsync(p, o));
  return checked(frame, bytes);
}

/** Synchronous {@link decodeChunk} (tests and tools). */
export function decodeChunkSync(frame: Frame): Buffer {
  if (frame.kind !== 'data' || frame.payload === undefined) {
    throw xferError('XFER_BAD_FRAME', `a '${frame.kind}' frame carries no chunk`, { details: { index: frame.index } });
  }
  if (frame.codec === 'raw') return checked(frame, frame.payload);
  let bytes: Buffer;
  try {
    bytes = inflateRawSync(frame.payload, { maxOutputLength: frame.length });
  } catch (err) {
    throw inflateError(frame, err);
  }
  return checked(frame, bytes);
}

async function inflate(frame: Frame, run: (payload: Buffer, o: ZlibOptions) => Promise<Buffer>): Promise<Buffer> {
  if (frame.codec !== 'deflate-raw') throw bad(frame, 'inflate-failed', `codec '${frame.codec}' is not decoded here`);
  try {
    return await run(frame.payload!, { maxOutputLength: frame.length });
  } catch (err) {
    throw inflateError(frame, err);
  }
}

function inflateError(frame: Frame, err: unknown): Error {
  // Node's zlib: `ERR_BUFFER_TOO_LARGE` when the output would pass `maxOutputLength`.
  const tooLarge = (err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
  return bad(
    frame,
    tooLarge ? 'inflates-past-length' : 'inflate-failed',
    tooLarge ? `inflates past the chunk's ${frame.length} bytes` : 'does not inflate',
    err,
  );
}

function checked(frame: Frame, bytes: Buffer): Buffer {
  if (bytes.length !== frame.length) throw bad(frame, 'inflates-short', `inflates to ${bytes.length} bytes, not the chunk's ${frame.length}`);
  if (!sha256(bytes).equals(frame.sha256)) throw bad(frame, 'sha256-mismatch', 'does not match its sha-256');
  return bytes;
}

function bad(frame: Frame, reason: BadPayloadReason, what: string, cause?: unknown): Error {
  return xferError('XFER_BAD_FRAME', `chunk '${frame.index}' ('${frame.codec}' payload of ${frame.payload?.length ?? 0} bytes) ${what}`, {
    details: { index: frame.index, codec: frame.codec, reason },
    ...(cause === undefined ? {} : { cause }),
  });
}
