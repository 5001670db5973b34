/**
 * The SSH runner must see a command's exit status even when the server sends the exec reply,
 * the output, `exit-status` and the channel close in one burst (RFC 4254 §6.5, §6.10): a
 * program that fails at once (bash's 127 for a missing program) does exactly that, and a
 * runner that listens for `exit` only after its channel promise settles misses it and calls
 * a live connection lost. An in-process ssh2 server writes all of it in the same tick, so the
 * client parses it from one read.
 */
import type { AddressInfo } from 'node:net';
import { Server, utils } from 'ssh2';
import type { Connection } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshRunner } from '../../../adapters/hypervisor/libvirt/ssh-runner.js';
import { sha256Fingerprint } from '../../../adapters/hypervisor/libvirt/host-key.js';

const hostKey = utils.generateKeyPairSync('ed25519');
const clientKey = utils.generateKeyPairSync('ed25519');

/** What the server answers to each command: output, error output and exit status, all at once. */
function answer(command: string): { stdout: string; stderr: string; status: number } {
  if (command.includes('/nonexistent/')) return { stdout: '', stderr: 'bash: line 1: /nonexistent/qemu-img: No such file or directory\n', status: 127 };
  return { stdout: 'ok\n', stderr: '', status: 0 };
}

let server: Server;
let port = 0;

beforeAll(async () => {
  server = new Server({ hostKeys: [hostKey.private] }, (conn: Connection) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('ready', () => {
      conn.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (acceptExec, _reject, info) => {
          const channel = acceptExec();
          const a = answer(info.command);
          if (a.stdout) channel.write(a.stdout);
          if (a.stderr) channel.stderr.write(a.stderr);
          // ssh2's server-side Channel.exit(): sends the exit-status request (not a skipped test)
          channel.exit(a.status);
          channel.end();
        });
      });
    });
    conn.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function runner(): SshRunner {
  const blob = utils.parseKey(hostKey.public);
  if (blob instanceof Error) throw blob;
  return new SshRunner({
    host: '127.0.0.1',
    port,
    username: 'probe',
    privateKey: clientKey.private,
    hostKey: { fingerprint: sha256Fingerprint(blob.getPublicSSH()) },
  });
}

describe('ssh runner: exit status sent in the same burst as the channel close', () => {
  it('reports 127 and the error output of a program that fails at once', async () => {
    const r = runner();
    try {
      const results = await Promise.all([1, 2, 3].map(() => r.run(['/nonexistent/qemu-img', 'info', '/x'])));
      for (const res of results) {
        expect(res.exitStatus).toBe(127);
        expect(res.stderr).toContain('No such file or directory');
      }
    } finally {
      await r.close();
    }
  });

  it('reports 0 and the output of a command that succeeds at once', async () => {
    const r = runner();
    try {
      const res = await r.run(['echo', 'ok']);
      expect(res.exitStatus).toBe(0);
      expect(res.stdout.toString()).toBe('ok\n');
    } finally {
      await r.close();
    }
  });
});
