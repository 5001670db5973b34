/**
 * Issue 12 finding 6: what an offer holds at the target is released when the target's job
 * ends — completed, failed (compensated) or cancelled — through the service's `jobEnded`
 * hook, which the daemon wires to the session's reservation book. And only the offer's own
 * peer (cloud id *and* JID) may act on it.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { inboundJobId } from '../../../agent/migration/index.js';
import { FakeWorld, fakeClouds, held, vmOf } from '../../helpers/fake-clouds.js';

async function setup() {
  const world = new FakeWorld();
  const disk = randomBytes(4096);
  world.vms['cloud-a'].set('web1', vmOf('web1', disk));
  world.addresses.set('10.1.0.5', new Set(['cloud-a']));
  const clouds = await fakeClouds(world);
  return { world, clouds, a: clouds.make.source(), b: clouds.make.target() };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the target releases what an offer holds when its job ends', () => {
  it('after a completed migration', async () => {
    const { clouds, a, b } = await setup();
    const { done } = await a.start('migrate-out', 'm1', { vm: 'web1', to: 'cloud-b', offerId: 'o1' });
    expect(await done).toBe('completed');
    await until(() => clouds.state.ended.length > 0);
    expect((await b.status(inboundJobId('o1'))).state).toBe('completed');
    expect(clouds.state.ended).toEqual([{ offerId: 'o1', peer: 'cloud-a@intercloud.test' }]);
  });

  it('after a failed one (compensated at the target)', async () => {
    const { world, clouds, a, b } = await setup();
    world.faults.add('start');
    const { done } = await a.start('migrate-out', 'm2', { vm: 'web1', to: 'cloud-b', offerId: 'o2' });
    expect(await done).not.toBe('completed');
    await until(() => clouds.state.ended.length > 0);
    expect((await b.status(inboundJobId('o2'))).state).not.toBe('running');
    expect(clouds.state.ended.map((e) => e.offerId)).toEqual(['o2']);
  });

  it('after a cancelled one', async () => {
    const { world, clouds, a, b } = await setup();
    world.hangs.add('transfer');
    const { done } = await a.start('migrate-out', 'm3', { vm: 'web1', to: 'cloud-b', offerId: 'o3' });
    await until(() => world.reached.has('transfer'));
    expect((await a.cancel('m3')).accepted).toBe(true);
    expect(await done).toBe('cancelled');
    await until(() => clouds.state.ended.length > 0);
    expect((await b.status(inboundJobId('o3'))).state).not.toBe('running');
    expect(clouds.state.ended.map((e) => e.offerId)).toEqual(['o3']);
  });

  it('acts only for the offer\'s own cloud id and jid', async () => {
    const { clouds } = await setup();
    const svc = clouds.state.target!;
    const vm = { name: 'web9', vcpus: 1, memoryBytes: 64 * 1024 ** 2, macs: [], disks: [{ id: '0', capacityBytes: 1024 ** 3 }], addresses: [] };
    await svc.handleOffer({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, { offerId: 'o9', vm }, held('rsv-o9'));
    // Same local part, another domain: not the peer that made the offer.
    await expect(svc.handleRelease({ cloudId: 'cloud-a', jid: 'cloud-a@elsewhere.example' }, 'o9')).rejects.toMatchObject({ code: 'MIGRATE_NO_RESERVATION' });
    await expect(svc.handleRelease({ cloudId: 'cloud-c', jid: 'cloud-c@intercloud.test' }, 'o9')).rejects.toMatchObject({ code: 'MIGRATE_NO_RESERVATION' });
    await svc.handleRelease({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, 'o9');
    await until(() => clouds.state.ended.some((e) => e.offerId === 'o9'));
  });
});

describe('one reservation per offer (issue 13)', () => {
  it('the target\'s job holds the reservation the accept carries: its id and its expiry, no second one', async () => {
    const { clouds, b } = await setup();
    const svc = clouds.state.target!;
    const vm = { name: 'web8', vcpus: 1, memoryBytes: 64 * 1024 ** 2, macs: [], disks: [{ id: '0', capacityBytes: 1024 ** 3 }], addresses: [] };
    const expiresAt = Date.now() + 42_000;
    const given = { reservationId: 'r-from-admission', expiresAt };
    const r = await svc.handleOffer({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, { offerId: 'o8', vm }, given);
    expect(r).toMatchObject({ reservationId: 'r-from-admission', expiresAt: new Date(expiresAt).toISOString() });
    const input = (await b.status(inboundJobId('o8'))).input as { reservation: { reservationId: string; expiresAt: string } };
    expect(input.reservation).toMatchObject({ reservationId: 'r-from-admission', expiresAt: new Date(expiresAt).toISOString() });
    // The retried offer (same id) is answered with the same reservation.
    await expect(svc.handleOffer({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, { offerId: 'o8', vm }, given))
      .resolves.toMatchObject({ reservationId: 'r-from-admission' });
    await svc.handleRelease({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' }, 'o8');
  });
});
