import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ChunkSet,
  classifyBody,
  decodeControl,
  decodeJournal,
  encodeControl,
  encodeJournalRecord,
  MAX_STATUS_HASHES,
  MAX_TRANSFER_MESSAGE_BYTES,
  parseManifest,
  permissionPattern,
  transferTopology,
  type ControlMessage,
  type Manifest,
} from '../../../protocols/amqp/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const manifest: Manifest = {
  transferId: TID, from: 'cloud-a', to: 'cloud-b', name: 'disk0.raw', size: 10 * 65536 + 1, chunkSize: 65536, chunkCount: 11, expiresAt: 1_900_000_000_000,
};

async function expectCode(fn: () => unknown, code: string) {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(isIntercloudError(caught), String(caught)).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
}

describe('control messages', () => {
  const all: ControlMessage[] = [
    { type: 'manifest', v: 1, transferId: TID, manifest },
    { type: 'end', v: 1, transferId: TID, manifest, digest: 'a'.repeat(64) },
    { type: 'status', v: 1, transferId: TID, chunkCount: 11, have: new ChunkSet(11).toBase64(), hashes: ['b'.repeat(64)] },
    { type: 'need', v: 1, transferId: TID, chunks: [[0, 2], [5, 6]] },
    { type: 'committed', v: 1, transferId: TID, digest: 'c'.repeat(64), size: 655361 },
    { type: 'abort', v: 1, transferId: TID, reason: 'failed', code: 'XFER_DISK_FULL' },
  ];
  it.each(all.map((m) => [m.type, m] as const))('round-trips %s', (_t, m) => {
    const body = encodeControl(m);
    expect(classifyBody(body)).toBe('control');
    expect(decodeControl(body)).toEqual(m);
  });

  it('encodes a manifest as the documented json', () => {
    expect(encodeControl(all[0]!).toString()).toBe(
      `{"type":"manifest","v":1,"transferId":"${TID}","manifest":{"transferId":"${TID}","from":"cloud-a","to":"cloud-b","name":"disk0.raw","size":655361,"chunkSize":65536,"chunkCount":11,"expiresAt":1900000000000}}`,
    );
  });

  it('rejects a body that is not json', () => expectCode(() => decodeControl(Buffer.from('{nope')), 'XFER_BAD_FRAME'));
  it('refuses, unread, a body longer than any message a transfer sends (the broker may be the peer\'s)', async () => {
    const huge = Buffer.alloc(MAX_TRANSFER_MESSAGE_BYTES + 1, 0x20);
    huge.write(JSON.stringify(all[4]));
    await expectCode(() => decodeControl(huge), 'XFER_BAD_FRAME');
  });
  it('refuses a status offering more than MAX_STATUS_HASHES held chunks', async () => {
    const hash = 'ab'.repeat(32);
    const status = (n: number): Buffer => Buffer.from(JSON.stringify({ type: 'status', v: 1, transferId: TID, chunkCount: 0, have: '', hashes: Array.from({ length: n }, () => hash) }));
    expect(decodeControl(status(MAX_STATUS_HASHES)).type).toBe('status');
    await expectCode(() => decodeControl(status(MAX_STATUS_HASHES + 1)), 'XFER_BAD_FRAME');
  });
  it('rejects an unknown type', () => expectCode(() => decodeControl(Buffer.from(`{"type":"hello","v":1,"transferId":"${TID}"}`)), 'XFER_BAD_FRAME'));
  it('rejects unknown keys', () => expectCode(() => decodeControl(Buffer.from(JSON.stringify({ ...all[4], extra: 1 }))), 'XFER_BAD_FRAME'));
  it('rejects another version', () => expectCode(() => decodeControl(Buffer.from(JSON.stringify({ ...all[4], v: 2 }))), 'XFER_BAD_FRAME'));
  it('rejects a manifest whose chunk count does not match its size', () => expectCode(() => parseManifest({ ...manifest, chunkCount: 10 }), 'XFER_BAD_FRAME'));
  it('rejects a manifest from a cloud to itself', () => expectCode(() => parseManifest({ ...manifest, to: 'cloud-a' }), 'XFER_BAD_FRAME'));
  it('rejects overlapping need ranges', () =>
    expectCode(() => decodeControl(Buffer.from(JSON.stringify({ type: 'need', v: 1, transferId: TID, chunks: [[0, 3], [2, 4]] }))), 'XFER_BAD_FRAME'));
  it('rejects an end whose manifest is of another transfer', () =>
    expectCode(() => decodeControl(Buffer.from(JSON.stringify({ ...all[1], manifest: { ...manifest, transferId: '00000000-0000-4000-8000-000000000000' } }))), 'XFER_BAD_FRAME'));
});

describe('chunk sets', () => {
  it('round-trips bitmaps and ranges (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }).chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(fc.nat(n - 1)))), ([n, members]) => {
        const s = new ChunkSet(n);
        for (const m of members) expect(s.add(m)).toBe(true);
        for (const m of members) expect(s.add(m)).toBe(false);
        expect(s.size).toBe(members.length);
        const back = ChunkSet.fromBase64(n, s.toBase64());
        expect(back.ranges()).toEqual(s.ranges());
        const again = new ChunkSet(n);
        again.addRanges(s.ranges());
        again.addRanges(s.missing());
        expect(again.complete).toBe(true);
      }),
    );
  });
  it('rejects an index outside the set', () => expectCode(() => new ChunkSet(4).add(4), 'XFER_BAD_FRAME'));
  it('rejects a bitmap of the wrong length', () => expectCode(() => ChunkSet.fromBase64(100, 'AA=='), 'XFER_BAD_FRAME'));
});

describe('journal records', () => {
  it('encodes a record as the independent vector (python zlib.crc32)', () => {
    expect(encodeJournalRecord({ t: 'have', chunks: [[0, 4], [9, 10]] })).toBe('9100459c {"t":"have","chunks":[[0,4],[9,10]]}\n');
  });
  it('round-trips and drops a torn last line', () => {
    const text = encodeJournalRecord({ t: 'manifest', manifest, source: { size: 655361, mtimeMs: 5 } }) + encodeJournalRecord({ t: 'end', digest: 'd'.repeat(64) });
    const torn = text + encodeJournalRecord({ t: 'committed', digest: 'd'.repeat(64) }).slice(0, 20);
    const d = decodeJournal(torn);
    expect(d.records.map((r) => r.t)).toEqual(['manifest', 'end']);
    expect(d.tornTail).toBe(true);
    expect(d.goodBytes).toBe(Buffer.byteLength(text));
  });
  it('treats damage before the last line as corruption', () =>
    expectCode(() => decodeJournal('00000000 {"t":"end"}\n' + encodeJournalRecord({ t: 'end', digest: 'd'.repeat(64) })), 'XFER_JOURNAL'));
});

describe('broker names and permissions', () => {
  const topo = transferTopology('cloud-a', 'cloud-b', TID);
  it('embeds both clouds in every name', () => {
    expect(topo).toEqual({ exchange: `xfer.cloud-a.cloud-b.${TID}`, dataQueue: `xfer.cloud-a.cloud-b.${TID}.data`, controlQueue: `xfer.cloud-a.cloud-b.${TID}.ctl` });
  });
  it('lets only the two clouds of a transfer at its resources', () => {
    const names = [topo.exchange, topo.dataQueue, topo.controlQueue];
    for (const c of ['cloud-a', 'cloud-b']) for (const n of names) expect(new RegExp(permissionPattern(c)).test(n)).toBe(true);
    for (const n of names) expect(new RegExp(permissionPattern('cloud-c')).test(n)).toBe(false);
    expect(new RegExp(permissionPattern('cloud-a')).test('amq.default')).toBe(false);
    expect(new RegExp(permissionPattern('cloud')).test(topo.dataQueue)).toBe(false);
  });
  it('rejects a bad cloud id', () => expectCode(() => transferTopology('Cloud A', 'cloud-b', TID), 'XFER_CONFIG'));
});
