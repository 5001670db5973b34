/** `intercloud peers` against the real Prosody, with gateways of other clouds online. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerInfo } from '../../../protocols/xmpp/index.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ensureCatalogNode, issueIdentity, ours, profile, servicesUp, startGateway, testCloud, retractTestEntries, type TestGateway } from './gateways.js';

const env = servicesUp();
const run = promisify(execFile);
const cli = join(import.meta.dirname, '../../../scripts/intercloud');
const A = testCloud('ca');
const B = testCloud('cb');
const C = testCloud('cc');
// The CLI reads its identity from files, as an operator's would be.
const dir = mkdtempSync(join(tmpdir(), 'xmpp-cli-'));
const id = issueIdentity(env.pki, A);
writeFileSync(join(dir, 'a.pem'), id.cert);
writeFileSync(join(dir, 'a.key'), id.key, { mode: 0o600 });
const login = ['--cloud', A, '--cert', join(dir, 'a.pem'), '--key', join(dir, 'a.key'), '--root', env.pki.root, '--crl', env.pki.crl, '--wait', '300'];

describe('intercloud peers', () => {
  let b: TestGateway;
  let c: TestGateway;
  beforeAll(async () => {
    await ensureCatalogNode(env);
    b = await startGateway(env, B);
    c = await startGateway(env, C, { profile: profile({ regions: ['us-east'], formats: ['vmdk'], hypervisors: ['vmware'] }) });
  });
  afterAll(async () => {
    await b?.session.stop();
    await c?.session.stop();
  });

  it('lists matching online clouds with capacity, terms, round trip and clock offset as json', async () => {
    const { stdout } = await run(cli, ['peers', ...login, '--region', 'eu-central', '--min-vcpus', '4', '--format', 'ovf', '--json'], { timeout: 60_000 });
    const { peers } = JSON.parse(stdout) as { peers: PeerInfo[] };
    expect(ours(peers).map((p) => p.entry.cloudId)).toEqual([B]);
    expect(ours(peers)[0]?.entry.capacity.vcpus).toBe(16);
    expect(ours(peers)[0]?.entry.terms).toEqual({ currency: 'EUR', pricePerVcpuHour: 0.04, pricePerGbMonth: 0.02 });
    expect(ours(peers)[0]?.rttMs).toBeGreaterThan(0);
    expect(Math.abs(peers[0]?.clockOffsetMs ?? 1e9)).toBeLessThan(100);
  });

  it('prints a table for humans and leaves out offline clouds', async () => {
    await c.session.stop();
    const { stdout } = await run(cli, ['peers', ...login, '--capability', 'vm-hosting'], { timeout: 60_000 });
    expect(stdout).toMatch(/^CLOUD\s+PRESENCE/);
    expect(stdout).toMatch(new RegExp(`${B}\\s+online\\s+eu-central`));
    expect(stdout).not.toContain(C);
  });

  it('exits 2 on a bad filter', async () => {
    const failure = await run(cli, ['peers', ...login, '--min-vcpus', 'many'], { timeout: 60_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(failure.code).toBe(2);
    expect(failure.stderr).toContain('CLI_USAGE');
  });
});

afterAll(async () => {
  await retractTestEntries(env);
});
