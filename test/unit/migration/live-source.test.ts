/**
 * The source side of a warm or live move (issue 15) on hand-made ports: the pre-copy rounds
 * (each journaled, a restarted step goes on at the round it was in), the cut-over, what the
 * instantiate order names, the downtime in the job's result, and the order of compensation.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { JournalFile, Sequencer } from '../../../agent/sequencer/index.js';
import {
  migrateMoveDefinition, type ChainImageInfo, type InstantiateOrder, type MigrateOutInput, type MoveImage, type SourcePorts,
} from '../../../agent/migration/index.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'live-src-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

const key = (i: MoveImage): string => (i === 'state' ? 'state' : `${i.diskId}.${i.depth}`);

/** A running VM with two disks whose guest writes `writes[k]` bytes to the overlay of round k+1. */
function world(writes: number[]) {
  const calls: string[] = [];
  const sent: string[] = [];
  const s = { rounds: 0, saved: false, paused: false, running: true, failAt: new Set<string>(), hangSend: undefined as string | undefined, order: undefined as InstantiateOrder | undefined,
    /** Length of the state file the save leaves, and of the one the image port sent. */
    stateBytes: 90 << 20, stateBytesSent: 90 << 20 };
  const chain = (): ChainImageInfo[][] => ['0', '1'].map((diskId) => Array.from({ length: s.rounds + 1 }, (_, depth) => ({
    diskId, depth, sizeBytes: depth === 0 ? 1 << 20 : writes[depth - 1] ?? 0,
  })));
  const fail = (what: string): void => {
    if (s.failAt.has(what)) throw new IntercloudError('MIGRATE_FAILED', `injected failure at ${what}`, { retryable: false });
  };
  const ports: SourcePorts = {
    cloudId: 'cloud-a',
    hypervisor: {
      describe: async () => ({ summary: { name: 'web1', vcpus: 1, memoryBytes: 128 << 20, macs: ['52:54:00:aa:bb:01'], disks: [{ id: '0', capacityBytes: 1 << 20 }, { id: '1', capacityBytes: 1 << 20 }], addresses: [] }, descriptor: '<ovf/>' }),
      state: async () => (s.running ? 'running' : 'stopped'),
      stop: async () => { calls.push('stop'); s.running = false; },
      start: async () => { calls.push('start'); s.running = true; },
      remove: async () => { calls.push('remove'); },
    },
    control: {
      findPeer: async () => ({ cloudId: 'cloud-b', jid: 'cloud-b@gw.example' }),
      verifyPeer: async () => ({ fingerprint: 'ab' }),
      advert: async () => ({ modes: ['cold', 'warm', 'live'], restore: { hypervisor: 'qemu', machines: [{ arch: 'x86_64', machine: 'pc-1' }] } }),
      offer: async (_p, o) => { calls.push(`offer:${o.mode ?? 'cold'}:${o.state?.machine ?? '-'}`); return { reservationId: 'r1', transfer: { uri: 'amqps://b', identity: 'b' }, expiresAt: new Date(Date.now() + 600_000).toISOString() }; },
      release: async () => { calls.push('release'); },
      instantiate: async (_p, order) => { fail('instantiate'); calls.push('instantiate'); s.order = order; return { state: 'running' }; },
      commit: async () => { calls.push('commit'); return { state: 'running' }; },
    },
    transfer: { sendDisk: async () => { throw new Error('a live move sends no whole disk'); } },
    addressing: { register: async () => undefined, withdraw: async () => undefined, held: async () => ({ addresses: [], name: false }) },
    audit: { record: async () => undefined },
    precopy: {
      support: async () => ({ changeTracking: true, stateCapture: true, state: { hypervisor: 'qemu', arch: 'x86_64', machine: 'pc-1' } }),
      startRound: async () => { calls.push(`round:${s.rounds + 1}`); s.rounds++; return { round: s.rounds }; },
      chain: async () => chain(),
      pause: async () => { calls.push('pause'); if (!s.saved) { s.paused = true; s.running = false; } },
      saveState: async () => {
        if (!s.paused && !s.saved) throw new Error('saved without a pause');
        if (!s.saved) calls.push('save');
        s.saved = true; s.paused = false; return { sizeBytes: s.stateBytes };
      },
      resumeFromState: async () => { calls.push('resume'); if (s.saved || s.paused) { s.saved = false; s.paused = false; s.running = true; } },
      abortTracking: async () => { calls.push('abort-tracking'); s.rounds = 0; },
      discardState: async () => { calls.push('discard-state'); },
    },
    images: {
      sendImage: async (req, _progress, signal) => {
        const k = key(req.image);
        if (s.hangSend === k) {
          calls.push(`hang:${k}`);
          await new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason as Error), { once: true }));
        }
        // Only images that no longer change may be read.
        if (req.image !== 'state' && req.image.depth === s.rounds && s.running) throw new Error(`image ${k} is still written`);
        // The state of the paused vm is saved before it is read (as the daemon's image port does).
        if (req.image === 'state') await ports.precopy!.saveState('web1', signal);
        sent.push(k);
        const bytes = req.image === 'state' ? s.stateBytesSent : 1;
        return { sha256: `sha-${k}`.padEnd(64, '0'), bytes, bytesSent: bytes };
      },
    },
  };
  return { ports, calls, sent, s };
}

const input = (over: Partial<MigrateOutInput> = {}): MigrateOutInput => ({ vm: 'web1', to: 'cloud-b', offerId: 'o1', mode: 'live', precopy: { maxRounds: 4, smallBytes: 64 << 10 }, ...over });
const fast = { backoffMs: () => 0 };

describe('live move, source side (fake ports)', () => {
  it('pre-copies round after round until the overlay is small, pauses, sends the newest overlays while it saves, sends the state, records the downtime', async () => {
    const w = world([4 << 20, 1 << 20, 32 << 10]);
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    const { done } = await seq.start('migrate-move', 'm1', input());
    expect(await done).toBe('completed');
    expect(w.calls).toEqual(['offer:live:pc-1', 'round:1', 'round:2', 'round:3', 'pause', 'save', 'instantiate', 'commit', 'discard-state', 'remove']);
    // Bases, then each frozen overlay, then the newest overlays and (beside them) the state once saved.
    expect(w.sent.filter((k) => k !== 'state')).toEqual(['0.0', '1.0', '0.1', '1.1', '0.2', '1.2', '0.3', '1.3']);
    expect(w.sent.indexOf('state')).toBeGreaterThan(w.sent.indexOf('1.2'));
    expect(Object.keys(w.s.order!.digests).sort()).toEqual(['0.0', '0.1', '0.2', '0.3', '1.0', '1.1', '1.2', '1.3', 'state']);
    const status = await seq.status('m1');
    const commit = status.results['commit'] as { mode: string; downtimeMs: number };
    expect(commit.mode).toBe('live');
    // Paused at stop-source, saved during the transfer (by the image port).
    expect(status.results['stop-source']).not.toHaveProperty('stateBytes');
    expect(status.results['transfer']).toMatchObject({ stateBytes: 90 << 20 });
    expect(commit.downtimeMs).toBeGreaterThanOrEqual(0);
    const checkpoints = (await JournalFile.read(dir, 'm1')).filter((r) => r.type === 'step-checkpoint');
    // The pre-copy's rounds, then the commit's check of the state (made once, before the first request).
    expect(checkpoints.map((r) => (r as { step: string }).step)).toEqual(['pre-copy', 'pre-copy', 'pre-copy', 'commit']);
    expect(checkpoints.slice(0, 3).map((r) => (r as { detail: { round: number } }).detail.round)).toEqual([1, 2, 3]);
    expect((checkpoints[3] as { detail: unknown }).detail).toEqual({ stateChecked: true });
  });

  it('commits only once the save ended with the file that was sent; a different one resumes the source', async () => {
    const w = world([4 << 20, 32 << 10]);
    // The image port sent a file of another length than the save left (a save redone after the send).
    w.s.stateBytesSent = (90 << 20) - 4096;
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    const { done } = await seq.start('migrate-move', 'm1', input());
    expect(await done).toBe('compensated');
    expect((await seq.status('m1')).error?.code).toBe('MIGRATE_BAD_IMAGES');
    expect(w.calls).not.toContain('commit');
    expect(w.calls).toContain('release');
    // The target let go first, then the saved vm ran here again on its merged disks.
    expect(w.calls.indexOf('release')).toBeLessThan(w.calls.indexOf('resume'));
    expect(w.calls.indexOf('resume')).toBeLessThan(w.calls.indexOf('abort-tracking'));
    expect(w.s.running).toBe(true);
  });

  it('a commit asked again after a request the target may have taken does not check the state again', async () => {
    const w = world([4 << 20, 32 << 10]);
    let commits = 0;
    // The first request reaches the target (it resumes the VM) but its answer is lost.
    w.ports.control.commit = async () => {
      commits++;
      w.calls.push('commit');
      if (commits === 1) throw new IntercloudError('XMPP_TIMEOUT', 'no answer to the commit', { retryable: true });
      return { state: 'running' };
    };
    // ... and this host cannot be asked any more after that (a lost SSH connection).
    const save = w.ports.precopy!.saveState;
    let saves = 0;
    w.ports.precopy!.saveState = async (vm, signal) => {
      if (++saves > 2) throw new IntercloudError('LIBVIRT_CONNECTION_LOST', 'ssh connection lost', { retryable: true });
      return save(vm, signal);
    };
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    const { done } = await seq.start('migrate-move', 'm1', input());
    expect(await done).toBe('completed');
    expect(commits).toBe(2);
    expect(w.calls).not.toContain('resume');
  });

  it('stops at the round cap even when the guest keeps writing', async () => {
    const w = world([4 << 20, 4 << 20, 4 << 20, 4 << 20, 4 << 20]);
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    expect(await (await seq.start('migrate-move', 'm1', input({ precopy: { maxRounds: 2, smallBytes: 0 } }))).done).toBe('completed');
    expect(w.calls.filter((c) => c.startsWith('round:'))).toEqual(['round:1', 'round:2']);
  });

  it('resumes a restarted pre-copy at the round it was in: nothing sent twice, no round skipped or repeated', async () => {
    const w = world([4 << 20, 1 << 20, 32 << 10]);
    w.s.hangSend = '0.1';
    const first = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    const { done } = await first.start('migrate-move', 'm1', input());
    while (!w.calls.includes('hang:0.1')) await new Promise((r) => setTimeout(r, 5));
    await first.stop();
    await done.catch(() => undefined);
    expect(w.calls).toEqual(['offer:live:pc-1', 'round:1', 'round:2', 'hang:0.1']);
    w.s.hangSend = undefined;

    const second = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    const [job] = await second.resumeAll();
    expect(await job!.done).toBe('completed');
    expect(w.calls.slice(4)).toEqual(['round:3', 'pause', 'save', 'instantiate', 'commit', 'discard-state', 'remove']);
    expect(w.sent.filter((k) => k !== 'state')).toEqual(['0.0', '1.0', '0.1', '1.1', '0.2', '1.2', '0.3', '1.3']);
    expect(w.sent.filter((k) => k === 'state')).toHaveLength(1);
  });

  it('before the pivot, a failure releases the target, resumes the saved vm, then merges the overlays back', async () => {
    const w = world([4 << 20, 32 << 10]);
    w.s.failAt.add('instantiate');
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    expect(await (await seq.start('migrate-move', 'm1', input())).done).toBe('compensated');
    expect(w.calls).toEqual(['offer:live:pc-1', 'round:1', 'round:2', 'pause', 'save', 'release', 'resume', 'abort-tracking', 'release']);
    expect(w.s).toMatchObject({ running: true, saved: false, paused: false, rounds: 0 });
  });

  it('a cancel during the pre-copy merges the overlays back and leaves the vm running, never saved', async () => {
    const w = world([4 << 20, 32 << 10]);
    w.s.hangSend = '0.1';
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    const { done } = await seq.start('migrate-move', 'm1', input());
    while (!w.calls.includes('hang:0.1')) await new Promise((r) => setTimeout(r, 5));
    await seq.cancel('m1');
    expect(await done).toBe('cancelled');
    expect(w.calls).toEqual(['offer:live:pc-1', 'round:1', 'round:2', 'hang:0.1', 'abort-tracking', 'release']);
    expect(w.s).toMatchObject({ running: true, saved: false, paused: false, rounds: 0 });
  });

  it('warm shuts the vm down at the cut-over and starts it again on failure; no mode asked is a cold move as before', async () => {
    const w = world([32 << 10]);
    w.s.failAt.add('instantiate');
    const seq = new Sequencer({ journalDir: dir, definitions: [migrateMoveDefinition(w.ports)], ...fast });
    expect(await (await seq.start('migrate-move', 'm1', input({ mode: 'warm' }))).done).toBe('compensated');
    expect(w.calls).toEqual(['offer:warm:-', 'round:1', 'stop', 'release', 'start', 'abort-tracking', 'release']);
    expect(w.sent).toEqual(['0.0', '1.0', '0.1', '1.1']);

    const cold = world([]);
    const seq2 = new Sequencer({ journalDir: join(dir, 'c'), definitions: [migrateMoveDefinition(cold.ports)], ...fast });
    await expect(seq2.start('migrate-move', 'm2', input({ mode: undefined })).then((j) => j.done)).resolves.toBe('compensated');
    expect(cold.calls.slice(0, 2)).toEqual(['offer:cold:-', 'stop']);
  });
});
