/**
 * Put and get throughput of the `s3` object-store adapter against a cloud's real Swift
 * (services.json → `swift.<cloud>`), with the adapter's checks on (Content-MD5 per part, SHA-256
 * while streaming, HEAD verification; SHA-256 and size checked again on read):
 *
 *   npx tsx bench/storage/object-store-throughput.ts [cloud-a|cloud-b] [MiB] [runs] [partConcurrency]
 *
 * Prints one JSON line per run and the machine's load average.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createObjectStore } from '../../adapters/storage/index.js';

const [cloud = 'cloud-a', mib = '64', runs = '3', concurrency = '2'] = process.argv.slice(2);
const stateDir = process.env['INTERCLOUD_STATE_DIR'] ?? '/var/lib/intercloud-dev';
const swift = (JSON.parse(readFileSync(join(stateDir, 'services.json'), 'utf8')) as { swift: Record<string, { endpoint: string; region: string; accessKeyId: string; secretAccessKeyFile: string }> }).swift[cloud]!;
const store = createObjectStore('s3', {
  name: cloud, endpoint: swift.endpoint, region: swift.region, accessKeyId: swift.accessKeyId, secretAccessKeyFile: swift.secretAccessKeyFile,
  partConcurrency: Number(concurrency),
});
const size = Number(mib) * 1024 * 1024;
const data = randomBytes(size);
const sha256 = createHash('sha256').update(data).digest('hex');
const bucket = `bench-${randomBytes(3).toString('hex')}`;
await store.createBucket(bucket);
const MiBps = (ms: number): number => Math.round((size / 1024 / 1024 / (ms / 1000)) * 10) / 10;
try {
  for (let i = 0; i < Number(runs); i++) {
    const body = Readable.from((function* () { for (let at = 0; at < size; at += 1024 * 1024) yield data.subarray(at, at + 1024 * 1024); })(), { objectMode: false });
    const t0 = performance.now();
    const info = await store.putObject(bucket, 'object', body, { sizeBytes: size, sha256 });
    const putMs = performance.now() - t0;
    const t1 = performance.now();
    const read = await store.getObject(bucket, 'object');
    let n = 0;
    for await (const c of read.body) n += (c as Buffer).length;
    const getMs = performance.now() - t1;
    if (n !== size) throw new Error(`read ${n} of ${size} bytes`);
    console.log(JSON.stringify({ cloud, sizeMiB: Number(mib), partConcurrency: Number(concurrency), etag: info.etag, putMs: Math.round(putMs), putMiBps: MiBps(putMs), getMs: Math.round(getMs), getMiBps: MiBps(getMs), load: loadavg().map((l) => l.toFixed(2)) }));
  }
} finally {
  await store.deleteObject(bucket, 'object');
  await store.deleteBucket(bucket);
  await store.close();
}
