/**
 * scripts/services.d/80-vcsim.sh `vcsim_build` without Go: a stand-in `go` on PATH records each
 * build. A rebuild replaces (restarts) the vcsim every checkout's tests share, so it must happen
 * when the source's bytes change, not when a fresh checkout or worktree gives main.go a new mtime.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../../scripts');

let root: string;
let state: string;
let repo: string;
let builds: string;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'vcsim-build-'));
  state = join(root, 'state');
  repo = join(root, 'repo');
  builds = join(root, 'builds');
  await fs.mkdir(join(repo, 'scripts/vcsim'), { recursive: true });
  await fs.mkdir(join(root, 'bin'));
  await fs.writeFile(join(repo, 'scripts/vcsim/main.go'), 'package main\n');
  // `go build -o OUT .`: writes OUT and counts the build.
  await fs.writeFile(join(root, 'bin/go'), `#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\necho built >> '${builds}'\necho binary > "$out"\nchmod +x "$out"\n`, { mode: 0o755 });
});
afterEach(async () => { await fs.rm(root, { recursive: true, force: true }); });

/** Runs vcsim_build; returns how many builds have run so far. */
async function build(): Promise<number> {
  const full = `. "${SCRIPTS}/lib/strict.sh"; . "${SCRIPTS}/services.d/common.sh"; . "${SCRIPTS}/services.d/80-vcsim.sh"; vcsim_build`;
  await run('bash', ['-c', full], { env: { ...process.env, STATE: state, INTERCLOUD_REPO: repo, PATH: `${join(root, 'bin')}:${process.env['PATH']}` } });
  return (await fs.readFile(builds, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
}

/** Sets FILE's mtime `s` seconds from now. */
async function touch(file: string, s: number): Promise<void> {
  const t = new Date(Date.now() + s * 1000);
  await fs.utimes(file, t, t);
}

describe('vcsim_build', () => {
  it('builds once, then not again for a source with a newer mtime but the same bytes (a fresh checkout)', async () => {
    expect(await build()).toBe(1);
    expect(await build()).toBe(1);
    await touch(join(repo, 'scripts/vcsim/main.go'), 60);
    expect(await build()).toBe(1);
  });

  it('builds again when the source\'s bytes change', async () => {
    expect(await build()).toBe(1);
    await fs.writeFile(join(repo, 'scripts/vcsim/main.go'), 'package main\n// changed\n');
    await touch(join(repo, 'scripts/vcsim/main.go'), -60);
    expect(await build()).toBe(2);
  });

  it('keeps a build from before the stamp existed when it is newer than the source', async () => {
    await fs.mkdir(join(state, 'vcsim/bin'), { recursive: true });
    await fs.writeFile(join(state, 'vcsim/bin/vcsim'), 'old binary', { mode: 0o755 });
    await touch(join(repo, 'scripts/vcsim/main.go'), -60);
    expect(await build()).toBe(0);
    // ...and from then on goes by the bytes.
    await touch(join(repo, 'scripts/vcsim/main.go'), 60);
    expect(await build()).toBe(0);
  });
});
