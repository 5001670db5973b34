/**
 * The audit log file (I/O): appends hash-chained records (see `audit-chain.ts`) to a
 * JSON-lines file opened for appending, fsyncing each one before the append resolves.
 * One writer per file: appends from one {@link AuditLog} are serialised.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { formatRecord, nextRecord, verifyAuditText, type AuditEvent, type AuditHead, type AuditRecord } from './audit-chain.js';
import { trustError } from './errors.js';

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /** The clock for record times (default `() => new Date()`). */
  clock?: () => Date;
}

/** An append-only, hash-chained log of trust decisions and intercloud actions. */
export class AuditLog {
  readonly path: string;
  readonly #file: FileHandle;
  readonly #clock: () => Date;
  #head: AuditHead;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, file: FileHandle, head: AuditHead, clock: () => Date) {
    this.path = path;
    this.#file = file;
    this.#head = head;
    this.#clock = clock;
  }

  /**
   * Opens (creating, mode 0600) the log at `path`, verifying the existing chain first: a
   * broken log is TRUST_AUDIT_BROKEN and is never appended to.
   */
  static async open(path: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw trustError('TRUST_AUDIT_IO', `cannot read audit log '${path}'`, { cause: err });
    }
    const head = verifyAuditText(text);
    let file: FileHandle;
    try {
      file = await open(path, 'a', 0o600);
    } catch (err) {
      throw trustError('TRUST_AUDIT_IO', `cannot open audit log '${path}' for appending`, { cause: err });
    }
    return new AuditLog(path, file, head, options.clock ?? (() => new Date()));
  }

  /** The chain's current end (remember it elsewhere to detect a cut-off tail later). */
  get head(): AuditHead {
    return { ...this.#head };
  }

  /** Appends `event` and resolves once it is on disk (fsync). */
  append(event: AuditEvent): Promise<AuditRecord> {
    const run = async (): Promise<AuditRecord> => {
      const record = nextRecord(this.#head, event, this.#clock());
      try {
        await this.#file.write(formatRecord(record));
        await this.#file.sync();
      } catch (err) {
        throw trustError('TRUST_AUDIT_IO', `cannot append to audit log '${this.path}'`, { cause: err });
      }
      this.#head = { count: record.seq, hash: record.hash };
      return record;
    };
    const result = this.#queue.then(run, run);
    // The queue only orders appends; the caller sees this append's failure through `result`.
    this.#queue = result.catch((err: unknown) => err);
    return result;
  }

  /** Closes the file after pending appends. */
  async close(): Promise<void> {
    await this.#queue;
    await this.#file.close();
  }
}

/** Reads and verifies the log at `path`; returns its head or throws TRUST_AUDIT_BROKEN naming the line. */
export async function verifyAuditFile(path: string, expect?: AuditHead): Promise<AuditHead> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw trustError('TRUST_AUDIT_IO', `cannot read audit log '${path}'`, { cause: err });
  }
  return verifyAuditText(text, expect);
}
