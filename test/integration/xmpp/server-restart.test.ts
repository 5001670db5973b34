/**
 * The XMPP server restarting under running gateways: Prosody is killed by its pid file
 * and started again by the services script; the sessions reconnect with backoff,
 * re-announce presence, republish their catalog entries, and negotiate again.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionStatus } from '../../../protocols/xmpp/index.js';
import { ensureCatalogNode, servicesUp, startGateway, testCloud, retractTestEntries, type TestGateway } from './gateways.js';

const env = servicesUp();
const A = testCloud('ra');
const B = testCloud('rb');

function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = async (): Promise<void> => {
      if (await check()) return resolve();
      if (Date.now() > until) return reject(new Error(`condition not met within ${timeoutMs} ms`));
      setTimeout(() => void tick(), 100);
    };
    void tick();
  });
}

describe('Prosody restarting under running gateways', () => {
  let a: TestGateway;
  let b: TestGateway;
  const statuses: SessionStatus[] = [];
  beforeAll(async () => {
    await ensureCatalogNode(env);
    a = await startGateway(env, A);
    b = await startGateway(env, B);
    a.session.on('status', (s: SessionStatus) => statuses.push(s));
    await a.session.waitForPresence(`${B}@intercloud.test`);
  });
  afterAll(async () => {
    await a?.session.stop();
    await b?.session.stop();
    // Leave the server up for the next test file whatever happened here.
    servicesUp();
  });

  it('reconnects, re-announces and negotiates again', async () => {
    const pid = Number(readFileSync(env.prosody.pidFile, 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !a.session.online, 10_000);
    execFileSync(join(import.meta.dirname, '../../../scripts/services'), ['up', 'prosody'], { stdio: 'ignore' });
    await waitFor(() => a.session.online && b.session.online, 30_000);
    expect(statuses).toContain('reconnecting');
    expect(statuses.at(-1)).toBe('online');
    // Presence and catalog come back through re-announcement.
    await waitFor(async () => (await a.session.discoverPeers({}, { refresh: true })).some((p) => p.entry.cloudId === B), 15_000);
    const vm = {
      workload: { type: 'vm' as const, name: 'web1', vcpus: 1, memoryMiB: 512, firmware: 'bios' as const, disks: [{ id: 'vda', sizeGiB: 1, format: 'qcow2' }], nics: [] },
      constraints: { regions: [] },
      terms: { currency: 'EUR' },
    };
    const out = await a.session.sendOffer(`${B}@intercloud.test`, vm);
    expect(out.type).toBe('accept');
  });
});

afterAll(async () => {
  await retractTestEntries(env);
});
