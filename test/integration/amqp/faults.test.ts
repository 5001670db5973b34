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
import { cleanup, cli, cliArgs, fileDigest, pair, rabbit, scratch, writeImage } from './helpers.js';

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
