/**
 * The target touches only what it made for an offer (issue 12, finding 1), with fakes: a
 * name clash is refused before any byte moves; a VM of the offer's name that is not the
 * job's (another UUID) is never adopted, started, stopped or removed, also when the job
 * compensates; compensation of an old journal (no UUID recorded) touches nothing it cannot
 * prove is its own.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FakeWorld, fakeClouds, held, vmOf } from '../../helpers/fake-clouds.js';
import {
  inboundJobId, legacyDomainUuid, migrateInDefinition, type LocalVmRef, type MigrateInInput, type TargetPorts,
} from '../../../agent/migration/index.js';
import type { StepContext } from '../../../agent/sequencer/index.js';
import { IntercloudError } from '../../../protocols/errors/index.js';

const peerC = { cloudId: 'cloud-c', jid: 'cloud-c@intercloud.test' };
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function target() {
  const world = new FakeWorld();
  const clouds = await fakeClouds(world);
  const seq = clouds.make.target();
  return { world, clouds, seq, service: clouds.state.target! };
}

describe('the target and VMs it did not make (fakes)', () => {
  it('refuses an offer naming an existing vm with MIGRATE_NAME_TAKEN, before any job starts', async () => {
    const { world, seq, service } = await target();
    const mine = vmOf('web1', randomBytes(64));
    world.vms['cloud-b'].set('web1', mine);
    await expect(service.handleOffer(peerC, { offerId: 'o1', vm: mine.summary }, held('rsv-o1'))).rejects.toMatchObject({ code: 'MIGRATE_NAME_TAKEN' });
    await expect(seq.status(inboundJobId('o1'))).rejects.toMatchObject({ code: 'SEQ_UNKNOWN_JOB' });
    expect(world.vms['cloud-b'].get('web1')).toBe(mine);
  });

  it('refuses vm names virsh would misread with MIGRATE_BAD_VM_NAME', async () => {
    const { service } = await target();
    for (const name of ['-x', '--help', '1', 'a/b']) {
      await expect(service.handleOffer(peerC, { offerId: `o-${name}`, vm: { ...vmOf(name, Buffer.alloc(1)).summary, name } }, held(`rsv-o-${name}`)), name)
        .rejects.toMatchObject({ code: 'MIGRATE_BAD_VM_NAME' });
    }
  });

  it('does not adopt a vm of the offered name defined after the accept, and its compensation leaves that vm alone', async () => {
    const { world, service, seq } = await target();
    const disk = randomBytes(4096);
    const theirs = vmOf('web1', disk);
    await service.handleOffer(peerC, { offerId: 'o1', vm: theirs.summary }, held('rsv-o1'));
    world.wire.set('rsv-o1/disk0', disk);
    // Someone here defines a vm of that name meanwhile, running, with its own uuid.
    const local = { ...vmOf('web1', randomBytes(64)), uuid: 'local-uuid' };
    world.vms['cloud-b'].set('web1', local);
    await expect(service.handleInstantiate(peerC, { offerId: 'o1', descriptor: JSON.stringify(theirs.summary), digests: { disk0: sha(disk) }, addresses: [] }))
      .rejects.toMatchObject({ code: 'MIGRATE_NAME_TAKEN' });
    const st = await seq.status(inboundJobId('o1'));
    expect(st.state).toBe('compensated');
    expect(st.error?.code).toBe('MIGRATE_NAME_TAKEN');
    expect(world.vms['cloud-b'].get('web1')).toBe(local);
    expect(local.state).toBe('running');
  });

  it('refuses a descriptor naming another vm than the offer, and touches neither', async () => {
    const { world, service, seq } = await target();
    const disk = randomBytes(4096);
    const offered = vmOf('web2', disk);
    await service.handleOffer(peerC, { offerId: 'o2', vm: offered.summary }, held('rsv-o2'));
    world.wire.set('rsv-o2/disk0', disk);
    const victim = vmOf('victim', randomBytes(64));
    world.vms['cloud-b'].set('victim', victim);
    await expect(service.handleInstantiate(peerC, { offerId: 'o2', descriptor: JSON.stringify(vmOf('victim', disk).summary), digests: { disk0: sha(disk) }, addresses: [] }))
      .rejects.toMatchObject({ code: 'MIGRATE_BAD_DESCRIPTOR' });
    expect((await seq.status(inboundJobId('o2'))).error?.code).toBe('MIGRATE_BAD_DESCRIPTOR');
    expect(world.vms['cloud-b'].get('victim')).toBe(victim);
    expect(victim.state).toBe('running');
    expect(world.vms['cloud-b'].has('web2')).toBe(false);
  });

  it('records in the job input the uuid it gives the domain', async () => {
    const { service, seq } = await target();
    await service.handleOffer(peerC, { offerId: 'o3', vm: vmOf('web3', Buffer.alloc(8)).summary }, held('rsv-o3'));
    const input = (await seq.status(inboundJobId('o3'))).input as MigrateInInput;
    expect(input.domainUuid).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('compensation of jobs journaled before the domain uuid was recorded', () => {
  it('goes by the legacy uuid and removes no storage the old define result did not record', async () => {
    const calls: Array<{ op: string; ref: LocalVmRef; volumes?: readonly string[] }> = [];
    const hv: TargetPorts['hypervisor'] = {
      nameInUse: async () => true,
      define: async () => { throw new IntercloudError('TEST_UNUSED', 'not called'); },
      start: async () => undefined,
      stop: async (ref) => { calls.push({ op: 'stop', ref }); return { touched: false }; },
      state: async () => 'absent',
      remove: async (ref, volumes) => { calls.push({ op: 'remove', ref, volumes }); return { undefined: false }; },
    };
    const audit: string[] = [];
    const def = migrateInDefinition({ cloudId: 'cloud-b', hypervisor: hv, audit: { record: async (e: string) => { audit.push(e); } } } as unknown as TargetPorts);
    // The input and the define result as an agent before this change journaled them.
    const input = {
      offerId: 'old-offer', peer: { cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' },
      vm: vmOf('itmig-1', Buffer.alloc(8)).summary, reservation: { reservationId: 'r', transfer: { uri: 'amqps://127.0.0.1:1/transfers' }, expiresAt: new Date().toISOString() }, commitTimeoutMs: 1000,
    } as MigrateInInput;
    const results: Record<string, unknown> = { define: { vm: 'itmig-1' } };
    const ctx: StepContext<MigrateInInput> = {
      jobId: 'in-old-offer', input, attempt: 1, signal: new AbortController().signal, progress: () => undefined, checkpoint: async () => undefined, checkpoints: () => [],
      result: <T>(s: string): T => {
        if (!(s in results)) throw new IntercloudError('SEQ_JOURNAL_MISMATCH', `step '${s}' has no result yet`);
        return results[s] as T;
      },
    };
    await def.steps.find((s) => s.name === 'start')!.compensate!(ctx);
    await def.steps.find((s) => s.name === 'define')!.compensate!(ctx);
    const ref = { name: 'itmig-1', uuid: legacyDomainUuid('old-offer') };
    expect(calls).toEqual([{ op: 'stop', ref }, { op: 'remove', ref, volumes: [] }]);
    expect(audit).toEqual(['vm-not-removed']);
  });
});
