/**
 * Runs commands on the hypervisor host over SSH with `ssh2`: one connection, reused by every
 * command, at most `maxChannels` commands at once (OpenSSH's `MaxSessions` is 10 by default).
 * The server's host key must match the pinned fingerprint or known-hosts entry, or the
 * connection is refused before authentication (RFC 4251 §4.1 host keys; RFC 4254 §6.5 exec).
 */
import { constants as osConstants } from 'node:os';
import { PassThrough } from 'node:stream';
import { Client } from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { messageOf } from '../../../protocols/errors/index.js';
import { abortedError, hvError } from '../errors.js';
import type { HypervisorErrorCode } from '../errors.js';
import { collect, shellLine, TailBuffer } from './command-runner.js';
import type { CommandExit, CommandResult, CommandRunner, RunningCommand, RunOptions } from './command-runner.js';
import { hostKeyMatches, sha256Fingerprint } from './host-key.js';
import type { HostKeyPin } from './host-key.js';

/** How to reach the hypervisor host over SSH. */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** OpenSSH or PEM private key (key-only login). */
  privateKey: string | Buffer;
  passphrase?: string;
  /** The host key to accept; anything else is refused. */
  hostKey: HostKeyPin;
  /** Commands running at once on the connection (default 8). */
  maxChannels?: number;
  /** Give up connecting after this many ms (default 10 000). */
  connectTimeoutMs?: number;
}

/** A counting semaphore: at most `limit` holders; waiters are served in order. */
class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiters.indexOf(wake);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal?.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(wake);
      });
    } else {
      this.active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    };
  }
}

/** The {@link CommandRunner} over one reused `ssh2` connection. */
export class SshRunner implements CommandRunner {
  readonly where: string;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private readonly channels: Semaphore;
  /** Channels open on the current connection, failed together when it drops. */
  private readonly live = new Set<(err: IntercloudError<HypervisorErrorCode>) => void>();

  constructor(private readonly target: SshTarget) {
    this.where = `ssh://${target.username}@${target.host}:${target.port}`;
    this.channels = new Semaphore(target.maxChannels ?? 8);
  }

  /** Connects (once; concurrent callers share the attempt). */
  private connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const t = this.target;
    const attempt = new Promise<Client>((resolve, reject) => {
      const client = new Client();
      let presented: string | undefined;
      let keyRejected = false;
      let ready = false;
      const config: ConnectConfig = {
        host: t.host,
        port: t.port,
        username: t.username,
        privateKey: t.privateKey,
        readyTimeout: t.connectTimeoutMs ?? 10_000,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 3,
        // Prefer AES-GCM: fastest with OpenSSL, and what OpenSSH's scp picks too.
        algorithms: { cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes256-ctr'] },
        hostVerifier: (key: Buffer) => {
          presented = sha256Fingerprint(key);
          const ok = hostKeyMatches(t.hostKey, key, t.host, t.port);
          keyRejected = !ok;
          return ok;
        },
      };
      if (t.passphrase !== undefined) config.passphrase = t.passphrase;
      client.once('ready', () => {
        ready = true;
        this.client = client;
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        if (ready) {
          this.dropped(client, err);
          return;
        }
        client.end();
        reject(this.connectError(err, keyRejected, presented));
      });
      client.once('close', () => {
        if (!ready) {
          reject(hvError('LIBVIRT_UNREACHABLE', `${this.where}: connection closed during the ssh handshake`, { details: { host: t.host, port: t.port } }));
          return;
        }
        this.dropped(client, undefined);
      });
      client.connect(config);
    });
    this.connecting = attempt;
    attempt.then(
      () => { this.connecting = undefined; },
      () => { this.connecting = undefined; },
    );
    return attempt;
  }

  private connectError(err: Error & { level?: string; code?: string }, keyRejected: boolean, presented: string | undefined): IntercloudError<HypervisorErrorCode> {
    const t = this.target;
    if (keyRejected) {
      const expected = 'fingerprint' in t.hostKey ? t.hostKey.fingerprint : 'known_hosts entry';
      return hvError('LIBVIRT_HOST_KEY', `${this.where}: host key '${presented}' is not the pinned one ('${expected}'); refusing to connect`, {
        cause: err,
        details: { presented, expected },
      });
    }
    if (err.level === 'client-authentication') {
      return hvError('LIBVIRT_AUTH', `${this.where}: the server refused the key of user '${t.username}'`, { cause: err, details: { level: err.level } });
    }
    return hvError('LIBVIRT_UNREACHABLE', `${this.where}: cannot connect: ${messageOf(err)}`, {
      cause: err,
      details: { level: err.level, errno: err.code, host: t.host, port: t.port },
    });
  }

  /** The connection ended: fail every channel still open on it. */
  private dropped(client: Client, err: Error | undefined): void {
    if (this.client === client) this.client = undefined;
    const lost = hvError('LIBVIRT_CONNECTION_LOST', `${this.where}: ssh connection lost${err ? `: ${messageOf(err)}` : ''}`, { cause: err });
    for (const fail of [...this.live]) fail(lost);
    this.live.clear();
  }

  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    return collect(this.spawn(argv, options), this.where, argv);
  }

  spawn(argv: readonly string[], options: RunOptions = {}): RunningCommand {
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    const done = this.exec(argv, options, out);
    done.catch((err: unknown) => out.destroy(err as Error));
    return { stdout: out, done };
  }

  private async exec(argv: readonly string[], options: RunOptions, out: PassThrough): Promise<CommandExit> {
    const { signal } = options;
    const op = argv[0] ?? '';
    if (signal?.aborted) throw abortedError(this.where, op, signal);
    let release: () => void;
    try {
      release = await this.channels.acquire(signal);
    } catch {
      // Only an abort rejects the wait for a channel.
      throw abortedError(this.where, op, signal);
    }
    try {
      const client = await this.connect();
      if (signal?.aborted) throw abortedError(this.where, op, signal);
      // The channel's listeners go on inside the exec callback, not after a promise settles:
      // a command that ends at once arrives as one burst (exec reply, output, exit-status,
      // close) that ssh2 parses in one go, and an `exit` listener added a microtask later
      // misses its status.
      return await new Promise<CommandExit>((resolve, reject) => {
        client.exec(shellLine(argv), (err, channel) => {
          if (err) reject(hvError('LIBVIRT_CONNECTION_LOST', `${this.where}: cannot open a channel for '${op}': ${err.message}`, { cause: err }));
          else this.drive(channel, argv, options, out).then(resolve, reject);
        });
      });
    } finally {
      release();
    }
  }

  /** Feeds stdin, streams stdout, and settles on the exit status; call it synchronously on the channel's arrival. */
  private drive(channel: ClientChannel, argv: readonly string[], options: RunOptions, out: PassThrough): Promise<CommandExit> {
    const { signal, stdin } = options;
    const op = argv[0] ?? '';
    const stderr = new TailBuffer();
    channel.stderr.on('data', (c: Buffer) => stderr.push(c));
    channel.pipe(out);
    return new Promise<CommandExit>((resolve, reject) => {
      let exitStatus: number | undefined;
      let settled = false;
      const finish = (err: unknown, exit?: CommandExit): void => {
        if (settled) return;
        settled = true;
        this.live.delete(fail);
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          channel.unpipe(out);
          channel.close();
          reject(err);
        } else {
          resolve(exit!);
        }
      };
      const fail = (err: IntercloudError<HypervisorErrorCode>): void => finish(err);
      const onAbort = (): void => finish(abortedError(this.where, op, signal));
      this.live.add(fail);
      signal?.addEventListener('abort', onAbort, { once: true });

      channel.on('exit', (code: number | null, sig?: string) => {
        exitStatus = code ?? 128 + ((sig && (osConstants.signals as Record<string, number>)[`SIG${sig}`]) || 0);
      });
      channel.once('close', () => {
        if (exitStatus === undefined) {
          finish(hvError('LIBVIRT_CONNECTION_LOST', `${this.where}: '${op}' ended without an exit status`, { details: { argv: [...argv], stderr: stderr.text() } }));
          return;
        }
        // Wait for stdout to drain into `out` before reporting the exit.
        const status = exitStatus;
        if (out.writableFinished) finish(undefined, { exitStatus: status, stderr: stderr.text() });
        else out.once('finish', () => finish(undefined, { exitStatus: status, stderr: stderr.text() }));
      });

      if (stdin === undefined) channel.end();
      else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) channel.end(stdin);
      else if (stdin.errored) finish(stdin.errored);
      else {
        stdin.once('error', (err) => finish(err));
        stdin.pipe(channel);
      }
    });
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await new Promise<void>((resolve) => {
      client.once('close', () => resolve());
      client.end();
    });
  }
}
