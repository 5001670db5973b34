/**
 * Waiting for the federation lock (scripts/federation-lock.ts): the waiter is told at once who
 * holds the lock — also a process that only inherited its descriptor — and gives up after the
 * bound with the same facts. Runs on a private lock file, never the machine's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { federationLockHolders, lockFederation } from '../../../scripts/federation-lock.js';

let dir: string;
let lock: string;
const children: ChildProcess[] = [];
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'federation-lock-'));
  lock = join(dir, 'federation.lock');
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await fs.rm(dir, { recursive: true, force: true });
});

/** A shell that takes the lock on fd 9, then leaves a `sleep` holding the inherited fd. */
async function holdLock(): Promise<{ sleeper: number }> {
  const sh = spawn('bash', ['-c', `exec 9>"${lock}"; flock 9; sleep 300 & echo $!; wait`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(sh);
  const sleeper = await new Promise<number>((res) => sh.stdout.once('data', (d: Buffer) => res(Number(d.toString().trim()))));
  children.push({ kill: () => { try { process.kill(sleeper, 'SIGKILL'); } catch { /* already gone */ } } } as unknown as ChildProcess);
  // `$!` is known as soon as bash forks: until the child has exec'd, it is still named bash.
  for (let i = 0; i < 100; i++) {
    const cmdline = await fs.readFile(`/proc/${sleeper}/cmdline`, 'utf8').catch(() => '');
    if (cmdline === ['sleep', '300', ''].join('\0')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { sleeper };
}

describe('federation lock', () => {
  it('names every process that holds the lock, inherited or not, and no waiter', async () => {
    const { sleeper } = await holdLock();
    const waiter = spawn('flock', ['-w', '30', lock, 'true'], { stdio: 'ignore' });
    children.push(waiter);
    await new Promise((r) => setTimeout(r, 200));
    const holders = await federationLockHolders(lock);
    const pids = holders.map((h) => h.pid).sort();
    expect(pids).toEqual([children[0]!.pid!, sleeper].sort());
    expect(holders.find((h) => h.pid === sleeper)?.command).toBe('sleep 300');
    expect(holders.find((h) => h.pid === sleeper)?.parentPid).toBe(children[0]!.pid);
  });

  it('says at once who holds it, and gives up after the bound saying it again', async () => {
    const { sleeper } = await holdLock();
    const told: Array<{ at: number; message: string }> = [];
    const t0 = Date.now();
    const err = await lockFederation({ path: lock, timeoutS: 1, onWait: (message) => told.push({ at: Date.now() - t0, message }) })
      .then(() => undefined, (e: Error) => e);
    expect(told).toHaveLength(1);
    expect(told[0]!.at).toBeLessThan(900);
    expect(told[0]!.message).toContain(`pid ${sleeper} (sleep 300)`);
    expect(err?.message).toMatch(new RegExp(`^gave up after 1 s waiting for the federation lock '${lock}', held by .*pid ${sleeper} \\(sleep 300\\)`));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
  });

  it('takes a free lock without a word and releases it', async () => {
    const told: string[] = [];
    const release = await lockFederation({ path: lock, timeoutS: 1, onWait: (m) => told.push(m) });
    expect(told).toEqual([]);
    expect((await federationLockHolders(lock)).length).toBeGreaterThan(0);
    await release();
    expect(await federationLockHolders(lock)).toEqual([]);
    const again = await lockFederation({ path: lock, timeoutS: 1 });
    await again();
  });
});
