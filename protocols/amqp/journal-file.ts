/**
 * A transfer journal on disk (I/O): one small append-only file per transfer and side, in the
 * format of `journal-records.ts`. Every append is fsync'ed before it returns; a torn last line
 * from a crash is cut off when the journal is reopened.
 */
import { constants, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { isIntercloudError } from '../errors/index.js';
import { xferError } from './errors.js';
import { decodeJournal, encodeJournalRecord, type JournalRecord } from './journal-records.js';
import { fsyncDir } from '../journal/index.js';
import { ioError } from './staging-file.js';

/** An open transfer journal. */
export class TransferJournal {
  private constructor(
    readonly path: string,
    private handle: fs.FileHandle | undefined,
  ) {}

  /** The journal path of `transferId`'s `side` in `dir`. */
  static pathFor(dir: string, transferId: string, side: 'send' | 'receive'): string {
    return join(dir, `${transferId}.${side}.journal`);
  }

  /** Opens (creating if needed) the journal at `path` and returns its records. */
  static async open(path: string): Promise<{ journal: TransferJournal; records: JournalRecord[] }> {
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
      const decoded = decodeJournal(text, path);
      const handle = await fs.open(path, constants.O_CREAT | constants.O_WRONLY | constants.O_APPEND, 0o640);
      if (decoded.tornTail) await handle.truncate(decoded.goodBytes);
      if (created) await fsyncDir(dirname(path));
      return { journal: new TransferJournal(path, handle), records: decoded.records };
    } catch (err) {
      if (isIntercloudError(err)) throw err;
      throw ioError(err, `cannot open transfer journal '${path}'`);
    }
  }

  /** Appends records and fsyncs them (one write, one fsync). */
  async append(...records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return;
    const h = this.handle;
    if (!h) throw xferError('XFER_JOURNAL', `transfer journal '${this.path}' is closed`);
    try {
      await h.write(records.map(encodeJournalRecord).join(''));
      await h.datasync();
    } catch (err) {
      throw ioError(err, `cannot append to transfer journal '${this.path}'`);
    }
  }

  /** Closes the journal (idempotent). */
  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h) await h.close();
  }
}
