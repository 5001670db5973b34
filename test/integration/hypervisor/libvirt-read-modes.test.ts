/**
 * The libvirt adapter's two disk read modes give the same bytes: `file` (dd on the volume over
 * SSH, the default) and `libvirt` (`virsh vol-download`, libvirt's storage stream).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { libvirtSshConfig } from './env.js';

async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('libvirt adapter: disk read modes', () => {
  const byFile = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { diskRead: 'file' }));
  const byStream = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { diskRead: 'libvirt' }));
  const name = `rm${randomBytes(3).toString('hex')}`;
  afterAll(async () => {
    await byFile.undefineVm(name, { removeStorage: true });
    await byFile.close();
    await byStream.close();
  });

  it('reads the same bytes, whole and in ranges, in both modes', async () => {
    const img = randomBytes(3 * 1024 * 1024 + 77);
    await byFile.importVm({ name, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * 1024 * 1024, disks: [{ capacityBytes: img.length, bus: 'virtio' }], cdroms: [], nics: [] }, [
      { source: Readable.from([img]), sizeBytes: img.length, format: 'raw' },
    ]);
    expect((await drain(await byFile.readDisk(name, '0'))).equals(img)).toBe(true);
    expect((await drain(await byStream.readDisk(name, '0'))).equals(img)).toBe(true);
    for (const [offset, length] of [[0, 1], [1_048_575, 3], [img.length - 10, 10], [12_345, 2_000_000]] as const) {
      const want = img.subarray(offset, offset + length);
      expect((await drain(await byFile.readDisk(name, '0', { offset, length }))).equals(want)).toBe(true);
      expect((await drain(await byStream.readDisk(name, '0', { offset, length }))).equals(want)).toBe(true);
    }
  });
});
