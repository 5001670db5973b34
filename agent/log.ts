/**
 * The daemon's one root logger: JSON lines on stdout for journald, child loggers per
 * component and per job, secrets redacted. Libraries never log; they emit events or throw.
 */
import { pino, type Logger } from 'pino';
import { CONFIG_SECRET_PATHS } from './config/index.js';

/** Keys redacted wherever they appear in a log record. */
export const REDACTED_PATHS = [
  ...CONFIG_SECRET_PATHS.map((p) => `config.${p}`),
  '*.password', '*.secret', '*.key', '*.privateKey', '*.tsigSecret', 'password', 'secret', 'privateKey',
];

/** Creates the root logger writing to `destination` (stdout by default). */
export function createRootLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: 'intercloud-agent' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

export type { Logger };
