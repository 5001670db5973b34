/**
 * A disk that is a qcow2 overlay on a base (issue 16): when the target does not hold the base,
 * the source sends the flattened image — raw, the virtual size, every byte the guest sees —
 * never the overlay file's own bytes (which name a backing file the target refuses).
 * Real `qemu-img` on temporary files; the adapter is reduced to the calls the source makes.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DiskInfo, Hypervisor } from '../../../adapters/hypervisor/index.js';
import { diskTransferSource } from '../../../agent/daemon/hypervisor-ports.js';
import type { TransferSource } from '../../../protocols/amqp/index.js';

const MiB = 1024 * 1024;

async function readAll(s: TransferSource): Promise<Buffer> {
  const out = Buffer.alloc(s.size);
  await s.read(0, s.size, out, 0);
  return out;
}

describe('source: a disk that overlays a base', () => {
  let dir: string;
  let pool: string;
  let scratch: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(join(tmpdir(), 'icx-ovl-'));
    pool = join(dir, 'pool');
    scratch = join(dir, 'scratch');
    await fs.mkdir(pool);
    await fs.mkdir(scratch);
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A 4 MiB raw base with data, a qcow2 overlay on it with one 64 KiB write at 1 MiB. */
  async function overlayDisk(): Promise<{ base: string; overlay: string; flat: Buffer }> {
    const base = join(pool, 'golden.raw');
    const overlay = join(pool, 'web1-disk0.qcow2');
    const flat = randomBytes(4 * MiB);
    await fs.writeFile(base, flat);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, overlay]);
    const write = Buffer.alloc(64 * 1024, 0x5a);
    write.copy(flat, MiB);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${MiB} ${64 * 1024}`, overlay], { stdio: 'ignore' });
    return { base, overlay, flat };
  }

  const adapter = (info: DiskInfo): Hypervisor => ({
    localStorageDir: async () => pool,
    statDisk: async () => info,
    readDisk: async () => { throw new Error('the overlay file itself is not what the target gets'); },
  }) as unknown as Hypervisor;

  it('sends the flattened raw image, never the overlay file, and removes the scratch copy when closed', async () => {
    const { base, overlay, flat } = await overlayDisk();
    const st = await fs.stat(overlay);
    const hv = adapter({ id: '0', href: overlay, format: 'qcow2', capacityBytes: 4 * MiB, sizeBytes: st.size, backing: { href: base, format: 'raw' } });
    const source = await diskTransferSource(hv, 'web1', '0', new AbortController().signal, { scratchDir: scratch, key: 't1' });
    expect(source.size).toBe(4 * MiB);
    expect((await readAll(source)).equals(flat)).toBe(true);
    // A second open (a re-sent transfer after a restart) reads the same file: same identity.
    const again = await diskTransferSource(hv, 'web1', '0', new AbortController().signal, { scratchDir: scratch, key: 't1' });
    expect(again.identity).toEqual(source.identity);
    await again.close();
    await source.close();
    // The base and the overlay are left as they were.
    expect((await fs.readFile(base)).subarray(MiB, MiB + 16).equals(Buffer.alloc(16, 0x5a))).toBe(false);
    expect((await fs.stat(overlay)).size).toBe(st.size);
  });

  it('a disk without a backing image is still sent as its stored file', async () => {
    const raw = join(pool, 'web2-disk0.raw');
    const data = randomBytes(MiB);
    await fs.writeFile(raw, data);
    const hv = adapter({ id: '0', href: raw, format: 'raw', capacityBytes: MiB, sizeBytes: MiB });
    const source = await diskTransferSource(hv, 'web2', '0', new AbortController().signal, { scratchDir: scratch, key: 't2' });
    expect((await readAll(source)).equals(data)).toBe(true);
    await source.close();
    expect(await fs.readdir(scratch)).toEqual([]);
  });
});
