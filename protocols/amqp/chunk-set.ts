/**
 * A set of chunk indices of one transfer as a bitmap (pure): what the receiver holds, what it
 * needs. Encodes to base64 (`status` messages) and to half-open ranges (`need` messages,
 * journal records), which stay short for the long runs real transfers produce.
 */
import { xferError } from './errors.js';

/** Half-open ranges `[start, end)` of chunk indices, ascending and non-overlapping. */
export type ChunkRanges = ReadonlyArray<readonly [number, number]>;

/** A fixed-size set of chunk indices `0 … count-1`. */
export class ChunkSet {
  private readonly bits: Uint8Array;
  private members = 0;

  /** An empty set over `count` chunks. */
  constructor(readonly count: number) {
    if (!Number.isSafeInteger(count) || count < 0) throw xferError('XFER_CONFIG', `chunk count '${count}' is invalid`);
    this.bits = new Uint8Array(Math.ceil(count / 8));
  }

  /** How many indices are in the set. */
  get size(): number {
    return this.members;
  }

  /** True when every index `0 … count-1` is in the set. */
  get complete(): boolean {
    return this.members === this.count;
  }

  /** True when `index` is in the set. */
  has(index: number): boolean {
    if (index < 0 || index >= this.count) return false;
    return ((this.bits[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
  }

  /** Adds `index`; returns false when it was already there (the idempotence check). */
  add(index: number): boolean {
    this.check(index);
    const byte = this.bits[index >> 3] ?? 0;
    const bit = 1 << (index & 7);
    if ((byte & bit) !== 0) return false;
    this.bits[index >> 3] = byte | bit;
    this.members++;
    return true;
  }

  /** Adds every index of `ranges`. */
  addRanges(ranges: ChunkRanges): void {
    for (const [start, end] of ranges) for (let i = start; i < end; i++) if (i < this.count) this.add(i);
  }

  /** The indices in the set, as ranges. */
  ranges(): Array<[number, number]> {
    return toRanges(this.count, (i) => this.has(i));
  }

  /** The indices *not* in the set, as ranges (what a receiver still needs); at most `limit` ranges, the lowest first. */
  missing(limit = Number.POSITIVE_INFINITY): Array<[number, number]> {
    return toRanges(this.count, (i) => !this.has(i), limit);
  }

  /** The bitmap as base64 (bit `i & 7` of byte `i >> 3`). */
  toBase64(): string {
    return Buffer.from(this.bits).toString('base64');
  }

  /** A set decoded from {@link toBase64}. */
  static fromBase64(count: number, base64: string): ChunkSet {
    const set = new ChunkSet(count);
    const bytes = Buffer.from(base64, 'base64');
    if (bytes.length !== set.bits.length) {
      throw xferError('XFER_BAD_FRAME', `chunk bitmap has '${bytes.length}' bytes, expected '${set.bits.length}'`);
    }
    for (let i = 0; i < count; i++) if ((bytes[i >> 3]! & (1 << (i & 7))) !== 0) set.add(i);
    return set;
  }

  private check(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.count) {
      throw xferError('XFER_BAD_FRAME', `chunk index '${index}' is outside 0..${this.count - 1}`);
    }
  }
}

function toRanges(count: number, member: (i: number) => boolean, limit = Number.POSITIVE_INFINITY): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = -1;
  for (let i = 0; i <= count && out.length < limit; i++) {
    const m = i < count && member(i);
    if (m && start < 0) start = i;
    if (!m && start >= 0) {
      out.push([start, i]);
      start = -1;
    }
  }
  return out;
}

/** Checks that `ranges` are ascending, non-empty, non-overlapping and within `0 … count`. */
export function validRanges(ranges: unknown, count: number): ranges is ChunkRanges {
  if (!Array.isArray(ranges)) return false;
  let last = 0;
  for (const r of ranges) {
    if (!Array.isArray(r) || r.length !== 2) return false;
    const [a, b] = r as unknown[];
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) return false;
    if ((a as number) < last || (b as number) <= (a as number) || (b as number) > count) return false;
    last = b as number;
  }
  return true;
}

/** The number of indices covered by `ranges`. */
export function rangesSize(ranges: ChunkRanges): number {
  return ranges.reduce((n, [a, b]) => n + (b - a), 0);
}
