/**
 * Warm moves (issue 15) between two real clouds with real agents: the guest's disk is pre-copied
 * while it runs, the guest is shut down, the newest overlay sent, and cloud-b defines the VM on
 * the received chain and boots it (a new boot whose heartbeat names the moved disk). And a
 * cloud-b whose operator restricts the machine types it restores (`migration.restoreMachines`)
 * does not take the live move: refused before any cut-over, the source runs on untouched; with
 * `fallback: warm` the move goes warm. Checked without the agents: the disk cloud-b runs on is
 * byte-identical (`qemu-img compare`) to cloud-a's chain at the cut-over, the VM is in exactly
 * one cloud (virsh).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { domState, waitForText } from '../../../scripts/local-federation.js';
import { heartbeats, waitForHeartbeat } from '../hypervisor/writing-guest.js';
import {
  federationHooks, onEvent, setUpFederation, stepStarts, waitForEnd, waitForTargetEnd, type Federation,
} from './federation-fixture.js';
import { consoleA, consoleB, diskFiles, expectMovedTo } from './live-fault-rig.js';

const run = promisify(execFile);
const slot = federationHooks();


/** Runs a move to its end; checks it went warm, booted at cloud-b on the moved disk, identical at the cut-over. */
async function moveWarm(f: Federation, request: { mode: 'warm' | 'live'; fallback?: 'warm' }): Promise<void> {
  const copy = join(f.dir, `at-cut-over-${request.mode}.raw`);
  const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], ...request });
  await onEvent(f, jobId, stepStarts('transfer'), async () => {
    // Warm: the guest is shut down before the newest overlay goes; its chain no longer changes.
    expect(await domState(f.s, 'cloud-a', f.vm)).not.toBe('running');
    const files = await diskFiles(f, 'cloud-a');
    expect(files).toHaveLength(1);
    await run('qemu-img', ['convert', '-U', '-O', 'raw', files[0]!, copy]);
  });
  const job = await waitForEnd(f.a, jobId, 400_000);
  expect(job.error).toBeUndefined();
  expect(job.state).toBe('completed');
  expect(job.completedSteps).toEqual([
    'describe', 'find-peer', 'verify-peer', 'negotiate', 'pre-copy', 'stop-source', 'transfer', 'instantiate', 're-address', 'commit', 'release-source',
  ]);
  expect((job.results['commit'] as { mode: string }).mode).toBe('warm');
  expect((job.results['negotiate'] as { fellBack?: boolean }).fellBack ?? false).toBe(request.mode !== 'warm');
  expect((job.results['pre-copy'] as { rounds: number }).rounds).toBeGreaterThanOrEqual(1);
  const target = await waitForTargetEnd(f, jobId, 300_000);
  if (target === 'unknown') throw new Error(`cloud-b has no job for '${jobId}'`);
  expect(target.state).toBe('completed');
  expect(target.kind).toBe('migrate-in-warm');
  expect(target.completedSteps).toContain('flatten');

  // A boot at cloud-b, from the moved disk: its heartbeat names the disk.
  await waitForText(consoleB(f), `disk=${f.diskId}`, 90_000);
  expect(readFileSync(consoleB(f), 'latin1')).toContain('INTERCLOUD-GUEST-UP');
  await waitForHeartbeat(consoleB(f), 1, 60_000);

  await expectMovedTo(f, copy);
}

describe('a warm migration between two clouds', () => {
  it('moves the running guest warm: it boots at cloud-b on the moved disk, identical at the cut-over, in one cloud', async () => {
    const f = (slot.f = await setUpFederation(73, { diskMiB: 64, randomMiB: 16 }));
    await waitForHeartbeat(consoleA(f), 2, 60_000);
    await moveWarm(f, { mode: 'warm' });
  }, 900_000);

  it('a target that does not restore the machine type refuses live before the cut-over; with fallback warm it moves warm', async () => {
    const f = (slot.f = await setUpFederation(74, { diskMiB: 64, randomMiB: 16, b: { restoreMachines: ['intercloud-no-such-machine'] } }));
    const logA = consoleA(f);
    await waitForHeartbeat(logA, 2, 60_000);
    const boots = readFileSync(logA, 'latin1').split('INTERCLOUD-GUEST-UP').length;
    const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], mode: 'live' });
    const refused = await waitForEnd(f.a, jobId, 120_000);
    expect(refused.state).not.toBe('completed');
    expect(refused.error?.code).toBe('MIGRATE_MODE_UNSUPPORTED');
    expect(refused.completedSteps).not.toContain('pre-copy');
    expect(refused.completedSteps).not.toContain('stop-source');
    // Nothing moved: the source runs on, never stopped or rebooted.
    expect(await domState(f.s, 'cloud-a', f.vm)).toBe('running');
    expect(await domState(f.s, 'cloud-b', f.vm)).toBe('absent');
    const n = heartbeats(readFileSync(logA, 'latin1')).at(-1)!.n;
    await waitForHeartbeat(logA, n + 1, 60_000);
    expect(readFileSync(logA, 'latin1').split('INTERCLOUD-GUEST-UP').length).toBe(boots);

    await moveWarm(f, { mode: 'live', fallback: 'warm' });
  }, 900_000);
});
