/**
 * The target's hypervisor port for a warm move (issue 15) on the fake adapter: `defineOnChain`
 * links each disk's received chain and defines the VM from the offered descriptor on its top,
 * under the job's UUID; it refuses a descriptor of another VM and a chain naming a file this
 * backend did not write, defining nothing.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createHypervisor, type FakeHypervisor } from '../../../adapters/hypervisor/index.js';
import { targetHypervisorPort } from '../../../agent/daemon/hypervisor-ports.js';
import { writeOvf } from '../../../protocols/ovf/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { sampleVm } from '../../conformance/hypervisor/suite.js';

const signal = new AbortController().signal;
const SIZE = 64 * 1024;
const overlay = (writes: Array<[number, string]>): Buffer => Buffer.from(`FAKE-OVERLAY\n${JSON.stringify({ writes })}`);

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(() => undefined, (e: unknown) => (isIntercloudError(e) ? e.code : String(e)));
}

describe('warm define on a received chain (fake)', () => {
  it('defines the vm on the linked chain under the job uuid; refuses another vm and foreign files', async () => {
    const hv = createHypervisor('fake', { name: 'b', diskBytes: 1 << 24, guestsIgnoreShutdown: false }) as FakeHypervisor;
    const port = targetHypervisorPort(hv, { shutdownTimeoutMs: 10, networks: { map: {} } });
    const write = async (name: string, format: 'raw' | 'qcow2', bytes: Buffer): Promise<string> =>
      (await hv.writeDisk({ name, format, sizeBytes: bytes.length, capacityBytes: SIZE }, Readable.from([bytes]))).href;
    const base = await write('in-d0-0', 'raw', Buffer.alloc(SIZE, 1));
    const top = await write('in-d0-1', 'qcow2', overlay([[100, Buffer.alloc(10, 7).toString('base64')]]));
    const vm = sampleVm('web1', { uuid: '11111111-2222-3333-4444-555555555555', disks: [{ capacityBytes: SIZE, bus: 'virtio' }] });
    const offer = { name: 'web1', vcpus: 1, memoryBytes: vm.memoryBytes, macs: [], disks: [{ id: '0', capacityBytes: SIZE }], addresses: [] };
    const ref = { name: 'web1', uuid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee' };
    const chain = [[{ path: base, format: 'raw' as const }, { path: top, format: 'qcow2' as const }]];

    const other = writeOvf([{ ...vm, name: 'other' }]).value;
    expect(await codeOf(port.defineOnChain!({ descriptor: other, disks: chain, vm: ref, offer }, signal))).toBe('MIGRATE_BAD_DESCRIPTOR');
    const foreign = [[{ path: 'fake:not-received', format: 'raw' as const }, { path: top, format: 'qcow2' as const }]];
    expect(await codeOf(port.defineOnChain!({ descriptor: writeOvf([vm]).value, disks: foreign, vm: ref, offer }, signal))).toBe('HV_STATE_INVALID');
    expect(await hv.vmState('web1')).toBe('absent');

    const defined = await port.defineOnChain!({ descriptor: writeOvf([vm]).value, disks: chain, vm: ref, offer }, signal);
    expect(defined).toMatchObject({ vm: 'web1', uuid: ref.uuid, volumes: [base, top] });
    expect((await hv.describeVm('web1')).vm.uuid).toBe(ref.uuid);
    await port.start(ref, signal);
    const seen = hv.guestView('web1', '0');
    expect(seen.subarray(100, 110).every((x) => x === 7)).toBe(true);
    expect(seen.subarray(0, 100).every((x) => x === 1)).toBe(true);
  });
});
