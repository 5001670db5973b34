/**
 * The broker killed mid-replication (issue 14, "Faults"): both agents reach each other through
 * cloud-b's real RabbitMQ (A as a peer, B as its owner, `replica-broker.ts`), so that is the broker
 * killed (SIGKILL by its pid file) and started again by the services script's own mechanism
 * (`scripts/services up rabbitmq`), under the federation lock, while a batch's bytes flow. Nothing
 * is COMPLETED while the broker is down, everything completes once it is back, nothing is lost:
 * B's copy is checked on B's Swift. In vitest.config.ts's EXCLUSIVE list.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { serviceEnv } from '../../helpers/services.js';
import { MiB, replicationRig, sleep, until, rigHooks } from './swift-rig.js';

const run = promisify(execFile);
const SERVICES = resolve(import.meta.dirname, '../../../scripts/services');
const hooks = rigHooks({ restartsServers: true });

describe("cloud-b's broker killed mid-replication", () => {
  it('nothing COMPLETED while it is down, every object completes and is verified at B once it is back', async () => {
    const rig = await replicationRig('brk');
    hooks.rigs.push(rig);
    const objs = new Map<string, Buffer>();
    for (const [i, size] of [1500, 40_000, 700_000, 12 * MiB].entries()) objs.set(`brk/${i}`, randomBytes(size));
    for (const [k, v] of objs) await rig.putA(k, v);
    const { r, events } = await rig.replicator('brk/', { bandwidth: 3 * MiB, backoff: { baseMs: 500, capMs: 2000, maxAttempts: 1000 } });
    r.start();
    await r.runPass();
    // 12 MiB at 3 MiB/s: its batch is on the wire for about 4 s; kill the broker in the middle of it
    await until('the big object to be in flight', () => r.status().inFlightObjects > 0, 20_000);
    await sleep(1500);
    expect(r.object('brk/3')!.state).toBe('PENDING');
    const pidFile = serviceEnv<Record<string, { pidFile: string }>>('brokers')['cloud-b']!.pidFile;
    const victim = Number(readFileSync(pidFile, 'utf8').trim());
    process.kill(victim, 'SIGKILL');
    const downAt = Date.now();
    // Started again at once, by the services script (it waits until the broker listens).
    await run(SERVICES, ['up', 'rabbitmq'], { timeout: 120_000 });
    const upAt = Date.now();
    expect(Number(readFileSync(pidFile, 'utf8').trim())).not.toBe(victim);
    await r.idle(AbortSignal.timeout(60_000));
    expect(events.filter(({ at, e }) => e.type === 'replica-completed' && at > downAt + 200 && at < upAt).map(({ e }) => e)).toEqual([]);
    expect(r.status().objects).toMatchObject({ pending: 0, completed: objs.size, failed: 0 });
    // the batch cut by the outage failed visibly and was retried, not reported done
    expect(events.some(({ e }) => e.type === 'replica-retry' && e.key === 'brk/3')).toBe(true);
    for (const [k, v] of objs) await rig.expectAtB(k, v);
    // each object announced COMPLETED once per version: no duplicate completions
    const done = events.filter(({ e }) => e.type === 'replica-completed').map(({ e }) => (e as { key: string }).key).sort();
    expect(done).toEqual([...objs.keys()].sort());
    await r.stop();
    process.stdout.write(`broker restart: down ${upAt - downAt} ms, all verified ${Date.now() - upAt} ms after it was back\n`);
  }, 120_000);
});
