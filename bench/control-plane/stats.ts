/**
 * Pure helpers of the control-plane bench: percentiles, summaries, ratios to an anchor, how
 * gateways are spread over Roots, and the table it prints. No I/O.
 */

/**
 * The `p`-th percentile of `xs` by the nearest-rank method (the smallest value with at least
 * `p`% of the samples at or below it): p50 of [1, 2, 3, 4] is 2, p99 of 100 samples the 99th
 * smallest. Throws on no samples or `p` outside (0, 100].
 */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) throw new RangeError('percentile of no samples');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in (0, 100]`);
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** p50 / p99 / max of a set of timings. */
export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** The {@link Summary} of `xs` (nearest-rank percentiles). */
export function summarize(xs: readonly number[]): Summary {
  return { n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99), max: percentile(xs, 100) };
}

/** `ours / anchor`, or NaN when the anchor is not positive. */
export function ratio(ours: number, anchor: number): number {
  return anchor > 0 ? ours / anchor : Number.NaN;
}

/**
 * Which Root each of `n` gateways logs in to, given `roots` Roots: gateway i goes to Root
 * `i mod roots`, so the halves (or thirds…) differ by at most one.
 */
export function spreadOverRoots(n: number, roots: number): number[] {
  if (!Number.isInteger(roots) || roots < 1) throw new RangeError(`roots ${roots} is not a positive whole number`);
  return Array.from({ length: n }, (_, i) => i % roots);
}

/** Per-connection memory: (after − before) / connections, in KiB; NaN when nothing connected. */
export function perConnectionKiB(rssBeforeKiB: number, rssAfterKiB: number, connections: number): number {
  return connections > 0 ? (rssAfterKiB - rssBeforeKiB) / connections : Number.NaN;
}

/** One printed row: a timing set, with its ratios to the anchor's p50 and p99. */
export interface Row {
  readonly name: string;
  readonly summary: Summary;
  /** Load average (1, 5, 15 min) when the row's samples were taken. */
  readonly load: readonly number[];
}

/** Formats the rows as a fixed-width table, ratios against `anchor` (the ping row's summary). */
export function formatTable(rows: readonly Row[], anchor: Summary): string {
  const head = `${'what'.padEnd(58)} ${'n'.padStart(5)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'p50/ping'.padStart(9)} ${'p99/ping'.padStart(9)}  load`;
  const lines = rows.map((r) => [
    r.name.padEnd(58),
    String(r.summary.n).padStart(5),
    r.summary.p50.toFixed(2).padStart(8),
    r.summary.p99.toFixed(2).padStart(8),
    ratio(r.summary.p50, anchor.p50).toFixed(2).padStart(9),
    ratio(r.summary.p99, anchor.p99).toFixed(2).padStart(9),
    ` ${formatLoad(r.load)}`,
  ].join(' '));
  return [head, ...lines].join('\n');
}

/** A load average as printed with every figure: `1.23 0.98 0.75`. */
export function formatLoad(load: readonly number[]): string {
  return load.map((l) => l.toFixed(2)).join(' ');
}
