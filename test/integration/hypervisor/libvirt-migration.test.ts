/**
 * The real scenario on the real servers: a small qcow2 domain defined on libvirt cloud-a (over
 * the sshd service), started (`virsh domstate` → running), shut down, exported as a disk stream,
 * imported on libvirt cloud-b straight from that stream, and started there.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import type { Hypervisor } from '../../../adapters/hypervisor/index.js';
import { libvirt, libvirtSshConfig, virsh } from './env.js';

const MiB = 1024 * 1024;

describe('libvirt: a vm moves from cloud-a to cloud-b through the adapter', () => {
  let a: Hypervisor;
  let b: Hypervisor;
  let dir: string;
  const vm = `mig${randomBytes(3).toString('hex')}`;
  let srcHref = '';

  beforeAll(() => {
    a = createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
    b = createHypervisor('libvirt', libvirtSshConfig('cloud-b'));
    dir = mkdtempSync(join(tmpdir(), 'hv-mig-'));
  });
  afterAll(async () => {
    await a.undefineVm(vm, { removeStorage: true });
    await b.undefineVm(vm, { removeStorage: true });
    if (srcHref) await a.removeDisk(srcHref);
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('defines, runs, stops, exports, imports and runs the vm on the other cloud', async () => {
    // A 32 MiB qcow2 with 3 MiB of data at two places (written by qemu-io, an independent tool).
    const img = join(dir, 'src.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, `${32 * MiB}`]);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0x5c 20M 2M', img]);
    const size = statSync(img).size;
    const ref = await a.writeDisk({ name: `${vm}-src.qcow2`, format: 'qcow2', sizeBytes: size, capacityBytes: 32 * MiB }, createReadStream(img));
    srcHref = ref.href;

    const def = await a.defineVm({
      name: vm,
      firmware: 'bios',
      cpu: { count: 1 },
      memoryBytes: 64 * MiB,
      disks: [{ capacityBytes: 32 * MiB, bus: 'virtio', format: 'qcow2', file: { href: ref.href } }],
      cdroms: [],
      nics: [{ mac: '52:54:00:1c:aa:01', model: 'virtio' }],
    });
    expect(def.disks[0]!.href).toBe(ref.href);
    const uriA = libvirt('cloud-a').uri;
    const uriB = libvirt('cloud-b').uri;

    await a.startVm(vm);
    expect(virsh(uriA, 'domstate', vm).trim()).toBe('running');
    const stop = await a.shutdownVm(vm, { timeoutMs: 2000 });
    expect(stop.alreadyStopped).toBe(false);
    expect(virsh(uriA, 'domstate', vm).trim()).toBe('shut off');

    // Export: the description and the disk bytes as a stream, piped straight into cloud-b.
    const desc = await a.describeVm(vm);
    const info = await a.statDisk(vm, '0');
    expect(info.format).toBe('qcow2');
    expect(info.capacityBytes).toBe(32 * MiB);
    expect(info.sizeBytes).toBe(size);
    const imported = await b.importVm(desc.vm, [{ source: await a.readDisk(vm, '0'), sizeBytes: info.sizeBytes, format: 'qcow2' }]);
    expect(imported.name).toBe(vm);

    const there = await b.describeVm(vm);
    // The image is the same file on both clouds, and so are the guest-visible contents
    // (sha256sum and qemu-img compare, independent of the adapter; before the guest runs and locks it).
    const sha = (f: string): string => execFileSync('sha256sum', [f]).toString().split(' ')[0]!;
    expect(sha(there.disks[0]!.href)).toBe(sha(info.href));
    execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', info.href, there.disks[0]!.href]);

    await b.startVm(vm);
    expect(virsh(uriB, 'domstate', vm).trim()).toBe('running');
    expect(there.vm.nics.map((n) => n.mac)).toEqual(['52:54:00:1c:aa:01']);
    expect(there.vm.uuid).toBe(desc.vm.uuid);
    expect(there.vm.memoryBytes).toBe(64 * MiB);
    await b.shutdownVm(vm, { timeoutMs: 500 });
  });
});
