/**
 * Live moves (issue 15) with both agents killed (SIGKILL) during the restore: after the saved
 * state arrived and the restore began (a paused domain carrying the source's UUID appears at
 * cloud-b), before the restore's result is journaled at the target, while the source waits for
 * it (`instantiate`); then both started again on their directories. The target's `define` step,
 * run again, must take back the paused domain it made (never one it did not make), the source
 * must ask again and get the answer, and the move completes live: the guest goes on at cloud-b
 * with no boot line, on a disk byte-identical (`qemu-img compare`) to cloud-a's chain at the
 * cut-over, and the VM runs in one cloud only.
 */
import { describe, expect, it } from 'vitest';
import { domState } from '../../../scripts/local-federation.js';
import { federationHooks, inboundOf, lastJournalRecord, onEvent, stepStarts } from './federation-fixture.js';
import { copyChainAtCutOver, expectLiveAtB, finish, logDuration, startLiveMove, type LiveMove } from './live-fault-rig.js';
import type { Heartbeat } from '../hypervisor/writing-guest.js';

const slot = federationHooks();

describe('live moves with both agents killed during the restore', () => {
  it('source and target killed while the restored domain is paused and unjournaled: the target takes it back, the move completes live', async () => {
    const move: LiveMove = await startLiveMove(slot, 75, 'small');
    const { f, jobId } = move;
    let lastAtA: Heartbeat | undefined;
    await onEvent(f, jobId, stepStarts('transfer'), async () => { lastAtA = await copyChainAtCutOver(move); });
    // The restore has begun once a domain of that name is at cloud-b: the target dies there.
    let killedAt = '';
    let sourceAt = '';
    for (const deadline = Date.now() + 300_000; ;) {
      if ((await domState(f.s, 'cloud-b', f.vm)) !== 'absent') {
        await Promise.all([f.b.stop('SIGKILL'), f.a.stop('SIGKILL')]);
        killedAt = await lastJournalRecord(f.b, inboundOf(jobId));
        sourceAt = await lastJournalRecord(f.a, jobId);
        break;
      }
      if (Date.now() > deadline) throw new Error(`no domain '${f.vm}' appeared at cloud-b`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const stateAtKill = await domState(f.s, 'cloud-b', f.vm);
    await Promise.all([f.b.start(), f.a.start()]);
    const { job } = await finish(move, `both killed in the restore, the target's journal at '${killedAt}' (domain ${stateAtKill}), the source's at '${sourceAt}'`, 400_000);
    // The kill landed inside the window: the define step started, its result not journaled; the source waited for it.
    expect(killedAt).toMatch(/^step-(started|checkpoint) define$/);
    expect(sourceAt).toMatch(/^step-(started|checkpoint) instantiate$/);
    await expectLiveAtB(move, job, lastAtA!, { compare: true });
    logDuration(move, 'restore-kill test (both agents)');
  }, 900_000);
});
