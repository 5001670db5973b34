/**
 * Issue 12, finding 9 (part): the libvirt adapter's SSH runner against the real sshd honours
 * `@revoked` known_hosts lines (OpenSSH sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT": a revoked key
 * "must not ever be accepted"), even when another line lists the same key for the host.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SshRunner } from '../../../adapters/hypervisor/libvirt/ssh-runner.js';
import { service } from '../../helpers/services.js';

const env = service('sshd');

function runner(knownHosts: string): SshRunner {
  return new SshRunner({ host: env.host, port: env.port, username: env.user, privateKey: readFileSync(env.privateKey), hostKey: { knownHosts }, connectTimeoutMs: 10_000 });
}

describe('ssh runner and known_hosts markers (issue 12, finding 9)', () => {
  it('connects when known_hosts lists the server key', async () => {
    const r = runner(`${env.knownHostsLine}\n`);
    try {
      expect((await r.run(['echo', 'pinned'])).stdout.toString()).toBe('pinned\n');
    } finally {
      await r.close();
    }
  });

  it('refuses a server key marked @revoked, even when a plain line also lists it', async () => {
    for (const text of [
      `${env.knownHostsLine}\n@revoked ${env.knownHostsLine}\n`,
      `@revoked ${env.knownHostsLine}\n${env.knownHostsLine}\n`,
      // revoked under any host pattern: a revoked key is revoked everywhere
      `${env.knownHostsLine}\n@revoked * ${env.hostPublicKey}\n`,
    ]) {
      const r = runner(text);
      try {
        await expect(r.run(['true'])).rejects.toMatchObject({ code: 'LIBVIRT_HOST_KEY' });
      } finally {
        await r.close();
      }
    }
  });
});
