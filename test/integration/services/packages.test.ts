/**
 * Every external program the project runs (tests, benchmarks, scripts, the agent and its adapters)
 * comes from a Debian package that `scripts/services up` installs — listed in a services file, or
 * pulled in by one as a dependency — or from Debian's base system (priority required/important).
 * Otherwise it works on a developer's machine that happens to have it and fails on a fresh one.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

/** Programs that the programs we call run in turn (found by trying them on a fresh machine). */
const RUN_BY_OTHERS: Record<string, string[]> = {
  // virt-xml-validate (libvirt-clients) validates through xmllint, which it does not depend on.
  'virt-xml-validate': ['xmllint'],
  // scp and `ssh2`-free tests reach sshd through the OpenSSH client.
  scp: ['ssh'],
};

/** Folders whose TypeScript runs programs. */
const SOURCES = ['agent', 'adapters', 'protocols', 'scripts', 'test', 'bench'];

/** A call that runs a program named by a string literal: execFile('virsh', …), spawn("tshark", …). */
const CALL = /\b(?:execFile|execFileSync|spawn|spawnSync|run|exec)\(\s*['"]([A-Za-z0-9_.+-]+)['"]/g;

async function typescriptFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') out.push(...(await typescriptFiles(p)));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The program names the sources run, each with one file that runs it. */
async function programsRun(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const dir of SOURCES) {
    for (const file of await typescriptFiles(join(REPO, dir))) {
      for (const m of (await fs.readFile(file, 'utf8')).matchAll(CALL)) {
        const name = m[1]!;
        if (!found.has(name)) found.set(name, file.slice(REPO.length + 1));
        for (const inner of RUN_BY_OTHERS[name] ?? []) if (!found.has(inner)) found.set(inner, `${name} (${file.slice(REPO.length + 1)})`);
      }
    }
  }
  return found;
}

/**
 * The programs the shell scripts under systemd/ need (tests run them), from their `# Needs A, B
 * and C.` line.
 */
async function programsNeededBySamples(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else for (const m of (await fs.readFile(p, 'utf8')).matchAll(/^# Needs (.+)\.$/gm)) {
        for (const name of m[1]!.split(/,\s*|\s+and\s+/)) found.set(name.trim(), p.slice(REPO.length + 1));
      }
    }
  };
  await walk(join(REPO, 'systemd'));
  return found;
}

/** The Debian packages the services files list (`NAME_packages="…"`). */
async function listedPackages(): Promise<string[]> {
  const dir = join(REPO, 'scripts/services.d');
  const out: string[] = [];
  for (const f of (await fs.readdir(dir)).filter((f) => f.endsWith('.sh'))) {
    for (const m of (await fs.readFile(join(dir, f), 'utf8')).matchAll(/^[a-z0-9_]+_packages="([^"]*)"/gm)) out.push(...m[1]!.split(/\s+/).filter(Boolean));
  }
  return out;
}

/** Those packages and everything they depend on (Depends/Pre-Depends, recursively). */
async function installedByServices(listed: string[]): Promise<Set<string>> {
  const { stdout } = await run('apt-cache', [
    'depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', ...listed,
  ], { maxBuffer: 64 << 20 });
  return new Set(stdout.split('\n').filter((l) => l !== '' && !l.startsWith(' ')).map((l) => l.replace(/^<|>$/g, '').replace(/:.*$/, '')));
}

/** The package that ships `/usr/bin/NAME` (or sbin, or /bin, /sbin), or undefined if none does. */
async function packageOf(name: string): Promise<string | undefined> {
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    for (const candidate of [path, await fs.realpath(path)]) {
      const r = await run('dpkg-query', ['-S', candidate]).catch(() => undefined);
      // "pkg[, pkg…]: /path" (skipping "diversion by … from/to: …" lines); pkg may carry ":arch".
      const owner = r?.stdout.split('\n').find((l) => !l.startsWith('diversion ') && l.endsWith(`: ${candidate}`));
      if (owner) return owner.slice(0, -(candidate.length + 2)).split(',')[0]!.trim().replace(/:.*$/, '');
    }
  }
  return undefined;
}

async function priorityOf(pkg: string): Promise<string> {
  return (await run('dpkg-query', ['-W', '-f=${Priority}', pkg])).stdout.trim();
}

describe('external programs', () => {
  it('each comes from a package the services install or from the base system', async () => {
    const programs = await programsRun();
    expect(programs.has('virsh')).toBe(true); // the scan sees the calls it is meant to see
    const samples = await programsNeededBySamples();
    expect(samples.has('jq')).toBe(true);
    for (const [name, where] of samples) if (!programs.has(name)) programs.set(name, where);
    const installed = await installedByServices(await listedPackages());
    const faults: string[] = [];
    for (const [name, where] of [...programs].sort()) {
      if (name.includes('/')) continue; // the project's own scripts
      const pkg = await packageOf(name);
      if (pkg === undefined) {
        faults.push(`'${name}' (run by ${where}) is not installed: add its Debian package to a services file`);
        continue;
      }
      if (installed.has(pkg)) continue;
      const priority = await priorityOf(pkg);
      if (priority === 'required' || priority === 'important') continue;
      faults.push(`'${name}' (run by ${where}) comes from '${pkg}' (priority ${priority}), which no services file installs`);
    }
    expect(faults).toEqual([]);
  }, 60_000);
});
