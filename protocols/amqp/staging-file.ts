/**
 * The receiver's staging file (I/O): a sparse file the size of the target, written at chunk
 * offsets, fsync'ed in batches, verified and atomically renamed onto the target on commit.
 *
 * - Writes are positional (`pwrite`), so applying a chunk twice leaves the same bytes.
 * - Node has no `fallocate(PUNCH_HOLE)` nor `SEEK_DATA`: the file is created with `ftruncate`
 *   (all holes) and zero runs are simply never written — each data chunk is written in 4 KiB
 *   blocks, skipping the all-zero ones — so holes at the source stay holes at the target.
 * - `commit` = fsync file, rename(2) onto the target (atomic within a file system), fsync dir.
 * - The whole digest before commit: a chunk whose bytes this run wrote, with the SHA-256 the
 *   receiver verified on exactly those bytes, into a staging file this run created (all holes
 *   before), is taken from that hash; every other chunk (a resumed staging file, a chunk written
 *   twice with different bytes or without a hash) is read back and hashed. Reading back what
 *   was just written hits the page cache, not the disk, so it caught only our own write path's
 *   faults, which the tests check; it cost a second pass over the file (1 GiB: ~1.2 s of CPU)
 *   after the last chunk, when nothing else overlaps it.
 */
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { xferError, type XferError } from './errors.js';
import { WholeDigest, zeroChunkSha256 } from './digest.js';
import { isAllZero } from './frame.js';
import { blockSizeFor } from './read-ahead.js';
import { fsyncDir } from '../journal/index.js';

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
  /** SHA-256 of the chunk written at each offset by this run (`null`: must be read back). */
  private readonly verified = new Map<number, Buffer | null>();

  private constructor(
    readonly path: string,
    readonly targetPath: string,
    private handle: fs.FileHandle | undefined,
    /** True when this run created the file: every byte it has not written is a hole. */
    readonly createdByThisRun: boolean,
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
      let created = true;
      let handle: fs.FileHandle;
      try {
        handle = await fs.open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o640);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        created = false;
        handle = await fs.open(path, constants.O_RDWR, 0o640);
      }
      const st = await handle.stat();
      if (st.size !== size) await handle.truncate(size);
      return new StagingFile(path, targetPath, handle, created);
    } catch (err) {
      throw ioError(err, `cannot create staging file '${path}'`);
    }
  }

  /**
   * Writes `data` at `offset`, skipping all-zero 4 KiB blocks (they stay holes). `sha256` is
   * the hash the caller verified on `data`: {@link digest} then takes it instead of reading the
   * chunk back, when this run created the file.
   */
  async write(offset: number, data: Buffer, sha256?: Buffer): Promise<void> {
    const h = this.open_();
    const before = this.verified.get(offset);
    const trusted = sha256 !== undefined && this.createdByThisRun && (before === undefined || before?.equals(sha256) === true);
    this.verified.set(offset, null); // until the write is done, and for good if it fails
    try {
      let pos = 0;
      while (pos < data.length) {
        // Find the next run of non-zero blocks and write it in one pwrite.
        while (pos < data.length && isZeroBlock(data, pos)) pos += SPARSE_BLOCK;
        if (pos >= data.length) break;
        let end = pos;
        while (end < data.length && !isZeroBlock(data, end)) end += SPARSE_BLOCK;
        end = Math.min(end, data.length);
        let written = 0;
        while (written < end - pos) {
          const r = await h.write(data, pos + written, end - pos - written, offset + pos + written);
          written += r.bytesWritten;
        }
        pos = end;
      }
      if (trusted) this.verified.set(offset, sha256);
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
   * The transfer's whole digest (`digest.ts`) of the staging file: chunks written by this run
   * with a verified hash (see {@link write}) by that hash, the others re-read and hashed
   * (all-zero ones by their constant hash). Chunks for which `knownHole` says true — zero
   * frames, never written into this sparse file — are not read.
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
        const known = (i: number): Buffer | undefined => {
          const offset = (first + i) * chunkSize;
          if (this.verified.has(offset)) return this.verified.get(offset) ?? undefined;
          return this.createdByThisRun && knownHole(first + i) ? zeroChunkSha256(chunkLength(i)) : undefined;
        };
        const hashes = Array.from({ length: count }, (_, i) => known(i));
        let allHoles = true;
        for (let i = 0; i < count && allHoles; i++) allHoles = knownHole(first + i);
        if (allHoles) {
          for (let i = 0; i < count; i++) whole.add(first + i, zeroChunkSha256(chunkLength(i)));
          continue;
        }
        if (hashes.every((x) => x !== undefined)) {
          hashes.forEach((x, i) => whole.add(first + i, x!));
          continue;
        }
        for (let got = 0; got < length; ) {
          const { bytesRead } = await h.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) throw Object.assign(new Error(`unexpected end of file at '${offset + got}'`), { code: 'EOF' });
          got += bytesRead;
        }
        for (let i = 0; i < count; i++) {
          const piece = buf.subarray(i * chunkSize, i * chunkSize + chunkLength(i));
          whole.add(first + i, hashes[i] ?? (isAllZero(piece) ? zeroChunkSha256(piece.length) : createHash('sha256').update(piece).digest()));
        }
      }
      return whole.hex();
    } catch (err) {
      throw ioError(err, `cannot read staging file '${this.path}'`);
    }
  }

  /**
   * Finishes a commit a killed receiver journaled but may not have done: the staging file of
   * `transferId`, if it is still there, is made the target ({@link commit}). Returns whether it
   * was. Only for a transfer whose journal says `committed` (its staging file was verified).
   */
  static async completeCommit(targetPath: string, transferId: string): Promise<boolean> {
    const path = StagingFile.pathFor(targetPath, transferId);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, constants.O_RDWR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false; // renamed before the kill
      throw ioError(err, `cannot open staging file '${path}'`);
    }
    await new StagingFile(path, targetPath, handle, false).commit();
    return true;
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

/**
 * True when the {@link SPARSE_BLOCK} of `data` at `start` is all zeros. Its first and last bytes
 * are looked at before the whole block is compared: data blocks almost always differ there, and
 * skipping the compare's subarray saves ~0.15 s per GiB of random data.
 */
function isZeroBlock(data: Buffer, start: number): boolean {
  const end = Math.min(start + SPARSE_BLOCK, data.length);
  return data[start] === 0 && data[end - 1] === 0 && isAllZero(data.subarray(start, end));
}
