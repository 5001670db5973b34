/**
 * One of cloud-b's Swift object devices wiped behind everyone's back (issue 14, "Repair … wipe one
 * of B's Swift devices"), on the real servers (`swift-rig.ts`). Two layers keep B's copy:
 * - the agent: its deep audit reads every replica of the subcontract through B's S3 API and sends
 *   again what B can no longer serve — here the objects whose other two Swift replicas were lost
 *   as well — and nothing else;
 * - Swift: `swift-object-replicator <objectConf> once` puts the wiped device's replicas back from
 *   the other two, until each object has its 3 replicas again (checked on the device folders).
 * Both are timed. It wipes a device of a shared server: in vitest.config.ts's EXCLUSIVE list, and
 * the replicator runs even when an assertion fails, so the device is never left empty.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loseEverywhere, objectReplicatorOnce, replicaCounts, wipeDevice } from '../../helpers/swift-devices.js';
import { MiB, replicationRig, swift, rigHooks } from './swift-rig.js';

const hooks = rigHooks({ restartsServers: true });

describe("a wiped Swift device at cloud-b", () => {
  it("the agent's deep audit re-sends exactly what B cannot serve; Swift's replicator restores the device; every object has its 3 replicas and is verified at B", async () => {
    const rig = await replicationRig('wipe');
    hooks.rigs.push(rig);
    const env = swift('cloud-b');
    const dst = rig.sub.target.bucket;
    const objs = new Map<string, Buffer>();
    for (let i = 0; i < 12; i++) objs.set(`wipe/s${String(i).padStart(2, '0')}`, randomBytes(20_000 + i * 8000));
    for (let i = 0; i < 3; i++) objs.set(`wipe/m${i}`, randomBytes(2 * MiB + i));
    const keys = [...objs.keys()];
    for (const [k, v] of objs) await rig.putA(k, v);
    const { r, events } = await rig.replicator('wipe/', { backoff: { baseMs: 300, capMs: 1000, maxAttempts: 20 } });
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(60_000));
    expect(r.status().objects).toMatchObject({ pending: 0, completed: keys.length, failed: 0 });
    const full = Object.fromEntries(env.devices.map((d) => [d.name, keys.length]));
    expect(await replicaCounts(env, dst, keys), 'each object has a replica on each device').toEqual(full);

    const wiped = env.devices[0]!;
    const lost = ['wipe/m1', 'wipe/s03', 'wipe/s07'];
    let swiftMs = -1;
    let agentMs = -1;
    try {
      await wipeDevice(wiped.path);
      for (const k of lost) await loseEverywhere(env, dst, k);
      const after = await replicaCounts(env, dst, keys);
      expect(after[wiped.name]).toBe(0);
      for (const d of env.devices.slice(1)) expect(after[d.name]).toBe(keys.length - lost.length);

      // The agent: what B still serves (from the two other devices) is left alone.
      const t0 = Date.now();
      const rep = await r.audit({ deep: true });
      expect(rep.missing).toEqual([...lost].sort());
      expect(rep.corrupt).toEqual([]);
      expect(rep.requeued).toBe(lost.length);
      await r.idle(AbortSignal.timeout(60_000));
      agentMs = Date.now() - t0;
      expect(r.status().objects).toMatchObject({ pending: 0, completed: keys.length, failed: 0 });
      const resent = events.filter(({ at, e }) => at >= t0 && e.type === 'replica-completed').map(({ e }) => (e as { key: string }).key).sort();
      expect(resent).toEqual([...lost].sort());
    } finally {
      // Swift's own repair of the device, always (the device is shared).
      swiftMs = await objectReplicatorOnce(env);
    }
    expect(await replicaCounts(env, dst, keys), 'the count holds again: 3 replicas of each object').toEqual(full);
    for (const [k, v] of objs) await rig.expectAtB(k, v);
    expect((await r.audit({ deep: true })).requeued).toBe(0);
    await r.stop();
    process.stdout.write(`wiped device: agent deep audit + re-send of ${lost.length} lost objects ${agentMs} ms; swift-object-replicator once (whole device) ${swiftMs} ms\n`);
  }, 120_000);
});
