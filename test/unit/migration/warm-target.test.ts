/**
 * The target side of a warm move (issue 15) on hand-made ports: the chain images are received
 * as for live but without a state file, the VM is defined from the offered descriptor on each
 * disk's linked chain (the job's own UUID), booted as a cold move boots it, committed, then
 * flattened; a state file the peer sends anyway is refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sequencer } from '../../../agent/sequencer/index.js';
import {
  SourceRequestMailbox, imageKey, inboundJobId, migrateInWarmDefinition, type MigrateInInput, type TargetPorts,
} from '../../../agent/migration/index.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'warm-tgt-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

const sha = (k: string): string => `s-${k}`.padEnd(64, '0');

/** A target whose peer sends the images in `sent`; a receive for any other waits until aborted. */
function world(sent: string[]) {
  const calls: string[] = [];
  const mailbox = new SourceRequestMailbox();
  const vm = { running: false, exists: false };
  const ports: TargetPorts = {
    cloudId: 'cloud-b',
    hypervisor: {
      nameInUse: async () => vm.exists,
      define: async () => { throw new Error('a warm move is defined on its chains'); },
      defineOnChain: async (req) => {
        calls.push(`define:${req.vm.uuid}:${req.descriptor}:${req.disks.map((c) => c.map((i) => `${i.path}/${i.format}`).join('+')).join(',')}`);
        vm.exists = true;
        return { vm: req.vm.name, uuid: req.vm.uuid, volumes: req.disks.flat().map((i) => i.path), losses: [] };
      },
      start: async (ref) => { calls.push(`boot:${ref.uuid}`); vm.running = true; },
      stop: async () => { calls.push('stop'); vm.running = false; return { touched: true }; },
      state: async () => (vm.exists ? (vm.running ? 'running' : 'stopped') : 'absent'),
      remove: async (_ref, volumes) => { calls.push(`remove:${volumes.length}`); vm.exists = false; return { undefined: true }; },
      restore: async () => { throw new Error('a warm move restores no state'); },
      flatten: async (_ref, discard) => { calls.push(`flatten:${discard.join()}`); },
    },
    receive: {
      receiveDisks: async () => { throw new Error('a warm move receives images'); },
      discard: async () => { calls.push('discard'); },
      receiveImage: async (req, _p, signal) => {
        const k = imageKey(req.image);
        if (!sent.includes(k)) await new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason as Error), { once: true }));
        calls.push(`got:${k}@${req.slot}`);
        return { path: `/pool/${req.slot}`, sha256: sha(k) };
      },
    },
    requests: mailbox,
    addressing: { register: async () => undefined, withdraw: async () => undefined, held: async () => ({ addresses: [], name: false }) },
    audit: { record: async () => undefined },
  };
  return { ports, calls, mailbox, vm };
}

const input: MigrateInInput = {
  offerId: 'o1', peer: { cloudId: 'cloud-a', jid: 'cloud-a@gw' }, mode: 'warm', commitTimeoutMs: 60_000, domainUuid: 'job-uuid',
  vm: { name: 'web1', vcpus: 1, memoryBytes: 128 << 20, macs: [], disks: [{ id: '0', capacityBytes: 1 << 20 }], addresses: [] },
  reservation: { reservationId: 'r1', transfer: { uri: 'amqps://b', identity: 'b' }, expiresAt: new Date(Date.now() + 600_000).toISOString() },
};
const until = async (cond: () => boolean): Promise<void> => { while (!cond()) await new Promise((r) => setTimeout(r, 5)); };
const order = (keys: string[]) => ({ offerId: 'o1', descriptor: '<ovf/>', digests: Object.fromEntries(keys.map((k) => [k, sha(k)])), addresses: [] });

describe('warm move, target side (fake ports)', () => {
  it('receives the chain without a state, defines the vm on it, boots it, commits, then flattens', async () => {
    const w = world(['0.0', '0.1']);
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateInWarmDefinition(w.ports, { orderGraceMs: 200 })], backoffMs: () => 0 });
    const { done } = await seq.start('migrate-in-warm', inboundJobId('o1'), input);
    await until(() => w.calls.includes('got:0.1@d0-1'));
    w.mailbox.deliverInstantiate('o1', order(['0.0', '0.1']));
    await until(() => w.calls.some((c) => c.startsWith('boot:')));
    expect(w.calls.filter((c) => c.startsWith('got:'))).not.toContain('got:state@state');
    expect(w.calls.find((c) => c.startsWith('define:'))).toBe('define:job-uuid:<ovf/>:/pool/d0-0/raw+/pool/d0-1/qcow2');
    w.mailbox.deliverCommit('o1');
    expect(await done).toBe('completed');
    expect(w.calls.slice(-2)).toEqual(['boot:job-uuid', 'flatten:']);
    expect(w.vm.running).toBe(true);
  });

  it('refuses an order that names a state file, and removes what it received', async () => {
    const w = world(['0.0', 'state']);
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateInWarmDefinition(w.ports, { orderGraceMs: 200 })], backoffMs: () => 0 });
    const { done } = await seq.start('migrate-in-warm', inboundJobId('o1'), input);
    await until(() => w.calls.includes('got:0.0@d0-0'));
    w.mailbox.deliverInstantiate('o1', order(['0.0', 'state']));
    expect(await done).toBe('compensated');
    expect((await seq.status(inboundJobId('o1'))).error?.code).toBe('MIGRATE_BAD_IMAGES');
    expect(w.calls.some((c) => c.startsWith('define:'))).toBe(false);
    expect(w.calls.at(-1)).toBe('discard');
  });
});
