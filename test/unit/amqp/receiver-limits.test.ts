/**
 * Issue 12 finding 8: the sender does not decide how much the receiver stores or keeps in
 * memory. A manifest beyond the receiver's limits is refused before anything is made for it.
 */
import { describe, expect, it } from 'vitest';
import { MAX_CHUNK_COUNT, ReceiverMachine, checkManifestLimits, type Manifest } from '../../../protocols/amqp/index.js';

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
});
