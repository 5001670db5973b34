/** Argument helpers shared by the trust commands (`ca`, `cert`, `audit`). */
import { readFileSync } from 'node:fs';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { usageError } from '../output.js';

/** Commander collector for repeatable options (`--dns a --dns b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A usage error (`CLI_USAGE`): exits 2. */
export function usage(message: string, cause?: unknown): IntercloudError {
  return usageError(message, cause);
}

/** Reads a file named on the command line; an unreadable one is a usage error. */
export function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw usage(`cannot read ${what} '${path}'`, err);
  }
}
