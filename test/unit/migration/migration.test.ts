import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FakeWorld, fakeClouds, vmOf } from '../../helpers/fake-clouds.js';
import type { Sequencer } from '../../../agent/sequencer/index.js';
import { inboundJobId } from '../../../agent/migration/index.js';

async function setup() {
  const world = new FakeWorld();
  const disk = randomBytes(4096);
  world.vms['cloud-a'].set('web1', vmOf('web1', disk));
  world.addresses.set('10.1.0.5', new Set(['cloud-a']));
  world.names.set('web1', new Set(['cloud-a']));
  const clouds = await fakeClouds(world);
  return { world, disk, clouds, a: clouds.make.source(), b: clouds.make.target() };
}

function expectInvariant(world: FakeWorld, where: 'cloud-a' | 'cloud-b', disk: Buffer): void {
  expect(world.runningIn('web1')).toEqual([where]);
  const vm = world.vms[where].get('web1')!;
  expect(vm.summary.macs).toEqual(['52:54:00:aa:bb:01']);
  expect(vm.disks['disk0']!.equals(disk)).toBe(true);
  expect([...world.addresses.get('10.1.0.5')!]).toEqual([where]);
  // The VM's name is registered by the cloud it runs in only (a DNS addresser's records).
  expect([...world.names.get('web1')!]).toEqual([where]);
  if (where === 'cloud-b') expect(world.vms['cloud-a'].has('web1')).toBe(false);
  else expect(world.vms['cloud-b'].has('web1')).toBe(false);
}

const SOURCE_POINTS = ['describe', 'find-peer', 'verify-peer', 'negotiate', 'stop-source', 'transfer', 'instantiate', 'withdraw:cloud-a', 'commit'];
const TARGET_POINTS = ['define', 'start', 'register:cloud-b'];

describe('VM migration between two clouds (fakes)', () => {
  it('moves the VM: runs only at the target, same MACs, same disk bytes, address re-pointed', async () => {
    const { world, disk, a } = await setup();
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    expect(await done).toBe('completed');
    expectInvariant(world, 'cloud-b', disk);
    expect(world.audit.map((e) => `${e.cloud}:${e.event}`)).toEqual(expect.arrayContaining([
      'cloud-a:peer-verified', 'cloud-a:offer-accepted', 'cloud-a:disks-transferred', 'cloud-b:vm-started',
      'cloud-b:migration-committed', 'cloud-a:target-committed', 'cloud-a:source-released',
    ]));
  });

  it.each([...SOURCE_POINTS, ...TARGET_POINTS])('fails at %s and leaves the VM running only at the source', async (point) => {
    const { world, disk, a, b } = await setup();
    world.faults.add(point);
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    expect(await done).toBe('compensated');
    expectInvariant(world, 'cloud-a', disk);
    const inbound = await b.status(inboundJobId('o1')).catch(() => undefined);
    if (inbound) expect(['compensated', 'cancelled']).toContain(inbound.state);
  });

  it('after the pivot a failing release keeps the VM at the target and asks for an operator', async () => {
    const { world, a } = await setup();
    world.faults.add('release-source');
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    expect(await done).toBe('needs-operator');
    expect(world.runningIn('web1')).toEqual(['cloud-b']);
  });

  it.each([...SOURCE_POINTS, ...TARGET_POINTS, 'release-source'])('survives both agents crashing at %s and finishes the move', async (point) => {
    const { world, disk, clouds } = await setup();
    let a: Sequencer = clouds.make.source();
    let b: Sequencer = clouds.make.target();
    world.hangs.add(point);
    await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    await waitUntil(() => stuckAt(world, point));
    clouds.state.targetUp = false;
    await Promise.allSettled([a.stop(), b.stop()]);
    world.hangs.clear();
    a = clouds.make.source();
    b = clouds.make.target();
    clouds.state.targetUp = true;
    await b.resumeAll();
    const [job] = await a.resumeAll();
    expect(await job!.done).toBe('completed');
    expectInvariant(world, 'cloud-b', disk);
  });

  it.each(SOURCE_POINTS.filter((p) => p !== 'describe'))('cancelled during %s, the VM keeps running at the source', async (point) => {
    const { world, disk, a } = await setup();
    world.hangs.add(point);
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    await waitUntil(() => stuckAt(world, point));
    const c = await a.cancel('m1');
    expect(c.accepted).toBe(true);
    world.hangs.clear();
    expect(await done).toBe('cancelled');
    expectInvariant(world, 'cloud-a', disk);
  });

  it('a dry run negotiates and releases without moving anything', async () => {
    const { world, disk, a, b } = await setup();
    const { done } = await a.start('migrate-dry-run', 'd1', { vm: 'web1', to: 'cloud-b', offerId: 'o9' });
    expect(await done).toBe('completed');
    expectInvariant(world, 'cloud-a', disk);
    expect((await b.status(inboundJobId('o9'))).state).toBe('cancelled');
  });
});

/** Hang points are reached when the world is blocked in them; we detect it by polling. */
function stuckAt(world: FakeWorld, point: string): boolean {
  return world.reached.has(point);
}

async function waitUntil(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 2));
  }
}
