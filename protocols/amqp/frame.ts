/**
 * The chunk frame: the body of every data message of a transfer (pure codec, no I/O).
 *
 * A frame is a fixed 76-byte big-endian header followed, for `data` frames only, by the
 * chunk's bytes. Each chunk index of a transfer is described by exactly one frame kind:
 *
 * - `data`: the bytes travel in the frame;
 * - `zero`: the chunk is all zeros (or a hole at the source): nothing travels, the target
 *   leaves a hole;
 * - `ref`: the target already holds a chunk with this SHA-256 (its content index, e.g. a base
 *   image), so only the hash travels and the target copies the bytes locally.
 *
 * The header carries its own CRC-32 (ISO-HDLC, as zlib) so that a corrupted index or offset is
 * never mistaken for a valid chunk; the payload is covered by the SHA-256 (FIPS 180-4) in the
 * header, which the receiver checks before writing.
 *
 * A `data` frame's payload may travel compressed (issue 16): the low 4 bits of `flags` name its
 * codec ({@link FRAME_CODEC}: 0 raw, 1 Brotli, RFC 7932; 2 is kept for zstd, RFC 8878). `length` and
 * the SHA-256 stay those of the chunk itself, uncompressed; a compressed payload is shorter
 * than `length` (otherwise it travels raw). The other flag bits are zero. The codec is
 * `chunk-codec.ts`'s; a sender compresses only for a receiver that said it decodes the codec.
 *
 * ```
 *  0  magic "ICXF"        4  version u8 (1)      5  kind u8          6  flags u16 (bits 0-3 codec)
 *  8  transfer id (16 bytes, RFC 9562 UUID)     24  chunk index u32  28  length u32
 * 32  offset u64          40  sha-256 (32 bytes) 72  crc-32 of bytes 0..71 u32
 * 76  payload (data frames: `length` bytes raw, or fewer compressed)
 * ```
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { xferError } from './errors.js';

/** Frame magic, ASCII "ICXF". */
export const FRAME_MAGIC = 0x49435846;
/** The frame format version this codec writes and reads. */
export const FRAME_VERSION = 1;
/** Size of the fixed header in bytes. */
export const FRAME_HEADER_SIZE = 76;

/** Frame kinds on the wire. */
export const FRAME_KIND = { data: 1, zero: 2, ref: 3 } as const;

/** How one chunk travels. */
export type FrameKind = keyof typeof FRAME_KIND;

/**
 * Codecs of a `data` frame's payload, in the low 4 bits of the header's `flags`: `raw` (the
 * chunk's bytes) or `brotli` (a Brotli stream, RFC 7932). Value 2 is kept for zstd (RFC 8878).
 */
export const FRAME_CODEC = { raw: 0, brotli: 1 } as const;

/** The codec of a frame's payload. */
export type FrameCodec = keyof typeof FRAME_CODEC;

const CODEC_MASK = 0x000f;

/** The decoded header of a chunk frame. */
export interface FrameHeader {
  readonly kind: FrameKind;
  /** The transfer's id, a UUID in canonical lowercase form. */
  readonly transferId: string;
  /** The chunk's index, from 0. */
  readonly index: number;
  /** Byte offset of the chunk in the file (`index × chunkSize`). */
  readonly offset: number;
  /** Length of the chunk in bytes (the last chunk may be short). */
  readonly length: number;
  /** SHA-256 of the chunk's content (32 bytes), uncompressed. */
  readonly sha256: Buffer;
  /** How a `data` frame's payload is encoded (default `raw`; other kinds are always `raw`). */
  readonly codec?: FrameCodec;
}

/**
 * A decoded frame: its header and, for `data`, a view of the payload as it travelled (not a
 * copy): the chunk itself when `codec` is `raw`, else its compressed form (`chunk-codec.ts`
 * decodes it).
 */
export interface Frame extends FrameHeader {
  readonly codec: FrameCodec;
  readonly payload: Buffer | undefined;
}

const KIND_BY_CODE = new Map<number, FrameKind>(Object.entries(FRAME_KIND).map(([k, v]) => [v, k as FrameKind]));
const CODEC_BY_CODE = new Map<number, FrameCodec>(Object.entries(FRAME_CODEC).map(([k, v]) => [v, k as FrameCodec]));
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True when `id` is a canonical lowercase UUID, the form transfer ids take. */
export function isTransferId(id: string): boolean {
  return UUID_RE.test(id);
}

/** SHA-256 of `bytes` (the chunk hash of frames and of the content index). */
export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * Encodes one frame. For `data` the payload (the chunk, or its compressed form for another
 * `codec`) is copied after the header into one buffer (amqplib sends one body buffer per
 * message); `zero` and `ref` frames are header-only.
 */
export function encodeFrame(header: FrameHeader, payload?: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + (payload?.length ?? 0));
  if (payload !== undefined) buf.set(payload, FRAME_HEADER_SIZE);
  checkPayload(header, payload?.length);
  return fillHeader(buf, header);
}

/**
 * Writes a frame header into the first {@link FRAME_HEADER_SIZE} bytes of `buf`, after whose
 * header the caller already read the payload in place (the sender's zero-copy path). Same
 * checks and layout as {@link encodeFrame}.
 */
export function writeFrameHeader(buf: Buffer, header: FrameHeader): Buffer {
  checkPayload(header, header.kind === 'data' ? buf.length - FRAME_HEADER_SIZE : undefined);
  if (header.kind !== 'data' && buf.length !== FRAME_HEADER_SIZE) {
    throw xferError('XFER_BAD_FRAME', `a '${header.kind}' frame takes no payload`);
  }
  return fillHeader(buf, header);
}

function checkPayload(header: FrameHeader, payloadLength: number | undefined): void {
  const isData = header.kind === 'data';
  const codec = header.codec ?? 'raw';
  if (isData !== (payloadLength !== undefined)) {
    throw xferError('XFER_BAD_FRAME', `a '${header.kind}' frame ${isData ? 'needs' : 'takes no'} payload`);
  }
  if (!isData && codec !== 'raw') throw xferError('XFER_BAD_FRAME', `a '${header.kind}' frame has no '${codec}' payload`);
  if (payloadLength === undefined) return;
  if (codec === 'raw' && payloadLength !== header.length) {
    throw xferError('XFER_BAD_FRAME', `payload has '${payloadLength}' bytes, header says '${header.length}'`);
  }
  if (codec !== 'raw' && (payloadLength === 0 || payloadLength >= header.length)) {
    throw xferError('XFER_BAD_FRAME', `'${codec}' payload has '${payloadLength}' bytes, not fewer than the chunk's '${header.length}'`);
  }
}

function fillHeader(buf: Buffer, header: FrameHeader): Buffer {
  if (!isTransferId(header.transferId)) {
    throw xferError('XFER_BAD_FRAME', `transfer id '${header.transferId}' is not a lowercase uuid`);
  }
  if (!Number.isSafeInteger(header.index) || header.index < 0 || header.index > 0xffffffff) {
    throw xferError('XFER_BAD_FRAME', `chunk index '${header.index}' is out of range`);
  }
  if (!Number.isSafeInteger(header.offset) || header.offset < 0) {
    throw xferError('XFER_BAD_FRAME', `chunk offset '${header.offset}' is out of range`);
  }
  if (!Number.isSafeInteger(header.length) || header.length <= 0 || header.length > 0xffffffff) {
    throw xferError('XFER_BAD_FRAME', `chunk length '${header.length}' is out of range`);
  }
  if (header.sha256.length !== 32) {
    throw xferError('XFER_BAD_FRAME', `chunk sha-256 has '${header.sha256.length}' bytes, not 32`);
  }
  buf.writeUInt32BE(FRAME_MAGIC, 0);
  buf.writeUInt8(FRAME_VERSION, 4);
  buf.writeUInt8(FRAME_KIND[header.kind], 5);
  buf.writeUInt16BE(FRAME_CODEC[header.codec ?? 'raw'], 6);
  Buffer.from(header.transferId.replace(/-/g, ''), 'hex').copy(buf, 8);
  buf.writeUInt32BE(header.index, 24);
  buf.writeUInt32BE(header.length, 28);
  buf.writeBigUInt64BE(BigInt(header.offset), 32);
  header.sha256.copy(buf, 40);
  buf.writeUInt32BE(crc32(buf.subarray(0, 72)), 72);
  return buf;
}

/**
 * Decodes a frame. Checks magic, version, header CRC, kind, codec and the payload length (a
 * compressed payload: shorter than the chunk); does **not** check the payload's SHA-256 (see
 * {@link verifyPayload}) nor decompress it, so that a corrupted payload can be told apart (and
 * re-requested by index) from a corrupted header.
 */
export function decodeFrame(buf: Buffer): Frame {
  if (buf.length < FRAME_HEADER_SIZE) {
    throw xferError('XFER_BAD_FRAME', `frame has '${buf.length}' bytes, fewer than the header's ${FRAME_HEADER_SIZE}`);
  }
  if (buf.readUInt32BE(0) !== FRAME_MAGIC) {
    throw xferError('XFER_BAD_FRAME', `frame magic is '0x${buf.readUInt32BE(0).toString(16)}', not 'ICXF'`);
  }
  const version = buf.readUInt8(4);
  if (version !== FRAME_VERSION) throw xferError('XFER_BAD_FRAME', `frame version '${version}' is not supported`);
  const crc = buf.readUInt32BE(72);
  if (crc32(buf.subarray(0, 72)) !== crc) throw xferError('XFER_BAD_FRAME', 'frame header crc-32 does not match');
  const kind = KIND_BY_CODE.get(buf.readUInt8(5));
  if (kind === undefined) throw xferError('XFER_BAD_FRAME', `frame kind '${buf.readUInt8(5)}' is unknown`);
  const flags = buf.readUInt16BE(6);
  const codec = CODEC_BY_CODE.get(flags & CODEC_MASK);
  if (codec === undefined || (flags & ~CODEC_MASK) !== 0) throw xferError('XFER_BAD_FRAME', `frame flags '0x${flags.toString(16)}' are unknown`);
  if (codec !== 'raw' && kind !== 'data') throw xferError('XFER_BAD_FRAME', `a '${kind}' frame has no '${codec}' payload`);
  const hex = buf.toString('hex', 8, 24);
  const transferId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const index = buf.readUInt32BE(24);
  const length = buf.readUInt32BE(28);
  const offset64 = buf.readBigUInt64BE(32);
  if (offset64 > BigInt(Number.MAX_SAFE_INTEGER)) throw xferError('XFER_BAD_FRAME', `frame offset '${offset64}' is too large`);
  if (length === 0) throw xferError('XFER_BAD_FRAME', 'frame length is 0');
  if (codec !== 'raw') {
    const n = buf.length - FRAME_HEADER_SIZE;
    if (n === 0 || n >= length) throw xferError('XFER_BAD_FRAME', `'${codec}' payload has '${n}' bytes, not fewer than the chunk's '${length}'`);
  } else {
    const expected = FRAME_HEADER_SIZE + (kind === 'data' ? length : 0);
    if (buf.length !== expected) {
      throw xferError('XFER_BAD_FRAME', `'${kind}' frame has '${buf.length}' bytes, header says '${expected}'`);
    }
  }
  return {
    kind,
    codec,
    transferId,
    index,
    offset: Number(offset64),
    length,
    sha256: Buffer.from(buf.subarray(40, 72)),
    payload: kind === 'data' ? buf.subarray(FRAME_HEADER_SIZE) : undefined,
  };
}

/**
 * True when a raw `data` frame's payload hashes to the SHA-256 in its header (a compressed
 * one is checked once decoded: `chunk-codec.ts`).
 */
export function verifyPayload(frame: Frame): boolean {
  return frame.codec === 'raw' && frame.payload !== undefined && sha256(frame.payload).equals(frame.sha256);
}

let zeros = Buffer.alloc(0);

/** True when every byte of `bytes` is zero (a chunk that travels as a `zero` frame). */
export function isAllZero(bytes: Uint8Array): boolean {
  // memcmp against a cached zero buffer: the sender's hot loop, ~10 GB/s.
  if (zeros.length < bytes.length) zeros = Buffer.alloc(bytes.length);
  return Buffer.compare(bytes, zeros.subarray(0, bytes.length)) === 0;
}

