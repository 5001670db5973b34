/**
 * Found by the end-to-end tests (test/integration/migration/peer-failures.test.ts), checked
 * here on the step itself: the source's release of a reservation at a peer that cannot be
 * reached is retried, and on the last attempt the reservation's expiry is waited out (the
 * peer ends the offer on its own then) instead of leaving the job to an operator.
 */
import { describe, expect, it } from 'vitest';
import {
  migrateOutSteps, type MigrateOutInput, type Reservation, type SourcePorts,
} from '../../../agent/migration/index.js';
import { COMPENSATION_MAX_ATTEMPTS, type StepContext } from '../../../agent/sequencer/index.js';
import { IntercloudError } from '../../../protocols/errors/index.js';

const PEER = { cloudId: 'cloud-b', jid: 'cloud-b@intercloud.test' };

function ctxOf<I>(input: I, results: Record<string, unknown>, attempt = 1): StepContext<I> {
  return {
    jobId: 'job-1', input, attempt, signal: new AbortController().signal, progress: () => undefined, checkpoint: async () => undefined, checkpoints: () => [],
    result: <T>(step: string): T => {
      if (!(step in results)) throw new IntercloudError('SEQ_JOURNAL_MISMATCH', `step '${step}' has no result yet`);
      return results[step] as T;
    },
  };
}

function negotiateWith(release: () => Promise<void>) {
  const audit: string[] = [];
  const ports = { control: { release }, audit: { record: async (e: string) => { audit.push(e); } } } as unknown as SourcePorts;
  const step = migrateOutSteps(ports).find((s) => s.name === 'negotiate')!;
  return { audit, compensate: (results: Record<string, unknown>, attempt?: number) => step.compensate!(ctxOf<MigrateOutInput>({ vm: 'vm1', offerId: 'o1' }, { 'find-peer': PEER, ...results }, attempt)) };
}

const reservation = (msFromNow: number): Reservation => ({ reservationId: 'r1', transfer: { uri: 'amqps://127.0.0.1:1/transfers' }, expiresAt: new Date(Date.now() + msFromNow).toISOString() });
const unreachable = (): Promise<void> => Promise.reject(new IntercloudError('XMPP_PEER_UNAVAILABLE', "cloud-b: release: the peer's gateway is not online", { retryable: true }));

describe('releasing a reservation at a peer that is gone', () => {
  it('releases and audits when the peer answers', async () => {
    const { audit, compensate } = negotiateWith(async () => undefined);
    await compensate({ negotiate: reservation(60_000) });
    expect(audit).toEqual(['reservation-released']);
  });

  it('counts an expired reservation at an unreachable peer as lapsed', async () => {
    const { audit, compensate } = negotiateWith(unreachable);
    await compensate({ negotiate: reservation(-1000) });
    expect(audit).toEqual(['reservation-lapsed']);
  });

  it('retries while the reservation still holds and attempts are left', async () => {
    const { audit, compensate } = negotiateWith(unreachable);
    await expect(compensate({ negotiate: reservation(60_000) }, 1)).rejects.toMatchObject({ code: 'XMPP_PEER_UNAVAILABLE' });
    expect(audit).toEqual([]);
  });

  it('waits the reservation out on the last attempt', async () => {
    const { audit, compensate } = negotiateWith(unreachable);
    const t0 = Date.now();
    await compensate({ negotiate: reservation(150) }, COMPENSATION_MAX_ATTEMPTS);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(audit).toEqual(['reservation-lapsed']);
  });

  it('passes a refusal from the peer on (not retryable)', async () => {
    const { compensate } = negotiateWith(() => Promise.reject(new IntercloudError('MIGRATE_NO_RESERVATION', "offer 'o1' is committed")));
    await expect(compensate({ negotiate: reservation(-1000) }, COMPENSATION_MAX_ATTEMPTS)).rejects.toMatchObject({ code: 'MIGRATE_NO_RESERVATION' });
  });

  it('passes the failure on when negotiate never completed (no known expiry)', async () => {
    const { compensate } = negotiateWith(unreachable);
    await expect(compensate({}, COMPENSATION_MAX_ATTEMPTS)).rejects.toMatchObject({ code: 'XMPP_PEER_UNAVAILABLE' });
  });
});
