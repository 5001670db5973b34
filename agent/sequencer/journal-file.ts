/**
 * A job's journal on disk: one JSON-lines file per job, every record fsync'ed before the
 * engine moves on (and the directory fsync'ed when the file is created, so the file itself
 * survives a crash).
 */
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { IntercloudError } from '../../protocols/errors/index.js';
import { fsyncDir } from '../../protocols/journal/index.js';
import { decodeJournal, encodeRecord, type JournalRecord, type NewRecord } from './journal-records.js';

/** An open journal that records can be appended to. */
export class JournalFile {
  private constructor(
    readonly path: string,
    private handle: fs.FileHandle,
    private records: JournalRecord[],
    private readonly now: () => Date,
  ) {}

  /** The file name of job `jobId`'s journal in `dir`. */
  static pathFor(dir: string, jobId: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(jobId)) {
      throw new IntercloudError('SEQ_UNKNOWN_JOB', `job id '${jobId}' is not a valid id`);
    }
    return join(dir, `${jobId}.journal`);
  }

  /** Creates the journal of a new job with its first record; fails if it exists. */
  static async create(dir: string, jobId: string, first: NewRecord, now: () => Date = () => new Date()): Promise<JournalFile> {
    await fs.mkdir(dir, { recursive: true, mode: 0o750 });
    const path = JournalFile.pathFor(dir, jobId);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_APPEND, 0o640);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new IntercloudError('SEQ_JOB_EXISTS', `job '${jobId}' already exists`, { cause: err });
      }
      throw err;
    }
    const journal = new JournalFile(path, handle, [], now);
    await journal.append(first);
    await fsyncDir(dir);
    return journal;
  }

  /** Opens an existing journal, dropping a torn last line left by a crash mid-write. */
  static async open(dir: string, jobId: string, now: () => Date = () => new Date()): Promise<JournalFile> {
    const path = JournalFile.pathFor(dir, jobId);
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new IntercloudError('SEQ_UNKNOWN_JOB', `no journal for job '${jobId}' in '${dir}'`, { cause: err });
      }
      throw err;
    }
    const records = decodeJournal(text, path);
    const complete = text.lastIndexOf('\n') + 1;
    if (complete < Buffer.byteLength(text)) await fs.truncate(path, Buffer.byteLength(text.slice(0, complete)));
    const handle = await fs.open(path, constants.O_WRONLY | constants.O_APPEND);
    return new JournalFile(path, handle, records, now);
  }

  /** Reads a journal without opening it for writing. */
  static async read(dir: string, jobId: string): Promise<JournalRecord[]> {
    const path = JournalFile.pathFor(dir, jobId);
    try {
      return decodeJournal(await fs.readFile(path, 'utf8'), path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new IntercloudError('SEQ_UNKNOWN_JOB', `no journal for job '${jobId}' in '${dir}'`, { cause: err });
      }
      throw err;
    }
  }

  /** Job ids with a journal in `dir`. */
  static async list(dir: string): Promise<string[]> {
    try {
      return (await fs.readdir(dir)).filter((f) => f.endsWith('.journal')).map((f) => f.slice(0, -'.journal'.length)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** The records written so far (including those read at open). */
  get all(): readonly JournalRecord[] {
    return this.records;
  }

  /**
   * Appends one record and fsyncs it; resolves only once it is durable. Concurrent calls
   * (a cancel arriving while a step records its result) are written one after another.
   */
  append(record: NewRecord): Promise<JournalRecord> {
    const write = this.tail.then(async () => {
      const full = { seq: this.records.length + 1, at: this.now().toISOString(), ...record } as JournalRecord;
      await this.handle.write(encodeRecord(full));
      await this.handle.datasync();
      this.records.push(full);
      return full;
    });
    this.tail = write.catch(() => undefined); // the caller of this append gets the error; the next one still runs
    return write;
  }

  private tail: Promise<unknown> = Promise.resolve();

  /** Closes the file once pending appends are written. */
  async close(): Promise<void> {
    await this.tail;
    await this.handle.close();
  }
}
