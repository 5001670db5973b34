import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WholeDigest, zeroChunkSha256 } from '../../../protocols/amqp/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

// Vectors computed independently with Python hashlib + struct ('ICXD' ‖ >BQI ‖ chunk hashes).
const sha = (b: Buffer) => createHash('sha256').update(b).digest();

function digestOf(data: Buffer, chunkSize: number): string {
  const d = new WholeDigest(data.length, chunkSize);
  for (let i = 0, o = 0; o < data.length; i++, o += chunkSize) d.add(i, sha(data.subarray(o, o + chunkSize)));
  return d.hex();
}

describe('whole digest (hash list)', () => {
  it('matches the independent vector, short last chunk included', () => {
    const data = Buffer.from(Array.from({ length: 10000 }, (_, i) => i % 251));
    expect(digestOf(data, 4096)).toBe('6825e180da5cb3f4c008ee492960f7b323b04c52dbad25712765f51146af0c24');
  });

  it('gives holes their constant hash', () => {
    const d = new WholeDigest(8192, 4096);
    d.add(0, zeroChunkSha256(4096));
    d.add(1, zeroChunkSha256(4096));
    expect(d.hex()).toBe('5e1d2b53106f224f4af38f76f1c4b837684b58bf3ae1aabe6d9221e468b44594');
    expect(zeroChunkSha256(4096).equals(sha(Buffer.alloc(4096)))).toBe(true);
  });

  it('changes when any byte changes', () => {
    const data = Buffer.alloc(10000, 7);
    const before = digestOf(data, 4096);
    data[9999] = 8;
    expect(digestOf(data, 4096)).not.toBe(before);
  });

  it('refuses hashes out of order and an incomplete list', () => {
    const d = new WholeDigest(8192, 4096);
    expect(() => d.add(1, zeroChunkSha256(4096))).toThrow();
    d.add(0, zeroChunkSha256(4096));
    let caught: unknown;
    try {
      d.hex();
    } catch (err) {
      caught = err;
    }
    expect(isIntercloudError(caught, 'XFER_CONFIG')).toBe(true);
  });
});
