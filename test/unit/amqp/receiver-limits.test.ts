/**
 * Issue 12 finding 8: the sender does not decide how much the receiver stores or keeps in
 * memory. A manifest beyond the receiver's limits is refused before anything is made for it.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  FRAME_HEADER_SIZE, MAX_CHUNK_COUNT, MAX_TRANSFER_MESSAGE_BYTES, MAX_NEED_RANGES, MAX_RECEIVED_CHUNK_SIZE, MAX_STATUS_HASHES, ReceiverMachine, checkManifestLimits, type Manifest,
} from '../../../protocols/amqp/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const manifest = (size: number, chunkSize = 1024 * 1024): Manifest => ({
  transferId: TID, from: 'cloud-a', to: 'cloud-b', name: 'x', size, chunkSize, chunkCount: Math.ceil(size / chunkSize), expiresAt: 2e12,
});
const GiB = 1024 ** 3;

describe('receiver limits', () => {
  it('takes a manifest up to the offered size', () => {
    expect(() => checkManifestLimits(manifest(GiB), { maxSize: GiB })).not.toThrow();
    const m = new ReceiverMachine(TID, { maxSize: GiB });
    expect(m.onManifest(manifest(GiB)).map((a) => a.type)).toEqual(['create-staging', 'journal', 'send']);
  });

  it('refuses one byte more than the offered size with XFER_TOO_LARGE, making nothing', () => {
    expect(() => checkManifestLimits(manifest(GiB + 1), { maxSize: GiB })).toThrow(expect.objectContaining({ code: 'XFER_TOO_LARGE' }));
    const m = new ReceiverMachine(TID, { maxSize: GiB });
    expect(() => m.onManifest(manifest(GiB + 1))).toThrow(expect.objectContaining({ code: 'XFER_TOO_LARGE' }));
    expect(m.manifest).toBeUndefined();
    expect(m.phase).toBe('waiting');
    // The same through `end` (a sender that skips the manifest).
    expect(() => m.onEnd(manifest(GiB + 1), 'e'.repeat(64))).toThrow(expect.objectContaining({ code: 'XFER_TOO_LARGE' }));
    expect(m.manifest).toBeUndefined();
  });

  it('refuses more chunks than it keeps bitmaps for, whatever the size limit', () => {
    const tiny = manifest(MAX_CHUNK_COUNT * 4096 + 1, 4096);
    expect(tiny.chunkCount).toBe(MAX_CHUNK_COUNT + 1);
    expect(() => new ReceiverMachine(TID).onManifest(tiny)).toThrow(expect.objectContaining({ code: 'XFER_TOO_LARGE' }));
    expect(() => new ReceiverMachine(TID).onManifest(manifest(MAX_CHUNK_COUNT * 4096, 4096))).not.toThrow();
  });

  it('refuses chunks larger than it takes (each unacked delivery sits whole in its memory), before anything is made', () => {
    const big = manifest(GiB, MAX_RECEIVED_CHUNK_SIZE * 2);
    expect(() => checkManifestLimits(big)).toThrow(expect.objectContaining({ code: 'XFER_TOO_LARGE', details: { chunkSize: MAX_RECEIVED_CHUNK_SIZE * 2, maxChunkSize: MAX_RECEIVED_CHUNK_SIZE } }));
    const m = new ReceiverMachine(TID);
    expect(() => m.onManifest(big)).toThrow(expect.objectContaining({ code: 'XFER_TOO_LARGE' }));
    expect(m.manifest).toBeUndefined();
    expect(() => new ReceiverMachine(TID).onManifest(manifest(GiB, MAX_RECEIVED_CHUNK_SIZE))).not.toThrow();
    // A receiver may take less.
    expect(() => checkManifestLimits(manifest(GiB, 2 * 1024 * 1024), { maxChunkSize: 1024 * 1024 })).toThrow(expect.objectContaining({ code: 'XFER_TOO_LARGE' }));
    // The broker's cap on a message leaves room for a whole data frame of the largest chunk.
    expect(MAX_TRANSFER_MESSAGE_BYTES).toBeGreaterThanOrEqual(FRAME_HEADER_SIZE + MAX_RECEIVED_CHUNK_SIZE);
  });

  it('offers at most MAX_STATUS_HASHES held chunks, so that its largest status fits the broker\'s cap on a message', () => {
    const m = new ReceiverMachine(TID);
    m.onManifest(manifest(MAX_CHUNK_COUNT * 4096, 4096));
    const hashes = Array.from({ length: MAX_STATUS_HASHES + 10 }, (_, i) => createHash('sha256').update(String(i)).digest('hex'));
    const status = m.status(hashes);
    expect(status.type === 'status' && status.hashes).toEqual(hashes.slice(0, MAX_STATUS_HASHES));
    expect(Buffer.byteLength(JSON.stringify(status))).toBeLessThanOrEqual(MAX_TRANSFER_MESSAGE_BYTES);
  });

  it('asks for at most MAX_NEED_RANGES ranges at once, however scattered the missing chunks, splitting around chunks in flight', () => {
    const n = 3 * MAX_NEED_RANGES;
    const m = new ReceiverMachine(TID);
    m.onManifest(manifest(n * 4096, 4096));
    const sha = createHash('sha256').update('x').digest();
    const written: number[] = [];
    for (let i = 0; i < n; i += 2) {
      expect(m.onFrame({ kind: 'data', transferId: TID, index: i, offset: i * 4096, length: 4096, sha256: sha }, true).action).toBe('write');
      written.push(i);
    }
    m.onDurable(written);
    // Chunk 5 is being written right now: not asked for.
    expect(m.onFrame({ kind: 'data', transferId: TID, index: 5, offset: 5 * 4096, length: 4096, sha256: sha }, true).action).toBe('write');
    const need = m.onEnd(manifest(n * 4096, 4096), 'e'.repeat(64)).flatMap((a) => (a.type === 'send' && a.message.type === 'need' ? [a.message] : []));
    expect(need).toHaveLength(1);
    const ranges = need[0]!.type === 'need' ? need[0]!.chunks : [];
    expect(ranges.length).toBeLessThanOrEqual(MAX_NEED_RANGES);
    expect(ranges.slice(0, 3)).toEqual([[1, 2], [3, 4], [7, 8]]);
  });
});
