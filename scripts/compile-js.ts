/**
 * Compiles the agent's sources (agent/, adapters/, protocols/) to JavaScript once, for a test run:
 * `scripts/test` runs it and exports the folder as `INTERCLOUD_JS_DIR`, and the agents the tests
 * start (`AgentProcess` in scripts/local-federation.ts) and `scripts/intercloud` then run that
 * JavaScript instead of loading every file through tsx at each start. Not part of the agent.
 *
 * The transform is the one tsx applies on the fly (esbuild: ESM, the running Node as target, the
 * tsconfig, names kept, inline source maps), so the code that runs is the same; only the per-start
 * compile and cache lookups (about 1.3 s of CPU per agent or CLI start, of 2.3 s) are gone.
 *
 *   node --import tsx scripts/compile-js.ts OUT-DIR     writes OUT-DIR/agent/cli/bin.js and the rest
 *
 * OUT-DIR must be inside the checkout, so that the compiled files find node_modules.
 */
import { promises as fs } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');
const SOURCES = ['agent', 'adapters', 'protocols'];

/** Every `.ts` file (not `.d.ts`) under `dir`. */
async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Compiles the sources into `outDir` (inside the checkout); returns how many files. */
export async function compileJs(outDir: string): Promise<number> {
  const out = resolve(outDir);
  if (relative(REPO, out).startsWith('..')) throw new Error(`'${out}' is not inside the checkout '${REPO}': the compiled files would not find node_modules`);
  // esbuild is what tsx transforms with (a dev dependency, pinned to the version tsx uses).
  const { build } = await import('esbuild');
  const entryPoints = (await Promise.all(SOURCES.map((d) => tsFiles(join(REPO, d))))).flat();
  await build({
    entryPoints, outdir: out, outbase: REPO, bundle: false, format: 'esm', platform: 'node',
    target: `node${process.versions.node}`, keepNames: true, sourcemap: 'inline',
    tsconfig: join(REPO, 'tsconfig.json'), logLevel: 'warning',
  });
  return entryPoints.length;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const [outDir] = process.argv.slice(2);
  if (outDir === undefined) {
    process.stderr.write('usage: compile-js.ts OUT-DIR\n');
    process.exitCode = 2;
  } else {
    const t0 = Date.now();
    const n = await compileJs(outDir);
    process.stdout.write(`compile-js: ${n} files into '${outDir}' in ${Date.now() - t0} ms\n`);
  }
}
