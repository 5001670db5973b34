/**
 * The replication benchmark's object mix (issue 14, "Benchmark"): a reproducible set of sizes from
 * 1 KiB to 64 MiB — many small objects, some medium, a few large — whose total is close to the
 * asked one. Pure: no I/O, the same seed always gives the same mix.
 */

/** KiB and MiB in bytes. */
export const KiB = 1024;
export const MiB = 1024 * 1024;

/** Size class of an object in the mix. */
export type SizeClass = 'small' | 'medium' | 'large';

/** One object of the mix. */
export interface MixObject {
  readonly key: string;
  readonly size: number;
  readonly cls: SizeClass;
}

/** The class bounds (bytes, inclusive) and share of the object count. */
export const CLASSES: Readonly<Record<SizeClass, { readonly min: number; readonly max: number; readonly share: number }>> = {
  small: { min: 1 * KiB, max: 64 * KiB, share: 0.8 }, // the rest of the count
  medium: { min: 64 * KiB + 1, max: 4 * MiB, share: 0.15 },
  large: { min: 4 * MiB + 1, max: 64 * MiB, share: 0.05 },
};

/** A small seeded generator (mulberry32): numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const between = (r: () => number, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));

/**
 * `count` objects (at least 3: one per class) totalling about `totalBytes`: 80 % small (1–64 KiB),
 * 15 % medium (64 KiB–4 MiB), 5 % large (4–64 MiB, at least one); the small and medium sizes are
 * drawn uniformly, the large ones share what is left of the total (each kept within its class, so the
 * total is only approached when it is reachable). Keys are `<class>/<index, 5 digits>`.
 */
export function sizeMix(count: number, totalBytes: number, seed = 14): MixObject[] {
  if (!Number.isInteger(count) || count < 3) throw new RangeError(`count must be an integer ≥ 3, got ${count}`);
  if (!(totalBytes > 0)) throw new RangeError(`totalBytes must be positive, got ${totalBytes}`);
  const r = seededRandom(seed);
  const nLarge = Math.max(1, Math.round(count * CLASSES.large.share));
  const nMedium = Math.max(1, Math.round(count * CLASSES.medium.share));
  const nSmall = count - nLarge - nMedium;
  const out: MixObject[] = [];
  const key = (cls: SizeClass, i: number): string => `${cls}/${String(i).padStart(5, '0')}`;
  for (let i = 0; i < nSmall; i++) out.push({ key: key('small', i), size: between(r, CLASSES.small.min, CLASSES.small.max), cls: 'small' });
  for (let i = 0; i < nMedium; i++) out.push({ key: key('medium', i), size: between(r, CLASSES.medium.min, CLASSES.medium.max), cls: 'medium' });
  const used = out.reduce((n, o) => n + o.size, 0);
  const weights = Array.from({ length: nLarge }, () => 0.5 + r() / 2);
  const wsum = weights.reduce((a, b) => a + b, 0);
  const left = Math.max(0, totalBytes - used);
  for (const [i, w] of weights.entries()) {
    const size = Math.min(CLASSES.large.max, Math.max(CLASSES.large.min, Math.round((left * w) / wsum)));
    out.push({ key: key('large', i), size, cls: 'large' });
  }
  return out;
}

/** Count and bytes of the objects of one class (or all). */
export function mixTotals(mix: readonly MixObject[], cls?: SizeClass): { count: number; bytes: number } {
  const sel = cls ? mix.filter((o) => o.cls === cls) : mix;
  return { count: sel.length, bytes: sel.reduce((n, o) => n + o.size, 0) };
}
