/**
 * `localStorageDir` of the libvirt adapter against the real cloud-a libvirt over the loopback
 * sshd: the pool is a directory of this machine, proved with a probe file that leaves nothing
 * behind, and a raw file written there is a volume `defineVm` attaches by its path (what the
 * migration's receiver relies on to write a disk once).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { libvirt, libvirtSshConfig, virsh } from './env.js';

const MiB = 1024 * 1024;

describe('libvirt adapter: local storage directory', () => {
  const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
  const lv = libvirt('cloud-a');
  const name = `ls${randomBytes(3).toString('hex')}`;
  afterAll(async () => {
    await hv.undefineVm(name, { removeStorage: true });
    await hv.close();
  });

  it('answers the pool directory and leaves no probe file in it', async () => {
    const before = (await fs.readdir(lv.poolPath)).filter((f) => f.startsWith('.intercloud-probe-'));
    expect(await hv.localStorageDir?.()).toBe(lv.poolPath);
    const after = (await fs.readdir(lv.poolPath)).filter((f) => f.startsWith('.intercloud-probe-'));
    expect(after).toEqual(before);
  });

  it('defines a vm on a raw file written into that directory, and removes it with the vm', async () => {
    const dir = await hv.localStorageDir?.();
    expect(dir).toBeDefined();
    const file = join(dir!, `${name}-disk0.img`);
    const bytes = randomBytes(2 * MiB);
    await fs.writeFile(file, bytes);
    await hv.defineVm({
      name, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * MiB,
      disks: [{ capacityBytes: bytes.length, bus: 'virtio', format: 'raw', file: { href: file, sizeBytes: bytes.length } }], cdroms: [], nics: [],
    });
    const d = await hv.describeVm(name);
    expect(d.disks[0]?.href).toBe(file);
    const read: Buffer[] = [];
    for await (const c of await hv.readDisk(name, '0')) read.push(c as Buffer);
    expect(Buffer.concat(read).equals(bytes)).toBe(true);
    await hv.undefineVm(name, { removeStorage: true });
    await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(virsh(lv.uri, 'vol-list', '--pool', lv.pool)).not.toContain(`${name}-disk0.img`);
  });
});
