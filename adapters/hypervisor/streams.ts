/**
 * Stream helpers shared by the adapters: enforcing a disk stream's declared length.
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { hvError } from './errors.js';

/**
 * Passes bytes through and fails the stream with `HV_STREAM_SHORT` when it ends before
 * `expected` bytes, or `HV_STREAM_LONG` as soon as it carries more. The consumer therefore
 * never commits a disk of the wrong length.
 */
export class ExactLength extends Transform {
  private seen = 0;
  constructor(private readonly expected: number, private readonly what: string) {
    super({ highWaterMark: 1024 * 1024 });
  }

  /** Bytes passed so far. */
  get bytes(): number {
    return this.seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.expected) {
      done(hvError('HV_STREAM_LONG', `${this.what}: the stream carried more than the declared ${this.expected} bytes`, { details: { expected: this.expected } }));
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.seen < this.expected) {
      done(hvError('HV_STREAM_SHORT', `${this.what}: the stream ended after ${this.seen} of ${this.expected} bytes`, { details: { expected: this.expected, received: this.seen } }));
      return;
    }
    done();
  }
}

/** A valid storage name for a new disk: letters, digits, `.`, `_`, `-`; not starting with `.`. */
export function isSafeDiskName(name: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$/.test(name);
}
