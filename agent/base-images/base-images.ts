/**
 * Base images this cloud holds, known by content (issue 16, "send only what differs when the
 * target holds the base"): the whole-image SHA-256 (FIPS 180-4) of a file, computed once and
 * saved beside it (`<file>.icx-sha256.json`, reused while the file's size and mtime are
 * unchanged), and the target's store of the directories its operator lists
 * (`migration.baseImages`), which maps a content hash a peer names to one of its own files.
 *
 * A peer never names a path: only a hash, which must be 64 lowercase hex digits
 * (`BASE_BAD_HASH` otherwise) and which the store answers only from regular files directly in
 * the listed directories (no symlinks, no subdirectories, no hidden files, none of the saved
 * hashes or indexes beside them).
 */
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve as resolvePath } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { defineErrorCodes, IntercloudError } from '../../protocols/errors/index.js';

/** The `BASE_…` codes. */
export const BASE_IMAGE_ERRORS = defineErrorCodes('base-images', {
  BASE_BAD_HASH: { doc: 'a base image content hash is not 64 lowercase hex digits (sha-256)', retryable: false },
  BASE_IO: { doc: 'a base image, its directory or its saved hash could not be read or written (errno in details)', retryable: false },
});

/** One of the `BASE_…` codes. */
export type BaseImageCode = keyof typeof BASE_IMAGE_ERRORS;

const HASH = /^[0-9a-f]{64}$/;

/** Whether `v` is a well-formed whole-image SHA-256 (64 lowercase hex digits). */
export function isImageHash(v: unknown): v is string {
  return typeof v === 'string' && HASH.test(v);
}

/** Suffix of the saved whole-image hash beside an image. */
export const SAVED_HASH_SUFFIX = '.icx-sha256.json';

interface SavedHash {
  readonly version: 1;
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256: string;
}

function ioError(err: unknown, what: string): IntercloudError<'BASE_IO'> {
  const e = err as NodeJS.ErrnoException;
  return new IntercloudError('BASE_IO', `${what}: ${e.message}`, { cause: err, details: { errno: e.code, syscall: e.syscall } });
}

/** A file's identity for the saved hash: its size and mtime (ms, truncated). */
function sameFile(saved: SavedHash, st: Stats): boolean {
  return saved.size === st.size && saved.mtimeMs === Math.trunc(st.mtimeMs);
}

async function readSaved(path: string): Promise<SavedHash | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(err, `cannot read saved image hash '${path}'`);
  }
  let v: Partial<SavedHash>;
  try {
    v = JSON.parse(text) as Partial<SavedHash>;
  } catch {
    // A damaged saved hash is computed again from the image itself.
    return undefined;
  }
  return v.version === 1 && typeof v.size === 'number' && typeof v.mtimeMs === 'number' && isImageHash(v.sha256) ? (v as SavedHash) : undefined;
}

/**
 * The SHA-256 of the whole file `path` (every byte, holes as zeros), and its size. Reuses the
 * hash saved beside the file while its size and mtime are those it was computed for; otherwise
 * reads the file once and saves the hash (`<path>.icx-sha256.json`, written to a temporary
 * file and renamed). `BASE_IO` when the file cannot be read or the hash not saved.
 */
export async function imageSha256(path: string, options: { signal?: AbortSignal } = {}): Promise<{ sha256: string; size: number }> {
  let st: Stats;
  try {
    st = await fs.stat(path);
  } catch (err) {
    throw ioError(err, `cannot hash image '${path}'`);
  }
  const savedPath = `${path}${SAVED_HASH_SUFFIX}`;
  const saved = await readSaved(savedPath);
  if (saved && sameFile(saved, st)) return { sha256: saved.sha256, size: st.size };
  const h = createHash('sha256');
  try {
    await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), h, { signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw ioError(err, `cannot hash image '${path}'`);
  }
  const sha256 = h.digest('hex');
  // The file may have changed while it was read: save only a hash of the file as it still is.
  let after: Stats;
  try {
    after = await fs.stat(path);
  } catch (err) {
    throw ioError(err, `cannot hash image '${path}'`);
  }
  const out: SavedHash = { version: 1, size: st.size, mtimeMs: Math.trunc(st.mtimeMs), sha256 };
  if (!sameFile(out, after)) {
    throw new IntercloudError('BASE_IO', `image '${path}' changed while it was hashed`, { details: { size: after.size } });
  }
  try {
    await fs.writeFile(`${savedPath}.tmp`, JSON.stringify(out));
    await fs.rename(`${savedPath}.tmp`, savedPath);
  } catch (err) {
    throw ioError(err, `cannot save image hash '${savedPath}'`);
  }
  return { sha256, size: st.size };
}

/** A base image the store holds. */
export interface HeldBase {
  /** This host's file (absolute), directly in one of the store's directories. */
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/**
 * The base images a target holds: regular files directly in the directories its operator
 * listed, by whole-image SHA-256. Reads the directories again on every lookup (stats only;
 * hashes come from the saved hash beside each file while it is unchanged, so a base the
 * operator adds or replaces is known at the next lookup).
 */
export class BaseImageStore {
  private constructor(private readonly dirs: readonly string[]) {}

  /**
   * The store over `dirs` (made absolute); hashes every base not hashed yet, so that lookups
   * during a negotiation stay short. `BASE_IO` when a directory cannot be read.
   */
  static async open(dirs: readonly string[], options: { signal?: AbortSignal } = {}): Promise<BaseImageStore> {
    const store = new BaseImageStore(dirs.map((d) => resolvePath(d)));
    await store.list(options);
    return store;
  }

  /** Every base held now. */
  async list(options: { signal?: AbortSignal } = {}): Promise<HeldBase[]> {
    const out: HeldBase[] = [];
    for (const dir of this.dirs) {
      let names;
      try {
        names = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        throw ioError(err, `cannot read base image directory '${dir}'`);
      }
      for (const d of names) {
        // Regular files only (a symlink could lead out of the directory), not hidden ones
        // (temporary files), and not the saved hashes and indexes kept beside the bases.
        if (!d.isFile() || d.name.startsWith('.') || d.name.includes('.icx-')) continue;
        const path = join(dir, d.name);
        const { sha256, size } = await imageSha256(path, options);
        out.push({ path, size, sha256 });
      }
    }
    return out;
  }

  /**
   * The base this target holds with whole-image SHA-256 `hash` (as a peer names it), or
   * `undefined` when it holds none. `BASE_BAD_HASH` when `hash` is not 64 lowercase hex
   * digits: a peer's words are never used as anything but a key.
   */
  async resolve(hash: unknown, options: { signal?: AbortSignal } = {}): Promise<HeldBase | undefined> {
    if (!isImageHash(hash)) {
      throw new IntercloudError('BASE_BAD_HASH', 'a base image hash must be 64 lowercase hex digits', { details: { length: typeof hash === 'string' ? hash.length : undefined } });
    }
    return (await this.list(options)).find((b) => b.sha256 === hash);
  }
}
