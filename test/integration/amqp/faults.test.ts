/**
 * Restarts and resource faults against the real broker: the broker killed by its pid file and
 * restarted with `scripts/services up rabbitmq`; the receiver and the sender killed (SIGKILL,
 * child processes running `intercloud transfer …`) and started again; the target's file system
 * full (a small tmpfs mounted for the test).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { receiveTransfer, sendTransfer, type ProgressEvent, type ReceiveResult, type SendResult } from '../../../protocols/amqp/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { cleanup, cli, cliArgs, fileDigest, pair, queueExists, rabbit, scratch, writeImage } from './helpers.js';

const MiB = 1024 * 1024;
const REPO = join(import.meta.dirname, '../../..');
const run = promisify(execFile);
afterAll(cleanup);

describe('transfer faults with restarts', () => {
  it('survives the broker killed and restarted mid-transfer', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 192 * MiB, [[0, 192 * MiB]]);
    const p = pair(dir, 5);
    let killed: Promise<void> | undefined;
    const onProgress = (e: ProgressEvent) => {
      if (killed || e.bytesDone < 0.3 * e.bytesTotal) return;
      killed = (async () => {
        const pid = Number(readFileSync(rabbit().pidFile, 'utf8').trim());
        process.kill(pid, 'SIGKILL');
        // (No waiting for /proc/<pid> to vanish: an unreaped zombie keeps it; its sockets are gone.)
        await run(join(REPO, 'scripts/services'), ['up', 'rabbitmq']);
      })();
    };
    const [sent, got] = await Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB, windowBytes: 8 * MiB, onProgress, progressIntervalMs: 0 }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst') }),
    ]);
    await killed;
    expect(killed).toBeDefined();
    expect(await fileDigest(join(dir, 'dst'))).toBe(await fileDigest(src));
    expect(got.digest).toBe(sent.digest);
  });

  it('resumes after the receiver is killed and restarted, re-sending only what it lacks', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 192 * MiB, [[0, 192 * MiB]]);
    const p = pair(dir, 5);
    const target = join(dir, 'dst');
    const sending = sendTransfer({ ...p.send, source: src, chunkSize: MiB, windowBytes: 8 * MiB });
    let heldAtKill = 0;
    const first = cli(cliArgs('receive', p, ['--target', target]), (e) => {
      if (heldAtKill === 0 && e.bytesDone > 0.3 * e.bytesTotal) {
        heldAtKill = e.bytesDone;
        first.child.kill('SIGKILL');
      }
    });
    const r1 = await first.done;
    expect(r1.code).toBeNull(); // killed, not finished
    expect(existsSync(target)).toBe(false);
    const second = cli(cliArgs('receive', p, ['--target', target]));
    const [sent, r2] = await Promise.all([sending, second.done]);
    expect(r2.code, r2.stderr).toBe(0);
    const got = JSON.parse(r2.stdout) as ReceiveResult;
    expect(got.resumed).toBe(true);
    expect(await fileDigest(target)).toBe(await fileDigest(src));
    // What the first receiver held durably was not sent again.
    expect(heldAtKill).toBeGreaterThan(0);
    expect(got.bytesReceived).toBeLessThan(192 * MiB);
    expect(sent.chunks.resent).toBeLessThan(192);
    expect(sent.digest).toBe(got.digest);
  });

  it('resumes after the sender is killed and restarted, sending only what the receiver lacks', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 192 * MiB, [[0, 192 * MiB]]);
    const p = pair(dir, 5);
    const target = join(dir, 'dst');
    const receiving = receiveTransfer({ ...p.receive, targetPath: target });
    let killedAt = 0;
    const first = cli(cliArgs('send', p, ['--source', src, '--window', String(8 * MiB)]), (e) => {
      if (killedAt === 0 && e.bytesDone > 0.5 * e.bytesTotal) {
        killedAt = e.bytesDone;
        first.child.kill('SIGKILL');
      }
    });
    expect((await first.done).code).toBeNull();
    const second = cli(cliArgs('send', p, ['--source', src, '--window', String(8 * MiB)]));
    const [got, s2] = await Promise.all([receiving, second.done]);
    expect(s2.code, s2.stderr).toBe(0);
    const sent = JSON.parse(s2.stdout) as SendResult;
    expect(sent.resumed).toBe(true);
    expect(sent.chunks.held).toBeGreaterThan(0);
    // Not sent again: what the receiver held durably (it fsyncs every 64 MiB or 0.5 s).
    expect(sent.bytesSent).toBeLessThan(192 * MiB - killedAt + 80 * MiB);
    expect(await fileDigest(target)).toBe(await fileDigest(src));
    expect(got.digest).toBe(sent.digest);
  });

  it("delivers the receiver's `committed` to a sender that was away while the broker restarted", async () => {
    // The receiver stops once its `committed` answer is confirmed: nobody answers the sender's
    // `end` poll after that, so the answer must outlive a broker restart. The sender is frozen
    // (SIGSTOP) from the moment its `end` is journaled, let run 5 ms at a time until the
    // receiver has committed (verifying 64 MiB takes longer than that), then killed: the answer
    // it never read goes back to the control queue. The broker is killed and started again, and
    // the sender, started again, must find the answer waiting.
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 64 * MiB, [[0, 64 * MiB]]);
    const p = pair(dir, 5);
    const receiving = receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst') });
    receiving.catch(() => undefined);
    const journal = join(p.send.journalDir, `${p.transferId}.send.journal`);
    const records = () => (existsSync(journal) ? readFileSync(journal, 'utf8') : '');
    const sleep = (ms: number) => new Promise<false>((r) => setTimeout(() => r(false), ms));
    const first = cli(cliArgs('send', p, ['--source', src, '--window', String(8 * MiB)]));
    for (const deadline = Date.now() + 60_000; !records().includes('"t":"end"');) {
      if (Date.now() > deadline) throw new Error(`the sender never journaled its end: ${records()}`);
      await sleep(2);
    }
    for (const deadline = Date.now() + 60_000; ;) {
      first.child.kill('SIGSTOP');
      if (await Promise.race([receiving.then(() => true), sleep(400)])) break;
      if (Date.now() > deadline) throw new Error('the receiver never committed');
      first.child.kill('SIGCONT');
      await sleep(5);
    }
    first.child.kill('SIGKILL');
    await first.done;
    expect(records()).not.toContain('"t":"committed"');
    const got = await receiving;
    const pid = Number(readFileSync(rabbit().pidFile, 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    await run(join(REPO, 'scripts/services'), ['up', 'rabbitmq']);
    const second = cli(cliArgs('send', p, ['--source', src, '--window', String(8 * MiB)]));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'no answer'>((resolve) => { timer = setTimeout(() => resolve('no answer'), 30_000); });
    const s2 = await Promise.race([second.done, bound]);
    clearTimeout(timer);
    if (s2 === 'no answer') second.child.kill('SIGKILL');
    expect(s2, 'the sender, started again, learnt of the commit within 30 s').not.toBe('no answer');
    const out = s2 as { code: number | null; stdout: string; stderr: string };
    expect(out.code, out.stderr).toBe(0);
    expect((JSON.parse(out.stdout) as SendResult).digest).toBe(got.digest);
    expect(await queueExists(`xfer.cloud-a.cloud-b.${p.transferId}.ctl`)).toBe(false);
  });

  it('fails cleanly when the target disk is full: XFER_DISK_FULL, staging removed, source untouched', async () => {
    const dir = scratch();
    const mnt = join(dir, 'small');
    await fs.mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
    try {
      const src = join(dir, 'src');
      await writeImage(src, 48 * MiB, [[0, 48 * MiB]]);
      const before = await fileDigest(src);
      const p = pair(dir);
      const codes = await Promise.all([
        sendTransfer({ ...p.send, source: src, chunkSize: MiB }).then(() => 'ok', (e: unknown) => (isIntercloudError(e) ? e.code : String(e))),
        receiveTransfer({ ...p.receive, targetPath: join(mnt, 'disk.raw') }).then(() => 'ok', (e: unknown) => (isIntercloudError(e) ? e.code : String(e))),
      ]);
      expect(codes).toEqual(['XFER_DISK_FULL', 'XFER_DISK_FULL']);
      expect(readdirSync(mnt)).toEqual([]);
      expect(await fileDigest(src)).toBe(before);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
