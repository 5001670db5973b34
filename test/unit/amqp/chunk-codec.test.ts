/**
 * Compressed chunk frames (issue 16): the frame layout against a vector produced independently
 * (Python's struct, zlib and hashlib), round trips, hostile payloads refused with
 * `XFER_BAD_FRAME` and asked for again, and the sender's choice of what to compress.
 */
import { createHash, randomBytes } from 'node:crypto';
import { brotliCompressSync, constants } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAME_HEADER_SIZE,
  ReceiverMachine,
  compressChunk,
  compressChunkSync,
  decodeChunk,
  decodeChunkSync,
  decodeFrame,
  encodeFrame,
  worthCompressing,
  type Frame,
  type FrameHeader,
  type Manifest,
} from '../../../protocols/amqp/index.js';
import { CompressStage, type CompressCounts } from '../../../protocols/amqp/compress-stage.js';
import type { FrameTapInfo, Publisher } from '../../../protocols/amqp/publisher.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const KiB = 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest();

// Produced with Python 3.11 and Debian's python3-brotli (the reference C library): chunk =
// b'intercloud ' * 64 (704 bytes), index 5, offset 5 × 704, payload = brotli.compress(chunk,
// quality=1) (42 bytes), flags = 1: struct.pack('>IBBH', 0x49435846, 1, 1, 1) + uuid +
// struct.pack('>IIQ', 5, 704, 3520) + sha256(chunk) + zlib.crc32 of the 72 bytes before it,
// then the payload.
const GOLDEN_BROTLI =
  '4943584601010001123e4567e89b12d3a45642661417400000000005000002c00000000000000dc0bae1119214587bda6e697bc8794563f581a2f43e63d2e1b3126e80306d891d63dabaa6948b5f010080aaaaaaeaff74e5f37d39308080088080081cc0c5af1499e2073b80353e953e2f6b5ec8db18';
const GOLDEN_CHUNK = Buffer.from('intercloud '.repeat(64));

/** Text-like bytes that compress well: numbered lines. */
function compressible(n: number, seed = 0): Buffer {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `line ${seed + i}: the quick brown fox jumps over the lazy dog\n`;
  return Buffer.from(s.slice(0, n));
}

/** `n` zero bytes compressed (a decompression bomb for any chunk shorter than `n`). */
function zeros(n: number): Buffer {
  return brotliCompressSync(Buffer.alloc(n), { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
}

function header(chunk: Buffer, over: Partial<FrameHeader> = {}): FrameHeader {
  return { kind: 'data', transferId: TID, index: 2, offset: 2 * chunk.length, length: chunk.length, sha256: sha(chunk), ...over };
}

async function reasonOf(p: Promise<unknown>): Promise<{ code: string; reason: unknown; index: unknown }> {
  try {
    await p;
  } catch (err) {
    if (!isIntercloudError(err)) throw err;
    return { code: err.code, reason: err.details['reason'], index: err.details['index'] };
  }
  throw new Error('expected a rejection');
}

function codeOfSync(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isIntercloudError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a throw');
}

describe('compressed chunk frames', () => {
  it('encodes a brotli frame byte-for-byte as the independent vector', () => {
    const payload = Buffer.from(GOLDEN_BROTLI, 'hex').subarray(FRAME_HEADER_SIZE);
    const buf = encodeFrame({ kind: 'data', codec: 'brotli', transferId: TID, index: 5, offset: 5 * 704, length: 704, sha256: sha(GOLDEN_CHUNK) }, payload);
    expect(buf.toString('hex')).toBe(GOLDEN_BROTLI);
  });

  it('decodes the vector and decompresses it into the chunk its header hashes', async () => {
    const f = decodeFrame(Buffer.from(GOLDEN_BROTLI, 'hex'));
    expect(f).toMatchObject({ kind: 'data', codec: 'brotli', index: 5, offset: 3520, length: 704 });
    expect(f.payload!.length).toBe(42);
    expect((await decodeChunk(f)).equals(GOLDEN_CHUNK)).toBe(true);
    expect(decodeChunkSync(f).equals(GOLDEN_CHUNK)).toBe(true);
  });

  it('old frames decode as raw, and decodeChunk checks their sha-256', async () => {
    const chunk = randomBytes(300);
    const f = decodeFrame(encodeFrame(header(chunk), chunk));
    expect(f.codec).toBe('raw');
    expect((await decodeChunk(f)).equals(chunk)).toBe(true);
    const bad = decodeFrame(encodeFrame(header(chunk, { sha256: sha(randomBytes(8)) }), chunk));
    expect(await reasonOf(decodeChunk(bad))).toMatchObject({ code: 'XFER_BAD_FRAME', reason: 'sha256-mismatch' });
  });

  it('round-trips any compressible chunk through compress, frame, decode, decompress (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1024, max: 256 * KiB }), fc.nat(1e6), fc.nat(0xffffffff), async (n, seed, index) => {
        const chunk = compressible(n, seed);
        const z = await compressChunk(chunk);
        expect(z).toBeDefined();
        const frame = decodeFrame(encodeFrame(header(chunk, { index, offset: index * 256 * KiB, codec: 'brotli' }), z));
        expect(frame.codec).toBe('brotli');
        expect(frame.payload!.length).toBe(z!.length);
        expect((await decodeChunk(frame)).equals(chunk)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('refuses a compressed payload not shorter than the chunk, on zero/ref frames, and unknown flag bits', () => {
    const chunk = compressible(4 * KiB);
    expect(codeOfSync(() => encodeFrame(header(chunk, { codec: 'brotli' }), chunk))).toBe('XFER_BAD_FRAME');
    expect(codeOfSync(() => encodeFrame({ ...header(chunk), kind: 'zero', codec: 'brotli' }))).toBe('XFER_BAD_FRAME');
    // The same checks on the decoding side, with headers a peer wrote (CRC recomputed).
    const withFlags = (buf: Buffer, flags: number) => {
      buf.writeUInt16BE(flags, 6);
      buf.writeUInt32BE(crc32Of(buf.subarray(0, 72)), 72);
      return buf;
    };
    expect(codeOfSync(() => decodeFrame(withFlags(encodeFrame(header(chunk), chunk), 1)))).toBe('XFER_BAD_FRAME');
    expect(codeOfSync(() => decodeFrame(withFlags(encodeFrame({ ...header(chunk), kind: 'zero' }), 1)))).toBe('XFER_BAD_FRAME');
    expect(codeOfSync(() => decodeFrame(withFlags(encodeFrame(header(chunk, { codec: 'brotli' }), compressChunkSync(chunk)), 0x0101)))).toBe('XFER_BAD_FRAME');
    expect(codeOfSync(() => decodeFrame(withFlags(encodeFrame(header(chunk, { codec: 'brotli' }), compressChunkSync(chunk)), 0x0002)))).toBe('XFER_BAD_FRAME');
  });
});

describe('hostile compressed payloads', () => {
  const chunk = compressible(64 * KiB);
  const hostile = (payload: Buffer, sha256 = sha(chunk)): Frame => decodeFrame(encodeFrame(header(chunk, { codec: 'brotli', sha256 }), payload));

  it('a decompression bomb stops at the chunk length: XFER_BAD_FRAME, past-chunk-length', async () => {
    // 16 MiB of zeros compress to a few bytes: a payload far shorter than the 64 KiB chunk it claims.
    const bomb = zeros(16 * 1024 * KiB);
    expect(bomb.length).toBeLessThan(chunk.length);
    const before = process.memoryUsage().arrayBuffers;
    expect(await reasonOf(decodeChunk(hostile(bomb)))).toEqual({ code: 'XFER_BAD_FRAME', reason: 'past-chunk-length', index: 2 });
    expect(() => decodeChunkSync(hostile(bomb))).toThrow(expect.objectContaining({ code: 'XFER_BAD_FRAME' }));
    // Nothing near the bomb's 16 MiB was held.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * KiB);
  });

  it('a header claiming more than the transfer\'s chunk size is refused before decompressing: past-chunk-length', async () => {
    const big = decodeFrame(encodeFrame({ kind: 'data', codec: 'brotli', transferId: TID, index: 0, offset: 0, length: 512 * 1024 * KiB, sha256: sha(chunk) }, zeros(64 * 1024 * KiB)));
    const before = process.memoryUsage().arrayBuffers;
    expect(await reasonOf(decodeChunk(big, 64 * KiB))).toMatchObject({ code: 'XFER_BAD_FRAME', reason: 'past-chunk-length' });
    expect(() => decodeChunkSync(big, 64 * KiB)).toThrow(expect.objectContaining({ code: 'XFER_BAD_FRAME' }));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * KiB);
  });

  it('a payload whose decompressed bytes do not hash to the header: sha256-mismatch', async () => {
    const other = compressible(64 * KiB, 7);
    expect(await reasonOf(decodeChunk(hostile(compressChunkSync(other)!)))).toMatchObject({ code: 'XFER_BAD_FRAME', reason: 'sha256-mismatch' });
  });

  it('garbage that does not decompress: not-decodable; a payload that decompresses short: short-of-chunk-length', async () => {
    expect(await reasonOf(decodeChunk(hostile(Buffer.alloc(100, 0xff))))).toMatchObject({ code: 'XFER_BAD_FRAME', reason: 'not-decodable' });
    const whole = compressChunkSync(chunk)!;
    expect(await reasonOf(decodeChunk(hostile(whole.subarray(0, whole.length >> 1))))).toMatchObject({ code: 'XFER_BAD_FRAME', reason: 'not-decodable' });
    const half = compressChunkSync(chunk.subarray(0, 32 * KiB))!;
    expect(await reasonOf(decodeChunk(hostile(half)))).toMatchObject({ code: 'XFER_BAD_FRAME', reason: 'short-of-chunk-length' });
  });

  it('each is asked for again by the receiver (need for that index), and the good frame is then applied', async () => {
    const manifest: Manifest = { transferId: TID, from: 'cloud-a', to: 'cloud-b', name: 'x', size: 4 * chunk.length, chunkSize: chunk.length, chunkCount: 4, expiresAt: Date.now() + 60_000 };
    const m = new ReceiverMachine(TID);
    m.onManifest(manifest);
    const bomb = hostile(zeros(16 * 1024 * KiB));
    const ok = await decodeChunk(bomb).then(() => true, () => false);
    expect(ok).toBe(false);
    const d = m.onFrame(bomb, ok);
    expect(d).toMatchObject({ action: 'need', message: { type: 'need', chunks: [[2, 3]] } });
    const good = decodeFrame(encodeFrame(header(chunk, { codec: 'brotli' }), compressChunkSync(chunk)));
    expect(m.onFrame(good, await decodeChunk(good).then(() => true, () => false))).toEqual({ action: 'write', index: 2 });
  });
});

/** A stand-in publisher that records what reaches it, and whose window can be held shut. */
class RecordingPublisher {
  readonly frames: Buffer[] = [];
  readonly reused: Buffer[] = [];
  gate: Promise<void> = Promise.resolve();
  async publishFrame(frame: Buffer, _info: FrameTapInfo, _payloadLength: number): Promise<void> {
    await this.gate;
    this.frames.push(frame);
  }
  reuse(buf: Buffer): void {
    this.reused.push(buf);
  }
}

function frameBuffer(chunk: Buffer): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE + chunk.length);
  chunk.copy(b, FRAME_HEADER_SIZE);
  return b;
}

describe('the sender compresses only what pays', () => {
  it('the probe says no to random data and yes to text-like data, at a fraction of hashing the chunk', () => {
    expect(worthCompressing(randomBytes(1024 * KiB))).toBe(false);
    expect(worthCompressing(compressible(1024 * KiB))).toBe(true);
    expect(worthCompressing(compressible(1000))).toBe(true);
    expect(compressChunkSync(randomBytes(64 * KiB))).toBeUndefined();
  });

  it('the stage sends incompressible chunks raw, compressible ones compressed, in order; nothing without a codec', async () => {
    const counts: CompressCounts = { compressed: 0, compressedChunkBytes: 0, compressedPayloadBytes: 0, raw: 0 };
    const pub = new RecordingPublisher();
    let codec: 'brotli' | undefined = 'brotli';
    const stage = new CompressStage(pub as unknown as Publisher, () => codec, counts, 2);
    const chunks = [compressible(256 * KiB, 1), randomBytes(256 * KiB), compressible(256 * KiB, 2), compressible(256 * KiB, 3), randomBytes(256 * KiB)];
    for (const [i, c] of chunks.entries()) await stage.submit(frameBuffer(c), header(c, { index: i, offset: i * 256 * KiB }), { index: i, kind: 'data', attempt: 1 });
    await stage.flush();
    const got = pub.frames.map((f) => decodeFrame(f));
    expect(got.map((f) => f.index)).toEqual([0, 1, 2, 3, 4]);
    expect(got.map((f) => f.codec)).toEqual(['brotli', 'raw', 'brotli', 'brotli', 'raw']);
    for (const [i, f] of got.entries()) expect(decodeChunkSync(f).equals(chunks[i]!)).toBe(true);
    expect(counts).toMatchObject({ compressed: 3, raw: 2, compressedChunkBytes: 3 * 256 * KiB });
    expect(counts.compressedPayloadBytes).toBeLessThan(256 * KiB);
    expect(pub.reused.length).toBe(3); // the raw frame buffers of compressed chunks go back to the pool

    codec = undefined; // a receiver that announced no codec
    const c = compressible(256 * KiB, 9);
    await stage.submit(frameBuffer(c), header(c, { index: 5, offset: 5 * 256 * KiB }), { index: 5, kind: 'data', attempt: 1 });
    await stage.flush();
    expect(decodeFrame(pub.frames.at(-1)!).codec).toBe('raw');
  });

  it('holds at most `depth` frames while the publisher waits, and surfaces its failure', async () => {
    const counts: CompressCounts = { compressed: 0, compressedChunkBytes: 0, compressedPayloadBytes: 0, raw: 0 };
    const pub = new RecordingPublisher();
    let open!: () => void;
    pub.gate = new Promise<void>((r) => (open = r));
    const stage = new CompressStage(pub as unknown as Publisher, () => 'brotli', counts, 2);
    const c = compressible(64 * KiB);
    const submitted: number[] = [];
    const run = (async () => {
      for (let i = 0; i < 4; i++) {
        await stage.submit(frameBuffer(c), header(c, { index: i, offset: i * 64 * KiB }), { index: i, kind: 'data', attempt: 1 });
        submitted.push(i);
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    expect(submitted).toEqual([0, 1]); // the third waits for room
    open();
    await run;
    await stage.flush();
    expect(pub.frames.length).toBe(4);

    const failing = { publishFrame: () => Promise.reject(Object.assign(new Error('closed'), { code: 'XFER_BROKER' })), reuse: () => undefined };
    const s2 = new CompressStage(failing as unknown as Publisher, () => 'brotli', counts, 2);
    await s2.submit(frameBuffer(c), header(c), { index: 2, kind: 'data', attempt: 1 });
    await expect(s2.flush()).rejects.toMatchObject({ code: 'XFER_BROKER' });
    await expect(s2.submit(frameBuffer(c), header(c), { index: 2, kind: 'data', attempt: 1 })).rejects.toMatchObject({ code: 'XFER_BROKER' });
  });
});

function crc32Of(b: Buffer): number {
  // zlib's crc32 (ISO-HDLC), as the frame header uses
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
