/**
 * Errors shared by every layer of the agent.
 *
 * Every error the agent raises is an {@link IntercloudError}: it carries a stable
 * `code` (code branches on it, never on the message), whether a retry can help,
 * the protocol's own details (XMPP condition, AMQP reply code, virsh exit status …)
 * and the underlying `cause`.
 *
 * Each area declares its codes in a table made with {@link defineErrorCodes}, so that
 * every code has a one-line description (the README's error table is built from them
 * and a unit test checks that no code is undocumented).
 */

/** What an area says about one of its error codes. */
export interface ErrorCodeInfo {
  /** One line, lowercase: what went wrong. */
  readonly doc: string;
  /** Whether repeating the same operation later can succeed. */
  readonly retryable: boolean;
}

/** A table of error codes of one area, e.g. `{ TRUST_EXPIRED: { doc, retryable } }`. */
export type ErrorCodeTable = Readonly<Record<string, ErrorCodeInfo>>;

const registry = new Map<string, ErrorCodeInfo & { area: string }>();

/**
 * Declares the error codes of one area (e.g. `trust`, `ovf`, `libvirt`) and records them
 * in the process-wide registry, so they can be listed and documented.
 * Codes must be unique across areas; declaring one twice throws at import time.
 */
export function defineErrorCodes<T extends ErrorCodeTable>(area: string, table: T): T {
  for (const [code, info] of Object.entries(table)) {
    const seen = registry.get(code);
    if (seen && seen.area !== area) {
      throw new Error(`error code '${code}' of area '${area}' is already declared by area '${seen.area}'`);
    }
    registry.set(code, { ...info, area });
  }
  return table;
}

/** All error codes declared so far, with their area, description and retryability. */
export function listErrorCodes(): ReadonlyArray<{ code: string; area: string; doc: string; retryable: boolean }> {
  return [...registry.entries()].map(([code, info]) => ({ code, ...info }));
}

/** Options of an {@link IntercloudError}. */
export interface IntercloudErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
  /** Overrides the code table's retryability for this instance. */
  retryable?: boolean;
  /** Protocol or backend fields kept as they were (condition, reply code, exit status, stderr …). */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * The one error type of the agent. `code` is stable; `message` is for humans,
 * lowercase, with quoted values, prefixed at adapter boundaries (`libvirt(cloud-b): …`).
 */
export class IntercloudError<C extends string = string> extends Error {
  override readonly name = 'IntercloudError';
  readonly code: C;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: C, message: string, options: IntercloudErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? registry.get(code)?.retryable ?? false;
    this.details = options.details ?? {};
  }

  /** A plain object for logs and JSON output (the cause chain flattened to messages). */
  toJSON(): Record<string, unknown> {
    const causes: string[] = [];
    let c: unknown = this.cause;
    while (c instanceof Error && causes.length < 8) {
      causes.push(c.message);
      c = c.cause;
    }
    return { code: this.code, message: this.message, retryable: this.retryable, details: this.details, causes };
  }
}

/** True when `err` is an {@link IntercloudError}, optionally with one of `codes`. */
export function isIntercloudError<C extends string>(err: unknown, ...codes: C[]): err is IntercloudError<C> {
  return err instanceof IntercloudError && (codes.length === 0 || codes.includes(err.code as C));
}

/** The message of any thrown value, for wrapping causes that are not Errors. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
