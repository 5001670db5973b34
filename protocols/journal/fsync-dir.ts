/**
 * The journals' one piece of shared I/O (the line format in `lines.ts` is pure): a directory
 * fsync'ed, so that a journal or staging file created or renamed in it survives a crash.
 */
import { constants, promises as fs } from 'node:fs';

/** fsyncs directory `dir`. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, constants.O_RDONLY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
