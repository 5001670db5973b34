/**
 * The sender's compression stage (I/O helper, issue 16), between the loop that reads and hashes
 * chunks and the publisher. A `data` frame whose chunk the probe finds compressible
 * (`chunk-codec.ts`) is compressed in libuv's thread pool while the loop goes on reading and
 * hashing the next chunks; at most `depth` frames are in the stage at once, and they reach the
 * publisher in the order they entered it. A frame that is not compressed goes straight to the
 * publisher when the stage is empty — random data takes the path it took before, plus the probe.
 *
 * A frame is "handed over" once it is in the stage: a session that fails before the stage
 * published it loses it like a frame the broker lost, and the receiver's `need` after `end`
 * brings it back (the end-to-end argument of the README).
 */
import { compressChunk, worthCompressing } from './chunk-codec.js';
import { FRAME_HEADER_SIZE, writeFrameHeader, type FrameCodec, type FrameHeader } from './frame.js';
import type { FrameTapInfo, Publisher } from './publisher.js';
import { deferred, type Deferred } from './session-util.js';

/** Frames in compression at once by default: two per core of a small machine. */
export const COMPRESS_DEPTH = 4;

/** Compressed and raw frames counted by a {@link CompressStage}. */
export interface CompressCounts {
  /** Data frames sent compressed, and their chunk bytes and payload bytes on the wire. */
  compressed: number;
  compressedChunkBytes: number;
  compressedPayloadBytes: number;
  /** Data frames the probe or the compressor sent raw. */
  raw: number;
}

/** One broker session's compression stage. */
export class CompressStage {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private failure: { error: unknown } | undefined;
  private room: Deferred<void> | undefined;

  /**
   * @param codec — the codec to compress with now: one the receiver announced it decodes
   *   (`undefined`: none, or compression is off; nothing is compressed).
   * @param counts — totals of the whole transfer (shared by its sessions).
   */
  constructor(
    private readonly publisher: Publisher,
    private readonly codec: () => FrameCodec | undefined,
    private readonly counts: CompressCounts,
    private readonly depth = COMPRESS_DEPTH,
  ) {}

  /**
   * Hands frame `frame` (header space, then the chunk: a publisher frame buffer) to the
   * publisher, compressed when the codec allows and it pays. Resolves once the frame is in the
   * stage (or published); rejects with the stage's first failure (the publisher's `XFER_BROKER`).
   */
  async submit(frame: Buffer, header: FrameHeader, info: FrameTapInfo): Promise<void> {
    this.check();
    const chunk = frame.subarray(FRAME_HEADER_SIZE);
    const codec = this.codec();
    const compress = codec !== undefined && codec !== 'raw' && header.kind === 'data' && worthCompressing(chunk);
    if (!compress) {
      if (header.kind === 'data') this.counts.raw++;
      writeFrameHeader(frame, header);
      if (this.pending === 0) return this.publisher.publishFrame(frame, info, header.length);
      return this.enqueue(Promise.resolve(frame), info, header.length);
    }
    const ready = compressChunk(chunk, codec).then((z) => {
      if (!z) {
        this.counts.raw++;
        return writeFrameHeader(frame, header);
      }
      const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + z.length);
      z.copy(out, FRAME_HEADER_SIZE);
      writeFrameHeader(out, { ...header, codec });
      this.publisher.reuse(frame);
      this.counts.compressed++;
      this.counts.compressedChunkBytes += header.length;
      this.counts.compressedPayloadBytes += z.length;
      return out;
    });
    return this.enqueue(ready, info, header.length);
  }

  /** Resolves once every frame in the stage is published; rejects with the stage's first failure. */
  async flush(): Promise<void> {
    await this.tail;
    this.check();
  }

  /** Waits for the stage to empty, whatever happened (the end of a session). */
  async settle(): Promise<void> {
    await this.tail;
  }

  private async enqueue(ready: Promise<Buffer>, info: FrameTapInfo, length: number): Promise<void> {
    ready.catch(() => undefined); // observed in the chain below
    while (this.pending >= this.depth && !this.failure) {
      this.room = deferred<void>();
      await this.room.promise;
    }
    this.check();
    this.pending++;
    this.tail = this.tail
      .then(async () => {
        const f = await ready;
        if (!this.failure) await this.publisher.publishFrame(f, info, length);
      })
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => {
        this.pending--;
        this.room?.resolve();
      });
  }

  private check(): void {
    if (this.failure) throw this.failure.error;
  }
}
