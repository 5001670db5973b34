/**
 * What the migration benchmarks measure, shared by `migration.bench.ts` (cold, against by hand)
 * and `modes.bench.ts` (live / warm / cold against by hand and libvirt's own live migration):
 * the guest's heartbeats as a user of the VM sees them, peak RSS of the agents, the load.
 */
import { promises as fs } from 'node:fs';
import { loadavg } from 'node:os';

/** The marker of the test guest's heartbeat line (scripts/services.d/60-guest.sh). */
export const HB = 'INTERCLOUD-GUEST-HB';
/** The marker the test guest prints once when it boots. */
export const GUEST_UP = 'INTERCLOUD-GUEST-UP';
export const MiB = 1024 * 1024;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The load average, 1/5/15 min, as printed next to every figure. */
export const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
export const secs = (ms: number): string => (ms / 1000).toFixed(2);

/** The value after `--name` in `argv`, or `dflt`. */
export function option(argv: readonly string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
}

/** Median of `xs` (of two, their mean). */
export function median(xs: readonly number[]): number {
  const o = [...xs].sort((x, y) => x - y);
  const m = Math.floor(o.length / 2);
  return o.length % 2 ? o[m]! : (o[m - 1]! + o[m]!) / 2;
}

/** Peak RSS (VmHWM) of a process in MiB. */
export async function peakRss(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Clears a process's peak RSS mark (clear_refs 5), so the next {@link peakRss} covers what follows. */
export async function resetPeakRss(pid: number | undefined): Promise<void> {
  if (pid !== undefined) await fs.writeFile(`/proc/${pid}/clear_refs`, '5');
}

/**
 * Watches a console log every 50 ms: the wall time of its first and of its last new heartbeat,
 * and whether the guest booted in it (its start marker appeared).
 */
export class HeartbeatWatch {
  private count = 0;
  first: number | undefined;
  last: number | undefined;
  booted = false;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly file: () => string | undefined) {
    this.timer = setInterval(() => void this.poll(), 50);
  }
  private async poll(): Promise<void> {
    const f = this.file();
    if (!f) return;
    const text = await fs.readFile(f, 'latin1').catch(() => '');
    if (text.includes(GUEST_UP)) this.booted = true;
    const n = text.split(HB).length - 1;
    if (n > this.count) {
      const now = Date.now();
      this.first ??= now;
      this.last = now;
      this.count = n;
    }
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** The gap a user of the VM sees: the source's last heartbeat → the target's first. */
export function heartbeatGapMs(source: HeartbeatWatch, target: HeartbeatWatch): number | undefined {
  return source.last !== undefined && target.first !== undefined ? target.first - source.last : undefined;
}

/** The `n=` counters of the heartbeats in a console log, in order. */
export async function heartbeatCounters(file: string): Promise<number[]> {
  const text = await fs.readFile(file, 'latin1').catch(() => '');
  return [...text.matchAll(/INTERCLOUD-GUEST-HB n=(\d+)/g)].map((m) => Number(m[1]));
}

/** The part of a job's status {@link cutOverPhases} reads. */
interface TimedJob {
  stepTimes?: Record<string, { startedAt: string; ms: number }>;
  results: Record<string, unknown>;
}

/**
 * Where a warm or live move's cut-over went, from both agents' job records (`stepTimes`, and the
 * target's `resumedAt`): the source's steps from the stop or save to the commit's answer, with
 * the target's restore (its `define`) inside `instantiate` and the target's resume inside `commit`.
 * Seconds, e.g. `pause 0.30 · transfer 3.90 · instantiate 2.00 (restore 1.95) · re-address 0.00 · commit 0.60 (resumed +0.60)`.
 */
export function cutOverPhases(source: TimedJob, target: TimedJob | undefined): string {
  const st = source.stepTimes ?? {};
  const tt = target?.stepTimes ?? {};
  const ms = (t: Record<string, { ms: number }>, step: string): string => (t[step] === undefined ? '?' : secs(t[step].ms));
  const resumedAt = (target?.results['await-commit'] as { resumedAt?: string } | undefined)?.resumedAt;
  const commitAt = st['commit']?.startedAt;
  const resumed = resumedAt !== undefined && commitAt !== undefined ? ` (resumed +${secs(Date.parse(resumedAt) - Date.parse(commitAt))})` : '';
  // Live pauses at stop-source (the save is in transfer), warm shuts down.
  return `${(source.results['negotiate'] as { mode?: string } | undefined)?.mode === 'warm' ? 'stop' : 'pause'} ${ms(st, 'stop-source')} · transfer ${ms(st, 'transfer')}`
    + ` · instantiate ${ms(st, 'instantiate')} (${tt['define'] ? `restore ${ms(tt, 'define')}` : 'restore ?'}) · re-address ${ms(st, 're-address')} · commit ${ms(st, 'commit')}${resumed}`;
}
