/**
 * Benchmark: read + convert the whole fixtures corpus (../shared/fixtures: OVF, libvirt,
 * virt-image) with our codecs, next to `xmllint --noout` (libxml2, C) on the same files in the
 * same run; prints both and the ratio. Aim: <= 3x xmllint.
 *
 *   npx tsx bench/descriptors/corpus.ts [rounds]
 *
 * "Ours" per round: decode bytes, guard, parse, read into the VM model, write libvirt XML for every
 * VM and OVF for every package (broken files are rejected, which is part of the work). xmllint per
 * round: one `xmllint --noout` process over all files (its process start included, ~1 ms).
 * Files are read from disk once, before timing, for both (the page cache serves xmllint).
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { convertDescriptor, readDescriptor } from '../../protocols/convert/index.js';
import { writeLibvirtDomain } from '../../protocols/libvirt-xml/index.js';
import { writeOvf } from '../../protocols/ovf/index.js';
import { decodeDescriptor, parseXml } from '../../protocols/xml/index.js';

const run = promisify(execFile);
const fixtures = resolve(fileURLToPath(import.meta.url), '../../../../shared/fixtures');
const files = ['ovf', 'libvirt', 'virtimage'].flatMap((d) => readdirSync(join(fixtures, d)).map((f) => join(fixtures, d, f)));
const bytes = files.map((f) => readFileSync(f));
const rounds = Number(process.argv[2] ?? 20);

function oursOnce(): { read: number; rejected: number } {
  let read = 0;
  let rejected = 0;
  for (const [i, b] of bytes.entries()) {
    const name = files[i] as string;
    try {
      const text = decodeDescriptor(b, name);
      const r = readDescriptor(text, { source: name, name: 'image' });
      for (const vm of r.value.vms) writeLibvirtDomain(vm);
      writeOvf(r.value.vms);
      read++;
    } catch (err) {
      if (!(err instanceof Error) || !('code' in err)) throw err;
      rejected++;
    }
  }
  return { read, rejected };
}

/** Parse only (guard + fast-xml-parser + namespace tree), the part comparable to xmllint --noout. */
function parseOnce(): void {
  for (const [i, b] of bytes.entries()) {
    try {
      parseXml(decodeDescriptor(b, files[i] as string), files[i] as string);
    } catch (err) {
      if (!(err instanceof Error) || !('code' in err)) throw err;
    }
  }
}

async function xmllintOnce(): Promise<void> {
  // Non-zero exit is expected: the corpus holds broken files on purpose.
  await run('xmllint', ['--noout', ...files]).then(
    () => undefined,
    (err: { code?: number }) => {
      if (typeof err.code !== 'number') throw err;
    },
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const t0 = performance.now();
const first = oursOnce();
const cold = performance.now() - t0;
const ours: number[] = [];
const parse: number[] = [];
const lint: number[] = [];
for (let i = 0; i < rounds; i++) {
  let s = performance.now();
  oursOnce();
  ours.push(performance.now() - s);
  s = performance.now();
  parseOnce();
  parse.push(performance.now() - s);
  s = performance.now();
  await xmllintOnce();
  lint.push(performance.now() - s);
}
// One conversion through the public API as well, so the bench covers convertDescriptor too.
convertDescriptor(readFileSync(files.find((f) => f.endsWith('test2.ovf')) as string, 'utf8'), { source: 'test2.ovf', to: 'libvirt' });

const mOurs = median(ours);
const mLint = median(lint);
const mParse = median(parse);
const totalKiB = bytes.reduce((a, b) => a + b.length, 0) / 1024;
console.log(`descriptors corpus: ${files.length} files, ${totalKiB.toFixed(0)} KiB (${first.read} read, ${first.rejected} rejected)`);
console.log(`machine: ${cpus().length} cores shared with other work; median of ${rounds} rounds`);
console.log(`ours   read+convert  cold ${cold.toFixed(1)} ms, warm median ${mOurs.toFixed(1)} ms`);
console.log(`ours   parse only     warm median ${mParse.toFixed(1)} ms (${(mParse / mLint).toFixed(2)}x xmllint)`);
console.log(`xmllint --noout       median ${mLint.toFixed(1)} ms (one process, all files)`);
console.log(`ratio ours/xmllint    warm ${(mOurs / mLint).toFixed(2)}x, cold ${(cold / mLint).toFixed(2)}x (aim <= 3x)`);
