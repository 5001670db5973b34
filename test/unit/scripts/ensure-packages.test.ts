/**
 * `ensure_packages` (scripts/services.d/common.sh) on a machine that has never had some of the
 * packages: `dpkg-query` exits 1 for those, and the function must still install them (under the
 * strict mode every script runs in) instead of ending the script in silence. `dpkg-query` and
 * `apt-get` are shims on PATH, so this runs anywhere and installs nothing.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../../scripts');

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'ensure-packages-'));
  await fs.mkdir(join(dir, 'bin'));
  // dpkg-query -W -f=FMT PKG…: "installed-pkg" is installed; any other was never installed, for
  // which the real dpkg-query prints to stderr and exits 1.
  await fs.writeFile(join(dir, 'bin/dpkg-query'), `#!/bin/sh
shift 2; rc=0
for p in "$@"; do
  if [ "$p" = installed-pkg ]; then echo "$p:install ok installed"; else echo "dpkg-query: no packages found matching $p" >&2; rc=1; fi
done
exit $rc
`, { mode: 0o755 });
  await fs.writeFile(join(dir, 'bin/apt-get'), `#!/bin/sh\necho "$*" >> "${dir}/apt-get.calls"\n`, { mode: 0o755 });
});
afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }); });

/** Runs `ensure_packages ARGS…` the way scripts/services does, with the shims first on PATH. */
async function ensurePackages(...pkgs: string[]): Promise<{ stdout: string; stderr: string; calls: string[] }> {
  const script = `. "${SCRIPTS}/lib/strict.sh"; . "${SCRIPTS}/services.d/common.sh"; ensure_packages "$@"; echo finished`;
  const { stdout, stderr } = await run('bash', ['-c', script, 'test', ...pkgs], {
    env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env['PATH']}`, STATE: dir },
  });
  const calls = (await fs.readFile(join(dir, 'apt-get.calls'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { stdout, stderr, calls };
}

describe('ensure_packages', () => {
  it('installs the packages that were never installed, and only those', async () => {
    const r = await ensurePackages('installed-pkg', 'never-installed', 'other-missing');
    expect(r.stdout).toContain('installing Debian packages: never-installed other-missing');
    expect(r.stdout).toContain('finished');
    const install = r.calls.find((c) => c.includes(' install '));
    expect(install).toMatch(/ never-installed other-missing$/);
    expect(install).not.toContain('installed-pkg ');
  });

  it('does nothing when every package is installed', async () => {
    const r = await ensurePackages('installed-pkg');
    expect(r.calls).toEqual([]);
    expect(r.stdout).toBe('finished\n');
  });
});
