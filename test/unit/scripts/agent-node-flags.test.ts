/**
 * The agent daemon runs with the same V8 flags and malloc settings however it is started: the
 * systemd unit, the `scripts/intercloud agent` wrapper, and the test and bench harness
 * (`AgentProcess`), from `AGENT_NODE_FLAGS` and `AGENT_ENV`. Other commands run without them.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../../scripts/local-federation.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

/** Runs `scripts/intercloud ARGS` with a `node` on PATH that prints the arguments it was given. */
async function wrapperArgs(...args: string[]): Promise<string[]> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'node-flags-'));
  try {
    await fs.writeFile(join(dir, 'node'), '#!/bin/sh\nprintf "GLIBC_TUNABLES=%s\\n" "${GLIBC_TUNABLES:-}"\nprintf "%s\\n" "$@"\n', { mode: 0o755 });
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dir}:${process.env['PATH']}` };
    delete env['INTERCLOUD_JS_DIR'];
    delete env['GLIBC_TUNABLES'];
    const { stdout } = await run(join(REPO, 'scripts/intercloud'), args, { env });
    return stdout.trimEnd().split('\n');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('the agent daemon\'s Node flags', () => {
  it('are flags this Node takes', async () => {
    await expect(run(process.execPath, [...AGENT_NODE_FLAGS, '-e', '0'])).resolves.toBeDefined();
  });

  it('are malloc settings this glibc reads (its loader lists them as set)', async () => {
    const { stdout } = await run('/lib64/ld-linux-x86-64.so.2', ['--list-tunables'], { env: { ...process.env, ...AGENT_ENV } });
    expect(stdout).toMatch(/glibc\.malloc\.arena_max: 0x2\b/);
    expect(stdout).toMatch(/glibc\.malloc\.mmap_threshold: 0x20000\b/);
  });

  it('are given by the systemd unit before the CLI', async () => {
    const unit = await fs.readFile(join(REPO, 'systemd/intercloud-agent.service'), 'utf8');
    const environment = unit.split('\n').filter((l) => l.startsWith('Environment=')).map((l) => l.slice('Environment='.length));
    for (const [k, v] of Object.entries(AGENT_ENV)) expect(environment).toContain(`${k}=${v}`);
    const exec = unit.split('\n').find((l) => l.startsWith('ExecStart='))!.slice('ExecStart='.length).split(/\s+/);
    expect(exec.slice(1, 1 + AGENT_NODE_FLAGS.length)).toEqual([...AGENT_NODE_FLAGS]);
    expect(exec[1 + AGENT_NODE_FLAGS.length]).toMatch(/\/agent\/cli\/bin\.js$/);
    expect(exec.slice(2 + AGENT_NODE_FLAGS.length, 3 + AGENT_NODE_FLAGS.length)).toEqual(['agent']);
  });

  it('are given by scripts/intercloud to `agent` only', async () => {
    const daemon = await wrapperArgs('agent', '--config', 'x.yaml');
    expect(daemon[0]).toBe(`GLIBC_TUNABLES=${AGENT_ENV['GLIBC_TUNABLES']}`);
    expect(daemon.slice(1, 1 + AGENT_NODE_FLAGS.length)).toEqual([...AGENT_NODE_FLAGS]);
    expect(daemon.slice(-3)).toEqual(['agent', '--config', 'x.yaml']);
    const other = await wrapperArgs('transfer', 'new-id');
    expect(other[0]).toBe('GLIBC_TUNABLES=');
    for (const flag of AGENT_NODE_FLAGS) expect(other).not.toContain(flag);
    expect(other.slice(-2)).toEqual(['transfer', 'new-id']);
  });
});
