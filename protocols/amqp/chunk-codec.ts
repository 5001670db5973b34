/**
 * Compression of chunk payloads (issue 16; pure computation, no I/O): which chunks are worth
 * compressing, compressing them, and decoding a received `data` frame's payload back into the
 * chunk — with a hard limit on what a peer can make the receiver decompress.
 *
 * The codec is Brotli (RFC 7932) at quality 1, from Node's own zlib. Measured on the data
 * chunks of a real system image (`bench/transfer/codec.bench.ts`, 1 MiB chunks, per core): it
 * shrinks them 3.0× at ~190–200 MB/s and decompresses at ~250 MB/s, where DEFLATE level 1 gives
 * 2.9× at only ~80 MB/s; zstd level 1 (an npm binding) would give 3.1× at ~290 / ~330–400 MB/s
 * but brings a native dependency without a bound on its output. The asynchronous calls run in
 * libuv's thread pool, off the event loop.
 *
 * - The sender probes first ({@link worthCompressing}: quality 1 over four 4 KiB samples, on the
 *   event loop, ~0.15 ms a chunk), and sends a chunk raw when the samples do not shrink to
 *   {@link COMPRESS_RATIO} — random data and compressed files pay only the probe (Brotli gives
 *   up on incompressible input at ~1 GB/s).
 * - A chunk whose whole compressed form is not below {@link COMPRESS_RATIO} of it travels raw
 *   too ({@link compressChunk} answers `undefined`).
 * - The receiver decompresses with `maxOutputLength` = the chunk's length from the header: a
 *   decompression bomb stops at that many bytes with `XFER_BAD_FRAME`, as does a payload that
 *   does not decode, decodes short, or whose SHA-256 is not the header's ({@link decodeChunk}).
 */
import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, brotliDecompress, brotliDecompressSync, constants, type BrotliOptions } from 'node:zlib';
import { xferError } from './errors.js';
import { sha256, type Frame, type FrameCodec } from './frame.js';

/** The payload codecs this side decodes, as the receiver announces them (`codecs`). */
export const CHUNK_CODECS: readonly FrameCodec[] = ['brotli'];

/** A chunk travels compressed only when compressing shrinks it to at most this fraction. */
export const COMPRESS_RATIO = 0.875;

/** Bytes of a chunk the sender's probe compresses: 4 samples of 4 KiB spread over it. */
export const PROBE_SAMPLE = 4 * 1024;
const PROBE_SAMPLES = 4;

/**
 * Output pieces of zlib's one-shot calls: its default (16 KiB) makes 64 trips between the thread
 * pool and the event loop per MiB and a concatenation; 256 KiB pieces cut the CPU of
 * decompressing a 1 MiB chunk by ~40% and of compressing it by ~20% (measured here).
 */
const PIECE = 256 * 1024;

/** Brotli quality 1 for `length` bytes of input (the size hint lets it size its window). */
function brotliOptions(length: number): BrotliOptions {
  return { params: { [constants.BROTLI_PARAM_QUALITY]: 1, [constants.BROTLI_PARAM_SIZE_HINT]: length }, chunkSize: PIECE };
}

const compressAsync = promisify(brotliCompress) as (buf: Uint8Array, options: BrotliOptions) => Promise<Buffer>;
const decompressAsync = promisify(brotliDecompress) as (buf: Uint8Array, options: BrotliOptions) => Promise<Buffer>;

/** Why a compressed payload was refused (`details.reason` of the `XFER_BAD_FRAME` error). */
export type BadPayloadReason = 'past-chunk-length' | 'not-decodable' | 'short-of-chunk-length' | 'sha256-mismatch';

/**
 * The probe: whether `chunk` looks compressible. Compresses {@link PROBE_SAMPLE}-byte samples
 * from four places in it (synchronously: 16 KiB, ~0.15 ms) and says yes when they shrink to
 * {@link COMPRESS_RATIO}. Chunks of 16 KiB or less are taken whole.
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
  return brotliCompressSync(sample, brotliOptions(sample.length)).length <= sample.length * COMPRESS_RATIO;
}

/**
 * Compresses `chunk` with `codec` in the thread pool. Resolves to the compressed bytes, or
 * `undefined` when they are not below {@link COMPRESS_RATIO} of the chunk (it travels raw).
 */
export async function compressChunk(chunk: Uint8Array, codec: FrameCodec = 'brotli'): Promise<Buffer | undefined> {
  if (codec !== 'brotli') throw xferError('XFER_CONFIG', `chunk codec '${codec}' cannot compress`);
  const z = await compressAsync(chunk, brotliOptions(chunk.length));
  return z.length > 0 && z.length <= chunk.length * COMPRESS_RATIO ? z : undefined;
}

/** Synchronous {@link compressChunk} (tests and tools). */
export function compressChunkSync(chunk: Uint8Array, codec: FrameCodec = 'brotli'): Buffer | undefined {
  if (codec !== 'brotli') throw xferError('XFER_CONFIG', `chunk codec '${codec}' cannot compress`);
  const z = brotliCompressSync(chunk, brotliOptions(chunk.length));
  return z.length > 0 && z.length <= chunk.length * COMPRESS_RATIO ? z : undefined;
}

/**
 * The chunk a `data` frame carries, checked against the SHA-256 in its header: a raw payload as
 * it is, a compressed one decompressed in the thread pool into at most `frame.length` bytes.
 * Rejects with `XFER_BAD_FRAME` (`details.reason`: {@link BadPayloadReason}, `details.index`):
 * the receiver then asks for the chunk again. Decompressing never holds more than the chunk's
 * length, whatever the payload would expand to (zlib's `maxOutputLength`); and a header that
 * claims more than `maxLength` (the transfer's chunk size: the receiver passes it, since the
 * header's own `length` is the peer's word) is refused before anything is decompressed.
 */
export async function decodeChunk(frame: Frame, maxLength = frame.length): Promise<Buffer> {
  if (frame.kind !== 'data' || frame.payload === undefined) {
    throw xferError('XFER_BAD_FRAME', `a '${frame.kind}' frame carries no chunk`, { details: { index: frame.index } });
  }
  if (frame.length > maxLength) throw bad(frame, 'past-chunk-length', `claims ${frame.length} bytes, more than the transfer's chunk size ${maxLength}`);
  const bytes = frame.codec === 'raw' ? frame.payload : await decompress(frame);
  return checked(frame, bytes);
}

/** Synchronous {@link decodeChunk} (tests and tools). */
export function decodeChunkSync(frame: Frame, maxLength = frame.length): Buffer {
  if (frame.kind !== 'data' || frame.payload === undefined) {
    throw xferError('XFER_BAD_FRAME', `a '${frame.kind}' frame carries no chunk`, { details: { index: frame.index } });
  }
  if (frame.length > maxLength) throw bad(frame, 'past-chunk-length', `claims ${frame.length} bytes, more than the transfer's chunk size ${maxLength}`);
  if (frame.codec === 'raw') return checked(frame, frame.payload);
  if (frame.codec !== 'brotli') throw bad(frame, 'not-decodable', `codec '${frame.codec}' is not decoded here`);
  let bytes: Buffer;
  try {
    bytes = brotliDecompressSync(frame.payload, { maxOutputLength: frame.length, chunkSize: Math.min(PIECE, frame.length) });
  } catch (err) {
    throw decodeError(frame, err);
  }
  return checked(frame, bytes);
}

async function decompress(frame: Frame): Promise<Buffer> {
  if (frame.codec !== 'brotli') throw bad(frame, 'not-decodable', `codec '${frame.codec}' is not decoded here`);
  try {
    return await decompressAsync(frame.payload!, { maxOutputLength: frame.length, chunkSize: Math.min(PIECE, frame.length) });
  } catch (err) {
    throw decodeError(frame, err);
  }
}

function decodeError(frame: Frame, err: unknown): Error {
  // Node's zlib: `ERR_BUFFER_TOO_LARGE` when the output would pass `maxOutputLength`.
  const tooLarge = (err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
  return bad(
    frame,
    tooLarge ? 'past-chunk-length' : 'not-decodable',
    tooLarge ? `decompresses past the chunk's ${frame.length} bytes` : 'does not decompress',
    err,
  );
}

function checked(frame: Frame, bytes: Buffer): Buffer {
  if (bytes.length !== frame.length) throw bad(frame, 'short-of-chunk-length', `decompresses to ${bytes.length} bytes, not the chunk's ${frame.length}`);
  if (!sha256(bytes).equals(frame.sha256)) throw bad(frame, 'sha256-mismatch', 'does not match its sha-256');
  return bytes;
}

function bad(frame: Frame, reason: BadPayloadReason, what: string, cause?: unknown): Error {
  return xferError('XFER_BAD_FRAME', `chunk '${frame.index}' ('${frame.codec}' payload of ${frame.payload?.length ?? 0} bytes) ${what}`, {
    details: { index: frame.index, codec: frame.codec, reason },
    ...(cause === undefined ? {} : { cause }),
  });
}
