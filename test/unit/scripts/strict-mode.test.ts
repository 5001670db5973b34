/**
 * No silent exits in scripts/: every bash script runs under scripts/lib/strict.sh, whose ERR trap
 * says which step failed, where, and where its log is, before `set -e` ends the script.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

describe('scripts/lib/strict.sh', () => {
  it('reports the failing step, its place, status and log, and exits with its status', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'strict-'));
    const script = join(dir, 'step.sh');
    await fs.writeFile(script, [
      `. "${REPO}/scripts/lib/strict.sh"`,
      'quiet=$(false; echo ok)          # a failure inside a substitution that does not end the script',
      'start_server() { STEP_LOG=/var/log/server.log; ls /nonexistent-dir >/dev/null 2>&1; echo unreachable; }',
      'start_server',
      '',
    ].join('\n'));
    const err = await run('bash', [script]).then(() => undefined, (e: { code: number; stdout: string; stderr: string }) => e);
    await fs.rm(dir, { recursive: true, force: true });
    expect(err?.code).toBe(2);
    expect(err?.stdout).toBe('');
    expect(err?.stderr).toBe(`step.sh: step failed (exit 2) at ${script}:3: ls /nonexistent-dir > /dev/null 2>&1\nstep.sh: see /var/log/server.log\n`);
  });

  it('is what every bash script under scripts/ and .ci/ runs under', async () => {
    const candidates = [
      ...(await fs.readdir(join(REPO, 'scripts'))).map((f) => join(REPO, 'scripts', f)),
      join(REPO, '.ci/run'),
    ];
    const unguarded: string[] = [];
    let checked = 0;
    for (const f of candidates) {
      if (!(await fs.stat(f)).isFile()) continue;
      const text = await fs.readFile(f, 'utf8');
      if (!text.startsWith('#!/usr/bin/env bash')) continue;
      checked++;
      // scripts/intercloud only execs the CLI, which reports its own errors.
      if (f.endsWith('/scripts/intercloud')) continue;
      if (!/^\. "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)\/(\.\.\/scripts\/)?lib\/strict\.sh"$/m.test(text)) unguarded.push(f.slice(REPO.length + 1));
    }
    expect(checked).toBeGreaterThan(5);
    expect(unguarded).toEqual([]);
  });
});
