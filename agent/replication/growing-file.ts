/**
 * A file read while another part of the agent fills it front to back (I/O): A's staging file
 * while A's GET streams into it and the transfer already sends it, B's staging file while the
 * transfer arrives and B's puts already read it. So the stages of a copy overlap instead of
 * running one after the other.
 *
 * The writer says how far the bytes from offset 0 are in the file ({@link GrowingFile.advance})
 * or that they never will be ({@link GrowingFile.fail}); readers wait for the bytes they need.
 * Each read opens the file on its own, trying `paths` in order (B's staging file is renamed onto
 * its target when the transfer commits).
 */
import { promises as fs } from 'node:fs';
import { Readable } from 'node:stream';

/** Largest piece a stream reads at once. */
const PIECE = 1 << 20;

/** A file being filled front to back, and its readers. */
export class GrowingFile {
  #bytes = 0;
  #failed = false;
  #failure: unknown;
  readonly #waiters = new Set<() => void>();

  /**
   * @param paths where the file is, in the order to try (the next one when a path is gone)
   * @param size the file's final size
   */
  constructor(readonly paths: readonly string[], readonly size: number) {}

  /** Bytes from offset 0 in the file so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The bytes `[0, bytes)` are in the file. */
  advance(bytes: number): void {
    const to = Math.min(bytes, this.size);
    if (to <= this.#bytes) return;
    this.#bytes = to;
    this.#wake();
  }

  /** The rest will never come: readers still waiting reject with `err`. */
  fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#failure = err;
    this.#wake();
  }

  /**
   * Resolves once `[0, end)` is in the file; rejects with the writer's failure. Whoever owns the
   * writer fails the file when it stops it (an abort included), so no reader waits for ever.
   */
  async waitFor(end: number): Promise<void> {
    while (this.#bytes < Math.min(end, this.size)) {
      if (this.#failed) throw this.#failure;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#waiters.delete(done);
          resolve();
        };
        this.#waiters.add(done);
      });
    }
  }

  /** `[offset, offset + length)`, once it is in the file (one open). */
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    if (length === 0) return buf;
    await this.waitFor(offset + length);
    const h = await this.#open();
    try {
      await readFully(h, buf, offset);
    } finally {
      await h.close();
    }
    return buf;
  }

  /** `[start, end)` as a stream that delivers each piece as soon as it is in the file (one open). */
  stream(start: number, end: number): Readable {
    const pieces = async function* (this: GrowingFile): AsyncGenerator<Buffer> {
      if (start >= end) return;
      await this.waitFor(start + 1);
      const h = await this.#open();
      try {
        for (let pos = start; pos < end;) {
          await this.waitFor(pos + 1);
          const upTo = Math.min(end, this.#bytes, pos + PIECE);
          const buf = Buffer.allocUnsafe(upTo - pos);
          await readFully(h, buf, pos);
          pos = upTo;
          yield buf;
        }
      } finally {
        await h.close();
      }
    };
    return Readable.from(pieces.call(this), { objectMode: false });
  }

  async #open(): Promise<fs.FileHandle> {
    for (const [i, p] of this.paths.entries()) {
      try {
        return await fs.open(p, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || i === this.paths.length - 1) throw err;
      }
    }
    throw new Error('a growing file needs at least one path');
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

async function readFully(h: fs.FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesRead } = await h.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw Object.assign(new Error(`file ends at ${position + done}, before ${position + buf.length}`), { code: 'EOF' });
    done += bytesRead;
  }
}
