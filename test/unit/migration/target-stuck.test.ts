/**
 * A target that cannot undo its part must not say it released the VM: when its re-address keeps
 * failing and so does its compensation (a wrong mapping-system key, say), its job ends
 * `needs-operator` with the VM still defined — maybe running — there. The source must then keep its
 * own copy stopped instead of starting it again: never two. Hermetic (the fake clouds).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AddressedVm } from '../../../agent/migration/index.js';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { FakeWorld, fakeClouds, vmOf } from '../../helpers/fake-clouds.js';

/** cloud-b's mapping system refuses every update, as with a wrong key. */
class RefusingTargetWorld extends FakeWorld {
  override addressing(cloud: string) {
    const base = super.addressing(cloud);
    if (cloud !== 'cloud-b') return base;
    const refuse = async (_vm: AddressedVm): Promise<void> => {
      throw new IntercloudError('TEST_FAULT', `the mapping system refuses '${cloud}'`);
    };
    return { register: refuse, withdraw: refuse, held: base.held };
  }
}

describe('a target that cannot undo its part', () => {
  it('does not report the vm released, and the source does not start its copy again', async () => {
    const world = new RefusingTargetWorld();
    world.vms['cloud-a'].set('web1', vmOf('web1', randomBytes(4096)));
    const clouds = await fakeClouds(world);
    const a = clouds.make.source();
    clouds.make.target();
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    const outcome = await done;
    expect(outcome).toBe('needs-operator');
    // cloud-b still has the vm (its compensation could not finish): cloud-a must not run one too.
    expect(world.vms['cloud-b'].has('web1')).toBe(true);
    expect(world.runningIn('web1').length).toBeLessThanOrEqual(1);
    expect(world.vms['cloud-a'].get('web1')?.state).toBe('stopped');
  });
});
