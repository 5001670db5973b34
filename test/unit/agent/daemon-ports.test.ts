import { describe, expect, it } from 'vitest';
import { choosePeer, summaryFromWorkload, vmWorkload } from '../../../agent/daemon/control-ports.js';
import { transferIdFor } from '../../../agent/daemon/transfer-ids.js';
import type { PeerInfo } from '../../../protocols/xmpp/index.js';

const peer = (cloudId: string, price: number, rttMs?: number, extra: Partial<PeerInfo> = {}): PeerInfo => ({
  entry: { cloudId, terms: { currency: 'EUR', pricePerVcpuHour: price, pricePerGbMonth: 0 } } as PeerInfo['entry'],
  resources: [`${cloudId}@intercloud.test/gateway`],
  ...(rttMs === undefined ? {} : { rttMs }),
  ...extra,
});

describe('daemon ports', () => {
  it('choose the cheapest reachable peer, then the nearest', () => {
    expect(choosePeer([peer('a', 0.05, 1), peer('b', 0.04, 9), peer('c', 0.04, 2)])?.entry.cloudId).toBe('c');
    expect(choosePeer([peer('a', 0.01, 1, { unreachable: 'timeout' }), peer('b', 0.04, 9)])?.entry.cloudId).toBe('b');
    expect(choosePeer([peer('a', 0.01, 1, { resources: [] })])).toBeUndefined();
    expect(choosePeer([])).toBeUndefined();
  });

  it('offer a VM as whole GiB disks with its MACs, and read it back on the target', () => {
    const vm = { name: 'web1', vcpus: 2, memoryBytes: 300 * 2 ** 20, macs: ['52:54:00:00:00:01'], disks: [{ id: '0', capacityBytes: 67108864 }, { id: '1', capacityBytes: 3 * 2 ** 30 + 1 }], addresses: ['10.0.0.1'] };
    const w = vmWorkload(vm);
    expect(w.disks.map((d) => d.sizeGiB)).toEqual([1, 4]);
    expect(w.memoryMiB).toBe(300);
    expect(summaryFromWorkload(w)).toEqual({ name: 'web1', vcpus: 2, memoryBytes: 300 * 2 ** 20, macs: ['52:54:00:00:00:01'], disks: [{ id: '0', capacityBytes: 2 ** 30 }, { id: '1', capacityBytes: 4 * 2 ** 30 }], addresses: [] });
  });

  it('derive the same lowercase v8 uuid per offer and disk on both sides', () => {
    const a = transferIdFor('offer-1', '0');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(transferIdFor('offer-1', '0')).toBe(a);
    expect(transferIdFor('offer-1', '1')).not.toBe(a);
    expect(transferIdFor('offer-2', '0')).not.toBe(a);
  });
});
