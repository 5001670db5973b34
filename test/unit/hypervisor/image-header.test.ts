/**
 * A peer's overlay is read as qcow2 by QEMU, which opens the file its header names as its
 * external data file as soon as `qemu-img info` looks at it. The header is checked first, from
 * its bytes: images made by real `qemu-img` pass or are refused as they should, and so are
 * headers a hostile peer crafts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QCOW2_HEADER_READ_BYTES, qcow2HeaderProblem, receivedDiskProblem } from '../../../adapters/hypervisor/index.js';

const dir = mkdtempSync(join(tmpdir(), 'qcow2-header-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `qemu-img create -f FORMAT` with `options`, answering the file's first bytes as the receiver reads them. */
function made(name: string, format: 'qcow2' | 'raw' | 'vmdk', options: string[] = []): Buffer {
  const path = join(dir, name);
  execFileSync('qemu-img', ['create', '-q', '-f', format, ...options, path, ...(options.includes('-b') ? [] : ['64M'])]);
  return readFileSync(path).subarray(0, QCOW2_HEADER_READ_BYTES);
}

describe('qcow2 header check', () => {
  const base = join(dir, 'base.raw');
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', base, '64M']);

  it('passes what qemu-img makes without a data file: plain, an overlay on a backing file, version 2, 2 MiB clusters', () => {
    expect(qcow2HeaderProblem(made('plain.qcow2', 'qcow2'))).toBeUndefined();
    expect(qcow2HeaderProblem(made('overlay.qcow2', 'qcow2', ['-F', 'raw', '-b', base]))).toBeUndefined();
    expect(qcow2HeaderProblem(made('v2.qcow2', 'qcow2', ['-o', 'compat=0.10']))).toBeUndefined();
    expect(qcow2HeaderProblem(made('big.qcow2', 'qcow2', ['-o', 'cluster_size=2M']))).toBeUndefined();
  });

  it('refuses an image with an external data file, as qemu-img makes it', () => {
    expect(qcow2HeaderProblem(made('data-file.qcow2', 'qcow2', ['-o', `data_file=${base},data_file_raw=on`]))).toMatch(/external data file/);
  });

  it('refuses a crafted header: the data file named with the feature bit cleared, an extension chain past the cluster, a short or foreign file', () => {
    const df = Buffer.from(made('data-file2.qcow2', 'qcow2', ['-o', `data_file=${base}`]));
    df.writeBigUInt64BE(df.readBigUInt64BE(72) & ~4n, 72);
    expect(qcow2HeaderProblem(df)).toBe('its header names an external data file');
    const runaway = Buffer.from(made('runaway.qcow2', 'qcow2'));
    // The first extension claims to be longer than the cluster: no end marker is ever found.
    runaway.writeUInt32BE(0x12345678, runaway.readUInt32BE(100));
    runaway.writeUInt32BE(0x7fff_fff0, runaway.readUInt32BE(100) + 4);
    expect(qcow2HeaderProblem(runaway)).toMatch(/past the first cluster/);
    expect(qcow2HeaderProblem(made('plain2.qcow2', 'qcow2').subarray(0, 80))).toMatch(/cut short/);
    expect(qcow2HeaderProblem(made('disk.raw', 'raw'))).toMatch(/not a qcow2 image/);
    const v4 = Buffer.from(made('v4.qcow2', 'qcow2'));
    v4.writeUInt32BE(4, 4);
    expect(qcow2HeaderProblem(v4)).toMatch(/version 4/);
  });

  it('checks a cold move\'s received disk in whatever format it is: raw and a sparse VMDK pass, a qcow2 with a data file and a VMDK descriptor are refused', () => {
    expect(receivedDiskProblem(made('cold.raw', 'raw'))).toBeUndefined();
    expect(receivedDiskProblem(made('cold-plain.qcow2', 'qcow2'))).toBeUndefined();
    expect(receivedDiskProblem(made('cold-sparse.vmdk', 'vmdk'))).toBeUndefined();
    expect(receivedDiskProblem(made('cold-df.qcow2', 'qcow2', ['-o', `data_file=${base}`]))).toMatch(/external data file/);
    // monolithicFlat: the file made is the descriptor text, naming its flat extent.
    expect(receivedDiskProblem(made('cold-flat.vmdk', 'vmdk', ['-o', 'subformat=monolithicFlat']))).toMatch(/VMDK descriptor/);
  });
});
