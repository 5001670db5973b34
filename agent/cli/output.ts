/**
 * How the CLI prints results and errors, and which exit code each outcome gets.
 * Read commands take `--json` and print one JSON document on stdout.
 */
import { defineErrorCodes, IntercloudError } from '../../protocols/errors/index.js';

/** Error codes of the command line itself (documented in the README's error table). */
export const CLI_ERRORS = defineErrorCodes('cli', {
  CLI_USAGE: { doc: 'the command line is wrong: an unknown command or option, a missing or invalid argument, or a file it names that cannot be read', retryable: false },
});

/** Exit codes of the `intercloud` command (documented in the README). */
export const EXIT = {
  ok: 0,
  /** The operation ran and failed (e.g. a migration that was rolled back). */
  failed: 1,
  /** Wrong usage or invalid config: fix the command or the config file. */
  usage: 2,
  /** A verification said no (certificate, signature, audit log, manifest). */
  rejected: 3,
  /** A peer or server could not be reached; retrying later may help. */
  unavailable: 4,
} as const;

/**
 * A usage error (`CLI_USAGE`, exit 2): the message names the flag or argument and what it
 * must be, so the operator can fix the command.
 */
export function usageError(message: string, cause?: unknown): IntercloudError<'CLI_USAGE'> {
  return new IntercloudError('CLI_USAGE', message, cause === undefined ? {} : { cause });
}

/** Codes that mean "fix the command or the config file" besides the `CONFIG_*` and `*_CONFIG` ones. */
const USAGE_CODES: ReadonlySet<string> = new Set(['CLI_USAGE', 'HV_CONFIG_INVALID', 'HV_UNKNOWN_BACKEND']);

/** The exit code for an error thrown by a command. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof IntercloudError) {
    if (err.details['exit'] !== undefined) return Number(err.details['exit']);
    if (err.code.endsWith('_CONFIG') || err.code.startsWith('CONFIG_') || USAGE_CODES.has(err.code)) return EXIT.usage;
    return err.retryable ? EXIT.unavailable : EXIT.failed;
  }
  return EXIT.failed;
}

/** Prints an error for a human on stderr: `error [CODE]: message` and the cause chain. */
export function printError(err: unknown): void {
  if (err instanceof IntercloudError) {
    process.stderr.write(`error [${err.code}]: ${err.message}\n`);
    let cause: unknown = err.cause;
    while (cause instanceof Error) {
      process.stderr.write(`  caused by: ${cause.message}\n`);
      cause = cause.cause;
    }
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
}

/** Prints `value` as indented JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
