/**
 * vSphere's own OVF import on vcsim: the model written as OVF by `protocols/ovf`, parsed and
 * accepted by vcsim's `OvfManager.CreateImportSpec` (govmomi's OVF code, an independent consumer),
 * `ImportVApp` creating the VM, each disk sent to its NFC lease URL, the lease completed.
 * vcsim discards NFC bytes, so the disk contents are not compared here (the datastore path is).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import type { VirtualMachine } from '../../../protocols/vm/index.js';
import { vmwareConfig } from './env.js';

const MiB = 1024 * 1024;

describe('vmware adapter: import through CreateImportSpec → ImportVApp → NFC', () => {
  const hv = createHypervisor('vmware', vmwareConfig({ importVia: 'nfc' }));
  const name = `nfc${randomBytes(3).toString('hex')}`;
  afterAll(async () => {
    await hv.undefineVm(name, { removeStorage: true });
    await hv.undefineVm(`${name}-bad`, { removeStorage: true });
    await hv.close();
  });

  const model = (n: string): VirtualMachine => ({
    name: n, firmware: 'bios', cpu: { count: 2 }, memoryBytes: 128 * MiB,
    disks: [{ capacityBytes: 8 * MiB, bus: 'scsi', controllerModel: 'lsilogic' }],
    cdroms: [], nics: [{ mac: '00:50:56:01:02:03', model: 'e1000', network: 'VM Network' }],
  });

  it('imports the vm: vcsim accepts our ovf, creates the vm and takes the disk upload', async () => {
    const img = randomBytes(2 * MiB);
    const r = await hv.importVm(model(name), [{ source: Readable.from([img]), sizeBytes: img.length, format: 'vmdk-stream' }]);
    expect(r.name).toBe(name);
    const { vm, state } = await hv.describeVm(name);
    expect(state).toBe('stopped');
    expect(vm.cpu.count).toBe(2);
    expect(vm.memoryBytes).toBe(128 * MiB);
    expect(vm.disks).toHaveLength(1);
    expect(vm.nics.map((n) => n.model)).toEqual(['e1000']);
    await hv.startVm(name);
    expect(await hv.vmState(name)).toBe('running');
  });

  it('a disk stream that ends early aborts the lease and leaves no vm', async () => {
    const err = await hv.importVm(model(`${name}-bad`), [{ source: Readable.from([randomBytes(1000)]), sizeBytes: 2 * MiB, format: 'vmdk-stream' }]).then(() => undefined, (e: unknown) => e);
    expect(isIntercloudError(err, 'HV_STREAM_SHORT')).toBe(true);
    expect(await hv.vmState(`${name}-bad`)).toBe('absent');
  });
});
