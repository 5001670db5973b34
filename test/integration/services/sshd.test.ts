import { utils } from 'ssh2';
import { beforeAll, describe, expect, it } from 'vitest';
import { service, type SshEnv } from '../../helpers/services.js';
import { sshExec } from './ssh-exec.js';

describe('sshd (key-only, host key pinned)', () => {
  let env: SshEnv;
  beforeAll(() => {
    env = service('sshd');
  });

  it('runs a command for the agent key when the host key matches the recorded fingerprint', async () => {
    const r = await sshExec(env, 'echo intercloud-$((6*7))');
    expect(r).toMatchObject({ code: 0, stdout: 'intercloud-42\n' });
  });

  it('records a known_hosts line for the same key the fingerprint names', () => {
    expect(env.knownHostsLine).toBe(`[${env.host}]:${env.port} ${env.hostPublicKey}`);
    expect(env.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('refuses a key it does not know', async () => {
    const { private: privateKey } = utils.generateKeyPairSync('ed25519');
    await expect(sshExec(env, 'true', { privateKey: Buffer.from(privateKey) })).rejects.toMatchObject({
      level: 'client-authentication',
    });
  });

  it('aborts when the host key is not the pinned one', async () => {
    const wrong = 'SHA256:' + 'A'.repeat(43);
    await expect(sshExec(env, 'true', { fingerprint: wrong })).rejects.toMatchObject({ level: 'handshake' });
  });
});
