/**
 * The federation's servers killed (SIGKILL, by the pid file `scripts/services` wrote) while
 * a migration runs, then brought back with `scripts/services up NAME`: the target's broker
 * (cloud-b's RabbitMQ, which the data goes through) mid-transfer, and the XMPP server (Prosody) at negotiate. The agents keep running; the job
 * must end (completed or compensated) with the invariant holding.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertInvariant, federationHooks, killService, midTransfer, migrate, onEvent, serviceUp, setUpFederation, stepStarts,
  waitForEnd, waitForTargetEnd, type ApiEvent, type FederationOptions,
} from './federation-fixture.js';

const slot = federationHooks();
let revive: string | undefined;
afterEach(async () => {
  // Whatever happened, the server the test killed is up again for the next test.
  if (revive) await serviceUp(revive);
  revive = undefined;
}, 180_000);

async function serverDown(n: number, service: 'rabbitmq' | 'prosody', when: (e: ApiEvent) => boolean, o: FederationOptions = {}) {
  const fed = (slot.f = await setUpFederation(n, o));
  // The broker the data goes through is the target's own (issue 13).
  const { pidFile } = service === 'rabbitmq' ? fed.s.brokers['cloud-b']! : (fed.s as unknown as Record<string, { pidFile: string }>)[service]!;
  const { jobId } = await migrate(fed);
  let downMs = 0;
  await onEvent(fed, jobId, when, async () => {
    revive = service;
    const t0 = Date.now();
    await killService(pidFile);
    await new Promise((r) => setTimeout(r, 2000));
    await serviceUp(service);
    revive = undefined;
    downMs = Date.now() - t0;
  });
  const job = await waitForEnd(fed.a, jobId, 240_000);
  const target = await waitForTargetEnd(fed, jobId);
  const where = await assertInvariant(fed);
  console.info(`${service} down ${downMs} ms: source ${job.state}${job.error ? ` (${job.error.code})` : ''}, target ${target === 'unknown' ? 'no job' : target.state}, vm in ${where}`);
  expect(['completed', 'compensated']).toContain(job.state);
  expect(where).toBe(job.state === 'completed' ? 'cloud-b' : 'cloud-a');
}

describe('servers killed during a migration and brought back', () => {
  it('the broker killed mid-transfer', async () => {
    await serverDown(21, 'rabbitmq', midTransfer(0.2), { diskMiB: 192, randomMiB: 160 });
  }, 300_000);

  it('the xmpp server killed at negotiate', async () => {
    await serverDown(22, 'prosody', stepStarts('negotiate'));
  }, 300_000);
});
