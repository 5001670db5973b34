/**
 * Which codec for the transfer's 1 MiB chunks (issue 16): compression ratio and MB/s per core
 * (compress and decompress, CPU time of this process, one chunk at a time, synchronous calls
 * on one thread) of Node's own zlib — deflate-raw at levels 1 and 3, brotli at qualities 0–3 —
 * and, when given a `node_modules` that holds them, of npm codecs with prebuilt binaries
 * (`lz4-napi`, `@toondepauw/node-zstd`), on
 *   (r) the data chunks of the real-system image (bench/transfer/real-image.sh; all-zero
 *       chunks left out: they travel as header-only `zero` frames anyway), and
 *   (a) random data.
 * Also prints what the sender's probe costs (compressing 64 KiB of a chunk) and how often the
 * probe's verdict agrees with compressing the whole chunk.
 *
 *   npx tsx bench/transfer/codec.bench.ts [--image /var/tmp/intercloud-bench-transfer/r-debian12.raw]
 *       [--max-mib 256] [--modules /tmp/codec-probe/node_modules]
 *
 * Needs the image (`bench/transfer/real-image.sh IMAGE` builds it). `--modules` is a directory
 * where `npm install lz4-napi @toondepauw/node-zstd` was run (outside this repository).
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { brotliCompressSync, brotliDecompressSync, constants, deflateRawSync, inflateRawSync } from 'node:zlib';

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    image: { type: 'string', default: '/var/tmp/intercloud-bench-transfer/r-debian12.raw' },
    'max-mib': { type: 'string', default: '256' },
    'random-mib': { type: 'string', default: '64' },
    modules: { type: 'string' },
  },
});

interface Codec {
  readonly name: string;
  compress(b: Buffer): Buffer;
  decompress(b: Buffer, length: number): Buffer;
}

const brotli = (q: number): Codec => ({
  name: `brotli q${q}`,
  compress: (b) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: q, [constants.BROTLI_PARAM_SIZE_HINT]: b.length, [constants.BROTLI_PARAM_LGWIN]: 20 } }),
  decompress: (b, length) => brotliDecompressSync(b, { maxOutputLength: length }),
});
const deflate = (level: number): Codec => ({
  name: `deflate-raw ${level}`,
  compress: (b) => deflateRawSync(b, { level }),
  decompress: (b, length) => inflateRawSync(b, { maxOutputLength: length }),
});
const codecs: Codec[] = [deflate(1), deflate(3), brotli(0), brotli(1), brotli(2), brotli(3)];

if (values.modules) {
  const req = createRequire(join(values.modules, 'x.js'));
  try {
    const lz4 = req('lz4-napi') as { compressSync(b: Buffer): Buffer; uncompressSync(b: Buffer): Buffer };
    codecs.push({ name: 'lz4-napi', compress: (b) => lz4.compressSync(b), decompress: (b) => lz4.uncompressSync(b) });
  } catch (err) {
    console.log(`lz4-napi not loadable: ${String(err)}`);
  }
  try {
    const z = req('@toondepauw/node-zstd') as {
      Encoder: new (level: number) => { encodeSync(b: Buffer): Buffer };
      Decoder: new () => { decodeSync(b: Buffer): Buffer };
    };
    const dec = new z.Decoder();
    for (const level of [1, 3]) {
      const enc = new z.Encoder(level);
      codecs.push({ name: `zstd ${level} (node-zstd)`, compress: (b) => enc.encodeSync(b), decompress: (b) => dec.decodeSync(b) });
    }
  } catch (err) {
    console.log(`@toondepauw/node-zstd not loadable: ${String(err)}`);
  }
}

/** Non-zero 1 MiB chunks of `path`, evenly spread, at most `maxBytes` of them. */
function imageChunks(path: string, maxBytes: number): Buffer[] {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const all: number[] = [];
    const buf = Buffer.alloc(MiB);
    const zero = Buffer.alloc(MiB);
    for (let off = 0; off < size; off += MiB) {
      const n = readSync(fd, buf, 0, MiB, off);
      if (!buf.subarray(0, n).equals(zero.subarray(0, n))) all.push(off);
    }
    const take = Math.min(all.length, Math.floor(maxBytes / MiB));
    console.log(`${path}: ${all.length} non-zero chunks of ${Math.ceil(size / MiB)}; measuring ${take}`);
    const out: Buffer[] = [];
    for (let i = 0; i < take; i++) {
      const off = all[Math.floor((i * all.length) / take)]!;
      const b = Buffer.alloc(MiB);
      readSync(fd, b, 0, MiB, off);
      out.push(b);
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** A chunk "pays" when it compresses to at most this fraction (the sender's threshold). */
const PAYS = 0.9;
const KiB = 1024;
const spread = (c: Buffer) => Buffer.concat([0, 1, 2, 3].map((i) => c.subarray((i * c.length) / 4, (i * c.length) / 4 + 4 * KiB)));
const brotliProbe = (b: Buffer) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 1, [constants.BROTLI_PARAM_SIZE_HINT]: b.length } }).length;
const deflateProbe = (b: Buffer) => deflateRawSync(b, { level: 1 }).length;
/** Samples the sender's probe could compress to decide about a chunk, and with what. */
const PROBES: Array<{ name: string; sample: (c: Buffer) => Buffer; size: (b: Buffer) => number }> = [
  { name: 'deflate-1, first 64 KiB', sample: (c) => c.subarray(0, 64 * KiB), size: deflateProbe },
  { name: 'deflate-1, first 16 KiB', sample: (c) => c.subarray(0, 16 * KiB), size: deflateProbe },
  { name: 'deflate-1, 4 × 4 KiB spread', sample: spread, size: deflateProbe },
  { name: 'brotli q1, 4 × 4 KiB spread', sample: spread, size: brotliProbe },
];

function measure(label: string, chunks: Buffer[]): void {
  const bytes = chunks.reduce((s, c) => s + c.length, 0);
  console.log(`\n${label}: ${chunks.length} chunks, ${(bytes / MiB).toFixed(0)} MiB`);
  console.log(`  ${'codec'.padEnd(22)} ${'ratio'.padStart(6)} ${'paying'.padStart(7)} ${'wire if skipped'.padStart(16)} ${'comp MB/s'.padStart(10)} ${'decomp MB/s'.padStart(12)}`);
  for (const c of codecs) {
    let out = 0;
    let wire = 0;
    let paying = 0;
    const compressed: Buffer[] = [];
    let t = cpuSeconds();
    for (const ch of chunks) {
      const z = c.compress(ch);
      out += z.length;
      const pays = z.length <= ch.length * PAYS;
      if (pays) paying++;
      wire += pays ? z.length : ch.length;
      compressed.push(z);
    }
    const comp = cpuSeconds() - t;
    t = cpuSeconds();
    for (let i = 0; i < chunks.length; i++) {
      const d = c.decompress(compressed[i]!, chunks[i]!.length);
      if (d.length !== chunks[i]!.length) throw new Error(`${c.name}: round trip lost bytes`);
    }
    const dec = cpuSeconds() - t;
    console.log(
      `  ${c.name.padEnd(22)} ${(bytes / out).toFixed(2).padStart(6)} ${`${paying}/${chunks.length}`.padStart(7)} ${`${(wire / MiB).toFixed(0)} MiB`.padStart(16)}` +
        ` ${(bytes / 1e6 / comp).toFixed(0).padStart(10)} ${(bytes / 1e6 / dec).toFixed(0).padStart(12)}`,
    );
  }
  // The sender's probe: compressing a sample of the chunk decides whether the chunk is compressed.
  const whole = chunks.map((ch) => brotliProbe(ch) <= ch.length * PAYS);
  for (const p of PROBES) {
    const t = cpuSeconds();
    const verdicts = chunks.map((ch) => {
      const s = p.sample(ch);
      return p.size(s) <= s.length * PAYS;
    });
    const cpu = cpuSeconds() - t;
    const agree = verdicts.filter((v, i) => v === whole[i]).length;
    console.log(
      `  probe ${p.name.padEnd(28)} ${((cpu * 1e3) / chunks.length).toFixed(3)} ms cpu per chunk; ` +
        `agrees with the whole chunk's verdict on ${agree}/${chunks.length}; says "compress" for ${verdicts.filter(Boolean).length} (whole: ${whole.filter(Boolean).length})`,
    );
  }
}

console.log(`codec bench: node ${process.version}, chunks of 1 MiB, a chunk pays when it compresses to ≤ ${PAYS * 100}%`);
measure('(r) real image (debian 12 root, ext4), data chunks', imageChunks(values.image!, Number(values['max-mib']) * MiB));
const random: Buffer[] = [];
for (let i = 0; i < Number(values['random-mib']); i++) random.push(randomBytes(MiB));
measure('(a) random', random);
