/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as `transfer.bench.ts --profile DIR` writes them):
 * per profile, the functions with the most self time, and the idle share.
 *
 *   npx tsx bench/transfer/profile-summary.ts DIR [--top 15]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '15' } } });
const dir = positionals[0];
if (!dir) {
  console.error('usage: profile-summary.ts DIR [--top N]');
  process.exit(2); // usage error, as the other bench tools
}

for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    selfUs.set(key, (selfUs.get(key) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  const totalUs = p.endTime - p.startTime;
  const busyUs = [...selfUs].filter(([k]) => k !== '(idle)').reduce((a, [, v]) => a + v, 0);
  console.log(`\n${file}: ${(totalUs / 1e6).toFixed(2)} s wall, ${(busyUs / 1e6).toFixed(2)} s on the main thread (${((100 * busyUs) / totalUs).toFixed(0)}%)`);
  for (const [k, v] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    console.log(`  ${(v / 1e6).toFixed(2).padStart(7)} s ${((100 * v) / totalUs).toFixed(1).padStart(5)}%  ${k}`);
  }
}
