/**
 * One side of a benchmarked transfer, run as its own process so that its peak RSS is its own:
 * `node side.js send|receive|index '<json options>'` (compiled by the bench, so tsx's own compiler
 * does not count in the peak RSS). The receiver prints `{"ready":true}` first; every side ends
 * with one JSON line: the result, its elapsed ms, `process.resourceUsage().maxRSS` and its CPU time
 * (user + system, ms: on a shared machine a steadier measure of a side's own cost than elapsed time).
 */
import { readFileSync } from 'node:fs';
import { ContentIndex, fileSource, receiveTransfer, sendTransfer, type BrokerOptions, type Extent } from '../../protocols/amqp/index.js';

interface Args {
  broker: BrokerOptions;
  transferId: string;
  path: string;
  journalDir: string;
  chunkSize: number;
  windowBytes: number;
  persistent: boolean;
  base?: string;
  /** JSON file with the source's allocation map (what a hypervisor adapter would hand over). */
  extentsFile?: string;
  expiresAt: number;
}

const [side, json] = process.argv.slice(2);
const a = JSON.parse(json ?? '{}') as Args;
const started = performance.now();
let result: unknown;
if (side === 'index') {
  const idx = new ContentIndex(a.chunkSize);
  await idx.addFile(a.base!);
  result = { chunks: idx.size };
} else if (side === 'send') {
  result = await sendTransfer({
    broker: a.broker, transferId: a.transferId, from: 'cloud-a', to: 'cloud-b', chunkSize: a.chunkSize,
    source: a.extentsFile ? await fileSource(a.path, JSON.parse(readFileSync(a.extentsFile, 'utf8')) as Extent[]) : a.path,
    windowBytes: a.windowBytes, persistent: a.persistent, expiresAt: a.expiresAt, journalDir: a.journalDir,
  });
} else {
  process.stdout.write('{"ready":true}\n');
  let contentIndex: ContentIndex | undefined;
  if (a.base) {
    contentIndex = new ContentIndex(a.chunkSize);
    await contentIndex.addFile(a.base);
  }
  result = await receiveTransfer({
    broker: a.broker, transferId: a.transferId, from: 'cloud-a', to: 'cloud-b', targetPath: a.path, journalDir: a.journalDir,
    durable: a.persistent, prefetch: Math.max(8, Math.ceil(a.windowBytes / a.chunkSize)), ...(contentIndex ? { contentIndex } : {}),
  });
}
const usage = process.resourceUsage();
process.stdout.write(JSON.stringify({ side, result, elapsedMs: performance.now() - started, maxRssKiB: usage.maxRSS, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000 }) + '\n');
