/**
 * Where integration tests find the real servers: `scripts/services up` writes
 * `$INTERCLOUD_STATE_DIR/services.json` (default /var/lib/intercloud-dev), one key per
 * service, each shaped by that service's file in scripts/services.d/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The state directory the services script uses. */
export const STATE_DIR = process.env['INTERCLOUD_STATE_DIR'] ?? '/var/lib/intercloud-dev';

let cached: Record<string, unknown> | undefined;

/** The whole services.json; throws with the fix when the services are not up. */
export function loadServices(): Record<string, unknown> {
  if (cached) return cached;
  const file = join(STATE_DIR, 'services.json');
  try {
    cached = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot read '${file}': start the servers with 'scripts/services up' first`, { cause: err });
  }
  return cached;
}

/** How to reach one service, as its services.d file described it. */
export function serviceEnv<T>(name: string): T {
  const env = loadServices()[name];
  if (env === undefined) {
    throw new Error(`service '${name}' is not in services.json: run 'scripts/services up ${name}'`);
  }
  return env as T;
}
