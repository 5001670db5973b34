/**
 * Where a sender reads from (I/O): a disk file by default, or any byte source that can be
 * (re)opened at an offset — an object store GET with a range, a hypervisor's export stream.
 *
 * An optional allocation map (extents holding data, e.g. from the hypervisor adapter's block
 * status) lets the sender skip holes without reading them. Without one, zero chunks are found
 * by scanning (Node has no `SEEK_DATA`/`SEEK_HOLE`).
 */
import { promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { ioError } from './staging-file.js';
import type { SourceIdentity } from './journal-records.js';

/** A run of allocated bytes in the source. */
export interface Extent {
  readonly offset: number;
  readonly length: number;
}

/**
 * A byte source of known size. Contract: `read` is positional and may be called again for the
 * same range (re-sends) and must then return the same bytes until the transfer commits — the
 * source is kept until the target commits (the end-to-end argument).
 */
export interface TransferSource {
  readonly size: number;
  /** Identity to detect that the source changed between attempts (size, mtime). */
  readonly identity: SourceIdentity;
  /** Allocated extents, sorted; absent when unknown (every chunk is read and scanned). */
  readonly extents?: readonly Extent[];
  /** Reads exactly `length` bytes at `offset` into `into` (at `intoOffset`). */
  read(offset: number, length: number, into: Buffer, intoOffset: number): Promise<void>;
  /** Releases the source. */
  close(): Promise<void>;
}

/** A disk file as a source. `extents` may come from the hypervisor adapter. */
export async function fileSource(path: string, extents?: readonly Extent[]): Promise<TransferSource> {
  let handle: fs.FileHandle;
  let st;
  try {
    handle = await fs.open(path, 'r');
    st = await handle.stat();
  } catch (err) {
    throw ioError(err, `cannot open source '${path}'`);
  }
  return {
    size: st.size,
    identity: { size: st.size, mtimeMs: Math.trunc(st.mtimeMs) },
    ...(extents ? { extents } : {}),
    async read(offset, length, into, intoOffset) {
      let done = 0;
      try {
        while (done < length) {
          const { bytesRead } = await handle.read(into, intoOffset + done, length - done, offset + done);
          if (bytesRead === 0) throw Object.assign(new Error(`unexpected end of file at '${offset + done}'`), { code: 'EOF' });
          done += bytesRead;
        }
      } catch (err) {
        throw ioError(err, `cannot read source '${path}' at offset '${offset}'`);
      }
    },
    close: () => handle.close(),
  };
}

/**
 * A stream as a source: `open(offset)` returns a Readable of the bytes from `offset` on. The
 * sender reads sequentially from one stream and reopens only to re-send.
 */
export function streamSource(options: {
  size: number;
  open: (offset: number) => Readable;
  extents?: readonly Extent[];
  identity?: SourceIdentity;
}): TransferSource {
  let current: { stream: Readable; iter: AsyncIterator<Buffer>; pos: number; pending: Buffer | undefined } | undefined;
  const reopen = (offset: number) => {
    current?.stream.destroy();
    const stream = options.open(offset);
    current = { stream, iter: stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>, pos: offset, pending: undefined };
    return current;
  };
  return {
    size: options.size,
    identity: options.identity ?? { size: options.size },
    ...(options.extents ? { extents: options.extents } : {}),
    async read(offset, length, into, intoOffset) {
      const c = current && current.pos === offset ? current : reopen(offset);
      let done = 0;
      try {
        while (done < length) {
          let piece = c.pending;
          c.pending = undefined;
          if (!piece) {
            const r = await c.iter.next();
            if (r.done) throw Object.assign(new Error(`stream ended at '${c.pos}'`), { code: 'EOF' });
            piece = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
          }
          const take = Math.min(piece.length, length - done);
          piece.copy(into, intoOffset + done, 0, take);
          if (take < piece.length) c.pending = piece.subarray(take);
          done += take;
          c.pos += take;
        }
      } catch (err) {
        current?.stream.destroy();
        current = undefined;
        throw ioError(err, `cannot read source stream at offset '${offset}'`);
      }
    },
    async close() {
      current?.stream.destroy();
      current = undefined;
    },
  };
}

/** True when `[offset, offset+length)` overlaps no extent (a hole by the allocation map). */
export function isHole(extents: readonly Extent[], offset: number, length: number): boolean {
  // Binary search for the first extent ending after `offset`.
  let lo = 0;
  let hi = extents.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const e = extents[mid]!;
    if (e.offset + e.length <= offset) lo = mid + 1;
    else hi = mid;
  }
  const e = extents[lo];
  return e === undefined || e.offset >= offset + length;
}
