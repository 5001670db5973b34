/**
 * The target side of a live move (issue 15) on hand-made ports: the chain images are received
 * as they come until the source's instantiate order names what it sent, only exactly those
 * are accepted, the VM is restored paused and resumed only by the commit, then flattened; a
 * release before the commit removes what was made.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sequencer } from '../../../agent/sequencer/index.js';
import { IntercloudError } from '../../../protocols/errors/index.js';
import {
  SourceRequestMailbox, imageKey, inboundJobId, migrateInLiveDefinition, type MigrateInInput, type MoveImage, type TargetPorts,
} from '../../../agent/migration/index.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'live-tgt-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

const sha = (k: string): string => `s-${k}`.padEnd(64, '0');

/** A target whose peer "sends" the images in `sent` (in order), each once it is asked for. */
function world(sent: string[]) {
  const calls: string[] = [];
  const mailbox = new SourceRequestMailbox();
  const vm = { running: false, paused: false, exists: false };
  const waiting = new Map<string, () => void>();
  const arrived = new Set<string>();
  const arrive = (k: string): void => { arrived.add(k); waiting.get(k)?.(); };
  const ports: TargetPorts = {
    cloudId: 'cloud-b',
    hypervisor: {
      nameInUse: async () => vm.exists,
      define: async () => { throw new Error('a live move is restored, not defined'); },
      start: async () => { calls.push('start'); vm.running = true; vm.paused = false; },
      resume: async (ref) => { calls.push(`resume:${ref.uuid}`); vm.running = true; vm.paused = false; },
      persist: async (ref) => { calls.push(`persist:${ref.uuid}`); },
      stop: async () => { calls.push('stop'); vm.running = false; return { touched: true }; },
      state: async () => (vm.exists ? (vm.running ? 'running' : 'stopped') : 'absent'),
      remove: async (_ref, volumes) => { calls.push(`remove:${volumes.length}`); vm.exists = false; return { undefined: true }; },
      restore: async (req) => {
        calls.push(`restore:${req.disks.map((c) => c.map((i) => `${i.path}/${i.format}`).join('+')).join(',')}:${req.state}`);
        vm.exists = true; vm.paused = true;
        return { vm: req.vm, uuid: 'uuid-from-state', volumes: [req.state, ...req.disks.flat().map((i) => i.path)], losses: [] };
      },
      flatten: async (_ref, discard) => { calls.push(`flatten:${discard.join()}`); },
      link: async (disks) => { calls.push(`link:${disks.map((c) => c.map((i) => `${i.path}/${i.format}`).join('+')).join(',')}`); },
    },
    receive: {
      receiveDisks: async () => { throw new Error('a live move receives images'); },
      discard: async () => { calls.push('discard'); },
      receiveImage: async (req, progress, signal) => {
        const k = imageKey(req.image);
        if (!sent.includes(k)) {
          // Never sent: waits until aborted.
          await new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason as Error), { once: true }));
        }
        if (!arrived.has(k)) await new Promise<void>((r) => waiting.set(k, r));
        // The state's manifest (the source paused for the cut-over), then the rest.
        if (k === 'state') progress({ bytesDone: 0, bytesTotal: 2 });
        calls.push(`got:${k}@${req.slot}`);
        return { path: `/pool/${req.slot}`, sha256: sha(k) };
      },
    },
    requests: mailbox,
    addressing: { register: async () => undefined, withdraw: async () => undefined, held: async () => ({ addresses: [], name: false }) },
    audit: { record: async () => undefined },
  };
  return { ports, calls, mailbox, vm, arrive };
}

const input: MigrateInInput = {
  offerId: 'o1', peer: { cloudId: 'cloud-a', jid: 'cloud-a@gw' }, mode: 'live', commitTimeoutMs: 60_000, domainUuid: 'job-uuid',
  vm: { name: 'web1', vcpus: 1, memoryBytes: 128 << 20, macs: [], disks: [{ id: '0', capacityBytes: 1 << 20 }, { id: '1', capacityBytes: 1 << 20 }], addresses: [] },
  reservation: { reservationId: 'r1', transfer: { uri: 'amqps://b', identity: 'b' }, expiresAt: new Date(Date.now() + 600_000).toISOString() },
};
const until = async (cond: () => boolean): Promise<void> => { while (!cond()) await new Promise((r) => setTimeout(r, 5)); };
const order = (keys: string[]) => ({ offerId: 'o1', descriptor: '<ovf/>', digests: Object.fromEntries(keys.map((k) => [k, sha(k)])), addresses: [] });

describe('live move, target side (fake ports)', () => {
  it('receives the chains until the order, restores paused, resumes only at the commit, then flattens', async () => {
    const keys = ['0.0', '1.0', '0.1', '1.1', 'state'];
    const w = world(keys);
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateInLiveDefinition(w.ports)], backoffMs: () => 0 });
    const { done } = await seq.start('migrate-in-live', inboundJobId('o1'), input);
    for (const k of ['0.0', '1.0', '0.1', '1.1']) w.arrive(k);
    await until(() => w.calls.includes('got:1.1@d1-1'));
    // Both overlays here before the state: each is linked onto its chain (on a loaded machine the
    // second link may come a moment after its `got`; a state arriving first would leave it to the restore).
    await until(() => w.calls.filter((c) => c.startsWith('link:')).length === 2);
    w.arrive('state');
    w.mailbox.deliverInstantiate('o1', order(keys));
    await until(() => w.calls.some((c) => c.startsWith('restore:')));
    expect(w.calls.find((c) => c.startsWith('restore:'))).toBe('restore:/pool/d0-0/raw+/pool/d0-1/qcow2,/pool/d1-0/raw+/pool/d1-1/qcow2:/pool/state');
    // Each overlay was linked onto its disk's chain as soon as it was here, before the restore.
    const linked = w.calls.filter((c) => c.startsWith('link:'));
    expect(linked).toEqual(['link:/pool/d0-0/raw+/pool/d0-1/qcow2', 'link:/pool/d1-0/raw+/pool/d1-1/qcow2']);
    expect(w.calls.indexOf('link:/pool/d0-0/raw+/pool/d0-1/qcow2')).toBeGreaterThan(w.calls.indexOf('got:0.1@d0-1'));
    expect(w.calls.lastIndexOf('link:/pool/d1-0/raw+/pool/d1-1/qcow2')).toBeLessThan(w.calls.findIndex((c) => c.startsWith('restore:')));
    await new Promise((r) => setTimeout(r, 30));
    // Paused until the source commits: never running in two clouds.
    expect(w.vm).toMatchObject({ exists: true, paused: true, running: false });
    expect(w.calls.some((c) => c.startsWith('resume'))).toBe(false);
    w.mailbox.deliverCommit('o1');
    expect(await done).toBe('completed');
    // Resumed by the UUID the restore answered (not started by name).
    // Defined persistently while the commit was awaited (off the cut-over), again after it, then flattened.
    expect(w.calls.slice(-4)).toEqual(['persist:uuid-from-state', 'resume:uuid-from-state', 'persist:uuid-from-state', 'flatten:/pool/state']);
    expect(w.calls).not.toContain('start');
    expect(w.vm.running).toBe(true);
  });

  it('refuses an order naming an image it did not receive, and removes what it made', async () => {
    const keys = ['0.0', '1.0', 'state'];
    const w = world(keys);
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateInLiveDefinition(w.ports, { orderGraceMs: 200 })], backoffMs: () => 0 });
    const { done } = await seq.start('migrate-in-live', inboundJobId('o1'), input);
    for (const k of keys) w.arrive(k);
    await until(() => w.calls.includes('got:1.0@d1-0'));
    // The peer claims a third image and a chain of another disk.
    w.mailbox.deliverInstantiate('o1', order([...keys, '0.1', '7.0']));
    expect(await done).toBe('compensated');
    expect((await seq.status(inboundJobId('o1'))).error?.code).toBe('MIGRATE_BAD_IMAGES');
    expect(w.calls.some((c) => c.startsWith('restore:'))).toBe(false);
    expect(w.calls.at(-1)).toBe('discard');
  });

  it('links nothing once the state arrives (the source is paused): the restore links the last overlays', async () => {
    const keys = ['0.0', '1.0', '0.1', '1.1', 'state'];
    const w = world(keys);
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateInLiveDefinition(w.ports)], backoffMs: () => 0 });
    const { done } = await seq.start('migrate-in-live', inboundJobId('o1'), input);
    for (const k of ['0.0', '1.0', 'state']) w.arrive(k);
    await until(() => w.calls.includes('got:state@state') && w.calls.includes('got:1.0@d1-0'));
    for (const k of ['0.1', '1.1']) w.arrive(k);
    w.mailbox.deliverInstantiate('o1', order(keys));
    await until(() => w.calls.some((c) => c.startsWith('restore:')));
    expect(w.calls.filter((c) => c.startsWith('link:'))).toEqual([]);
    expect(w.calls.find((c) => c.startsWith('restore:'))).toBe('restore:/pool/d0-0/raw+/pool/d0-1/qcow2,/pool/d1-0/raw+/pool/d1-1/qcow2:/pool/state');
    w.mailbox.deliverCommit('o1');
    expect(await done).toBe('completed');
  });

  it('a release before the commit removes the paused vm and its files; it never resumed', async () => {
    const keys = ['0.0', '1.0', 'state'];
    const w = world(keys);
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateInLiveDefinition(w.ports)], backoffMs: () => 0 });
    const { done } = await seq.start('migrate-in-live', inboundJobId('o1'), input);
    for (const k of keys) w.arrive(k);
    await until(() => w.calls.includes('got:1.0@d1-0'));
    w.mailbox.deliverInstantiate('o1', order(keys));
    await until(() => w.calls.some((c) => c.startsWith('restore:')));
    await new Promise((r) => setTimeout(r, 30));
    await seq.cancel(inboundJobId('o1'), 'released by cloud-a');
    expect(await done).toBe('cancelled');
    expect(w.calls.some((c) => c.startsWith('resume'))).toBe(false);
    expect(w.calls.slice(-2)).toEqual(['remove:3', 'discard']);
    expect(w.vm.exists).toBe(false);
  });

  it('a restore cut after its domain was made (result lost): the run again makes that paused domain again, by the UUID journaled before', async () => {
    const keys = ['0.0', '1.0', 'state'];
    const w = world(keys);
    const asked: Array<string | undefined> = [];
    let lost = true;
    w.ports.hypervisor.restore = async (req) => {
      asked.push(req.replacing);
      // A domain of that name is there and is not the one this job said it made: refused.
      if (w.vm.exists && req.replacing !== 'uuid-from-state') throw new IntercloudError('MIGRATE_NAME_TAKEN', 'a vm named web1 already exists', { retryable: false });
      await req.beforeRestore?.('uuid-from-state');
      w.vm.exists = true; w.vm.paused = true;
      if (lost) { lost = false; throw new IntercloudError('MIGRATE_FAILED', 'the result was lost (the agent went away)', { retryable: true }); }
      return { vm: req.vm, uuid: 'uuid-from-state', volumes: [req.state, ...req.disks.flat().map((i) => i.path)], losses: [] };
    };
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateInLiveDefinition(w.ports)], backoffMs: () => 0 });
    const { done } = await seq.start('migrate-in-live', inboundJobId('o1'), input);
    for (const k of keys) w.arrive(k);
    await until(() => w.calls.includes('got:1.0@d1-0'));
    w.mailbox.deliverInstantiate('o1', order(keys));
    await until(() => asked.length === 2);
    expect(asked).toEqual([undefined, 'uuid-from-state']);
    await new Promise((r) => setTimeout(r, 30));
    expect(w.vm).toMatchObject({ exists: true, paused: true, running: false });
    w.mailbox.deliverCommit('o1');
    expect(await done).toBe('completed');
    expect(w.vm.running).toBe(true);
  });

  it('names files from its own counters only, whatever the disk ids', () => {
    const image: MoveImage = { diskId: '0', depth: 3 };
    expect(imageKey(image)).toBe('0.3');
    expect(imageKey('state')).toBe('state');
  });
});
