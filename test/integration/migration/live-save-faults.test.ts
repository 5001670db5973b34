/**
 * Live moves (issue 15) with the source agent killed (SIGKILL) during the save (`stop-source`:
 * the guest's memory and devices being written to the state file) and started again on the same
 * directory: the step runs again from what the hypervisor holds (the save done or not), the move
 * completes live — the guest goes on at cloud-b with no boot line, on a disk byte-identical
 * (`qemu-img compare`) to cloud-a's chain at the cut-over — and the VM runs in one cloud only.
 */
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
    const lastA = await copyChainAtCutOver(move);
    await f.a.start();
    const { job } = await finish(move, `source killed in the save with its journal at '${killedAt}' (domain ${stateAtKill})`);
    expect(killedAt).toBe('step-started stop-source');
    await expectLiveAtB(move, job, lastA, { compare: true });
    logDuration(move, 'save-kill test');
  }, 900_000);
});
