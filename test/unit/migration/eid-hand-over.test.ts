/**
 * The migration carries the source's signed EID hand-over to the target, which presents it
 * when it registers the VM's addresses; on a rollback the target gives the addresses back
 * before the source registers them again. Hermetic: the two fake clouds of
 * test/helpers/fake-clouds.ts, with a mapping system that enforces the map server's rule (an
 * address held by one cloud moves to another only with a hand-over the holder signed for
 * that cloud and offer; a withdrawal frees it).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IntercloudError } from '../../../protocols/errors/index.js';
import type { AddressedVm } from '../../../agent/migration/index.js';
import { FakeWorld, fakeClouds, vmOf } from '../../helpers/fake-clouds.js';

/** A FakeWorld whose addressing refuses what the map server refuses. */
class HolderWorld extends FakeWorld {
  readonly presented: Array<{ cloud: string; handOver: string | undefined }> = [];
  readonly signed: Array<{ cloud: string; to: string; offerId: string; addresses: string[] }> = [];

  override addressing(cloud: string) {
    const base = super.addressing(cloud);
    return {
      register: async (vm: AddressedVm, signal: AbortSignal, handOver?: string) => {
        const { addresses } = vm;
        this.presented.push({ cloud, handOver });
        const h = handOver === undefined ? undefined : JSON.parse(handOver) as { from: string; to: string; eids: string[] };
        for (const a of addresses) {
          const holders = [...(this.addresses.get(a) ?? [])].filter((c) => c !== cloud);
          const handed = h !== undefined && h.to === cloud && h.eids.includes(a) && holders.every((x) => x === h.from);
          if (holders.length > 0 && !handed) {
            throw new IntercloudError('LISP_NO_ANSWER', `'${cloud}' may not register '${a}': '${holders.join(',')}' holds it`);
          }
        }
        await base.register(vm, signal);
        // the holder's registration steps aside for the one it handed the addresses to
        if (h) for (const a of addresses) this.addresses.get(a)?.delete(h.from);
      },
      withdraw: base.withdraw,
      held: base.held,
      signHandOver: async (req: { addresses: string[]; to: string; offerId: string }) => {
        this.signed.push({ cloud, ...req });
        return JSON.stringify({ from: cloud, to: req.to, eids: req.addresses, offerId: req.offerId });
      },
    };
  }
}

async function setup() {
  const world = new HolderWorld();
  const disk = randomBytes(4096);
  world.vms['cloud-a'].set('web1', vmOf('web1', disk));
  world.addresses.set('10.1.0.5', new Set(['cloud-a']));
  const clouds = await fakeClouds(world);
  return { world, a: clouds.make.source(), b: clouds.make.target() };
}

describe('the migration carries a signed EID hand-over', () => {
  it('the source signs the hand-over of the VM\'s addresses to the target for the offer; the target presents it and holds them', async () => {
    const { world, a } = await setup();
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    expect(await done).toBe('completed');
    expect(world.signed).toEqual([{ cloud: 'cloud-a', to: 'cloud-b', offerId: 'o1', addresses: ['10.1.0.5'] }]);
    expect(world.presented).toEqual([{ cloud: 'cloud-b', handOver: JSON.stringify({ from: 'cloud-a', to: 'cloud-b', eids: ['10.1.0.5'], offerId: 'o1' }) }]);
    expect([...world.addresses.get('10.1.0.5')!]).toEqual(['cloud-b']);
  });

  it('a failed commit: the target gives the addresses back before the source registers them again', async () => {
    const { world, a } = await setup();
    world.faults.add('commit');
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    expect(await done).toBe('compensated');
    expect(world.runningIn('web1')).toEqual(['cloud-a']);
    expect([...world.addresses.get('10.1.0.5')!]).toEqual(['cloud-a']);
    // the source's re-registration came without a hand-over, after cloud-b had withdrawn
    expect(world.presented.map((p) => [p.cloud, p.handOver === undefined])).toEqual([['cloud-b', false], ['cloud-a', true]]);
  });
});
