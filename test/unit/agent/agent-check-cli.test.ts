/**
 * `intercloud agent --config X [--check]`, run as the real CLI (scripts/intercloud), with a config
 * whose hypervisor adapter config is bad: both the check and a normal start must exit 2 with the
 * key and the fix, before the agent creates its state folder or opens its audit log.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '../../../scripts/intercloud');
const FP = `SHA256:${'A'.repeat(43)}`;

function configWith(hypervisor: string): string {
  return [
    'cloud: { id: cloud-a }',
    'identity: { root: pki/root.pem, cert: pki/cloud-a.pem, key: pki/cloud-a.key }',
    'xmpp: { service: "xmpp://127.0.0.1:1", domain: intercloud.test, pubsub: pubsub.intercloud.test }',
    'amqp: { url: "amqps://127.0.0.1:1/intercloud" }',
    `hypervisor: ${hypervisor}`,
    'state: { dir: state }',
    'api: { socket: agent.sock }',
    '',
  ].join('\n');
}

// Each case starts the CLI (tsx) once or twice: allow for a loaded machine.
describe('intercloud agent with a bad hypervisor adapter config', { timeout: 60_000 }, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ic-agent-check-'));
    mkdirSync(join(dir, 'pki'));
    for (const f of ['root.pem', 'cloud-a.pem', 'cloud-a.key']) writeFileSync(join(dir, 'pki', f), 'not a pem\n');
    writeFileSync(join(dir, 'id_ed25519'), 'not a key\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function runAgent(name: string, hypervisor: string, ...flags: string[]): { status: number | null; stdout: string; stderr: string } {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, configWith(hypervisor));
    const r = spawnSync(CLI, ['agent', '--config', file, ...flags], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  const unpinned = '{ kind: libvirt, config: { uri: "qemu:///system", ssh: { host: 127.0.0.1, username: root, privateKeyFile: id_ed25519 } } }';

  it('--check exits 2 and names the key and the fix', () => {
    const r = runAgent('unpinned', unpinned, '--check');
    expect(r.stderr).toContain('error [CONFIG_INVALID]');
    expect(r.stderr).toContain('hypervisor.config.ssh: pin the host key: give exactly one of hostKeyFingerprint or knownHostsFile');
    expect(r.status).toBe(2);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });

  it('--check exits 2 on an unknown key and an unknown kind', () => {
    const typo = runAgent('typo', '{ kind: libvirt, config: { uri: "qemu:///system", colour: red } }', '--check');
    expect(typo.stderr).toContain("hypervisor.config: unknown key(s) 'colour' — remove or correct the spelling");
    expect(typo.status).toBe(2);
    const kind = runAgent('kind', '{ kind: xen, config: {} }', '--check');
    expect(kind.stderr).toContain("hypervisor.kind: no hypervisor adapter 'xen': use one of 'libvirt', 'vmware', 'fake'");
    expect(kind.status).toBe(2);
  });

  it('--check exits 2 when a file the adapter reads is missing, naming the path resolved against the config folder', () => {
    const r = runAgent('missing-key', `{ kind: libvirt, config: { uri: "qemu:///system", ssh: { host: 127.0.0.1, username: root, privateKeyFile: keys/missing, hostKeyFingerprint: "${FP}" } } }`, '--check');
    expect(r.stderr).toContain('[HV_CONFIG_INVALID]');
    expect(r.stderr).toContain(`'${join(dir, 'keys/missing')}'`);
    expect(r.status).toBe(2);
  });

  it('--check passes a good adapter config whose relative key file is beside the config', () => {
    const r = runAgent('good', `{ kind: libvirt, config: { uri: "qemu:///system", ssh: { host: 127.0.0.1, username: root, privateKeyFile: id_ed25519, hostKeyFingerprint: "${FP}" } } }`, '--check');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('is valid');
    expect(r.status).toBe(0);
  });

  it('a normal start exits 2 the same way, before the state folder or the audit log exist', () => {
    const r = runAgent('start', unpinned);
    expect(r.stderr).toContain('hypervisor.config.ssh: pin the host key');
    expect(r.status).toBe(2);
    expect(existsSync(join(dir, 'state', 'audit.log'))).toBe(false);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });

  it('a normal start exits 2 on a key file it cannot read, before the state folder exists', () => {
    const r = runAgent('start-missing-key', `{ kind: libvirt, config: { uri: "qemu:///system", ssh: { host: 127.0.0.1, username: root, privateKeyFile: keys/missing, hostKeyFingerprint: "${FP}" } } }`);
    expect(r.stderr).toContain('[HV_CONFIG_INVALID]');
    expect(r.status).toBe(2);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });
});
