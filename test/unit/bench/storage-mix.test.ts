import { describe, expect, it } from 'vitest';
import { CLASSES, KiB, MiB, mixTotals, seededRandom, sizeMix } from '../../../bench/storage/mix.js';

describe('storage bench: the object-size mix', () => {
  it("is the issue's mix at the default size: 1000 objects, about 2 GiB, 800 small / 150 medium / 50 large", () => {
    const mix = sizeMix(1000, 2048 * MiB);
    expect(mixTotals(mix, 'small').count).toBe(800);
    expect(mixTotals(mix, 'medium').count).toBe(150);
    expect(mixTotals(mix, 'large').count).toBe(50);
    const total = mixTotals(mix).bytes;
    expect(Math.abs(total - 2048 * MiB) / (2048 * MiB)).toBeLessThan(0.01);
    for (const o of mix) {
      expect(o.size, o.key).toBeGreaterThanOrEqual(CLASSES[o.cls].min);
      expect(o.size, o.key).toBeLessThanOrEqual(CLASSES[o.cls].max);
      expect(o.key.startsWith(`${o.cls}/`)).toBe(true);
    }
    expect(Math.min(...mix.map((o) => o.size))).toBeGreaterThanOrEqual(1 * KiB);
    expect(Math.max(...mix.map((o) => o.size))).toBeLessThanOrEqual(64 * MiB);
    expect(new Set(mix.map((o) => o.key)).size).toBe(1000);
  });

  it('is reproducible: the same seed gives the same sizes, another seed other sizes', () => {
    expect(sizeMix(200, 256 * MiB)).toEqual(sizeMix(200, 256 * MiB));
    expect(sizeMix(200, 256 * MiB, 1).map((o) => o.size)).not.toEqual(sizeMix(200, 256 * MiB, 2).map((o) => o.size));
  });

  it('keeps large objects within 4–64 MiB when the asked total cannot be reached, and always has one per class', () => {
    const tiny = sizeMix(3, 1 * MiB);
    expect(tiny.map((o) => o.cls)).toEqual(['small', 'medium', 'large']);
    expect(tiny[2]!.size).toBe(CLASSES.large.min);
    const huge = sizeMix(20, 100_000 * MiB);
    expect(mixTotals(huge, 'large')).toEqual({ count: 1, bytes: 64 * MiB });
  });

  it('refuses fewer than 3 objects and a total that is not positive', () => {
    expect(() => sizeMix(2, MiB)).toThrow(RangeError);
    expect(() => sizeMix(10, 0)).toThrow(RangeError);
  });

  it('draws numbers in [0, 1) from its seed', () => {
    const r = seededRandom(7);
    const xs = Array.from({ length: 1000 }, () => r());
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBeGreaterThan(990);
  });
});
