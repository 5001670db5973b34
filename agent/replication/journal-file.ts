/**
 * The replication journal on disk (I/O): one append-only file per subcontract at A, in the
 * format of `journal-records.ts`. Every append is one write and one fdatasync before it returns;
 * a torn last line from a crash is cut off when the journal is reopened; a new file's directory
 * is fsync'ed so the file itself survives a crash.
 */
import { constants, promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { isIntercloudError } from '../../protocols/errors/index.js';
import { fsyncDir } from '../../protocols/journal/index.js';
import { replError } from './errors.js';
import { decodeReplJournal, encodeReplRecord, type ReplRecord } from './journal-records.js';

/** An open replication journal. */
export class ReplicationJournal {
  #handle: fs.FileHandle | undefined;
  /** Closed by {@link close}; until then a missing handle (a compaction that could not reopen) is opened again. */
  #closed = false;

  private constructor(readonly path: string, handle: fs.FileHandle) {
    this.#handle = handle;
  }

  /** Opens (creating if needed) the journal at `path` and returns its records. */
  static async open(path: string): Promise<{ journal: ReplicationJournal; records: ReplRecord[] }> {
    try {
      await fs.mkdir(dirname(path), { recursive: true, mode: 0o750 });
      let text = '';
      let created = false;
      try {
        text = await fs.readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        created = true;
      }
      const decoded = decodeReplJournal(text, path);
      const handle = await fs.open(path, constants.O_CREAT | constants.O_WRONLY | constants.O_APPEND, 0o640);
      if (decoded.tornTail) await handle.truncate(decoded.goodBytes);
      if (created) await fsyncDir(dirname(path));
      return { journal: new ReplicationJournal(path, handle), records: decoded.records };
    } catch (err) {
      if (isIntercloudError(err)) throw err;
      throw replError('REPL_JOURNAL', `cannot open replication journal '${path}'`, { cause: err });
    }
  }

  /** Appends records and makes them durable (one write, one fdatasync). */
  async append(records: readonly ReplRecord[]): Promise<void> {
    if (records.length === 0) return;
    if (this.#closed) throw replError('REPL_CLOSED', `replication journal '${this.path}' is closed`);
    try {
      const h = (this.#handle ??= await fs.open(this.path, constants.O_WRONLY | constants.O_APPEND));
      await h.write(records.map(encodeReplRecord).join(''));
      await h.datasync();
    } catch (err) {
      throw replError('REPL_JOURNAL', `cannot append to replication journal '${this.path}'`, { cause: err });
    }
  }

  /**
   * Replaces the journal with `records` (a compaction: what the journal folds to, shorter):
   * written to a file beside it and fsync'ed, renamed over it, the directory fsync'ed; appends go
   * on into the new file. A crash leaves either journal whole.
   */
  async compact(records: readonly ReplRecord[]): Promise<void> {
    if (this.#closed) throw replError('REPL_CLOSED', `replication journal '${this.path}' is closed`);
    const next = `${this.path}.compact`;
    try {
      const h = await fs.open(next, constants.O_CREAT | constants.O_WRONLY | constants.O_TRUNC, 0o640);
      try {
        await h.write(records.map(encodeReplRecord).join(''));
        await h.datasync();
      } finally {
        await h.close();
      }
      await fs.rename(next, this.path);
    } catch (err) {
      await fs.rm(next, { force: true }).catch(() => undefined);
      throw replError('REPL_JOURNAL', `cannot compact replication journal '${this.path}'`, { cause: err });
    }
    // From the rename on, the journal is the new file whatever fails next: the old handle names the
    // replaced one, where nothing may be appended (the next append opens the new file if need be).
    const old = this.#handle;
    this.#handle = undefined;
    await old?.close().catch(() => undefined);
    try {
      this.#handle = await fs.open(this.path, constants.O_WRONLY | constants.O_APPEND);
      await fsyncDir(dirname(this.path));
    } catch (err) {
      throw replError('REPL_JOURNAL', `replication journal '${this.path}' compacted, but not made durable: ${String(err)}`, { cause: err });
    }
  }

  /** Closes the journal (idempotent). */
  async close(): Promise<void> {
    this.#closed = true;
    const h = this.#handle;
    this.#handle = undefined;
    if (h) await h.close();
  }
}
