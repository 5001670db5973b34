/**
 * Sequential reading in large blocks with one block read ahead (I/O helper). Each positional
 * read is a trip through libuv's thread pool; on a busy machine that trip, not the copy, is
 * what costs, so the sender's scan and the receiver's verification read 4 MiB at a time and
 * overlap the next read with the work on the current block.
 */

/** Reads `length` bytes at `offset` into the start of `into`. */
export type PositionalRead = (offset: number, length: number, into: Buffer) => Promise<void>;

/** One block: `bytes` is valid until the generator is resumed twice more. */
export interface Block {
  readonly offset: number;
  readonly bytes: Buffer;
}

/** Default block size: 4 MiB, rounded to whole chunks. */
export function blockSizeFor(chunkSize: number, target = 4 * 1024 * 1024): number {
  return Math.max(1, Math.floor(target / chunkSize)) * chunkSize;
}

/** Yields `[from, size)` in blocks of `blockSize` bytes, reading the next block ahead. */
export async function* readBlocks(from: number, size: number, blockSize: number, read: PositionalRead): AsyncGenerator<Block> {
  const buffers = [Buffer.allocUnsafe(blockSize), Buffer.allocUnsafe(blockSize)];
  const start = (offset: number, i: number): Promise<void> | undefined => {
    if (offset >= size) return undefined;
    const p = read(offset, Math.min(blockSize, size - offset), buffers[i % 2]!);
    p.catch(() => undefined); // observed when awaited below
    return p;
  };
  let pending = start(from, 0);
  for (let offset = from, i = 0; offset < size; offset += blockSize, i++) {
    await pending;
    pending = start(offset + blockSize, i + 1);
    yield { offset, bytes: buffers[i % 2]!.subarray(0, Math.min(blockSize, size - offset)) };
  }
}
