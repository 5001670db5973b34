/**
 * A sender that dies after the receiver committed but before it journaled `committed`, against
 * the real broker: the sender (a child process running `intercloud transfer send`) is stopped
 * (SIGSTOP) by the receiver's own journal write of `end` (this process's, held until the signal
 * is sent) — so before the receiver can have answered `committed` — and killed once the receiver
 * committed; a sender started again must finish at
 * once with the committed digest, not wait for a `status` a committed receiver never sends.
 * And a sender whose journal cannot record `committed` (the disk fails) leaves the receiver's
 * answer queued for its next run. The broker is not touched.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { decodeJournal, receiveTransfer, sendTransfer, TransferJournal, type JournalRecord, type SendResult } from '../../../protocols/amqp/index.js';
import { IntercloudError, isIntercloudError } from '../../../protocols/errors/index.js';
import { cleanup, cli, cliArgs, fileDigest, pair, scratch, writeImage } from './helpers.js';

const MiB = 1024 * 1024;
afterAll(cleanup);

const journalOf = (path: string): JournalRecord[] => (existsSync(path) ? decodeJournal(readFileSync(path, 'utf8')).records : []);

describe('sender restarted after the receiver committed', () => {
  it('finishes promptly with the committed digest and journals committed (no wait for expiry)', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 32 * MiB, [[0, 32 * MiB]]);
    const p = pair(dir, 5);
    const target = join(dir, 'dst');
    const sendJournal = TransferJournal.pathFor(p.send.journalDir, p.transferId, 'send');
    const receiveJournal = TransferJournal.pathFor(p.receive.journalDir, p.transferId, 'receive');
    const args = cliArgs('send', p, ['--source', src, '--window', String(8 * MiB)]);

    const first = cli(args);
    let stopped = false;
    // The receiver (here, in this process) records `end` before it commits and answers: the
    // sender is stopped right then, so it cannot have heard `committed` (a poll of the journal
    // lost that race once the receiver stopped re-reading its file before the commit).
    const real = TransferJournal.prototype.append;
    const append = vi.spyOn(TransferJournal.prototype, 'append').mockImplementation(function (this: TransferJournal, ...records: JournalRecord[]) {
      if (!stopped && this.path === receiveJournal && records.some((r) => r.t === 'end')) stopped = first.child.kill('SIGSTOP');
      return real.apply(this, records);
    });
    try {
      const got = await receiveTransfer({ ...p.receive, targetPath: target });
      append.mockRestore();
      expect(stopped).toBe(true);
      first.child.kill('SIGKILL');
      expect((await first.done).code).toBeNull(); // killed, not finished
      // The defect's window: the sender journaled `end` but not `committed`.
      expect(journalOf(sendJournal).map((r) => r.t)).toEqual(['manifest', 'end']);

      const began = Date.now();
      const second = cli(args);
      // A sender that waits for a status would run until the expiry (5 min): give it 30 s.
      const limit = setTimeout(() => second.child.kill('SIGKILL'), 30_000);
      const s2 = await second.done.finally(() => clearTimeout(limit));
      const elapsed = Date.now() - began;
      expect(s2.code, s2.stderr).toBe(0);
      expect(elapsed).toBeLessThan(30_000);
      const sent = JSON.parse(s2.stdout) as SendResult;
      expect(sent.resumed).toBe(true);
      expect(sent.digest).toBe(got.digest);
      expect(sent.bytesSent).toBe(0);
      const records = journalOf(sendJournal);
      expect(records.map((r) => r.t)).toEqual(['manifest', 'end', 'committed']);
      expect(records.at(-1)).toEqual({ t: 'committed', digest: got.digest });
      expect(await fileDigest(target)).toBe(await fileDigest(src));
    } finally {
      append.mockRestore();
      first.child.kill('SIGKILL');
    }
  }, 120_000);

  it('a sender that fails to journal committed leaves the answer queued: the next run finishes with it', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 8 * MiB, [[0, 8 * MiB]]);
    const p = pair(dir, 5);
    const target = join(dir, 'dst');
    const sendJournal = TransferJournal.pathFor(p.send.journalDir, p.transferId, 'send');
    const real = TransferJournal.prototype.append;
    // The sender's disk fails exactly when it records the commit (the receiver's journal is not touched).
    const append = vi.spyOn(TransferJournal.prototype, 'append').mockImplementation(function (this: TransferJournal, ...records: JournalRecord[]) {
      if (this.path === sendJournal && records.some((r) => r.t === 'committed')) {
        return Promise.reject(new IntercloudError('XFER_IO', `cannot append to transfer journal '${this.path}'`, { details: { errno: 'EIO' } }));
      }
      return real.apply(this, records);
    });
    let got;
    try {
      const [first, received] = await Promise.allSettled([
        sendTransfer({ ...p.send, source: src, chunkSize: MiB }),
        receiveTransfer({ ...p.receive, targetPath: target }),
      ]);
      expect(first.status === 'rejected' && isIntercloudError(first.reason, 'XFER_IO')).toBe(true);
      expect(received.status).toBe('fulfilled');
      got = (received as PromiseFulfilledResult<Awaited<ReturnType<typeof receiveTransfer>>>).value;
    } finally {
      append.mockRestore();
    }
    expect(journalOf(sendJournal).map((r) => r.t)).toEqual(['manifest', 'end']);

    // The receiver has finished and will not answer again: only the queued answer can end this run.
    const stop = new AbortController();
    const limit = setTimeout(() => stop.abort(), 30_000);
    const began = Date.now();
    const sent = await sendTransfer({ ...p.send, source: src, chunkSize: MiB, signal: stop.signal }).finally(() => clearTimeout(limit));
    expect(Date.now() - began).toBeLessThan(30_000);
    expect(sent.resumed).toBe(true);
    expect(sent.digest).toBe(got.digest);
    expect(journalOf(sendJournal).at(-1)).toEqual({ t: 'committed', digest: got.digest });
    expect(await fileDigest(target)).toBe(await fileDigest(src));
  }, 120_000);
});
