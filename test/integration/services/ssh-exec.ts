/**
 * Runs one command over SSH to the services' sshd with its host key pinned (ssh2); shared by the
 * sshd and libvirt smoke tests.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client } from 'ssh2';
import type { SshEnv } from '../../helpers/services.js';

/** What a remote command returned. */
export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** OpenSSH's `SHA256:<base64, unpadded>` fingerprint of a host key blob. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Connects as env.user with `privateKey`, accepting only a host key with `fingerprint`, runs `command`. */
export function sshExec(
  env: SshEnv,
  command: string,
  opts: { privateKey?: Buffer; fingerprint?: string } = {},
): Promise<ExecResult> {
  const fingerprint = opts.fingerprint ?? env.hostKeyFingerprint;
  return new Promise((resolve, reject) => {
    const conn = new Client();
    conn
      .on('ready', () => {
        conn.exec(command, (err, stream) => {
          if (err) {
            conn.end();
            reject(err);
            return;
          }
          let stdout = '';
          let stderr = '';
          stream.on('data', (d: Buffer) => (stdout += d.toString()));
          stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          stream.on('close', (code: number | null) => {
            conn.end();
            resolve({ code, stdout, stderr });
          });
        });
      })
      .on('error', reject)
      .connect({
        host: env.host,
        port: env.port,
        username: env.user,
        privateKey: opts.privateKey ?? readFileSync(env.privateKey),
        hostVerifier: (key: Buffer) => sshFingerprint(key) === fingerprint,
        readyTimeout: 10_000,
      });
  });
}
