/**
 * scripts/ensure-deps never runs `npm ci` through a node_modules that is a symbolic link (a
 * worktree sharing another checkout's dependencies): npm would empty the link's target — every
 * checkout sharing it — and put a real folder in the link's place.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

describe('scripts/ensure-deps', () => {
  it('leaves a shared (symlinked) node_modules alone even when the lock file is newer, and says so', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'ensure-deps-'));
    try {
      const repo = join(dir, 'repo');
      await fs.mkdir(join(repo, 'scripts', 'lib'), { recursive: true });
      await fs.copyFile(join(REPO, 'scripts/ensure-deps'), join(repo, 'scripts/ensure-deps'));
      await fs.copyFile(join(REPO, 'scripts/lib/strict.sh'), join(repo, 'scripts/lib/strict.sh'));
      const shared = join(dir, 'shared-node_modules');
      await fs.mkdir(join(shared, 'some-package'), { recursive: true });
      await fs.writeFile(join(shared, '.package-lock.json'), '{}');
      await fs.utimes(join(shared, '.package-lock.json'), new Date('2026-01-01'), new Date('2026-01-01'));
      await fs.symlink(shared, join(repo, 'node_modules'));
      await fs.writeFile(join(repo, 'package-lock.json'), '{}');
      // an npm that records being called
      const bin = join(dir, 'bin');
      await fs.mkdir(bin);
      await fs.writeFile(join(bin, 'npm'), `#!/bin/sh\ntouch "${join(dir, 'npm-called')}"\n`, { mode: 0o755 });
      const out = await run('bash', [join(repo, 'scripts/ensure-deps')], { env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } });
      expect(existsSync(join(dir, 'npm-called'))).toBe(false);
      expect(out.stderr).toContain('node_modules is a symbolic link');
      expect((await fs.lstat(join(repo, 'node_modules'))).isSymbolicLink()).toBe(true);
      expect(existsSync(join(shared, 'some-package'))).toBe(true);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
