/**
 * Issue 12, findings 6 and 8: a peer's `<cancel>` of an offer whose inbound job runs cancels
 * that job (its compensation undoes what it made), and what the offer holds is released only
 * when the job has ended (the service's `jobEnded` hook), never while it still runs. Only the
 * offer's own peer may cancel it, and a committed job is not cancelled (the VM stays here).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { inboundJobId } from '../../../agent/migration/index.js';
import { FakeWorld, fakeClouds, vmOf } from '../../helpers/fake-clouds.js';

const peerA = { cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' };

async function setup() {
  const world = new FakeWorld();
  world.vms['cloud-a'].set('web1', vmOf('web1', randomBytes(4096)));
  world.addresses.set('10.1.0.5', new Set(['cloud-a']));
  const clouds = await fakeClouds(world);
  return { world, clouds, a: clouds.make.source(), b: clouds.make.target() };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('a peer cancels its offer at the target', () => {
  it('while the inbound job runs: the job is cancelled and compensates; the offer is released only once the job has ended', async () => {
    const { world, clouds, a, b } = await setup();
    // The source holds its commit back; the target's compensation of re-address waits until let go.
    world.hangs.add('commit');
    world.hangs.add('withdraw:cloud-b');
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    await until(() => world.reached.has('commit'));
    expect(world.vms['cloud-b'].get('web1')?.state).toBe('running');

    await expect(clouds.state.target!.handleCancel(peerA, 'o1')).resolves.toBe('cancelling');
    await until(() => world.reached.has('withdraw:cloud-b'));
    // Still compensating: the job runs, so what the offer holds is still held.
    expect((await b.status(inboundJobId('o1'))).state).toBe('running');
    expect(clouds.state.ended).toEqual([]);

    world.letGo('withdraw:cloud-b');
    await until(() => clouds.state.ended.length > 0);
    expect((await b.status(inboundJobId('o1'))).state).toBe('cancelled');
    expect(clouds.state.ended).toEqual([{ offerId: 'o1', peer: 'cloud-a@intercloud.test' }]);
    expect(world.vms['cloud-b'].has('web1')).toBe(false);

    // The source's commit now finds the target's job cancelled: it keeps its own copy.
    world.letGo('commit');
    expect(await done).not.toBe('completed');
    expect(world.runningIn('web1')).toEqual(['cloud-a']);
  });

  it('from another peer: refused, and the job goes on to commit', async () => {
    const { world, clouds, a, b } = await setup();
    world.hangs.add('commit');
    const { done } = await a.start('migrate-out', 'm2', { vm: 'web1', to: 'cloud-b', offerId: 'o2' });
    await until(() => world.reached.has('commit'));
    const svc = clouds.state.target!;
    await expect(svc.handleCancel({ cloudId: 'cloud-c', jid: 'cloud-c@intercloud.test' }, 'o2')).rejects.toMatchObject({ code: 'MIGRATE_NO_RESERVATION' });
    // Same cloud id, another JID: not the peer that made the offer either.
    await expect(svc.handleCancel({ cloudId: 'cloud-a', jid: 'cloud-a@elsewhere.example' }, 'o2')).rejects.toMatchObject({ code: 'MIGRATE_NO_RESERVATION' });
    const s = await b.status(inboundJobId('o2'));
    expect(s.state).toBe('running');
    expect(s.cancelRequested).toBe(false);
    expect(clouds.state.ended).toEqual([]);

    world.letGo('commit');
    expect(await done).toBe('completed');
    expect((await b.status(inboundJobId('o2'))).state).toBe('completed');
    expect(world.runningIn('web1')).toEqual(['cloud-b']);
  });

  it('after commit: refused, the vm stays here', async () => {
    const { world, clouds, a, b } = await setup();
    const { done } = await a.start('migrate-out', 'm3', { vm: 'web1', to: 'cloud-b', offerId: 'o3' });
    expect(await done).toBe('completed');
    await expect(clouds.state.target!.handleCancel(peerA, 'o3')).rejects.toMatchObject({ code: 'MIGRATE_NO_RESERVATION' });
    expect((await b.status(inboundJobId('o3'))).state).toBe('completed');
    expect(world.runningIn('web1')).toEqual(['cloud-b']);
  });

  it('of an offer with no job here: nothing to cancel, so nothing holds it', async () => {
    const { clouds } = await setup();
    await expect(clouds.state.target!.handleCancel(peerA, 'o-none')).resolves.toBe('none');
  });
});
