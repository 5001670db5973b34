/**
 * Keeps the gateway's view of the Intercloud Root's CRL live (RFC 5280 §5: a CRL is current
 * from thisUpdate to nextUpdate, and a newer one replaces it). The CA operator re-issues the file
 * (`intercloud ca crl --out FILE`, written by rename); the watcher notices it — a file system
 * watch on its directory, plus a periodic look for changes the watch misses — and hands the new
 * text to the trust binding, without a restart. A file that does not parse is refused and the
 * previous CRL kept. Well before nextUpdate it warns (so the operator re-issues in time: past it
 * every verification fails with `TRUST_CRL_INVALID`), and once past it logs an error.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { isIntercloudError, messageOf } from '../../protocols/errors/index.js';
import { parseCrlsPem, type Crl } from '../../protocols/trust/index.js';
import type { Logger } from '../log.js';

const HOUR = 3_600_000;

/** What {@link CrlWatcher} needs. */
export interface CrlWatchOptions {
  /** The CRL file (PEM) the agent's config names. */
  readonly file: string;
  /** Takes a new CRL's PEM text (the trust binding's `setCrl`); may throw to refuse it. */
  readonly apply: (crlPem: string) => void;
  readonly log: Logger;
  /** How often to look at the file even without a watch event (default one minute). */
  readonly pollMs?: number;
  /**
   * Warn once less than this is left before nextUpdate. Default: a quarter of the CRL's own
   * lifetime, at least a day (42 h for the Root's 7-day CRLs).
   */
  readonly warnBeforeMs?: number;
  /** How often a warning or error about the same CRL is repeated (default one hour). */
  readonly repeatMs?: number;
  /** The clock (ms since the epoch). */
  readonly now?: () => number;
}

/** The CRL currently in force, as the watcher last loaded it. */
export interface LoadedCrl {
  readonly crlNumber: string | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
}

/** Watches the CRL file; {@link CrlWatcher.start} loads nothing (the daemon read it at start). */
export class CrlWatcher {
  readonly #opt: CrlWatchOptions;
  readonly #now: () => number;
  #signature = '';
  #loaded: LoadedCrl | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #again = false;
  #lastNotice = new Map<string, number>();

  constructor(options: CrlWatchOptions) {
    this.#opt = options;
    this.#now = options.now ?? Date.now;
  }

  /** The CRL in force (undefined before the first {@link check}). */
  get loaded(): LoadedCrl | undefined {
    return this.#loaded;
  }

  /** Checks the file once, then watches it until {@link stop}. */
  async start(): Promise<void> {
    await this.check();
    const name = basename(this.#opt.file);
    try {
      // The directory, not the file: `ca crl` replaces the file by rename.
      this.#watcher = watch(dirname(this.#opt.file), { persistent: false }, (_event, changed) => {
        if (changed === null || changed.toString() === name) this.#kick();
      });
      this.#watcher.on('error', (err) => this.#opt.log.warn({ err, crl: this.#opt.file }, 'crl watch failed; polling only'));
    } catch (err) {
      this.#opt.log.warn({ err, crl: this.#opt.file }, 'cannot watch the crl directory; polling only');
    }
    this.#timer = setInterval(() => this.#kick(), this.#opt.pollMs ?? 60_000);
    this.#timer.unref();
  }

  /** Stops watching. */
  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #kick(): void {
    this.check().catch((err: unknown) => this.#opt.log.error({ err, crl: this.#opt.file }, 'crl check failed'));
  }

  /**
   * Loads the file when it changed since the last look (size, mtime, inode) and checks how long
   * the CRL in force has left. Concurrent calls share one run (and one more if asked meanwhile).
   */
  async check(): Promise<void> {
    if (this.#checking) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#again = false;
        await this.#checkOnce();
      } while (this.#again);
    })().finally(() => { this.#checking = undefined; });
    return this.#checking;
  }

  async #checkOnce(): Promise<void> {
    const file = this.#opt.file;
    let signature: string;
    try {
      const s = await stat(file);
      signature = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      this.#notice('missing', 'error', { err, crl: file }, 'cannot read the crl file; the last crl loaded stays in force');
      this.#judge();
      return;
    }
    if (signature !== this.#signature) {
      let crls: Crl[];
      let pem: string;
      try {
        pem = await readFile(file, 'utf8');
        crls = parseCrlsPem(pem);
        if (crls.length === 0) throw new Error('no crl in the file');
        this.#opt.apply(pem);
      } catch (err) {
        this.#signature = signature; // the same bad file is not reported on every poll
        this.#opt.log.error({ err, crl: file, code: isIntercloudError(err) ? err.code : undefined }, `refused the new crl: ${messageOf(err)}; the previous one stays in force`);
        this.#judge();
        return;
      }
      this.#signature = signature;
      const newest = crls.reduce((a, b) => (b.thisUpdate > a.thisUpdate ? b : a));
      const before = this.#loaded;
      this.#loaded = { crlNumber: newest.crlNumber?.toString(), thisUpdate: newest.thisUpdate, nextUpdate: newest.nextUpdate };
      if (before) {
        this.#opt.log.info({ crl: file, crlNumber: this.#loaded.crlNumber, revoked: newest.revoked.size, nextUpdate: newest.nextUpdate?.toISOString() }, 'crl reloaded');
      }
    }
    this.#judge();
  }

  /** Warns while nextUpdate is near, errors once it passed. */
  #judge(): void {
    const crl = this.#loaded;
    if (!crl?.nextUpdate) return;
    const now = this.#now();
    const left = crl.nextUpdate.getTime() - now;
    const lifetime = crl.nextUpdate.getTime() - crl.thisUpdate.getTime();
    const warnBefore = this.#opt.warnBeforeMs ?? Math.max(24 * HOUR, lifetime / 4);
    const fields = { crl: this.#opt.file, crlNumber: crl.crlNumber, nextUpdate: crl.nextUpdate.toISOString(), hoursLeft: Math.round(left / HOUR * 10) / 10 };
    if (left <= 0) {
      this.#notice(`expired:${crl.crlNumber ?? ''}`, 'error', fields, 'the crl is past its nextUpdate: every peer verification fails until the ca operator re-issues it (intercloud ca crl)');
    } else if (left <= warnBefore) {
      this.#notice(`expiring:${crl.crlNumber ?? ''}`, 'warn', fields, 'the crl reaches its nextUpdate soon: the ca operator must re-issue it (intercloud ca crl)');
    }
  }

  #notice(key: string, level: 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    const now = this.#now();
    const last = this.#lastNotice.get(key);
    if (last !== undefined && now - last < (this.#opt.repeatMs ?? HOUR)) return;
    this.#lastNotice.set(key, now);
    this.#opt.log[level](fields, message);
  }
}
