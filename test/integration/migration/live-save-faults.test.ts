/**
 * Live moves (issue 15) with the source agent killed (SIGKILL) during the save (`stop-source`:
 * the guest's memory and devices being written to the state file) and started again on the same
 * directory: the step runs again from what the hypervisor holds (the save done or not), the move
 * completes live — the guest goes on at cloud-b with no boot line, on a disk byte-identical
 * (`qemu-img compare`) to cloud-a's chain at the cut-over — and the VM runs in one cloud only.
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
  assertInvariant, federationHooks, lastJournalRecord, onEvent, setUpFederation, stepStarts, waitForEnd, waitForTargetEnd,
  type Cloud, type Federation,
} from './federation-fixture.js';

const run = promisify(execFile);
const slot = federationHooks();

/** The disk files a domain runs on now (virsh domblklist). */
async function diskFiles(f: Federation, cloud: Cloud): Promise<string[]> {
  const blk = await virsh(f.s, cloud, 'domblklist', f.vm, '--details');
  return blk.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[1] === 'disk').map((c) => c[3]!);
}

describe('live moves with the source agent killed during the save', () => {
  it('source killed while saving the guest: runs the save step again and completes the move live', async () => {
    const t0 = Date.now();
    const f = (slot.f = await setUpFederation(77, { diskMiB: 64, randomMiB: 16 }));
    const logA = join(f.a.dir, 'consoles', `${f.vm}-created.log`);
    await waitForHeartbeat(logA, 2, 60_000);
    const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], mode: 'live' });
    let killedAt = '';
    let stateAtKill = '';
    await onEvent(f, jobId, stepStarts('stop-source'), async () => {
      // The save has begun once the guest no longer runs: the source dies there.
      for (const deadline = Date.now() + 60_000; ;) {
        stateAtKill = await domState(f.s, 'cloud-a', f.vm);
        if (stateAtKill !== 'running') break;
        if (Date.now() > deadline) throw new Error('the guest at cloud-a was never stopped for the save');
        await new Promise((r) => setTimeout(r, 20));
      }
      await f.a.stop('SIGKILL');
      killedAt = await lastJournalRecord(f.a, jobId);
    });
    // What the guest saw at the cut-over: its chain at cloud-a, no longer written.
    const copy = join(f.dir, 'at-cut-over.raw');
    const filesA = await diskFiles(f, 'cloud-a');
    expect(filesA).toHaveLength(1);
    await run('qemu-img', ['convert', '-U', '-O', 'raw', filesA[0]!, copy]);
    const lastA = heartbeats(readFileSync(logA, 'latin1')).at(-1)!;
    await f.a.start();
    const job = await waitForEnd(f.a, jobId, 600_000);
    const target = await waitForTargetEnd(f, jobId, 300_000);
    console.info(`source killed in the save with its journal at '${killedAt}' (domain ${stateAtKill}): source ${job.state}`
      + `${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}, target ${target === 'unknown' ? 'no job' : target.state}`);
    expect(killedAt).toBe('step-started stop-source');
    expect(job.error).toBeUndefined();
    expect(job.state).toBe('completed');
    expect((job.results['commit'] as { mode: string }).mode).toBe('live');
    const logB = join(f.b.dir, 'consoles', `${f.vm}-serial0.log`);
    const hbB = await waitForHeartbeat(logB, lastA.n + 1, 60_000);
    expect(hbB[0]!.n).toBeGreaterThan(lastA.n);
    expect(hbB[0]!.uptime).toBeGreaterThan(lastA.uptime);
    expect(readFileSync(logB, 'latin1')).not.toContain('INTERCLOUD-GUEST-UP');
    const filesB = await diskFiles(f, 'cloud-b');
    expect(filesB).toHaveLength(1);
    await run('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'raw', copy, filesB[0]!]);
    expect(await assertInvariant(f)).toBe('cloud-b');
    console.info(`save-kill test: ${((Date.now() - t0) / 1000).toFixed(0)} s; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  }, 900_000);
});
