/**
 * The libvirt adapter's two disk I/O modes give the same bytes: `file` (dd on the volume over
 * SSH, the default) and `libvirt` (`virsh vol-upload`/`vol-download`, libvirt's storage streams);
 * `file` writes keep zero blocks as holes, which the allocation map then reports.
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

describe('libvirt adapter: disk i/o modes', () => {
  const byFile = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { diskIo: 'file' }));
  const byStream = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { diskIo: 'libvirt' }));
  const { ssh: _ssh, ...localStreamConfig } = libvirtSshConfig('cloud-a', { diskIo: 'libvirt' });
  const localStream = createHypervisor('libvirt', localStreamConfig);
  const name = `rm${randomBytes(3).toString('hex')}`;
  afterAll(async () => {
    await byFile.undefineVm(name, { removeStorage: true });
    await byFile.close();
    await byStream.close();
    await localStream.close();
  });

  it('writes sparse in file mode: the zero megabytes are holes in the allocation map', async () => {
    const MiB = 1024 * 1024;
    const img = randomBytes(4 * MiB + 5);
    img.fill(0, MiB, 3 * MiB);
    await byFile.importVm({ name: `${name}-sp`, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * MiB, disks: [{ capacityBytes: img.length, bus: 'virtio' }], cdroms: [], nics: [] }, [
      { source: Readable.from([img]), sizeBytes: img.length, format: 'raw' },
    ]);
    try {
      const info = await byFile.statDisk(`${name}-sp`, '0');
      expect(info.extents!.filter((e) => !e.data).reduce((n, e) => n + e.length, 0)).toBe(2 * MiB);
      expect((await drain(await byStream.readDisk(`${name}-sp`, '0'))).equals(img)).toBe(true);
    } finally {
      await byFile.undefineVm(`${name}-sp`, { removeStorage: true });
    }
  });

  it('reads the same bytes, whole and in ranges, written by either mode', async () => {
    const img = randomBytes(3 * 1024 * 1024 + 77);
    await byStream.importVm({ name, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * 1024 * 1024, disks: [{ capacityBytes: img.length, bus: 'virtio' }], cdroms: [], nics: [] }, [
      { source: Readable.from([img]), sizeBytes: img.length, format: 'raw' },
    ]);
    expect((await drain(await byFile.readDisk(name, '0'))).equals(img)).toBe(true);
    expect((await drain(await byStream.readDisk(name, '0'))).equals(img)).toBe(true);
    expect((await drain(await localStream.readDisk(name, '0'))).equals(img)).toBe(true);
    for (const [offset, length] of [[0, 1], [1_048_575, 3], [img.length - 10, 10], [12_345, 2_000_000]] as const) {
      const want = img.subarray(offset, offset + length);
      expect((await drain(await byFile.readDisk(name, '0', { offset, length }))).equals(want)).toBe(true);
      expect((await drain(await byStream.readDisk(name, '0', { offset, length }))).equals(want)).toBe(true);
      expect((await drain(await localStream.readDisk(name, '0', { offset, length }))).equals(want)).toBe(true);
    }
  });
});
