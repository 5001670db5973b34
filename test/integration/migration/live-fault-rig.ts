/**
 * The rig the live-move fault tests (issue 15, `live-*.test.ts`) share: a federation with a
 * running guest in cloud-a (heartbeat seen) and a live move started; the fault points read from
 * the source job's event stream; a copy of cloud-a's chain at the cut-over; and the checks of the
 * outcome made without the agents — the VM in exactly one cloud (`assertInvariant`), a completed
 * live move's guest going on at cloud-b with no boot line on a disk byte-identical
 * (`qemu-img compare`) to the copy, a compensated move's guest running on at cloud-a, never
 * rebooted.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import type { JobStatus, JournalRecord } from '../../../agent/sequencer/index.js';
import { domState, virsh, type AgentProcess } from '../../../scripts/local-federation.js';
import { heartbeats, waitForHeartbeat, type Heartbeat } from '../hypervisor/writing-guest.js';
import {
  assertInvariant, killService, serviceUp, setUpFederation, waitForEnd, waitForTargetEnd, type ApiEvent, type Cloud, type Federation, type FederationOptions,
} from './federation-fixture.js';

const run = promisify(execFile);

/** The disk files a domain runs on now (virsh domblklist). */
export async function diskFiles(f: Federation, cloud: Cloud): Promise<string[]> {
  const blk = await virsh(f.s, cloud, 'domblklist', f.vm, '--details');
  return blk.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[1] === 'disk').map((c) => c[3]!);
}

/** The guest's console at cloud-a (where the test created it). */
export const consoleA = (f: Federation): string => join(f.a.dir, 'consoles', `${f.vm}-created.log`);

/** The guest's console at cloud-b (where a move restores or boots it). */
export const consoleB = (f: Federation): string => join(f.b.dir, 'consoles', `${f.vm}-serial0.log`);

/** How many times the guest booted into a console log (its boot lines). */
export const boots = (log: string): number => readFileSync(log, 'latin1').split('INTERCLOUD-GUEST-UP').length - 1;

/** The last heartbeat in a console log. */
export const lastHeartbeat = (log: string): Heartbeat => heartbeats(readFileSync(log, 'latin1')).at(-1)!;

/** The first pre-copy progress past `fraction` of an image (mid-round). */
export const midRound = (fraction: number) => (e: ApiEvent): boolean => {
  if (e.type !== 'progress' || e.step !== 'pre-copy') return false;
  const { bytesDone, bytesTotal } = e.detail as { bytesDone: number; bytesTotal: number };
  return bytesDone >= fraction * bytesTotal && bytesDone < bytesTotal;
};

/**
 * The first progress of the last transfer (after `stop-source`: the newest overlays and the
 * saved state) past `fraction` of image `image` (an image key: `state`, `0.2`).
 */
export const midLastTransfer = (image: string, fraction: number) => (e: ApiEvent): boolean => {
  if (e.type !== 'progress' || e.step !== 'transfer') return false;
  const { image: key, bytesDone, bytesTotal } = e.detail as { image?: string; bytesDone: number; bytesTotal: number };
  return key === image && bytesDone >= fraction * bytesTotal && bytesDone < bytesTotal;
};

/** One action of {@link follow}: run once, on the first event its predicate matches. */
export type FaultAction = [when: (e: ApiEvent) => boolean, act: () => Promise<void>];

/**
 * Follows the source job until its stream ends (the job ended, or the source agent was
 * killed: once an action fired, the stream breaking off is its doing, not an error), running
 * each action once on the first event its predicate matches; resolves once the stream ended
 * and every action that fired finished, with how many fired. An action that throws fails the call.
 */
export async function follow(f: Federation, jobId: string, actions: FaultAction[]): Promise<number> {
  const fired: Array<Promise<void>> = [];
  const done = new Set<number>();
  const stream = f.a.api.follow(jobId, (e) => {
    actions.forEach(([when, act], i) => {
      if (!done.has(i) && when(e)) { done.add(i); fired.push(act()); }
    });
  });
  const broken = await stream.then(() => undefined, (err: unknown) => err);
  await Promise.all(fired);
  if (broken !== undefined && done.size === 0) throw broken;
  return done.size;
}

/** The records of a job's journal at `agent`. */
export async function journal(agent: AgentProcess, jobId: string): Promise<JournalRecord[]> {
  const text = await fs.readFile(join(agent.dir, 'state', 'journal', `${jobId}.journal`), 'utf8');
  return text.trim().split('\n').map((l) => JSON.parse(l) as JournalRecord);
}

/** How often `step` started in a journal (a killed and resumed step starts again). */
export const starts = (records: JournalRecord[], step: string): number =>
  records.filter((r) => r.type === 'step-started' && r.step === step).length;

/** A live move under test: its federation, job, the guest's console and boots before it. */
export interface LiveMove {
  f: Federation;
  jobId: string;
  /** The guest's console at cloud-a. */
  logA: string;
  /** Its boot lines there before the move. */
  bootsBefore: number;
  /** Its last heartbeat there when the move began. */
  hbBefore: Heartbeat;
  /** Where {@link copyChainAtCutOver} puts cloud-a's chain. */
  copy: string;
  t0: number;
}

/** The guest's sizes: `small` moves quickly (64 MiB disk), `large` pre-copies long enough to be cut mid-round (192 MiB, 160 random). */
export type GuestSize = 'small' | 'large';

/**
 * Sets up federation `n` (its VM in `slot`, for the file's teardown), waits for the guest's
 * second heartbeat at cloud-a and starts a live move to cloud-b.
 */
export async function startLiveMove(slot: { f: Federation | undefined }, n: number, size: GuestSize, o: FederationOptions = {}): Promise<LiveMove> {
  const t0 = Date.now();
  const disk = size === 'small' ? { diskMiB: 64, randomMiB: 16 } : { diskMiB: 192, randomMiB: 160 };
  const f = (slot.f = await setUpFederation(n, { ...disk, ...o }));
  const logA = consoleA(f);
  await waitForHeartbeat(logA, 2, 60_000);
  const bootsBefore = boots(logA);
  const hbBefore = lastHeartbeat(logA);
  const { jobId } = await f.a.api.startMigration({ vm: f.vm, to: 'cloud-b', addresses: [f.eid], mode: 'live' });
  return { f, jobId, logA, bootsBefore, hbBefore, copy: join(f.dir, 'at-cut-over.raw'), t0 };
}

/**
 * Copies cloud-a's chain as the guest saw it at the cut-over (the guest saved, its chain no
 * longer written: call at `transfer` or later, before the commit) to `move.copy`; returns the
 * guest's last heartbeat at cloud-a.
 */
export async function copyChainAtCutOver(move: LiveMove): Promise<Heartbeat> {
  const files = await diskFiles(move.f, 'cloud-a');
  expect(files).toHaveLength(1);
  await run('qemu-img', ['convert', '-U', '-O', 'raw', files[0]!, move.copy]);
  return lastHeartbeat(move.logA);
}

/** The action that copies the chain when `transfer` starts; `at.hb` is the guest's last heartbeat at cloud-a then. */
export function copyAtTransfer(move: LiveMove): { action: FaultAction; at: { hb?: Heartbeat } } {
  const at: { hb?: Heartbeat } = {};
  return { at, action: [(e) => e.type === 'step-started' && e.step === 'transfer', async () => { at.hb = await copyChainAtCutOver(move); }] };
}

/** Waits for both sides of the move to end; logs the outcome under `what`. */
export async function finish(move: LiveMove, what: string, sourceTimeoutMs = 600_000): Promise<{ job: JobStatus; target: JobStatus | 'unknown' }> {
  const job = await waitForEnd(move.f.a, move.jobId, sourceTimeoutMs);
  const target = await waitForTargetEnd(move.f, move.jobId, 300_000);
  console.info(`${what}: source ${job.state}${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}, `
    + `target ${target === 'unknown' ? 'no job' : `${target.state}${target.error ? ` (${target.error.code})` : ''}`}`);
  return { job, target };
}

/**
 * Checks a live move that completed: the source job completed live, the guest goes on at
 * cloud-b after `lastA` (its counter and uptime continue, no boot line there), the VM is gone
 * from cloud-a and runs on one image at cloud-b that, with a copy taken (`compare`), is
 * byte-identical to cloud-a's chain at the cut-over; and the invariant holds with the VM at cloud-b.
 */
export async function expectLiveAtB(move: LiveMove, job: JobStatus, lastA: Heartbeat, o: { compare: boolean }): Promise<void> {
  const { f } = move;
  expect(job.error).toBeUndefined();
  expect(job.state).toBe('completed');
  expect((job.results['commit'] as { mode: string }).mode).toBe('live');
  const hbB = await waitForHeartbeat(consoleB(f), lastA.n + 1, 60_000);
  expect(lastA.n).toBeGreaterThan(0);
  expect(hbB[0]!.n).toBeGreaterThan(lastA.n);
  expect(hbB[0]!.uptime).toBeGreaterThan(lastA.uptime);
  expect(readFileSync(consoleB(f), 'latin1')).not.toContain('INTERCLOUD-GUEST-UP');
  if (o.compare) await expectMovedTo(f, move.copy);
  else {
    expect(await domState(f.s, 'cloud-a', f.vm)).toBe('absent');
    expect(await assertInvariant(f)).toBe('cloud-b');
  }
}

/**
 * The VM is gone from cloud-a and runs at cloud-b on one flat image byte-identical to `copy`
 * (what its disk held at the cut-over); the invariant holds with the VM at cloud-b.
 */
export async function expectMovedTo(f: Federation, copy: string): Promise<void> {
  expect(await domState(f.s, 'cloud-a', f.vm)).toBe('absent');
  expect(await domState(f.s, 'cloud-b', f.vm)).toBe('running');
  const filesB = await diskFiles(f, 'cloud-b');
  expect(filesB).toHaveLength(1);
  await run('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'raw', copy, filesB[0]!]);
  expect(await assertInvariant(f)).toBe('cloud-b');
}

/**
 * Checks the end of a move that may complete or compensate (a server killed under it): either
 * way the VM runs in exactly one cloud. Completed: live, at cloud-b, the chain copied at the
 * cut-over (`copied`) and byte-identical to cloud-b's disk, the guest going on there with no
 * boot line. Compensated: never committed, the guest runs on at cloud-a with no new boot,
 * nothing at cloud-b.
 */
export async function expectOneCloud(move: LiveMove, job: JobStatus, copied: boolean): Promise<void> {
  const { f } = move;
  expect(['completed', 'compensated']).toContain(job.state);
  const where = await assertInvariant(f);
  if (job.state === 'completed') {
    expect(where).toBe('cloud-b');
    expect((job.results['commit'] as { mode: string }).mode).toBe('live');
    expect(copied).toBe(true);
    const filesB = await diskFiles(f, 'cloud-b');
    expect(filesB).toHaveLength(1);
    await run('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'raw', move.copy, filesB[0]!]);
    await waitForHeartbeat(consoleB(f), lastHeartbeat(move.logA).n + 1, 60_000);
    expect(readFileSync(consoleB(f), 'latin1')).not.toContain('INTERCLOUD-GUEST-UP');
  } else {
    expect(where).toBe('cloud-a');
    expect(job.completedSteps).not.toContain('commit');
    // The guest goes on at cloud-a. Resumed from its saved state, QEMU starts again and the demo
    // VM's console log (append='off') begins anew: then no boot line may be in it at all, and its
    // heartbeat counter goes on past where it was; else its boot lines are the ones before the move.
    await waitForHeartbeat(move.logA, move.hbBefore.n + 1, 60_000);
    const rewritten = !heartbeats(readFileSync(move.logA, 'latin1')).some((h) => h.n <= move.hbBefore.n);
    expect(boots(move.logA)).toBe(rewritten ? 0 : move.bootsBefore);
    expect(await domState(f.s, 'cloud-b', f.vm)).toBe('absent');
  }
}

/** A shared server a test kills by its pid file and brings back with `scripts/services up NAME`. */
export interface KilledServer {
  /** For the log: whose server (`cloud-b broker`). */
  what: string;
  pidFile: string;
  /** The `scripts/services` name that starts it again. */
  service: string;
  /** Runs while it is down, before it is started again (what must go on without it). */
  whileDown?: (move: LiveMove) => Promise<void>;
}

/**
 * Where a {@link KilledServer} dies in a live move: the guest's size, the event that starts the
 * kill action, and what that action waits for after it (the kill follows at once).
 */
export interface KillPoint {
  /** For the log: `mid-round`, `in the save`. */
  what: string;
  size: GuestSize;
  when: (e: ApiEvent) => boolean;
  /** Waits, from the event, for the moment the server dies (none: at the event). */
  until?: (move: LiveMove) => Promise<void>;
}

/** Polls `ready` every 10 ms until it is true; fails after 60 s with `what`. */
async function pollUntil(what: string, ready: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 60_000; !(await ready());) {
    if (Date.now() > deadline) throw new Error(`never saw ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** At 20% of a pre-copy round (a guest large enough to be cut there). */
export const MID_ROUND: KillPoint = { what: 'mid-round', size: 'large', when: midRound(0.2) };

/**
 * In the save: the guest paused at `stop-source`, `transfer` begun and `virsh save` writing its
 * state file at cloud-a (the file is there).
 */
export const IN_THE_SAVE: KillPoint = {
  what: 'in the save', size: 'small', when: (e) => e.type === 'step-started' && e.step === 'transfer',
  until: async ({ f }) => {
    const stateFile = join(f.s.libvirt.instances['cloud-a']!.poolPath, `${f.vm}.state`);
    await pollUntil(`the state file '${stateFile}'`, async () => existsSync(stateFile));
  },
};

/** In the last transfer: the saved state a third on its way to cloud-b. */
export const IN_THE_LAST_TRANSFER: KillPoint = { what: 'in the last transfer', size: 'small', when: midLastTransfer('state', 0.3) };

/** In the restore: a domain of the VM's name has appeared at cloud-b (`virsh restore` made it). */
export const IN_THE_RESTORE: KillPoint = {
  what: 'in the restore', size: 'small', when: (e) => e.type === 'step-started' && e.step === 'transfer',
  until: async ({ f }) => { await pollUntil(`a domain '${f.vm}' at cloud-b`, async () => (await domState(f.s, 'cloud-b', f.vm)) !== 'absent'); },
};

/** A server to kill, and where in the move. */
export interface Kill {
  server: KilledServer;
  point: KillPoint;
}

/**
 * One live move (federation `n`) with each of `kills` in turn: its server killed (SIGKILL) at its
 * point and started again, the next kill waiting until the one before it has its server back.
 * cloud-a's chain (listed when the last transfer starts, before any kill) is copied. Checks the
 * move ended in exactly one cloud ({@link expectOneCloud}) and, when it completed, that every
 * kill happened (a compensated move may end before the later points); returns the move, its
 * source job and how long each server was down (ms; 0: not killed).
 */
export async function serversKilledAt(slot: { f: Federation | undefined }, n: number, kills: Kill[]): Promise<{ move: LiveMove; job: JobStatus; down: number[] }> {
  const move = await startLiveMove(slot, n, kills.some((k) => k.point.size === 'large') ? 'large' : 'small');
  const down = kills.map(() => 0);
  const at: { hb?: Heartbeat } = {};
  let listed: Promise<string[]> | undefined;
  const copy = async (): Promise<void> => {
    const files = await listed!;
    expect(files).toHaveLength(1);
    await run('qemu-img', ['convert', '-U', '-O', 'raw', files[0]!, move.copy]);
    at.hb = lastHeartbeat(move.logA);
  };
  let previous: Promise<void> = Promise.resolve();
  const kill = (i: number) => async (): Promise<void> => {
    const { server, point } = kills[i]!;
    const done = previous.then(async () => {
      // cloud-a's chain is listed before its libvirtd may die: the copy itself needs no libvirtd.
      if (listed) await listed;
      await point.until?.(move);
      await killService(server.pidFile);
      const t = Date.now();
      console.info(`${server.what} killed ${point.what} at ${new Date(t).toISOString()}`);
      try {
        await server.whileDown?.(move);
      } finally {
        // Started again whatever the check found: the next kill and the files after this one need it.
        await serviceUp(server.service);
        down[i] = Date.now() - t;
      }
    });
    previous = done.catch(() => undefined);
    await done;
  };
  const atTransfer = (e: ApiEvent): boolean => e.type === 'step-started' && e.step === 'transfer';
  await follow(move.f, move.jobId, [
    [atTransfer, async () => { listed = diskFiles(move.f, 'cloud-a'); await copy(); }],
    ...kills.map((k, i): FaultAction => [k.point.when, kill(i)]),
  ]);
  expect(down[0]).toBeGreaterThan(0);
  const what = kills.map((k, i) => `${k.server.what} killed ${k.point.what} (down ${down[i]} ms)`).join(', then ');
  const { job } = await finish(move, what);
  if (job.state === 'completed') expect(down.every((d) => d > 0)).toBe(true);
  await expectOneCloud(move, job, at.hb !== undefined);
  logDuration(move, what);
  return { move, job, down };
}

/** Logs how long the test took and the machine's load. */
export function logDuration(move: LiveMove, what: string): void {
  console.info(`${what}: ${((Date.now() - move.t0) / 1000).toFixed(0)} s; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}
