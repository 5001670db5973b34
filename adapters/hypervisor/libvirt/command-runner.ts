/**
 * Running `virsh` and `qemu-img` on the hypervisor host: the {@link CommandRunner} contract that
 * the libvirt adapter uses, and a local implementation ({@link LocalRunner}, child processes on
 * this machine). The SSH implementation is in `ssh-runner.ts`; both run the same argv.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { abortedError, hvError } from '../errors.js';
import type { HypervisorErrorCode } from '../errors.js';

/** How a command ended. */
export interface CommandExit {
  /** The exit status (128+N when killed by signal N; -1 when unknown). */
  exitStatus: number;
  /** Its standard error, decoded as UTF-8 (the last 64 KiB at most). */
  stderr: string;
}

/** A finished command whose standard output was collected. */
export interface CommandResult extends CommandExit {
  /** Its standard output. */
  stdout: Buffer;
}

/** Options of {@link CommandRunner.run} and {@link CommandRunner.spawn}. */
export interface RunOptions {
  /** Bytes (or a stream) fed to the command's standard input, then EOF. */
  stdin?: Buffer | string | Readable;
  /** Aborting kills the command (closes its channel) and rejects with `HV_ABORTED`. */
  signal?: AbortSignal;
}

/** A running command whose standard output is read as a stream. */
export interface RunningCommand {
  /** Its standard output; it errors (with a coded error) when the command fails or the connection drops. */
  stdout: Readable;
  /** Settles when the command ended and its output was read; rejects on abort or a lost connection. */
  done: Promise<CommandExit>;
}

/**
 * Runs argv-style commands on the hypervisor host. Arguments are passed as an argv (quoted for
 * the remote shell by SSH runners), never interpolated into a shell line by callers.
 * A missing program rejects with `LIBVIRT_COMMAND_MISSING`; a non-zero exit is *not* an error at
 * this level (callers decide, they have the exit status and stderr).
 */
export interface CommandRunner {
  /** Where commands run, for messages: `ssh://user@host:port` or `local`. */
  readonly where: string;
  /** Runs argv to completion, collecting stdout (at most `maxOutputBytes`, 64 MiB by default). */
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** Starts argv and streams its stdout; backpressure reaches the remote process. */
  spawn(argv: readonly string[], options?: RunOptions): RunningCommand;
  /** Closes connections; later calls reconnect. Idempotent. */
  close(): Promise<void>;
}

/** Exit status a POSIX shell gives "command not found" (POSIX.1 Shell §2.8.2). */
export const EXIT_NOT_FOUND = 127;
/** Exit status a POSIX shell gives a command found but not executable (§2.8.2). */
export const EXIT_NOT_EXECUTABLE = 126;

/** Maximum stdout {@link CommandRunner.run} keeps before failing. */
export const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
const MAX_STDERR_BYTES = 64 * 1024;

/** Quotes one argument for a POSIX shell (the remote side of an SSH exec). */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Quotes an argv into one shell command line. */
export function shellLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** Keeps the tail of a stream's text, bounded. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit = MAX_STDERR_BYTES) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8').trim();
  }
}

/** Collects a RunningCommand's stdout into a result (bounded). */
export async function collect(cmd: RunningCommand, where: string, argv: readonly string[], limit = MAX_OUTPUT_BYTES): Promise<CommandResult> {
  const parts: Buffer[] = [];
  let size = 0;
  const reading = (async () => {
    for await (const chunk of cmd.stdout) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > limit) {
        cmd.stdout.destroy();
        throw hvError('LIBVIRT_OUTPUT_INVALID', `${where}: '${argv[0]}' printed more than ${limit} bytes`, { details: { argv } });
      }
      parts.push(b);
    }
  })();
  const [readResult, exitResult] = await Promise.allSettled([reading, cmd.done]);
  if (exitResult.status === 'rejected') throw exitResult.reason;
  if (readResult.status === 'rejected') throw readResult.reason;
  return { ...exitResult.value, stdout: Buffer.concat(parts) };
}

/** The error for a program that is not there: exit status 126/127 or spawn ENOENT/EACCES. */
export function commandMissing(where: string, argv: readonly string[], exit: Partial<CommandExit>, cause?: unknown): IntercloudError<HypervisorErrorCode> {
  return hvError('LIBVIRT_COMMAND_MISSING', `${where}: cannot run '${argv[0]}': not installed or not at that path (set the adapter's virsh/qemuImg paths)`, {
    cause,
    details: { argv: [...argv], exitStatus: exit.exitStatus ?? -1, stderr: exit.stderr ?? '' },
  });
}

/**
 * Runs commands as child processes of this process ("local mode": the agent runs on the
 * hypervisor host itself). No shell is involved.
 */
export class LocalRunner implements CommandRunner {
  readonly where = 'local';
  /** @param env environment of the children (default: inherited). */
  constructor(private readonly env?: NodeJS.ProcessEnv) {}

  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    return collect(this.spawn(argv, options), this.where, argv);
  }

  spawn(argv: readonly string[], options: RunOptions = {}): RunningCommand {
    const { signal } = options;
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    if (signal?.aborted) {
      const err = abortedError(this.where, argv[0] ?? '', signal);
      out.destroy(err);
      const done = Promise.reject(err);
      done.catch(() => undefined);
      return { stdout: out, done };
    }
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], ...(this.env ? { env: this.env } : {}) });
    const stderr = new TailBuffer();
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      // The reader learns at once, before what is still buffered could end the stream normally.
      child.stdout.unpipe(out);
      out.destroy(abortedError(this.where, argv[0] ?? '', signal));
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.pipe(out);

    const stdin = options.stdin;
    const feeding: Promise<void> = stdin === undefined
      ? (child.stdin.end(), Promise.resolve())
      : typeof stdin === 'string' || Buffer.isBuffer(stdin)
        ? new Promise<void>((resolve) => child.stdin.end(stdin, () => resolve()))
        : pipeline(stdin, child.stdin);
    // Examined when the child has exited (below); until then a failure must not count as unhandled.
    feeding.catch(() => undefined);
    // A child that exits before reading all of stdin closes the pipe (EPIPE): its exit status says why.
    child.stdin.on('error', () => undefined);

    const done = new Promise<CommandExit>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        signal?.removeEventListener('abort', onAbort);
        const e = err.code === 'ENOENT' || err.code === 'EACCES'
          ? commandMissing(this.where, argv, {}, err)
          : hvError('LIBVIRT_COMMAND_FAILED', `${this.where}: cannot start '${argv[0]}': ${err.message}`, { cause: err, details: { argv: [...argv] } });
        out.destroy(e);
        reject(e);
      });
      child.once('close', (code, sig) => {
        signal?.removeEventListener('abort', onAbort);
        if (aborted) {
          const e = abortedError(this.where, argv[0] ?? '', signal);
          out.destroy(e);
          reject(e);
          return;
        }
        feeding.then(
          () => resolve({ exitStatus: code ?? (sig ? 128 : -1), stderr: stderr.text() }),
          (err: unknown) => {
            // The source stream failed (e.g. ended early with an error): that is the cause.
            out.destroy(err as Error);
            reject(err);
          },
        );
      });
    });
    done.catch(() => undefined);
    return { stdout: out, done };
  }

  async close(): Promise<void> {
    // Nothing is held open in local mode.
  }
}

/**
 * Wraps argv so that its standard input or output is an OS pipe (`cat | ARGV`, `ARGV | cat` in
 * bash, with pipefail so ARGV's exit status is kept), for programs that *open* `/dev/stdin` or
 * `/dev/stdout` (virsh `define`, `vol-upload`, `vol-download`): Node gives local children socket
 * pairs, which cannot be opened that way.
 */
export function throughPipes(argv: readonly string[], which: 'in' | 'out'): string[] {
  return ['bash', '-c', which === 'in' ? 'set -o pipefail; cat | "$@"' : 'set -o pipefail; "$@" | cat', 'bash', ...argv];
}
