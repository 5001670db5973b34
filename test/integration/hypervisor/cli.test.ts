/**
 * `intercloud hv list|describe|capacity` against vcsim, with the hypervisor section of an agent
 * config, run as the real CLI (scripts/intercloud).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { vcsim } from './env.js';

const CLI = join(import.meta.dirname, '../../../scripts/intercloud');

describe('intercloud hv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const v = vcsim();
  const config = join(dir, 'agent.yaml');
  writeFileSync(config, [
    'cloud: { id: cloud-c }',
    'identity: { root: root.pem, cert: c.pem, key: c.key }',
    'xmpp: { service: "xmpp://127.0.0.1:15222", domain: intercloud.test, pubsub: pubsub.intercloud.test }',
    'amqp: { url: "amqps://127.0.0.1:25671/intercloud" }',
    `hypervisor: { kind: vmware, config: { url: ${JSON.stringify(v.url)}, user: ${JSON.stringify(v.user)}, password: ${JSON.stringify(v.password)}, caFile: ${JSON.stringify(v.caFile)}, datacenter: ${v.datacenter}, datastore: ${v.datastore} } }`,
    `state: { dir: ${JSON.stringify(dir)} }`,
    `api: { socket: ${JSON.stringify(join(dir, 'agent.sock'))} }`,
    '',
  ].join('\n'));

  it('lists the vms, describes one and shows the capacity', () => {
    const vms = JSON.parse(execFileSync(CLI, ['hv', 'list', '--config', config, '--json']).toString()) as Array<{ name: string; state: string }>;
    expect(vms.map((x) => x.name)).toContain('DC0_H0_VM0');
    const d = JSON.parse(execFileSync(CLI, ['hv', 'describe', 'DC0_H0_VM0', '--config', config]).toString()) as { vm: { name: string; disks: unknown[] } };
    expect(d.vm.name).toBe('DC0_H0_VM0');
    expect(d.vm.disks.length).toBeGreaterThan(0);
    const c = JSON.parse(execFileSync(CLI, ['hv', 'capacity', '--config', config, '--json']).toString()) as { vcpusTotal: number };
    expect(c.vcpusTotal).toBeGreaterThan(0);
  });

  it('a vm that does not exist: exit 1 and the code on stderr', () => {
    let status = 0;
    let stderr = '';
    try {
      execFileSync(CLI, ['hv', 'describe', 'no-such-vm', '--config', config], { stdio: 'pipe' });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(status).toBe(1);
    expect(stderr).toContain('[HV_VM_NOT_FOUND]');
  });
});
