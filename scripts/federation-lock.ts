/**
 * The machine's federation lock: cloud-a and cloud-b have one XMPP identity and one set of AMQP
 * names each, so only one federation of agents (the demo, an end-to-end test file, a benchmark)
 * may run at a time on this machine. Whoever waits for the lock is told at once who holds it
 * (pid and command line) and gives up after a bound with that same message. Not part of the agent.
 *
 *   node --import tsx scripts/federation-lock.ts holders     prints who holds it
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { resolve } from 'node:path';

/** The lock file every federation takes (flock(1) on it). */
export const FEDERATION_LOCK = '/tmp/intercloud-federation.lock';

/** A process that has the lock file open, with its parent for context. */
export interface LockHolder {
  pid: number;
  command: string;
  parentPid: number;
  parentCommand: string;
}

async function commandLine(pid: number): Promise<string> {
  const raw = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw.replace(/\0+$/, '').replaceAll('\0', ' ') || '?';
}

async function parentOf(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
}

/**
 * The processes that hold the lock on `path`: every process with a
 * descriptor of the open file that took the lock — the kernel shows the lock in that
 * descriptor's /proc/PID/fdinfo — so one that merely inherited it (a daemon started by the
 * holder) is named too. Processes that only wait for the lock are not holders.
 */
export async function federationLockHolders(path = FEDERATION_LOCK): Promise<LockHolder[]> {
  const holders: LockHolder[] = [];
  for (const entry of await fs.readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== path) continue;
      // fdinfo: "lock:\t1: FLOCK  ADVISORY  WRITE 123 fe:00:456 0 EOF" when this open file holds it.
      const info = await fs.readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
      if (!/^lock:\s+\d+: FLOCK\s/m.test(info)) continue;
      const parentPid = await parentOf(pid);
      holders.push({ pid, command: await commandLine(pid), parentPid, parentCommand: await commandLine(parentPid) });
      break;
    }
  }
  return holders;
}

/** One line per holder: `pid 123 (flock -w … ), started by pid 100 (node … vitest)`. */
export function describeLockHolders(holders: LockHolder[]): string {
  if (holders.length === 0) return 'no process (it was just released)';
  return holders.map((h) => `pid ${h.pid} (${h.command}), started by pid ${h.parentPid} (${h.parentCommand})`).join('; ');
}

/** How {@link lockFederation} waits. */
export interface LockOptions {
  /** Give up after this many seconds (default: INTERCLOUD_LOCK_WAIT_S, else 600). */
  timeoutS?: number;
  /** Told once, at once, when the lock is busy: who holds it (default: stderr). */
  onWait?: (message: string) => void;
  /** The lock file (default {@link FEDERATION_LOCK}). */
  path?: string;
}

/**
 * Takes the federation lock. Resolves with the function that releases it; the lock also goes when
 * this process dies (the holder is a child `flock` reading our pipe). When the lock is busy, says
 * at once who holds it; after `timeoutS` rejects with a message naming the holders.
 */
export async function lockFederation(opts: LockOptions = {}): Promise<() => Promise<void>> {
  const path = opts.path ?? FEDERATION_LOCK;
  const timeoutS = opts.timeoutS ?? Number(process.env['INTERCLOUD_LOCK_WAIT_S'] ?? 600);
  const onWait = opts.onWait ?? ((m: string) => process.stderr.write(m + '\n'));
  const take = (wait: string[]) => new Promise<{ release: () => Promise<void> } | undefined>((res, rej) => {
    const holder = spawn('flock', [...wait, path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
    holder.once('error', rej);
    holder.stdout.once('data', () => res({
      release: async () => {
        const exited = new Promise((r) => holder.once('exit', r));
        holder.stdin.end();
        await exited;
      },
    }));
    // flock exits 1 when it could not take the lock (-n, or -w timed out).
    holder.once('exit', (code) => (code === 1 ? res(undefined) : rej(new Error(`flock on '${path}' exited with ${code}`))));
  });
  const now = await take(['-n']);
  if (now) return now.release;
  onWait(`waiting up to ${timeoutS} s for the federation lock '${path}', held by ${describeLockHolders(await federationLockHolders(path))}`);
  const later = await take(['-w', String(timeoutS)]);
  if (later) return later.release;
  throw new Error(`gave up after ${timeoutS} s waiting for the federation lock '${path}', held by ${describeLockHolders(await federationLockHolders(path))}`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  if (process.argv[2] === 'holders' && process.argv.length === 3) {
    process.stdout.write(describeLockHolders(await federationLockHolders()) + '\n');
  } else {
    process.stderr.write('usage: federation-lock.ts holders\n');
    process.exitCode = 2;
  }
}
