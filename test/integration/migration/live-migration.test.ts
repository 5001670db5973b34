/**
 * A live move (issue 15) between two real clouds with real agents: the guest in cloud-a is
 * pre-copied while it runs, saved, restored paused at cloud-b and resumed there at the commit.
 * Checked without the agents: the guest's heartbeat counter and uptime go on at cloud-b with
 * no boot line there, the disk cloud-b runs on is byte-identical (`qemu-img compare`) to a copy
 * of cloud-a's chain taken at the cut-over, and the VM exists only at cloud-b (virsh). And a
 * cancel during the pre-copy leaves the guest running at cloud-a on its original image, never
 * stopped, with no overlay left.
 */
import { execFile } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { domState } from '../../../scripts/local-federation.js';
import { cutOverPhases } from '../../../bench/migration/measure.js';
import { heartbeats, waitForHeartbeat } from '../hypervisor/writing-guest.js';
import {
  assertInvariant, federationHooks, onEvent, setUpFederation, stepStarts, waitForEnd, waitForTargetEnd,
} from './federation-fixture.js';
import { consoleA, consoleB, diskFiles, expectMovedTo } from './live-fault-rig.js';

const run = promisify(execFile);
const slot = federationHooks();


describe('a live migration between two clouds', () => {
  it('moves the running guest: heartbeat goes on at cloud-b with no boot, disk identical, vm only at cloud-b', async () => {
    const f = (slot.f = await setUpFederation(71, { diskMiB: 64, randomMiB: 16 }));
    const logA = consoleA(f);
    await waitForHeartbeat(logA, 2, 60_000);
    const copy = join(f.dir, 'at-cut-over.raw');
    const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], mode: 'live' });
    // The transfer starts once the guest is saved: its chain at cloud-a no longer changes.
    let lastAtA = { n: 0, uptime: 0 };
    await onEvent(f, jobId, stepStarts('transfer'), async () => {
      expect(await domState(f.s, 'cloud-a', f.vm)).not.toBe('running');
      const files = await diskFiles(f, 'cloud-a');
      expect(files).toHaveLength(1);
      // The chain below the newest overlay is what the guest saw at the cut-over.
      await run('qemu-img', ['convert', '-U', '-O', 'raw', files[0]!, copy]);
      lastAtA = heartbeats(readFileSync(logA, 'latin1')).at(-1)!;
    });
    const job = await waitForEnd(f.a, jobId, 400_000);
    expect(job.error).toBeUndefined();
    expect(job.state).toBe('completed');
    expect(job.kind).toBe('migrate-move');
    expect(job.completedSteps).toEqual([
      'describe', 'find-peer', 'verify-peer', 'negotiate', 'pre-copy', 'stop-source', 'transfer', 'instantiate', 're-address', 'commit', 'release-source',
    ]);
    const commit = job.results['commit'] as { mode: string; downtimeMs: number };
    expect(commit.mode).toBe('live');
    const pre = job.results['pre-copy'] as { rounds: number };
    expect(pre.rounds).toBeGreaterThanOrEqual(1);
    const target = await waitForTargetEnd(f, jobId, 300_000);
    if (target === 'unknown') throw new Error(`cloud-b has no job for '${jobId}'`);
    expect(target.state).toBe('completed');
    expect(target.completedSteps).toContain('flatten');

    // The guest goes on at cloud-b: counter and uptime continue, no boot line.
    const hbB = await waitForHeartbeat(consoleB(f), lastAtA.n + 2, 60_000);
    expect(lastAtA.n).toBeGreaterThan(0);
    expect(hbB[0]!.n).toBeGreaterThan(lastAtA.n);
    expect(hbB[0]!.n).toBeLessThanOrEqual(lastAtA.n + 3);
    expect(hbB[0]!.uptime).toBeGreaterThan(lastAtA.uptime);
    expect(readFileSync(consoleB(f), 'latin1')).not.toContain('INTERCLOUD-GUEST-UP');

    // Only at cloud-b, on one flat image that holds what the guest saw at the cut-over.
    await expectMovedTo(f, copy);
    // Nothing of the chain is left at cloud-a.
    const poolA = f.s.libvirt.instances['cloud-a']!.poolPath;
    expect((await fs.readdir(poolA)).filter((n) => n.startsWith(`${f.vm}-`) || n.startsWith(`${f.vm}.`))).toEqual([]);
    console.log(`live move: downtime ${commit.downtimeMs} ms, ${pre.rounds} pre-copy rounds, heartbeat n ${lastAtA.n} → ${hbB[0]!.n}, `
      + `uptime ${lastAtA.uptime} → ${hbB[0]!.uptime}; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n  cut-over, s: ${cutOverPhases(job, target)}`);
  }, 900_000);

  it('a cancel during the pre-copy leaves the guest running at cloud-a on its original image', async () => {
    const f = (slot.f = await setUpFederation(72, { diskMiB: 192, randomMiB: 160 }));
    const logA = consoleA(f);
    await waitForHeartbeat(logA, 2, 60_000);
    const original = await diskFiles(f, 'cloud-a');
    const bootsBefore = readFileSync(logA, 'latin1').split('INTERCLOUD-GUEST-UP').length;
    const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], mode: 'live' });
    let answer: { accepted: boolean; state: string } | undefined;
    await onEvent(f, jobId, (e) => e.type === 'progress' && e.step === 'pre-copy', async () => {
      // Mid-round: an overlay takes the guest's writes while its base is being sent.
      expect(await diskFiles(f, 'cloud-a')).not.toEqual(original);
      answer = await f.a.api.cancel(jobId);
    });
    expect(answer).toEqual({ accepted: true, state: 'running' });
    const job = await waitForEnd(f.a, jobId, 300_000);
    expect(job.state).toBe('cancelled');
    expect(job.completedSteps).not.toContain('stop-source');
    const target = await waitForTargetEnd(f, jobId, 120_000);
    if (target !== 'unknown') expect(target.state).not.toBe('completed');

    // Running at cloud-a on its original image, never stopped or rebooted; no overlay left.
    expect(await domState(f.s, 'cloud-a', f.vm)).toBe('running');
    expect(await diskFiles(f, 'cloud-a')).toEqual(original);
    const poolA = f.s.libvirt.instances['cloud-a']!.poolPath;
    expect((await fs.readdir(poolA)).filter((n) => n.startsWith(`${f.vm}-disk0.ovl`))).toEqual([]);
    const n = heartbeats(readFileSync(logA, 'latin1')).at(-1)!.n;
    await waitForHeartbeat(logA, n + 1, 60_000);
    expect(readFileSync(logA, 'latin1').split('INTERCLOUD-GUEST-UP').length).toBe(bootsBefore);
    expect(await assertInvariant(f)).toBe('cloud-a');
  }, 900_000);
});
