/**
 * Issue 16, the libvirt adapter against the real cloud-a libvirt over the loopback sshd:
 * `statDisk` reports the base a qcow2 disk overlays, and `linkChains` links a received overlay
 * (whose backing reference names a file the peer chose) onto a base outside the pool that the
 * caller lists in `heldBases` — only as a chain's raw first image under an overlay, never
 * written, never removed with the VM.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chainImport, createHypervisor } from '../../../adapters/hypervisor/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { STATE_DIR } from '../../helpers/services.js';
import { libvirt, libvirtSshConfig, refreshPool } from './env.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(() => undefined, (e: unknown) => (isIntercloudError(e) ? e.code : String(e)));
}

describe('libvirt adapter: an overlay on a held base', () => {
  const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
  const lv = libvirt('cloud-a');
  const name = `hb${randomBytes(3).toString('hex')}`;
  const golden = join(STATE_DIR, 'test-hv', `${name}-golden`);
  const base = join(golden, 'base.raw');
  const overlay = join(lv.poolPath, `intercloud-in-${name}-disk0.img`);
  const bytes = randomBytes(2 * MiB);
  afterAll(async () => {
    await hv.undefineVm(name, { removeStorage: true });
    await fs.rm(overlay, { force: true });
    await fs.rm(golden, { recursive: true, force: true });
    refreshPool(lv.uri, lv.pool);
    await hv.close();
  });

  it('links the overlay onto the held base, defines the vm on it, reports the base, and leaves it alone', async () => {
    await fs.mkdir(golden, { recursive: true });
    await fs.writeFile(base, bytes);
    // As received from a peer: the backing reference names a file of the peer's choosing.
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/shadow', '-u', overlay, String(2 * MiB)]);
    // One whole 64 KiB cluster (a partial one would carry the peer's backing bytes around the write).
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${MiB} 65536`, overlay], { stdio: 'ignore' });
    refreshPool(lv.uri, lv.pool);
    const link = chainImport(hv)!;
    const chain = (b: 'raw' | 'qcow2' = 'raw') => [{ href: base, format: b }, { href: overlay, format: 'qcow2' as const }];
    // Not listed as held: a file outside the pool is refused, as before.
    expect(await codeOf(link.linkChains([chain()]))).toBe('HV_STATE_INVALID');
    // Held, but not as a chain's raw first image under an overlay.
    expect(await codeOf(link.linkChains([chain('qcow2')], { heldBases: [base] }))).toBe('HV_STATE_INVALID');
    expect(await codeOf(link.linkChains([[{ href: base, format: 'raw' }]], { heldBases: [base] }))).toBe('HV_STATE_INVALID');
    expect(await codeOf(link.linkChains([[{ href: overlay, format: 'raw' }, { href: base, format: 'qcow2' }]], { heldBases: [base] }))).toBe('HV_STATE_INVALID');
    const [top] = await link.linkChains([chain()], { heldBases: [base] });
    expect(top).toMatchObject({ id: '0', href: overlay, format: 'qcow2', capacityBytes: 2 * MiB });
    await hv.defineVm({
      name, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * MiB,
      disks: [{ capacityBytes: 2 * MiB, bus: 'virtio', format: 'qcow2', file: { href: overlay, sizeBytes: (await fs.stat(overlay)).size } }], cdroms: [], nics: [],
    });
    const info = await hv.statDisk(name, '0');
    expect(info).toMatchObject({ href: overlay, format: 'qcow2', backing: { href: base, format: 'raw' } });
    // The guest's disk: the base's bytes with the overlay's write over them.
    execFileSync('qemu-img', ['convert', '-U', '-O', 'raw', overlay, join(golden, 'flat.raw')]);
    const flat = await fs.readFile(join(golden, 'flat.raw'));
    const want = Buffer.from(bytes);
    want.fill(0x5a, MiB, MiB + 65536);
    expect(sha(flat)).toBe(sha(want));
    // Removing the vm with its storage leaves the held base as it was.
    await hv.undefineVm(name, { removeStorage: true });
    await expect(fs.stat(overlay)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(sha(await fs.readFile(base))).toBe(sha(bytes));
  }, 120_000);
});
