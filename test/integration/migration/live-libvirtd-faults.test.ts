/**
 * Live moves (issue 15) with cloud-a's libvirtd (the source's hypervisor) killed (SIGKILL) during a
 * pre-copy round and started again with `scripts/services up libvirt`, under the federation lock the
 * file holds. The guest's QEMU outlives libvirtd (its heartbeat goes on meanwhile, no reboot), and
 * the move completes live (or compensates cleanly), and
 * either way the VM runs in exactly one cloud; after a completed move cloud-b's disk is
 * byte-identical (`qemu-img compare`) to cloud-a's chain at the cut-over, after a compensation
 * the guest runs on at cloud-a, never rebooted.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { domState, virsh } from '../../../scripts/local-federation.js';
import { serviceEnv } from '../../helpers/services.js';
import { heartbeats, waitForHeartbeat } from '../hypervisor/writing-guest.js';
import {
  assertInvariant, federationHooks, killService, serviceUp, setUpFederation, waitForEnd, waitForTargetEnd, type ApiEvent, type Cloud, type Federation,
} from './federation-fixture.js';

const run = promisify(execFile);
const slot = federationHooks();

/** The disk files a domain runs on now (virsh domblklist). */
async function diskFiles(f: Federation, cloud: Cloud): Promise<string[]> {
  const blk = await virsh(f.s, cloud, 'domblklist', f.vm, '--details');
  return blk.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[1] === 'disk').map((c) => c[3]!);
}

/** The first pre-copy progress past `fraction` of an image (mid-round). */
const midRound = (fraction: number) => (e: ApiEvent): boolean => {
  if (e.type !== 'progress' || e.step !== 'pre-copy') return false;
  const { bytesDone, bytesTotal } = e.detail as { bytesDone: number; bytesTotal: number };
  return bytesDone >= fraction * bytesTotal && bytesDone < bytesTotal;
};

/**
 * Follows the source job to its end, running each action once on the first event its
 * predicate matches; resolves once the stream ended and every action ran.
 */
async function follow(f: Federation, jobId: string, actions: Array<[(e: ApiEvent) => boolean, () => Promise<void>]>): Promise<string[]> {
  const fired: Array<Promise<void>> = [];
  const done = new Set<number>();
  const seen: string[] = [];
  await f.a.api.follow(jobId, (e) => {
    seen.push(e.type === 'status' ? `status(${e.status.state})` : 'step' in e ? `${e.type}(${e.step})` : e.type);
    actions.forEach(([when, act], i) => {
      if (!done.has(i) && when(e)) { done.add(i); fired.push(act()); }
    });
  });
  await Promise.all(fired);
  return seen;
}

describe("live moves with cloud-a's libvirtd killed during a pre-copy round", () => {
  it("cloud-a's libvirtd killed mid-round and started again: the guest runs on, the vm ends in one cloud, its disk identical", async () => {
    const t0 = Date.now();
    const f = (slot.f = await setUpFederation(78, { diskMiB: 192, randomMiB: 160 }));
    const logA = join(f.a.dir, 'consoles', `${f.vm}-created.log`);
    await waitForHeartbeat(logA, 2, 60_000);
    const bootsBefore = readFileSync(logA, 'latin1').split('INTERCLOUD-GUEST-UP').length;
    const copy = join(f.dir, 'at-cut-over.raw');
    const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], mode: 'live' });
    const pidFile = serviceEnv<{ instances: Record<string, { pidFile: string }> }>('libvirt').instances['cloud-a']!.pidFile;
    let hbWhileDown = -1;
    let down = 0;
    let copied = false;
    await follow(f, jobId, [
      [midRound(0.2), async () => {
        await killService(pidFile);
        const at = Date.now();
        // QEMU is not libvirtd's child in spirit: the guest goes on writing its heartbeat.
        const n = heartbeats(readFileSync(logA, 'latin1')).at(-1)!.n;
        hbWhileDown = (await waitForHeartbeat(logA, n + 1, 30_000)).at(-1)!.n;
        await serviceUp('libvirt');
        down = Date.now() - at;
      }],
      [(e) => e.type === 'step-started' && e.step === 'transfer', async () => {
        const files = await diskFiles(f, 'cloud-a');
        expect(files).toHaveLength(1);
        await run('qemu-img', ['convert', '-U', '-O', 'raw', files[0]!, copy]);
        copied = true;
      }],
    ]);
    expect(down).toBeGreaterThan(0);
    expect(hbWhileDown).toBeGreaterThan(0);
    const job = await waitForEnd(f.a, jobId, 600_000);
    const target = await waitForTargetEnd(f, jobId, 300_000);
    console.info(`cloud-a libvirtd killed mid-round (down ${down} ms): source ${job.state}${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}, `
      + `target ${target === 'unknown' ? 'no job' : target.state}`);
    expect(['completed', 'compensated']).toContain(job.state);
    const where = await assertInvariant(f);
    if (job.state === 'completed') {
      expect(where).toBe('cloud-b');
      expect((job.results['commit'] as { mode: string }).mode).toBe('live');
      expect(copied).toBe(true);
      const filesB = await diskFiles(f, 'cloud-b');
      expect(filesB).toHaveLength(1);
      await run('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'raw', copy, filesB[0]!]);
      const logB = join(f.b.dir, 'consoles', `${f.vm}-serial0.log`);
      const lastA = heartbeats(readFileSync(logA, 'latin1')).at(-1)!;
      await waitForHeartbeat(logB, lastA.n + 1, 60_000);
      expect(readFileSync(logB, 'latin1')).not.toContain('INTERCLOUD-GUEST-UP');
    } else {
      expect(where).toBe('cloud-a');
      expect(job.completedSteps).not.toContain('commit');
      expect(readFileSync(logA, 'latin1').split('INTERCLOUD-GUEST-UP').length).toBe(bootsBefore);
      expect(await domState(f.s, 'cloud-b', f.vm)).toBe('absent');
    }
    console.info(`libvirtd test: ${((Date.now() - t0) / 1000).toFixed(0)} s; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  }, 900_000);
});
