/**
 * Describing a domain the adapter did not define (plain domain XML given to `virsh define`, as a
 * cloud's own tooling would): disk sizes come from the images, and a running VM's disks can be
 * inspected (qemu-img with a shared lock).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { libvirt, libvirtSshConfig, refreshPool, virsh } from './env.js';

describe('libvirt adapter: a foreign domain', () => {
  const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
  const name = `fd${randomBytes(3).toString('hex')}`;
  const l = libvirt('cloud-a');
  const img = join(l.poolPath, `${name}.qcow2`);
  afterAll(async () => {
    await hv.undefineVm(name, { removeStorage: true });
    await hv.close();
  });

  it('describes it with disk sizes read from the image, also while it runs', async () => {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '48M']);
    const xml = `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${img}'/><target dev='vda' bus='virtio'/></disk>
<interface type='user'><mac address='52:54:00:fd:00:01'/><model type='virtio'/></interface></devices></domain>`;
    const file = join(tmpdir(), `${name}.xml`);
    writeFileSync(file, xml);
    refreshPool(l.uri, l.pool);
    virsh(l.uri, 'define', file);
    const d = await hv.describeVm(name);
    expect(d.vm.disks[0]).toMatchObject({ capacityBytes: 48 * 1024 * 1024, format: 'qcow2', bus: 'virtio', file: { href: img } });
    expect(d.vm.nics[0]!.mac).toBe('52:54:00:fd:00:01');
    await hv.startVm(name);
    const info = await hv.statDisk(name, '0');
    expect(info.capacityBytes).toBe(48 * 1024 * 1024);
    expect(info.format).toBe('qcow2');
    expect(info.extents!.length).toBeGreaterThan(0);
  });
});
