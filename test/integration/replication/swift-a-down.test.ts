/**
 * Issue 14, "Faults": cloud-a's Swift (the SOURCE store) killed mid-replication. A's proxy and
 * object server are SIGKILLed while the replicator is reading a large object into staging and
 * other objects still wait their turn; then `scripts/services up swift` starts them again. While
 * A's store is down every owed object is PENDING with A's coded reason (`STORE_UNAVAILABLE`) and a
 * retry scheduled and visible (status, events); a pass fails with a coded reason and takes nothing
 * for gone (the subcontract propagates deletes: a failed listing must never delete at B); whatever
 * is COMPLETED is on B's Swift, checked there. Once A is back all complete, verified at B.
 * Kills a shared server: holds the federation lock (rigHooks) and is in vitest.config.ts's
 * EXCLUSIVE list.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { MiB, replicationRig, rigHooks, sleep, swift, until } from './swift-rig.js';

const run = promisify(execFile);
const SERVICES = resolve(import.meta.dirname, '../../../scripts/services');
const hooks = rigHooks({ restartsServers: true });

/** SIGKILLs the process in `pidFile` and waits until it is gone (or a zombie); returns its pid. */
async function kill(pidFile: string): Promise<number> {
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/status`, 'utf8').includes('State:\tZ'); i++) await sleep(50);
  return pid;
}

/** The size of the largest staging file in `dir` (0 when none). */
function stagedBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  let max = 0;
  for (const f of readdirSync(dir)) {
    try {
      max = Math.max(max, statSync(join(dir, f)).size);
    } catch {
      // the batch finished and its staging file was removed between readdir and stat: 0 bytes of it
    }
  }
  return max;
}

describe("cloud-a's Swift killed mid-replication (issue 14, faults)", () => {
  it("objects owed while A's store is down stay PENDING with STORE_UNAVAILABLE and a visible retry, nothing is taken for gone, then all complete, verified at B", async () => {
    const rig = await replicationRig('adown');
    hooks.rigs.push(rig);
    const a = swift('cloud-a');
    const objs = new Map<string, Buffer>();
    objs.set('adown/0-big', randomBytes(48 * MiB));
    for (let i = 1; i <= 5; i++) objs.set(`adown/${i}-mid`, randomBytes(9 * MiB + i));
    for (const [i, size] of [1024, 70_000, 1 * MiB].entries()) objs.set(`adown/small-${i}`, randomBytes(size));
    for (const [k, v] of objs) await rig.putA(k, v);
    const { r, events } = await rig.replicator('adown/', { journal: 'adown', bandwidth: 6 * MiB, backoff: { baseMs: 500, capMs: 2000, maxAttempts: 1000 } });
    const staging = join(rig.dir, 'staging-adown');
    r.start();
    await r.runPass();
    expect(r.status().objects.pending).toBe(objs.size);
    // kill A's proxy and object server while a batch is being read from A into staging (the 48 MiB
    // object takes more than a second to read), or at the latest once a staging file is full
    await until('a batch to be staged at A', () => stagedBytes(staging) > 0, 30_000);
    const partial = stagedBytes(staging);
    const proxyPid = await kill(a.pidFiles.proxy);
    const objectPid = await kill(a.pidFiles.object);
    const downAt = Date.now();
    const completedAtKill = new Set([...objs.keys()].filter((k) => r.object(k)!.state === 'COMPLETED'));
    let upAt = Infinity;
    try {
      // every object not yet staged when A died is read again and fails with A's coded reason;
      // what was staged already may still reach B (B is up) and complete
      await until("every object to be COMPLETED or PENDING after a STORE_UNAVAILABLE read at A, at least three of them retried twice", () => {
        const os = [...objs.keys()].map((k) => r.object(k)!);
        return os.every((o) => o.state === 'COMPLETED' || (o.state === 'PENDING' && o.attempts >= 1 && o.lastError?.code === 'STORE_UNAVAILABLE'))
          && os.filter((o) => o.state === 'PENDING' && o.attempts >= 2).length >= 3;
      }, 90_000);
      const owed = [...objs.keys()].filter((k) => r.object(k)!.state !== 'COMPLETED');
      expect(owed.length).toBeGreaterThanOrEqual(3);
      const st = r.status();
      expect(st.objects).toMatchObject({ pending: owed.length, failed: 0 });
      expect(st.pendingBytes).toBe(owed.reduce((n, k) => n + objs.get(k)!.length, 0));
      expect(st.oldestPendingAgeSeconds).toBeGreaterThan(0);
      expect(st.nextAttemptAt, 'a retry is scheduled and visible in the status').toBeDefined();
      for (const k of owed) {
        const o = r.object(k)!;
        expect(o.nextAttemptAt, k).toBeGreaterThan(downAt);
        expect(events.some(({ e }) => e.type === 'replica-retry' && e.key === k && e.code === 'STORE_UNAVAILABLE'), `${k} announced replica-retry STORE_UNAVAILABLE`).toBe(true);
      }
      // a pass while A is down fails with a coded reason and takes nothing for gone
      const passErr = await r.runPass().then(() => undefined, (e: unknown) => e);
      expect(isIntercloudError(passErr) ? passErr.code : passErr).toBe('STORE_UNAVAILABLE');
      expect(events.filter(({ e }) => e.type === 'replica-delete-pending' || e.type === 'replica-deleted')).toEqual([]);
      expect(r.status().objects.pending).toBe(owed.length);
      // whatever is COMPLETED now is on B's Swift, verified there
      for (const k of objs.keys()) if (r.object(k)!.state === 'COMPLETED') await rig.expectAtB(k, objs.get(k)!);
      for (const k of owed) expect(await rig.storeB.headObject(rig.sub.target.bucket, k), `${k} not yet at B`).toBeUndefined();
    } finally {
      await run(SERVICES, ['up', 'swift'], { timeout: 120_000 });
      upAt = Date.now();
    }
    expect(Number(readFileSync(a.pidFiles.proxy, 'utf8').trim())).not.toBe(proxyPid);
    expect(Number(readFileSync(a.pidFiles.object, 'utf8').trim())).not.toBe(objectPid);
    await r.idle(AbortSignal.timeout(180_000));
    expect(r.status()).toMatchObject({ objects: { pending: 0, completed: objs.size, failed: 0 }, pendingBytes: 0 });
    for (const [k, v] of objs) await rig.expectAtB(k, v);
    // every completion is of a key at B, once: none announced twice, none lost
    const completions = events.filter(({ e }) => e.type === 'replica-completed').map(({ e }) => (e as { key: string }).key);
    expect([...completions].sort()).toEqual([...objs.keys()].sort());
    process.stdout.write(`A's Swift killed with ${partial} bytes staged, ${completedAtKill.size} completed; down ${upAt - downAt} ms\n`);
    await r.stop();
  }, 400_000);
});
