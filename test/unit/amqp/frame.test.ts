import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAME_HEADER_SIZE,
  decodeFrame,
  encodeFrame,
  isAllZero,
  verifyPayload,
  type FrameHeader,
  type FrameKind,
} from '../../../protocols/amqp/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

// Golden vectors produced independently with Python's struct, zlib.crc32 and hashlib.
const TID = '123e4567-e89b-12d3-a456-426614174000';
const GOLDEN = {
  data: '4943584601010000123e4567e89b12d3a456426614174000000000070000000500000000000700002cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824061f459268656c6c6f',
  zero: '4943584601020000123e4567e89b12d3a45642661417400000000000000100000000000000000000de2f256064a0af797747c2b97505dc0b9f3df0de4f489eac731c23ae9ca9cc317dd45611',
  ref: '4943584601030000123e4567e89b12d3a456426614174000000000030001000000000000000300001f8745f0d2d1387ec1af2211a3cf417b2e9e885e853472649c1d979d0e9370e3d6a59943',
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest();

function expectCode(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (err) {
    expect(isIntercloudError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('chunk frame codec', () => {
  it('encodes a data frame byte-for-byte as the independent vector', () => {
    const payload = Buffer.from('hello');
    const buf = encodeFrame({ kind: 'data', transferId: TID, index: 7, offset: 7 * 65536, length: 5, sha256: sha(payload) }, payload);
    expect(buf.toString('hex')).toBe(GOLDEN.data);
  });

  it('encodes zero and ref frames as header-only vectors', () => {
    expect(encodeFrame({ kind: 'zero', transferId: TID, index: 0, offset: 0, length: 65536, sha256: sha(Buffer.alloc(65536)) }).toString('hex')).toBe(GOLDEN.zero);
    expect(encodeFrame({ kind: 'ref', transferId: TID, index: 3, offset: 3 * 65536, length: 65536, sha256: sha(Buffer.alloc(65536, 'x')) }).toString('hex')).toBe(GOLDEN.ref);
  });

  it('decodes the vectors', () => {
    const f = decodeFrame(Buffer.from(GOLDEN.data, 'hex'));
    expect(f).toMatchObject({ kind: 'data', transferId: TID, index: 7, offset: 458752, length: 5 });
    expect(f.payload?.toString()).toBe('hello');
    expect(verifyPayload(f)).toBe(true);
    expect(decodeFrame(Buffer.from(GOLDEN.ref, 'hex'))).toMatchObject({ kind: 'ref', index: 3, payload: undefined });
  });

  it('round-trips any frame (property)', () => {
    const kind = fc.constantFrom<FrameKind>('data', 'zero', 'ref');
    fc.assert(
      fc.property(kind, fc.uuid({ version: 4 }), fc.nat(0xffffffff), fc.nat(2 ** 40), fc.uint8Array({ minLength: 1, maxLength: 300 }), (k, id, index, offset, bytes) => {
        const payload = Buffer.from(bytes);
        const header: FrameHeader = { kind: k, transferId: id, index, offset, length: payload.length, sha256: sha(payload) };
        const decoded = decodeFrame(encodeFrame(header, k === 'data' ? payload : undefined));
        expect(decoded).toMatchObject({ kind: k, transferId: id, index, offset, length: payload.length });
        expect(decoded.sha256.equals(header.sha256)).toBe(true);
        if (k === 'data') expect(verifyPayload(decoded)).toBe(true);
      }),
    );
  });

  it('detects a corrupted payload with the sha-256 (and keeps the header usable)', () => {
    const buf = Buffer.from(GOLDEN.data, 'hex');
    buf[FRAME_HEADER_SIZE + 1] = buf[FRAME_HEADER_SIZE + 1]! ^ 0x01;
    const f = decodeFrame(buf);
    expect(f.index).toBe(7);
    expect(verifyPayload(f)).toBe(false);
  });

  it('rejects any single flipped header bit (crc-32)', () => {
    fc.assert(
      fc.property(fc.nat(FRAME_HEADER_SIZE * 8 - 1), (bit) => {
        const buf = Buffer.from(GOLDEN.zero, 'hex');
        buf[bit >> 3] = buf[bit >> 3]! ^ (1 << (bit & 7));
        expectCode(() => decodeFrame(buf), 'XFER_BAD_FRAME');
      }),
    );
  });

  it('rejects a truncated frame', () => expectCode(() => decodeFrame(Buffer.from(GOLDEN.data, 'hex').subarray(0, 40)), 'XFER_BAD_FRAME'));
  it('rejects a data frame whose payload length differs from the header', () => expectCode(() => decodeFrame(Buffer.concat([Buffer.from(GOLDEN.data, 'hex'), Buffer.from('!')])), 'XFER_BAD_FRAME'));
  it('rejects another version', () => {
    const buf = Buffer.from(GOLDEN.zero, 'hex');
    buf[4] = 2;
    expectCode(() => decodeFrame(buf), 'XFER_BAD_FRAME');
  });
  it('refuses to encode a non-uuid transfer id', () =>
    expectCode(() => encodeFrame({ kind: 'zero', transferId: 'abc', index: 0, offset: 0, length: 1, sha256: Buffer.alloc(32) }), 'XFER_BAD_FRAME'));
  it('refuses a payload on a zero frame', () =>
    expectCode(() => encodeFrame({ kind: 'zero', transferId: TID, index: 0, offset: 0, length: 1, sha256: Buffer.alloc(32) }, Buffer.alloc(1)), 'XFER_BAD_FRAME'));

  it('tells all-zero buffers apart (property)', () => {
    expect(isAllZero(Buffer.alloc(1 << 20))).toBe(true);
    fc.assert(
      fc.property(fc.nat(4095), fc.integer({ min: 1, max: 255 }), (pos, v) => {
        const b = Buffer.alloc(4096);
        b[pos] = v;
        expect(isAllZero(b)).toBe(false);
      }),
    );
  });
});
