/**
 * The receiver's staging file (I/O): a sparse file the size of the target, written at chunk
 * offsets, fsync'ed in batches, verified and atomically renamed onto the target on commit.
 *
 * - Writes are positional (`pwrite`), so applying a chunk twice leaves the same bytes.
 * - Node has no `fallocate(PUNCH_HOLE)` nor `SEEK_DATA`: the file is created with `ftruncate`
 *   (all holes) and zero runs are simply never written — each data chunk is written in 4 KiB
 *   blocks, skipping the all-zero ones — so holes at the source stay holes at the target.
 * - `commit` = fsync file, rename(2) onto the target (atomic within a file system), fsync dir.
 */
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { xferError, type XferError } from './errors.js';
import { WholeDigest, zeroChunkSha256 } from './digest.js';
import { isAllZero } from './frame.js';
import { blockSizeFor } from './read-ahead.js';

/** Granularity of hole preservation inside data chunks (a file-system block). */
export const SPARSE_BLOCK = 4096;

/** Maps an fs error to `XFER_DISK_FULL` (ENOSPC, EDQUOT) or `XFER_IO`, keeping errno in details. */
export function ioError(err: unknown, what: string): XferError {
  const code = (err as NodeJS.ErrnoException).code;
  const details = { errno: code, syscall: (err as NodeJS.ErrnoException).syscall };
  if (code === 'ENOSPC' || code === 'EDQUOT') return xferError('XFER_DISK_FULL', `${what}: no space left on device`, { cause: err, details });
  return xferError('XFER_IO', `${what}: ${(err as Error).message}`, { cause: err, details });
}

/** The staging file of one transfer's target. */
export class StagingFile {
  private constructor(
    readonly path: string,
    readonly targetPath: string,
    private handle: fs.FileHandle | undefined,
  ) {}

  /** Where the staging file of `targetPath` lives (same directory, so the rename is atomic). */
  static pathFor(targetPath: string, transferId: string): string {
    return join(dirname(targetPath), `.${basename(targetPath)}.${transferId}.part`);
  }

  /** Opens the staging file, creating it (sparse, `size` bytes) if it does not exist yet. */
  static async open(targetPath: string, transferId: string, size: number): Promise<StagingFile> {
    const path = StagingFile.pathFor(targetPath, transferId);
    try {
      await fs.mkdir(dirname(path), { recursive: true });
      const handle = await fs.open(path, constants.O_RDWR | constants.O_CREAT, 0o640);
      const st = await handle.stat();
      if (st.size !== size) await handle.truncate(size);
      return new StagingFile(path, targetPath, handle);
    } catch (err) {
      throw ioError(err, `cannot create staging file '${path}'`);
    }
  }

  /** Writes `data` at `offset`, skipping all-zero 4 KiB blocks (they stay holes). */
  async write(offset: number, data: Buffer): Promise<void> {
    const h = this.open_();
    try {
      let pos = 0;
      while (pos < data.length) {
        // Find the next run of non-zero blocks and write it in one pwrite.
        while (pos < data.length && isAllZero(data.subarray(pos, Math.min(pos + SPARSE_BLOCK, data.length)))) pos += SPARSE_BLOCK;
        if (pos >= data.length) break;
        let end = pos;
        while (end < data.length && !isAllZero(data.subarray(end, Math.min(end + SPARSE_BLOCK, data.length)))) end += SPARSE_BLOCK;
        end = Math.min(end, data.length);
        let written = 0;
        while (written < end - pos) {
          const r = await h.write(data, pos + written, end - pos - written, offset + pos + written);
          written += r.bytesWritten;
        }
        pos = end;
      }
    } catch (err) {
      throw ioError(err, `cannot write staging file '${this.path}' at offset '${offset}'`);
    }
  }

  /** Reads `length` bytes at `offset` (holes read as zeros). */
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    try {
      await this.open_().read(buf, 0, length, offset);
    } catch (err) {
      throw ioError(err, `cannot read staging file '${this.path}'`);
    }
    return buf;
  }

  /** fdatasync: everything written so far is durable. */
  async sync(): Promise<void> {
    try {
      await this.open_().datasync();
    } catch (err) {
      throw ioError(err, `cannot sync staging file '${this.path}'`);
    }
  }

  /**
   * The transfer's whole digest (`digest.ts`) of the staging file as it is on disk: every chunk
   * re-read and hashed (all-zero ones by their constant hash). Chunks for which `knownHole`
   * says true — zero frames, never written into this sparse file — are not read.
   */
  async digest(chunkSize: number, knownHole: (index: number) => boolean = () => false): Promise<string> {
    const h = this.open_();
    try {
      const { size } = await h.stat();
      const whole = new WholeDigest(size, chunkSize);
      const blockSize = blockSizeFor(chunkSize);
      const buf = Buffer.allocUnsafe(blockSize);
      for (let offset = 0; offset < size; offset += blockSize) {
        const length = Math.min(blockSize, size - offset);
        const first = offset / chunkSize;
        const count = Math.ceil(length / chunkSize);
        const chunkLength = (i: number) => Math.min(chunkSize, size - (first + i) * chunkSize);
        let allHoles = true;
        for (let i = 0; i < count && allHoles; i++) allHoles = knownHole(first + i);
        if (allHoles) {
          for (let i = 0; i < count; i++) whole.add(first + i, zeroChunkSha256(chunkLength(i)));
          continue;
        }
        for (let got = 0; got < length; ) {
          const { bytesRead } = await h.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) throw Object.assign(new Error(`unexpected end of file at '${offset + got}'`), { code: 'EOF' });
          got += bytesRead;
        }
        for (let i = 0; i < count; i++) {
          const piece = buf.subarray(i * chunkSize, i * chunkSize + chunkLength(i));
          whole.add(first + i, isAllZero(piece) ? zeroChunkSha256(piece.length) : createHash('sha256').update(piece).digest());
        }
      }
      return whole.hex();
    } catch (err) {
      throw ioError(err, `cannot read staging file '${this.path}'`);
    }
  }

  /** Makes the staging file the target: fsync, rename(2), fsync the directory. */
  async commit(): Promise<void> {
    try {
      await this.open_().sync();
      await this.close();
      await fs.rename(this.path, this.targetPath);
      await fsyncDir(dirname(this.targetPath));
    } catch (err) {
      throw ioError(err, `cannot move staging file '${this.path}' onto '${this.targetPath}'`);
    }
  }

  /** Closes and deletes the staging file (abort, expiry, failure). Idempotent. */
  async remove(): Promise<void> {
    await this.close();
    await fs.rm(this.path, { force: true });
  }

  /** Closes the file handle (idempotent). */
  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h) await h.close();
  }

  private open_(): fs.FileHandle {
    if (!this.handle) throw xferError('XFER_IO', `staging file '${this.path}' is closed`);
    return this.handle;
  }
}

/** fsyncs a directory so a rename or create in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, constants.O_RDONLY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
