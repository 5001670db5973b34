/**
 * Issue 16, the target's define of a disk whose base this cloud said it holds: the base is
 * looked up again in this cloud's own store by the content hash (never a path from the peer),
 * the received overlay is linked onto that file (the adapter's chain import, the base named as a
 * held base), and a base no longer held, a store or capability missing, or a link the adapter
 * refuses, defines nothing. The adapter is reduced to the calls define makes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import type { Hypervisor, ReceivedImage } from '../../../adapters/hypervisor/index.js';
import { targetHypervisorPort } from '../../../agent/daemon/hypervisor-ports.js';
import { IntercloudError, isIntercloudError } from '../../../protocols/errors/index.js';
import { writeOvf } from '../../../protocols/ovf/index.js';
import { sampleVm } from '../../conformance/hypervisor/suite.js';

const signal = new AbortController().signal;
const SIZE = 64 * 1024 * 1024;
const HASH = 'cd'.repeat(32);
const GOLDEN = '/srv/golden/debian.raw';
/** The hypervisor's local storage directory, with the received overlay in it. */
const POOL = join(tmpdir(), `icx-held-define-${process.pid}`);
const RECEIVED = join(POOL, 'intercloud-in-x-disk0.img');
mkdirSync(POOL, { recursive: true });
writeFileSync(RECEIVED, Buffer.alloc(4096));
afterAll(() => rmSync(POOL, { recursive: true, force: true }));

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(() => undefined, (e: unknown) => (isIntercloudError(e) ? e.code : String(e)));
}

/** An adapter whose storage is `/pool`, that links chains as asked (recorded), or refuses. */
function adapter(link: 'ok' | 'refuse' | 'none') {
  const linked: Array<{ disks: ReadonlyArray<readonly ReceivedImage[]>; heldBases: readonly string[] | undefined }> = [];
  const defined: unknown[] = [];
  const hv = {
    localStorageDir: async () => POOL,
    vmState: async () => 'absent',
    describeVm: async () => { throw new IntercloudError('HV_VM_NOT_FOUND', 'no vm'); },
    defineVm: async (vm: unknown) => { defined.push(vm); return { name: 'web1', uuid: 'u', disks: [], report: { entries: [] } }; },
    capabilities: link === 'none' ? {} : {
      chainImport: {
        linkChains: async (disks: ReadonlyArray<readonly ReceivedImage[]>, o: { heldBases?: readonly string[] } = {}) => {
          linked.push({ disks, heldBases: o.heldBases });
          if (link === 'refuse') throw new IntercloudError('HV_STATE_INVALID', 'refused');
          return disks.map((c, i) => ({ id: String(i), href: c.at(-1)!.href, format: 'qcow2', capacityBytes: SIZE }));
        },
        flattenDisks: async () => undefined,
      },
    },
  } as unknown as Hypervisor;
  return { hv, linked, defined };
}

const vm = sampleVm('web1', { uuid: '11111111-2222-3333-4444-555555555555', disks: [{ capacityBytes: SIZE, bus: 'virtio' }] });
const offer = { name: 'web1', vcpus: 1, memoryBytes: vm.memoryBytes, macs: [], disks: [{ id: '0', capacityBytes: SIZE, base: HASH }], addresses: [] };
const req = { descriptor: writeOvf([vm]).value, disks: { 0: RECEIVED }, vm: { name: 'web1', uuid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee' }, offer, bases: { 0: HASH } };
const probe = async (): Promise<never> => { throw new Error('a linked overlay is not probed for its backing file'); };

describe('define on a base this cloud holds', () => {
  it('links the received overlay onto its own file of that content and defines the vm on it; the base is no volume', async () => {
    const { hv, linked, defined } = adapter('ok');
    const asked: string[] = [];
    const store = { resolve: async (h: unknown) => { asked.push(String(h)); return { path: GOLDEN, size: SIZE, sha256: HASH }; } };
    const port = targetHypervisorPort(hv, { shutdownTimeoutMs: 10, networks: { map: {} }, probe, baseImages: store });
    const r = await port.define(req, signal);
    expect(asked).toEqual([HASH]);
    expect(linked).toEqual([{ disks: [[{ href: GOLDEN, format: 'raw' }, { href: RECEIVED, format: 'qcow2' }]], heldBases: [GOLDEN] }]);
    // Defined on the overlay, as a qcow2; the base is neither a volume nor named by the define.
    expect(r.volumes).toEqual([RECEIVED]);
    expect(defined).toHaveLength(1);
    expect(JSON.stringify(defined)).not.toContain(GOLDEN);
    expect((defined[0] as { disks: Array<{ format?: string; file?: { href: string } }> }).disks.map((d) => [d.format, d.file?.href])).toEqual([['qcow2', RECEIVED]]);
  });

  it('a base no longer held, no store, no chain import, or a link refused: MIGRATE_BASE_UNLINKABLE / MIGRATE_BAD_DISK, nothing defined', async () => {
    const gone = adapter('ok');
    const none = { resolve: async () => undefined };
    expect(await codeOf(targetHypervisorPort(gone.hv, { shutdownTimeoutMs: 10, networks: { map: {} }, probe, baseImages: none }).define(req, signal)))
      .toBe('MIGRATE_BASE_UNLINKABLE');
    expect(await codeOf(targetHypervisorPort(gone.hv, { shutdownTimeoutMs: 10, networks: { map: {} }, probe }).define(req, signal))).toBe('MIGRATE_BASE_UNLINKABLE');
    expect(gone.linked).toEqual([]);
    const held = { resolve: async () => ({ path: GOLDEN, size: SIZE, sha256: HASH }) };
    const cannot = adapter('none');
    expect(await codeOf(targetHypervisorPort(cannot.hv, { shutdownTimeoutMs: 10, networks: { map: {} }, probe, baseImages: held }).define(req, signal)))
      .toBe('MIGRATE_BASE_UNLINKABLE');
    const refused = adapter('refuse');
    expect(await codeOf(targetHypervisorPort(refused.hv, { shutdownTimeoutMs: 10, networks: { map: {} }, probe, baseImages: held }).define(req, signal)))
      .toBe('MIGRATE_BAD_DISK');
    expect([...gone.defined, ...cannot.defined, ...refused.defined]).toEqual([]);
  });
});
