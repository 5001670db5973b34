/**
 * Pacing a byte stream by a {@link TokenBucket} (I/O: timers). Pieces go out at most 64 KiB at a
 * time so the rate is smooth at small limits.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TokenBucket } from './token-bucket.js';

const PIECE = 64 * 1024;

/** `source` paced by `bucket` (unpaced when its rate is 0). */
export function throttle(source: Readable, bucket: TokenBucket, now: () => number = Date.now): Readable {
  if (bucket.rate <= 0) return source;
  async function* paced(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      const buf = chunk as Buffer;
      for (let i = 0; i < buf.length; i += PIECE) {
        const piece = buf.subarray(i, Math.min(buf.length, i + PIECE));
        const wait = bucket.take(piece.length, now());
        if (wait > 0) await sleep(wait);
        yield piece;
      }
    }
  }
  const out = Readable.from(paced(), { objectMode: false });
  out.on('close', () => source.destroy());
  return out;
}
