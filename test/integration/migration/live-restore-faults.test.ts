/**
 * Live moves (issue 15) with the target agent killed (SIGKILL) during the restore: after the
 * saved state arrived and the restore began (a paused domain carrying the source's UUID
 * appears at cloud-b), before the restore's result is journaled; then started again on the same
 * directory. The target's `define` step, run again, must take back the paused domain it made
 * (never one it did not make) and the move completes live: the guest goes on at cloud-b with no
 * boot line, on a disk byte-identical (`qemu-img compare`) to cloud-a's chain at the cut-over,
 * and the VM runs in one cloud only.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { domState, virsh } from '../../../scripts/local-federation.js';
import { heartbeats, waitForHeartbeat } from '../hypervisor/writing-guest.js';
import {
  assertInvariant, federationHooks, inboundOf, lastJournalRecord, onEvent, setUpFederation, stepStarts, waitForEnd, waitForTargetEnd,
  type Cloud, type Federation,
} from './federation-fixture.js';

const run = promisify(execFile);
const slot = federationHooks();

/** The disk files a domain runs on now (virsh domblklist). */
async function diskFiles(f: Federation, cloud: Cloud): Promise<string[]> {
  const blk = await virsh(f.s, cloud, 'domblklist', f.vm, '--details');
  return blk.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[1] === 'disk').map((c) => c[3]!);
}

describe('live moves with the target agent killed during the restore', () => {
  it('target killed while its restored domain is paused and unjournaled: takes it back and completes the move live', async () => {
    const t0 = Date.now();
    const f = (slot.f = await setUpFederation(75, { diskMiB: 64, randomMiB: 16 }));
    const logA = join(f.a.dir, 'consoles', `${f.vm}-created.log`);
    await waitForHeartbeat(logA, 2, 60_000);
    const copy = join(f.dir, 'at-cut-over.raw');
    const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], mode: 'live' });
    let lastAtA = { n: 0, uptime: 0 };
    await onEvent(f, jobId, stepStarts('transfer'), async () => {
      const files = await diskFiles(f, 'cloud-a');
      expect(files).toHaveLength(1);
      await run('qemu-img', ['convert', '-U', '-O', 'raw', files[0]!, copy]);
      lastAtA = heartbeats(readFileSync(logA, 'latin1')).at(-1)!;
    });
    // The restore has begun once a domain of that name is at cloud-b: the target dies there.
    let killedAt = '';
    for (const deadline = Date.now() + 300_000; ;) {
      if ((await domState(f.s, 'cloud-b', f.vm)) !== 'absent') {
        await f.b.stop('SIGKILL');
        killedAt = await lastJournalRecord(f.b, inboundOf(jobId));
        break;
      }
      if (Date.now() > deadline) throw new Error(`no domain '${f.vm}' appeared at cloud-b`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const stateAtKill = await domState(f.s, 'cloud-b', f.vm);
    await f.b.start();
    const job = await waitForEnd(f.a, jobId, 400_000);
    const target = await waitForTargetEnd(f, jobId, 300_000);
    console.info(`target killed in the restore with its journal at '${killedAt}' (domain ${stateAtKill}): source ${job.state}`
      + `${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}, target ${target === 'unknown' ? 'no job' : `${target.state}${target.error ? ` (${target.error.code})` : ''}`}`);
    // The kill landed inside the window: the define step started, its result not journaled.
    expect(killedAt).toMatch(/^step-(started|checkpoint) define$/);
    expect(job.error).toBeUndefined();
    expect(job.state).toBe('completed');
    expect((job.results['commit'] as { mode: string }).mode).toBe('live');

    // The guest went on at cloud-b: counter and uptime continue, no boot line.
    const logB = join(f.b.dir, 'consoles', `${f.vm}-serial0.log`);
    const hbB = await waitForHeartbeat(logB, lastAtA.n + 1, 60_000);
    expect(lastAtA.n).toBeGreaterThan(0);
    expect(hbB[0]!.n).toBeGreaterThan(lastAtA.n);
    expect(hbB[0]!.uptime).toBeGreaterThan(lastAtA.uptime);
    expect(readFileSync(logB, 'latin1')).not.toContain('INTERCLOUD-GUEST-UP');
    expect(await domState(f.s, 'cloud-a', f.vm)).toBe('absent');
    const filesB = await diskFiles(f, 'cloud-b');
    expect(filesB).toHaveLength(1);
    await run('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'raw', copy, filesB[0]!]);
    expect(await assertInvariant(f)).toBe('cloud-b');
    console.info(`restore-kill test: ${((Date.now() - t0) / 1000).toFixed(0)} s; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  }, 900_000);
});
