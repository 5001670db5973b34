/**
 * `intercloud agent --check` with `addressing.dns`: a config missing the zone or the TSIG key is
 * refused (exit 2) with the key and what to write; a complete one passes; the secret is never
 * printed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../../agent/cli/main.js';

const SECRET = 'R2ZuakJ3MDVZTVR1bHB0aEFPUk1FaTlUTXU=';
const DNS = `{ server: "127.0.0.1:15353", zone: vms.intercloud.test, tsigName: intercloud-update, tsigSecret: "${SECRET}", locators: [10.213.7.2] }`;

const config = (dns: string) => [
  'cloud: { id: cloud-b }',
  'identity: { root: pki/root.pem, cert: pki/cloud-b.pem, key: pki/cloud-b.key }',
  'xmpp: { service: "xmpp://127.0.0.1:15222", domain: intercloud.test, pubsub: pubsub.intercloud.test }',
  'amqp: { url: "amqps://127.0.0.1:25671/intercloud" }',
  'hypervisor: { kind: fake }',
  `addressing: { dns: ${dns} }`,
  'state: { dir: state }',
  'api: { socket: agent.sock }',
  '',
].join('\n');

describe('intercloud agent --check with dns re-addressing', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ic-dns-check-'));
    out = [];
    err = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    process.exitCode = undefined;
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function check(dns: string): Promise<number> {
    const file = join(dir, 'agent.yaml');
    await writeFile(file, config(dns));
    return runCli(['agent', '--config', file, '--check']);
  }

  it('passes a complete dns config', async () => {
    expect(await check(DNS)).toBe(0);
    expect(out.join('')).toMatch(/is valid \(cloud 'cloud-b'/);
  });

  it('refuses a dns config without a zone: exit 2, the key, and what to write', async () => {
    expect(await check(DNS.replace('zone: vms.intercloud.test, ', ''))).toBe(2);
    expect(err.join('')).toMatch(/CONFIG_INVALID.*\n.*addressing\.dns\.zone: missing: .*e\.g\. zone: vms\.intercloud\.test/);
    expect(err.join('') + out.join('')).not.toContain(SECRET);
  });

  it('refuses a dns config without its tsig key: exit 2, the keys, and where to find them', async () => {
    expect(await check(DNS.replace(`tsigName: intercloud-update, tsigSecret: "${SECRET}", `, ''))).toBe(2);
    expect(err.join('')).toMatch(/addressing\.dns\.tsigName: missing: .*allow-update/);
    expect(err.join('')).toMatch(/addressing\.dns\.tsigSecret: missing: .*tsig-keygen/);
  });
});
