import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { service } from '../../helpers/services.js';

const run = promisify(execFile);
const script = join(import.meta.dirname, '../../../scripts/services');
const names = ['pki', 'prosody', 'rabbitmq', 'sshd', 'libvirt', 'guest', 'swift'];

function pids(): Record<string, string> {
  const files = {
    prosody: service('prosody').pidFile,
    prosody2: service('prosody2').pidFile,
    rabbitmq: service('rabbitmq').pidFile,
    // each cloud its own broker (issue 13); `rabbitmq` is cloud-a's
    'rabbitmq-cloud-b': service('brokers')['cloud-b']?.pidFile ?? '',
    sshd: service('sshd').pidFile,
    'libvirt-cloud-a': service('libvirt').instances['cloud-a']?.pidFile ?? '',
    'libvirt-cloud-b': service('libvirt').instances['cloud-b']?.pidFile ?? '',
    // each cloud's Swift (issue 14): four servers and a memcached each
    ...Object.fromEntries(Object.entries(service('swift')).flatMap(([cloud, e]) =>
      Object.entries(e.pidFiles).map(([server, file]) => [`swift-${server}-${cloud}`, file]))),
  };
  return Object.fromEntries(Object.entries(files).map(([k, f]) => [k, readFileSync(f, 'utf8').trim()]));
}

describe('scripts/services dispatcher', () => {
  it('status prints one "up" line per service and exits 0', async () => {
    const { stdout } = await run(script, ['status', ...names], { encoding: 'utf8' });
    const lines = stdout.trim().split('\n');
    // prosody reports each Root: the second one (issue 13) as prosody2
    const expected = names.flatMap((n) => (n === 'prosody' ? [n, 'prosody2'] : [n]));
    expect(lines.map((l) => l.split(/\s+/).slice(1, 3))).toEqual(expected.map((n) => [n, 'up']));
  });

  it('up on running services restarts nothing and starts nothing', async () => {
    const before = pids();
    const { stdout } = await run(script, ['up', ...names], { encoding: 'utf8' });
    expect(stdout).not.toMatch(/restarting|services: (pki|prosody|rabbitmq|rabbitmq-\S+|sshd|libvirt-\S+|guest|swift-\S+) +up in/);
    expect(Object.keys(before).filter((k) => k.startsWith('swift-'))).toHaveLength(10);
    expect(pids()).toEqual(before);
  });

  it('rejects an unknown service name with exit status 2', async () => {
    await expect(run(script, ['status', 'no-such-service'])).rejects.toMatchObject({ code: 2 });
  });
});
