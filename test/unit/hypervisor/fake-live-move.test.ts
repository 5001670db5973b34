/**
 * The fake's live-move capabilities beyond the shared conformance suite: guest writes during the
 * rounds reach the target through the overlays, the guest session survives save and restore (no
 * boot), and what a peer sends is checked (overlays that are not overlays, a state of another vm).
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chainImport, changeTracking, createHypervisor, stateCapture, stateRestore } from '../../../adapters/hypervisor/index.js';
import type { FakeHypervisor, Hypervisor } from '../../../adapters/hypervisor/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { sampleImage, sampleVm } from '../../conformance/hypervisor/suite.js';

const fakeHv = (name: string): FakeHypervisor => createHypervisor('fake', { name, diskBytes: 64 * 1024 * 1024, guestsIgnoreShutdown: false }) as FakeHypervisor;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(() => undefined, (e: unknown) => (isIntercloudError(e) ? e.code : String(e)));
}

async function copy(from: Hypervisor, vm: string, href: string, to: Hypervisor, as: string, format: 'raw' | 'qcow2', size: number): Promise<string> {
  const ref = await to.writeDisk({ name: as, format, sizeBytes: size, capacityBytes: size }, await changeTracking(from)!.readImage(vm, href));
  return ref.href;
}

describe('fake live move', () => {
  it('carries the guest\'s writes of each round and keeps its session (no boot)', async () => {
    const a = fakeHv('a');
    const b = fakeHv('b');
    const img = sampleImage(256 * 1024);
    await a.importVm(sampleVm('web1', { disks: [{ capacityBytes: img.length, bus: 'virtio' }] }), [{ source: Readable.from([img]), sizeBytes: img.length, format: 'raw' }]);
    await a.startVm('web1');
    const session = a.guestSession('web1');
    expect(session).toBeDefined();
    const track = changeTracking(a)!;
    const r1 = await track.startRound('web1');
    a.guestWrite('web1', '0', 1000, Buffer.alloc(5000, 0xaa));
    const base = await copy(a, 'web1', r1.frozen[0]!.href, b, 'web1-disk0.raw', 'raw', r1.frozen[0]!.sizeBytes);
    const r2 = await track.startRound('web1');
    a.guestWrite('web1', '0', 3000, Buffer.alloc(100, 0xbb));
    a.guestWrite('web1', '0', img.length + 10, Buffer.alloc(10, 0xcc));
    const o1 = await copy(a, 'web1', r2.frozen[0]!.href, b, 'web1-disk0.ovl1', 'qcow2', r2.frozen[0]!.sizeBytes);
    const seen = a.guestView('web1', '0');
    const saved = await stateCapture(a)!.saveState('web1');
    const last = (await track.chain('web1'))[0]!.at(-1)!;
    const o2 = await copy(a, 'web1', last.href, b, 'web1-disk0.ovl2', 'qcow2', last.sizeBytes);
    const st = (await b.writeDisk({ name: 'web1.state', format: 'raw', sizeBytes: saved.sizeBytes, capacityBytes: saved.sizeBytes }, await stateCapture(a)!.readState('web1'))).href;

    await stateRestore(b)!.restoreVm({ name: 'web1', state: st, disks: [[{ href: base, format: 'raw' }, { href: o1, format: 'qcow2' }, { href: o2, format: 'qcow2' }]] });
    expect(await b.vmState('web1')).toBe('running');
    expect(b.guestSession('web1')).toBe(session);
    expect(b.guestView('web1', '0').equals(seen)).toBe(true);
    expect(seen.subarray(1000, 3000).every((x) => x === 0xaa)).toBe(true);
    expect(seen.subarray(3000, 3100).every((x) => x === 0xbb)).toBe(true);
    await stateRestore(b)!.flattenDisks('web1');
    expect(b.guestView('web1', '0').equals(seen)).toBe(true);
    expect(b.diskHrefs()).toEqual([base, st].sort());
    // A boot, by contrast, is a new session.
    await b.shutdownVm('web1', { timeoutMs: 10 });
    await b.startVm('web1');
    expect(b.guestSession('web1')).not.toBe(session);
  });

  it('refuses an overlay that is not one and a state of another vm', async () => {
    const b = fakeHv('b');
    const w = async (name: string, bytes: Buffer): Promise<string> => (await b.writeDisk({ name, format: 'raw', sizeBytes: bytes.length, capacityBytes: bytes.length }, Readable.from([bytes]))).href;
    const base = await w('x-base', Buffer.alloc(1024));
    const notOverlay = await w('x-ovl', Buffer.from('plain bytes'));
    const state = await w('x.state', Buffer.from('FAKE-STATE\n{"name":"other","vm":{"name":"other","disks":[]},"session":null}'));
    expect(await codeOf(stateRestore(b)!.restoreVm({ name: 'x', state, disks: [[{ href: base, format: 'raw' }, { href: notOverlay, format: 'qcow2' }]] }))).toBe('HV_STATE_INVALID');
    expect(await codeOf(stateRestore(b)!.restoreVm({ name: 'x', state, disks: [[{ href: base, format: 'raw' }]] }))).toBe('HV_STATE_INVALID');
    expect(await b.vmState('x')).toBe('absent');
  });

  it('warm: links a received chain (no state), a vm defined on its top boots on the moved disk', async () => {
    const a = fakeHv('a');
    const b = fakeHv('b');
    const img = sampleImage(128 * 1024);
    await a.importVm(sampleVm('web1', { disks: [{ capacityBytes: img.length, bus: 'virtio' }] }), [{ source: Readable.from([img]), sizeBytes: img.length, format: 'raw' }]);
    await a.startVm('web1');
    const r1 = await changeTracking(a)!.startRound('web1');
    a.guestWrite('web1', '0', 500, Buffer.alloc(700, 0xdd));
    const base = await copy(a, 'web1', r1.frozen[0]!.href, b, 'web1-disk0.raw', 'raw', r1.frozen[0]!.sizeBytes);
    await a.shutdownVm('web1', { timeoutMs: 10 });
    const last = (await changeTracking(a)!.chain('web1'))[0]!.at(-1)!;
    const o1 = await copy(a, 'web1', last.href, b, 'web1-disk0.ovl1', 'qcow2', last.sizeBytes);
    const seen = a.guestView('web1', '0');

    const link = chainImport(b)!;
    // Only files written here, each once, overlays declared qcow2.
    expect(await codeOf(link.linkChains([[{ href: 'fake:elsewhere', format: 'raw' }, { href: o1, format: 'qcow2' }]]))).toBe('HV_STATE_INVALID');
    expect(await codeOf(link.linkChains([[{ href: base, format: 'raw' }, { href: base, format: 'qcow2' }]]))).toBe('HV_STATE_INVALID');
    expect(await codeOf(link.linkChains([[{ href: base, format: 'raw' }, { href: o1, format: 'raw' }]]))).toBe('HV_STATE_INVALID');
    const tops = await link.linkChains([[{ href: base, format: 'raw' }, { href: o1, format: 'qcow2' }]]);
    expect(tops).toMatchObject([{ id: '0', href: o1, format: 'qcow2', capacityBytes: img.length }]);
    await b.defineVm(sampleVm('web1', { disks: [{ capacityBytes: img.length, bus: 'virtio', format: 'qcow2', file: { href: o1 } }] }));
    await b.startVm('web1');
    expect(b.guestView('web1', '0').equals(seen)).toBe(true);
    await link.flattenDisks('web1');
    expect(b.guestView('web1', '0').equals(seen)).toBe(true);
    expect(b.diskHrefs()).toEqual([base]);
  });
});
