/**
 * Live moves (issue 15) with the source agent killed (SIGKILL) during the save (in `transfer`,
 * after `stop-source` paused the guest: its memory and devices being written to the state file
 * while the newest overlays go) and started again on the same directory: the step runs again
 * from what the hypervisor holds (the save done or not), the move completes live — the guest goes
 * on at cloud-b with no boot line, on a disk byte-identical (`qemu-img compare`) to cloud-a's
 * chain at the cut-over — and the VM runs in one cloud only.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { domState } from '../../../scripts/local-federation.js';
import { federationHooks, lastJournalRecord, onEvent, stepStarts } from './federation-fixture.js';
import { copyChainAtCutOver, expectLiveAtB, finish, logDuration, startLiveMove } from './live-fault-rig.js';

const slot = federationHooks();

describe('live moves with the source agent killed during the save', () => {
  it('source killed while saving the guest: runs the save step again and completes the move live', async () => {
    const move = await startLiveMove(slot, 77, 'small');
    const { f, jobId } = move;
    let killedAt = '';
    let stateAtKill = '';
    const stateFile = join(f.s.libvirt.instances['cloud-a']!.poolPath, `${f.vm}.state`);
    await onEvent(f, jobId, stepStarts('transfer'), async () => {
      // The save has begun once its state file is there (the guest paused at stop-source): the source dies there.
      for (const deadline = Date.now() + 60_000; !existsSync(stateFile);) {
        if (Date.now() > deadline) throw new Error(`the guest at cloud-a was never saved to '${stateFile}'`);
        await new Promise((r) => setTimeout(r, 5));
      }
      await f.a.stop('SIGKILL');
      stateAtKill = await domState(f.s, 'cloud-a', f.vm);
      killedAt = await lastJournalRecord(f.a, jobId);
    });
    // What the guest saw at the cut-over: its chain at cloud-a, no longer written.
    const lastA = await copyChainAtCutOver(move);
    await f.a.start();
    const { job } = await finish(move, `source killed in the save with its journal at '${killedAt}' (domain ${stateAtKill})`);
    expect(killedAt).toBe('step-started transfer');
    await expectLiveAtB(move, job, lastA, { compare: true });
    logDuration(move, 'save-kill test');
  }, 900_000);
});
