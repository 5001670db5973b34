/**
 * The target's re-address step takes over only addresses this site does not hold yet, and its
 * compensation gives back only what it registered (issue 12, findings 1 and 4): a certified
 * peer (cloud-c) that lists in its instantiate the EIDs, or the name, cloud-b holds for a VM of
 * its own must not make cloud-b withdraw them when the peer releases. Hermetic (the fake
 * clouds; their addressing registers like a LISP refresh: a second register of a held address
 * succeeds).
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  inboundJobId, migrateInDefinition, type AddressedVm, type MigrateInInput, type TargetPorts,
} from '../../../agent/migration/index.js';
import type { StepContext } from '../../../agent/sequencer/index.js';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { FakeWorld, fakeClouds, held, vmOf } from '../../helpers/fake-clouds.js';

const peerC = { cloudId: 'cloud-c', jid: 'cloud-c@intercloud.test' };
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** cloud-b runs `db1` (came in earlier) and holds its address 10.1.0.5 and its name. */
async function cloudBWithItsOwnVm() {
  const world = new FakeWorld();
  world.vms['cloud-b'].set('db1', { ...vmOf('db1', randomBytes(64)), uuid: 'db1-uuid' });
  world.addresses.set('10.1.0.5', new Set(['cloud-b']));
  world.names.set('db1', new Set(['cloud-b']));
  const clouds = await fakeClouds(world);
  const seq = clouds.make.target();
  return { world, seq, service: clouds.state.target! };
}

/** cloud-c's migration of `name`, its instantiate listing `addresses`; resolves with the instantiate's outcome. */
async function offerFromC(service: NonNullable<Awaited<ReturnType<typeof cloudBWithItsOwnVm>>['service']>, world: FakeWorld,
  offerId: string, name: string, addresses: string[]) {
  const disk = randomBytes(4096);
  const vm = { ...vmOf(name, disk).summary, addresses };
  await service.handleOffer(peerC, { offerId, vm }, held(`rsv-${offerId}`));
  world.wire.set(`rsv-${offerId}/disk0`, disk);
  return service.handleInstantiate(peerC, { offerId, descriptor: JSON.stringify(vm), digests: { disk0: sha(disk) }, addresses })
    .then(() => 'running', (err: unknown) => err);
}

describe('a peer listing addresses the target holds for its own vm', () => {
  it('is refused with MIGRATE_ADDRESS_HELD, and after its release cloud-b still holds the address', async () => {
    const { world, seq, service } = await cloudBWithItsOwnVm();
    const outcome = await offerFromC(service, world, 'o1', 'evil', ['10.1.0.5']);
    await service.handleRelease(peerC, 'o1', new AbortController().signal);
    expect(world.addresses.get('10.1.0.5')).toEqual(new Set(['cloud-b']));
    expect(outcome).toMatchObject({ code: 'MIGRATE_ADDRESS_HELD', retryable: false });
    expect((await seq.status(inboundJobId('o1'))).state).toBe('compensated');
    // refused before its vm was defined: never ran here next to db1 with db1's address
    expect(world.vms['cloud-b'].has('evil')).toBe(false);
    expect(world.audit.some((e) => e.cloud === 'cloud-b' && e.event === 'vm-started')).toBe(false);
    expect(world.vms['cloud-b'].get('db1')?.state).toBe('running');
  });

  it('is refused when one of several addresses is held, and registers none of the others', async () => {
    const { world, service } = await cloudBWithItsOwnVm();
    const outcome = await offerFromC(service, world, 'o2', 'evil2', ['10.9.9.9', '10.1.0.5']);
    await service.handleRelease(peerC, 'o2', new AbortController().signal);
    expect(outcome).toMatchObject({ code: 'MIGRATE_ADDRESS_HELD' });
    expect(world.addresses.get('10.1.0.5')).toEqual(new Set(['cloud-b']));
    expect(world.addresses.get('10.9.9.9')?.has('cloud-b') ?? false).toBe(false);
  });

  it('a name this site publishes for a vm of its own is refused too, and stays published', async () => {
    const { world, service } = await cloudBWithItsOwnVm();
    // The vm is gone here, its name still published by this site (a vm that left without a withdraw).
    world.vms['cloud-b'].delete('db1');
    const outcome = await offerFromC(service, world, 'o3', 'db1', []);
    await service.handleRelease(peerC, 'o3', new AbortController().signal);
    expect(outcome).toMatchObject({ code: 'MIGRATE_ADDRESS_HELD' });
    expect(world.names.get('db1')).toEqual(new Set(['cloud-b']));
  });

  it('an honest migration still registers the addresses, and its release withdraws what it registered', async () => {
    const { world, seq, service } = await cloudBWithItsOwnVm();
    expect(await offerFromC(service, world, 'o4', 'web7', ['10.7.0.7'])).toBe('running');
    await seq.waitFor(inboundJobId('o4'), (st) => st.completedSteps.includes('re-address') || st.state !== 'running', new AbortController().signal);
    expect(world.addresses.get('10.7.0.7')).toEqual(new Set(['cloud-b']));
    expect(world.names.get('web7')).toEqual(new Set(['cloud-b']));
    await service.handleRelease(peerC, 'o4', new AbortController().signal);
    expect(world.addresses.get('10.7.0.7')?.size ?? 0).toBe(0);
    expect(world.names.get('web7')?.size ?? 0).toBe(0);
    expect(world.addresses.get('10.1.0.5')).toEqual(new Set(['cloud-b']));
  });
});

/** The re-address step alone, over an addressing port that records its calls and holds `holds`. */
function reAddressStep(holds: { addresses: string[]; name: boolean }, results: Record<string, unknown>, attempt = 1) {
  const calls: string[] = [];
  const audit: string[] = [];
  const addressing: TargetPorts['addressing'] = {
    register: async (vm: AddressedVm) => { calls.push(`register:${vm.name}:${vm.addresses.join(',')}`); },
    withdraw: async (vm: AddressedVm) => { calls.push(`withdraw:${vm.name}:${vm.addresses.join(',')}`); },
    held: async () => holds,
  };
  const def = migrateInDefinition({ cloudId: 'cloud-b', addressing, audit: { record: async (e: string) => { audit.push(e); } } } as unknown as TargetPorts);
  const input = {
    offerId: 'o9', peer: peerC, vm: vmOf('web9', Buffer.alloc(8)).summary,
    reservation: { reservationId: 'r', transfer: { uri: 'amqps://127.0.0.1:1/transfers' }, expiresAt: new Date().toISOString() }, commitTimeoutMs: 1000,
  } as MigrateInInput;
  const ctx: StepContext<MigrateInInput> = {
    jobId: 'in-o9', input, attempt, signal: new AbortController().signal, progress: () => undefined, checkpoint: async () => undefined, checkpoints: () => [],
    result: <T>(step: string): T => {
      if (!(step in results)) throw new IntercloudError('SEQ_JOURNAL_MISMATCH', `step '${step}' has no result yet`);
      return results[step] as T;
    },
  };
  return { step: def.steps.find((x) => x.name === 're-address')!, ctx, calls, audit };
}

const order = { offerId: 'o9', descriptor: '{}', digests: {}, addresses: ['10.1.0.5', '10.9.9.9'] };
const nothing = { addresses: [], name: false };

describe('the re-address step and its compensation', () => {
  it('records what it newly registered, and its compensation withdraws exactly that', async () => {
    const results: Record<string, unknown> = { 'await-instantiate': order };
    const { step, ctx, calls } = reAddressStep(nothing, results);
    results['re-address'] = await step.run(ctx);
    expect(results['re-address']).toEqual({ registered: ['10.1.0.5', '10.9.9.9'], name: true });
    await step.compensate!(ctx);
    expect(calls).toEqual(['register:web9:10.1.0.5,10.9.9.9', 'withdraw:web9:10.1.0.5,10.9.9.9']);
  });

  it('refuses on its first attempt what the site holds; a retry (after its own half-done register) goes on', async () => {
    const holds = { addresses: ['10.1.0.5'], name: false };
    const first = reAddressStep(holds, { 'await-instantiate': order });
    await expect(first.step.run(first.ctx)).rejects.toMatchObject({ code: 'MIGRATE_ADDRESS_HELD', retryable: false });
    expect(first.calls).toEqual([]);
    const retry = reAddressStep(holds, { 'await-instantiate': order }, 2);
    await retry.step.run(retry.ctx);
    expect(retry.calls).toEqual(['register:web9:10.1.0.5,10.9.9.9']);
  });

  it('of a record journaled before it said what was new withdraws nothing (the site may have held it), and says so', async () => {
    const { step, ctx, calls, audit } = reAddressStep(nothing, { 'await-instantiate': order, 're-address': { registered: order.addresses } });
    await step.compensate!(ctx);
    expect(calls).toEqual([]);
    expect(audit).toEqual(['addresses-kept']);
  });

  it('of a failed step withdraws what it may have half registered, unless the site holds some of it', async () => {
    const half = reAddressStep(nothing, { 'await-instantiate': order });
    await half.step.compensate!(half.ctx);
    expect(half.calls).toEqual(['withdraw:web9:10.1.0.5,10.9.9.9']);
    for (const holds of [{ addresses: ['10.1.0.5'], name: false }, { addresses: [], name: true }]) {
      const refused = reAddressStep(holds, { 'await-instantiate': order });
      await refused.step.compensate!(refused.ctx);
      expect(refused.calls).toEqual([]);
      expect(refused.audit).toEqual(['addresses-kept']);
    }
    const never = reAddressStep(nothing, {});
    await never.step.compensate!(never.ctx);
    expect(never.calls).toEqual([]);
  });
});
