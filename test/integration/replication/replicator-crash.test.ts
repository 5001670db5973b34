/**
 * A's replicating process killed (SIGKILL) mid-replication and the replicator reopened on the same
 * journal (issue 14, "either agent … killed mid-replication"): it resumes from what it journaled,
 * completes only what was not completed before, and every object ends verified on B's Swift.
 * A's process is a child (`replicator-child.ts`) on A's real Swift and cloud-b's real broker; B's
 * server runs in this process (`swift-rig.ts`).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import type { ReplicationEvent } from '../../../agent/replication/index.js';
import { MiB, replicationRig, until, rigHooks } from './swift-rig.js';

const CHILD = resolve(import.meta.dirname, 'replicator-child.ts');
const hooks = rigHooks({ restartsServers: false });

describe("A's replicating process killed and restarted", () => {
  it('resumes from its journal: no object completed twice, every object verified at B', async () => {
    const rig = await replicationRig('crash');
    hooks.rigs.push(rig);
    const objs = new Map<string, Buffer>();
    for (let i = 0; i < 8; i++) objs.set(`crash/s${i}`, randomBytes(1000 + i * 5000));
    // over half a batch's 16 MiB: each travels alone, after the small ones' batch
    objs.set('crash/x0', randomBytes(9 * MiB));
    objs.set('crash/x1', randomBytes(9 * MiB));
    for (const [k, v] of objs) await rig.putA(k, v);
    const tag = 'crash';
    const subcontract = { ...rig.sub, source: { bucket: rig.sub.source.bucket, prefix: 'crash/' }, bandwidthBytesPerSecond: 3 * MiB };
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify({
      subcontract, journalPath: join(rig.dir, `journal-${tag}`), stagingDir: join(rig.dir, `staging-${tag}`), journalDir: join(rig.dir, 'a-xfer-child'),
      broker: rig.vhost.loginAs('cloud-a'),
    })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<NodeJS.Signals | null>((res) => child.once('exit', (_code, signal) => res(signal)));
    const seen: ReplicationEvent[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      const e = JSON.parse(line) as ReplicationEvent | { type: 'child-pass-done' };
      if (e.type !== 'child-pass-done') seen.push(e);
    });
    // Killed once the small objects' batch completed and while the large ones are on the wire.
    await until(`the child to complete a first object (stderr: ${stderr.slice(-500)})`, () => seen.some((e) => e.type === 'replica-completed'), 40_000);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const completedByChild = new Set(seen.filter((e) => e.type === 'replica-completed').map((e) => (e as { key: string }).key));
    expect(completedByChild.size).toBeLessThan(objs.size);

    // Reopened on the same journal (and subcontract): what the child completed is COMPLETED, the rest owed.
    const { r, events } = await rig.replicator('crash/', { journal: tag, bandwidth: 3 * MiB });
    const atReopen = r.objects('COMPLETED').map((o) => o.key);
    for (const k of completedByChild) expect(atReopen).toContain(k);
    expect(r.status().objects.pending + atReopen.length).toBe(objs.size);
    expect(r.status().objects.pending).toBeGreaterThan(0);
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(60_000));
    expect(r.status()).toMatchObject({ objects: { pending: 0, completed: objs.size, failed: 0 }, objectsMoved: objs.size });
    const again = events.filter(({ e }) => e.type === 'replica-completed').map(({ e }) => (e as { key: string }).key);
    for (const k of again) expect(atReopen, `'${k}' completed again after the restart`).not.toContain(k);
    expect(new Set([...atReopen, ...again]).size).toBe(objs.size);
    for (const [k, v] of objs) await rig.expectAtB(k, v);
    await r.stop();
  }, 90_000);
});
