/**
 * Issue 14, "Faults": cloud-b's store refusing B's writes. B's receiver writes into cloud-b's real
 * Swift with credentials Swift does not accept (a key that is not the one tempauth holds, as after
 * a rotated secret): every write is answered 403 and B answers A each object with its own coded
 * reason (`STORE_REFUSED`, not retryable). A reports them FAILED with that code (status per
 * object, `failedByCode`, `replica-failed` events), never COMPLETED, and B's Swift holds none of
 * them (checked there with B's real credentials); what B held before stays COMPLETED and at B.
 * Once B writes with its real credentials again an audit queues the FAILED objects and they
 * complete, verified at B. (B full — Swift's `container_quotas` answering 413, `STORE_FULL`,
 * retried until the quota is lifted — is a case of swift-replication.test.ts.)
 * Changes no shared server, so takes no federation lock.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createObjectStore } from '../../../adapters/storage/index.js';
import { ReplicaReceiver, serveReplicaPeer } from '../../../agent/replication/index.js';
import { replicationRig, rigHooks, swift, until } from './swift-rig.js';

const hooks = rigHooks({ restartsServers: false });

describe("cloud-b's Swift refusing B's writes (issue 14, faults)", () => {
  it('objects B cannot write are FAILED with STORE_REFUSED, none at B, none COMPLETED; an audit after B writes again completes them, verified at B', async () => {
    const rig = await replicationRig('brefuse');
    hooks.rigs.push(rig);
    const dst = rig.sub.target.bucket;
    const first = randomBytes(40_000);
    await rig.putA('refuse/0-before', first);
    const { r, events } = await rig.replicator('refuse/', { journal: 'refuse', backoff: { baseMs: 300, capMs: 1000, maxAttempts: 50 } });
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(60_000));
    expect(r.object('refuse/0-before')!.state).toBe('COMPLETED');

    // B's receiver now writes with a key Swift refuses
    await rig.server.close();
    const e = swift('cloud-b');
    const badKey = join(rig.dir, 'wrong-secret');
    writeFileSync(badKey, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
    const refusing = createObjectStore('s3', { name: 'cloud-b', endpoint: e.endpoint, region: e.region, accessKeyId: e.accessKeyId, secretAccessKeyFile: badKey });
    const bad = await serveReplicaPeer({
      broker: rig.vhost.loginAs('cloud-b'), subcontract: rig.sub, receiver: new ReplicaReceiver(refusing, dst, 8), workDir: join(rig.dir, 'b-refusing'), concurrency: 4, reconnectDelayMs: 300,
    });
    const objs = new Map<string, Buffer>();
    for (const [i, size] of [1024, 300_000, 9 * 1024 * 1024 + 3].entries()) objs.set(`refuse/${i + 1}`, randomBytes(size));
    try {
      for (const [k, v] of objs) await rig.putA(k, v);
      await r.runPass();
      await until('every new object to be FAILED', () => [...objs.keys()].every((k) => r.object(k)!.state === 'FAILED'), 60_000);
      for (const k of objs.keys()) {
        const o = r.object(k)!;
        expect(o.lastError?.code, k).toBe('STORE_REFUSED');
        expect(events.some(({ e: ev }) => ev.type === 'replica-failed' && ev.key === k && ev.code === 'STORE_REFUSED'), `${k} announced replica-failed`).toBe(true);
        expect(await rig.storeB.headObject(dst, k), `${k} not at B`).toBeUndefined();
      }
      const st = r.status();
      expect(st.objects).toMatchObject({ pending: 0, completed: 1, failed: objs.size });
      expect(st.failedByCode).toEqual({ STORE_REFUSED: objs.size });
      expect(st.failures.map((f) => [f.key, f.code]).sort()).toEqual([...objs.keys()].sort().map((k) => [k, 'STORE_REFUSED']));
      expect(events.filter(({ e: ev }) => ev.type === 'replica-completed' && objs.has(ev.key))).toEqual([]);
      // what B held before the refusal is untouched and still reported as it is
      expect(r.object('refuse/0-before')!.state).toBe('COMPLETED');
      await rig.expectAtB('refuse/0-before', first);
    } finally {
      await bad.close();
      await refusing.close();
    }

    // B writes with its real credentials again: the next audit queues the FAILED objects
    await rig.serve();
    const rep = await r.audit();
    expect(rep.requeued).toBe(objs.size);
    await r.idle(AbortSignal.timeout(120_000));
    expect(r.status()).toMatchObject({ objects: { pending: 0, completed: objs.size + 1, failed: 0 }, failedByCode: {} });
    for (const [k, v] of objs) await rig.expectAtB(k, v);
    await rig.expectAtB('refuse/0-before', first);
    await r.stop();
  }, 240_000);
});
