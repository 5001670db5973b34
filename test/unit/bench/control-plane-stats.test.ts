import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatTable, percentile, perConnectionKiB, ratio, spreadOverRoots, summarize } from '../../../bench/control-plane/stats.js';

describe('control-plane bench: percentiles', () => {
  it('takes the nearest rank: the smallest sample with p% at or below it', () => {
    expect(percentile([4, 1, 3, 2], 50)).toBe(2);
    expect(percentile([4, 1, 3, 2], 75)).toBe(3);
    expect(percentile([4, 1, 3, 2], 100)).toBe(4);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 1)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
  });

  it('p99 of fewer than 100 samples is the largest one', () => {
    expect(percentile([5, 9, 1, 3], 99)).toBe(9);
  });

  it('refuses no samples and a percentile outside (0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it('is a sample, at least as large as p% of them and no more than needed', () => {
    fc.assert(fc.property(fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 100 }), (xs, p) => {
      const v = percentile(xs, p);
      expect(xs).toContain(v);
      const atOrBelow = xs.filter((x) => x <= v).length;
      expect(atOrBelow / xs.length).toBeGreaterThanOrEqual(p / 100);
      const below = xs.filter((x) => x < v).length;
      expect(below / xs.length).toBeLessThan(p / 100);
    }));
  });

  it('does not reorder the caller\'s samples', () => {
    const xs = [3, 1, 2];
    summarize(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe('control-plane bench: spreading and ratios', () => {
  it('puts half the gateways on each of two Roots, all on one Root otherwise', () => {
    const two = spreadOverRoots(1001, 2);
    expect(two.filter((r) => r === 0)).toHaveLength(501);
    expect(two.filter((r) => r === 1)).toHaveLength(500);
    expect(new Set(spreadOverRoots(10, 1))).toEqual(new Set([0]));
    expect(() => spreadOverRoots(10, 0)).toThrow(RangeError);
  });

  it('divides the memory growth by the connections, NaN for none', () => {
    expect(perConnectionKiB(10_000, 60_000, 1000)).toBe(50);
    expect(perConnectionKiB(10_000, 60_000, 0)).toBeNaN();
    expect(ratio(30, 20)).toBe(1.5);
    expect(ratio(30, 0)).toBeNaN();
  });

  it('prints each row with its ratios to the anchor and the load it was measured at', () => {
    const anchor = summarize([10, 10, 20]);
    const table = formatTable([
      { name: 'ping', summary: anchor, load: [1, 2, 3] },
      { name: 'offer', summary: summarize([15, 15, 30]), load: [1.5, 2, 3] },
    ], anchor);
    const offer = table.split('\n').find((l) => l.startsWith('offer'));
    expect(offer).toMatch(/15\.00\s+30\.00\s+1\.50\s+1\.50\s+1\.50 2\.00 3\.00$/);
  });
});
