/**
 * The subcontract's terms held by B on the real servers (issue 14, "a subcontract that expires",
 * "a peer asking for more than its reservation"): A's Swift → cloud-b's broker → B's Swift, as
 * swift-replication.test.ts assembles it (`swift-rig.ts`). B's receiver is given the terms it
 * accepted (end time, capacity, most objects); everything about B's copy is checked on B's Swift.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SubcontractMailbox, listingOf, subcontractInSteps, type SubcontractInInput, type SubcontractInPorts } from '../../../agent/subcontract/index.js';
import type { StepContext } from '../../../agent/sequencer/index.js';
import { MiB, replicationRig, sleep, until, rigHooks } from './swift-rig.js';

const FAST = { baseMs: 300, capMs: 1000, maxAttempts: 5 };
const hooks = rigHooks({ restartsServers: false });

/** Runs one step of B's `subcontract-in` transaction, as the sequencer would, on B's real store. */
async function runInStep(ports: SubcontractInPorts, input: SubcontractInInput, name: string): Promise<unknown> {
  const step = subcontractInSteps(ports).find((s) => s.name === name)!;
  const ctx: StepContext<SubcontractInInput> = {
    jobId: `subcontract-in-test-${input.terms.subcontractId}`, input, attempt: 1, signal: AbortSignal.timeout(30_000),
    result: () => { throw new Error('no earlier results in this test'); }, progress: () => undefined,
    checkpoint: () => Promise.resolve(), checkpoints: <T>() => [] as T[],
  };
  return step.run(ctx);
}

describe("the subcontract's terms at B (real Swift at both ends, cloud-b's broker)", () => {
  it("past its end B refuses further objects with REPL_SUBCONTRACT_ENDED, A reports them FAILED with it, and the end-of-term delete empties and removes B's bucket", async () => {
    const ends = new Date(Date.now() + 8_000).toISOString();
    const rig = await replicationRig('terms-end', { ends });
    hooks.rigs.push(rig);
    const before = randomBytes(50_000);
    await rig.putA('end/before', before);
    const { r, events } = await rig.replicator('end/', { backoff: FAST });
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(30_000));
    expect(r.object('end/before')!.state, 'the case needs the first copy done before the end').toBe('COMPLETED');
    expect(Date.now()).toBeLessThan(Date.parse(ends));
    await rig.expectAtB('end/before', before);

    await sleep(Math.max(0, Date.parse(ends) - Date.now() + 200));
    const after = randomBytes(60_000);
    await rig.putA('end/after', after);
    await r.runPass();
    await until('the copy after the end to be FAILED', () => r.object('end/after')?.state === 'FAILED', 30_000);
    expect(r.object('end/after')!.lastError?.code).toBe('REPL_SUBCONTRACT_ENDED');
    expect(r.status().failedByCode).toEqual({ REPL_SUBCONTRACT_ENDED: 1 });
    expect(events.some(({ e }) => e.type === 'replica-completed' && e.key === 'end/after')).toBe(false);
    expect(await rig.storeB.headObject(rig.sub.target.bucket, 'end/after')).toBeUndefined();
    // An audit queues FAILED objects again: B refuses again, nothing is reported COMPLETED.
    expect((await r.audit()).requeued).toBe(1);
    await until('the retried copy to be FAILED again', () => r.object('end/after')?.state === 'FAILED', 30_000);
    expect(r.object('end/after')!.lastError?.code).toBe('REPL_SUBCONTRACT_ENDED');
    await r.stop();

    // The end-of-term action (`delete` terms) of B's transaction, on B's real Swift.
    const mailbox = new SubcontractMailbox();
    const released: string[] = [];
    const audit: string[] = [];
    const ports: SubcontractInPorts = {
      cloudId: 'cloud-b', store: (region) => (region === 'na-east' ? rig.storeB : undefined), requests: mailbox, clock: mailbox,
      reservations: { use: () => true, release: (id) => { released.push(id); } },
      returns: { returnData: async () => { throw new Error('not called with delete terms'); } },
      audit: { record: async (event) => { audit.push(event); } },
    };
    const input = {
      offerId: 'offer-terms-end', peer: { cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, reservationId: 'res-terms-end',
      reservationExpiresAt: ends, placement: { bucket: rig.sub.target.bucket, region: 'na-east' },
      terms: { subcontractId: rig.sub.id, replicas: 3, ack: 'async', capacityGiB: 1, maxObjects: 100, ends, atEnd: 'delete' },
      offer: {} as SubcontractInInput['offer'], senderJid: 'cloud-a@intercloud.test/agent',
    } as SubcontractInInput;
    expect(await runInStep(ports, input, 'active')).toEqual({ reason: 'expired' });
    expect(await runInStep(ports, input, 'return-data')).toEqual({ skipped: true });
    expect(await runInStep(ports, input, 'delete-data')).toEqual({ deleted: 1 });
    await runInStep(ports, input, 'release');
    expect(released).toEqual(['res-terms-end']);
    expect(audit).toEqual(['subcontract-data-deleted', 'subcontract-ended']);
    // What A's verify-ended asks of B: the bucket is gone.
    expect(await listingOf(rig.storeB, rig.sub.target.bucket, AbortSignal.timeout(10_000))).toEqual({ bucketExists: false, objects: 0 });
  }, 60_000);

  it('beyond its reservation (bytes or objects) B refuses with REPL_OVER_RESERVATION and stores nothing beyond it', async () => {
    const capacityBytes = 2 * MiB;
    const rig = await replicationRig('terms-cap', { capacityBytes, maxObjects: 4 });
    hooks.rigs.push(rig);
    const objs = new Map<string, Buffer>([['cap/0', randomBytes(300_000)], ['cap/1', randomBytes(300_000)], ['cap/2', randomBytes(300_000)]]);
    for (const [k, v] of objs) await rig.putA(k, v);
    const { r, events } = await rig.replicator('cap/', { backoff: FAST });
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(30_000));
    expect(r.status().objects).toMatchObject({ pending: 0, completed: 3, failed: 0 });

    // 900 000 + 1.5 MiB > 2 MiB: over the bytes reserved
    const big = randomBytes(1.5 * MiB);
    await rig.putA('cap/3-big', big);
    await r.runPass();
    await until('the big copy to be FAILED', () => r.object('cap/3-big')?.state === 'FAILED', 30_000);
    expect(r.object('cap/3-big')!.lastError?.code).toBe('REPL_OVER_RESERVATION');

    // a fourth object within the bytes is fine; a fifth is over the objects reserved
    const small = randomBytes(1000);
    await rig.putA('cap/4-small', small);
    await r.runPass();
    await r.idle(AbortSignal.timeout(30_000));
    expect(r.object('cap/4-small')!.state).toBe('COMPLETED');
    await rig.putA('cap/5-small', randomBytes(1000));
    await r.runPass();
    await until('the fifth copy to be FAILED', () => r.object('cap/5-small')?.state === 'FAILED', 30_000);
    expect(r.object('cap/5-small')!.lastError?.code).toBe('REPL_OVER_RESERVATION');
    // an overwrite of a key B holds, no larger, stays within the reservation
    const again = randomBytes(300_000);
    await rig.putA('cap/0', again);
    await r.runPass();
    await until('the overwrite to complete', () => r.object('cap/0')?.state === 'COMPLETED' && r.object('cap/0')!.replica?.sha256 !== undefined && r.status().objects.pending === 0, 30_000);
    await r.stop();

    expect(events.filter(({ e }) => e.type === 'replica-completed' && (e.key === 'cap/3-big' || e.key === 'cap/5-small'))).toEqual([]);
    const listing = await rig.storeB.listObjects(rig.sub.target.bucket);
    expect(listing.objects.map((o) => o.key)).toEqual(['cap/0', 'cap/1', 'cap/2', 'cap/4-small']);
    expect(listing.objects.reduce((n, o) => n + o.sizeBytes, 0)).toBeLessThanOrEqual(capacityBytes);
    await rig.expectAtB('cap/0', again);
    await rig.expectAtB('cap/4-small', small);
  }, 60_000);
});
