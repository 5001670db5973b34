import { describe, expect, it } from 'vitest';
import { decodeJournalLines, encodeJournalLine } from '../../../protocols/journal/index.js';

const parse = (json: unknown): { n: number } | undefined =>
  typeof json === 'object' && json !== null && typeof (json as { n?: unknown }).n === 'number' ? (json as { n: number }) : undefined;
const damaged = (line: number): Error => Object.assign(new Error(`line ${line}`), { line });

describe('journal lines', () => {
  it('frames a record as crc-32 (8 hex) and json (the vector is the transfer journal\'s)', () => {
    expect(encodeJournalLine({ t: 'have', chunks: [[0, 4], [9, 10]] })).toBe('9100459c {"t":"have","chunks":[[0,4],[9,10]]}\n');
  });

  it('reads records back, drops a torn last line and says where the good bytes end', () => {
    const good = [1, 2, 3].map((n) => encodeJournalLine({ n })).join('');
    expect(decodeJournalLines(good, parse, damaged)).toEqual({ records: [{ n: 1 }, { n: 2 }, { n: 3 }], goodBytes: Buffer.byteLength(good), tornTail: false });
    const torn = good + encodeJournalLine({ n: 4 }).slice(0, 12);
    expect(decodeJournalLines(torn, parse, damaged)).toEqual({ records: [{ n: 1 }, { n: 2 }, { n: 3 }], goodBytes: Buffer.byteLength(good), tornTail: true });
    // a last line the caller's schema refuses is dropped the same way
    expect(decodeJournalLines(good + encodeJournalLine({ x: 1 }), parse, damaged).tornTail).toBe(true);
  });

  it("throws the caller's error for damage before the last line (bad crc, bad json, refused record)", () => {
    const last = encodeJournalLine({ n: 9 });
    const flipped = encodeJournalLine({ n: 1 }).replace('"n":1', '"n":2');
    expect(() => decodeJournalLines(flipped + last, parse, damaged)).toThrow(expect.objectContaining({ line: 1 }));
    expect(() => decodeJournalLines(encodeJournalLine({ n: 1 }) + encodeJournalLine({ y: 1 }) + last, parse, damaged)).toThrow(expect.objectContaining({ line: 2 }));
  });
});
