/**
 * The servers `scripts/services up` starts outlive it, so they must not keep its caller's open
 * descriptors: started from `scripts/demo`, they used to hold the demo's federation lock for as
 * long as they ran, and the test suite run next waited for it forever. Restarts the time services
 * (chronyd, ptp4l: the ones no other test file needs while this one runs) with a descriptor of
 * a private lock file open, then reads every process's /proc/PID/fd.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { federationLockHolders, lockFederation } from '../../../scripts/federation-lock.js';

const run = promisify(execFile);
const SERVICES = resolve(import.meta.dirname, '../../../scripts/services');

let unlock: (() => Promise<void>) | undefined;
beforeAll(async () => { unlock = await lockFederation(); }, 660_000);
afterAll(async () => { await unlock?.(); });

describe('scripts/services up', () => {
  it('starts servers that hold none of its caller\'s descriptors', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'inherited-fds-'));
    const file = join(dir, 'caller.lock');
    try {
      await run(SERVICES, ['down', 'timesync']);
      await run('bash', ['-c', `exec 9>"${file}"; flock 9; "${SERVICES}" up timesync`]);
      const pidFiles = ['chrony-root.pid', 'chrony-host.pid', 'ptp4l.pid'];
      const state = process.env['INTERCLOUD_STATE_DIR'] ?? '/var/lib/intercloud-dev';
      const started = await Promise.all(pidFiles.map(async (f) => Number((await fs.readFile(join(state, 'time', f), 'utf8')).trim())));
      expect(started.every((pid) => pid > 1)).toBe(true);
      expect(await federationLockHolders(file)).toEqual([]);
    } finally {
      await run(SERVICES, ['up', 'timesync']);
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
