/**
 * The target's content index (I/O): SHA-256 of every non-zero chunk of files the target
 * already holds (e.g. base images), so a sender can send a `ref` instead of the bytes and the
 * receiver copies them locally. Built by scanning the files once; saved next to them and
 * reloaded while the file's size and mtime are unchanged.
 */
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import { isAllZero } from './frame.js';
import { ioError } from './staging-file.js';

interface Entry {
  readonly path: string;
  readonly offset: number;
  readonly length: number;
}

interface SavedIndex {
  readonly version: 1;
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly chunkSize: number;
  readonly hashes: Array<[string, number]>;
}

/** How long an indexed file stays open after its last read (ms). */
const IDLE_CLOSE_MS = 2_000;

/** A content-hash index over local files, at one chunk size. */
export class ContentIndex {
  private readonly byHash = new Map<string, Entry>();
  /**
   * Indexed files kept open between reads (issue 16: an open and a close per held chunk were a
   * third of what reading it cost), closed once idle for {@link IDLE_CLOSE_MS} or by {@link close}.
   */
  private readonly open = new Map<string, { handle: Promise<fs.FileHandle>; reads: number; timer?: NodeJS.Timeout }>();

  constructor(readonly chunkSize: number) {}

  /** Number of distinct chunk hashes known. */
  get size(): number {
    return this.byHash.size;
  }

  /** The hashes (hex), for the receiver's `status` message. */
  hashes(): string[] {
    return [...this.byHash.keys()];
  }

  /** Indexes `path` (reusing `path.icx-index-<chunkSize>.json` when still valid, then saving it). */
  async addFile(path: string): Promise<void> {
    const cache = `${path}.icx-index-${this.chunkSize}.json`;
    let st;
    try {
      st = await fs.stat(path);
    } catch (err) {
      throw ioError(err, `cannot index '${path}'`);
    }
    const saved = await readSaved(cache);
    if (saved && saved.path === path && saved.size === st.size && saved.mtimeMs === Math.trunc(st.mtimeMs) && saved.chunkSize === this.chunkSize) {
      for (const [h, offset] of saved.hashes) this.put(h, path, offset, Math.min(this.chunkSize, st.size - offset));
      return;
    }
    const hashes: Array<[string, number]> = [];
    const buf = Buffer.allocUnsafe(this.chunkSize);
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(path, 'r');
      for (let offset = 0; offset < st.size; offset += this.chunkSize) {
        const length = Math.min(this.chunkSize, st.size - offset);
        const { bytesRead } = await handle.read(buf, 0, length, offset);
        const piece = buf.subarray(0, bytesRead);
        if (isAllZero(piece)) continue;
        const h = createHash('sha256').update(piece).digest('hex');
        hashes.push([h, offset]);
        this.put(h, path, offset, length);
      }
    } catch (err) {
      throw ioError(err, `cannot index '${path}'`);
    } finally {
      await handle?.close();
    }
    const out: SavedIndex = { version: 1, path, size: st.size, mtimeMs: Math.trunc(st.mtimeMs), chunkSize: this.chunkSize, hashes };
    try {
      await fs.writeFile(`${cache}.tmp`, JSON.stringify(out));
      await fs.rename(`${cache}.tmp`, cache);
    } catch (err) {
      throw ioError(err, `cannot save content index '${cache}'`);
    }
  }

  /**
   * The bytes of the chunk with hash `hex` and `length`, read from the indexed file and
   * checked against the hash; `undefined` when unknown or when the file changed since.
   */
  async read(hex: string, length: number): Promise<Buffer | undefined> {
    const e = this.byHash.get(hex);
    if (!e || e.length !== length) return undefined;
    const buf = Buffer.allocUnsafe(length);
    let file = this.open.get(e.path);
    if (!file) {
      file = { handle: fs.open(e.path, 'r'), reads: 0 };
      this.open.set(e.path, file);
    }
    clearTimeout(file.timer);
    file.reads++;
    try {
      const { bytesRead } = await (await file.handle).read(buf, 0, length, e.offset);
      if (bytesRead !== length) return undefined;
    } catch (err) {
      // Not kept: the next read opens the file again.
      if (this.open.get(e.path) === file) this.open.delete(e.path);
      throw ioError(err, `cannot read indexed chunk from '${e.path}'`);
    } finally {
      file.reads--;
      if (file.reads === 0 && this.open.get(e.path) === file) {
        const f = file;
        f.timer = setTimeout(() => void this.closeFile(e.path, f), IDLE_CLOSE_MS).unref();
      }
    }
    // Checked every time: the file may have changed since it was indexed (same inode or not).
    return createHash('sha256').update(buf).digest('hex') === hex ? buf : undefined;
  }

  /** Closes the indexed files kept open between reads (a later read opens them again). */
  async close(): Promise<void> {
    await Promise.all([...this.open.entries()].map(([path, f]) => this.closeFile(path, f)));
  }

  private async closeFile(path: string, f: { handle: Promise<fs.FileHandle>; reads: number; timer?: NodeJS.Timeout }): Promise<void> {
    clearTimeout(f.timer);
    if (this.open.get(path) === f) this.open.delete(path);
    let handle: fs.FileHandle;
    try {
      handle = await f.handle;
    } catch (err) {
      // It never opened: the read that opened it reported that error already.
      void err;
      return;
    }
    await handle.close();
  }

  private put(hex: string, path: string, offset: number, length: number): void {
    if (!this.byHash.has(hex)) this.byHash.set(hex, { path, offset, length });
  }
}

async function readSaved(cache: string): Promise<SavedIndex | undefined> {
  let text: string;
  try {
    text = await fs.readFile(cache, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(err, `cannot read content index '${cache}'`);
  }
  try {
    const v = JSON.parse(text) as SavedIndex;
    return v.version === 1 && Array.isArray(v.hashes) ? v : undefined;
  } catch {
    // A damaged cache is rebuilt from the file itself.
    return undefined;
  }
}
