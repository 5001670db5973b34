/**
 * Moving a running VM (issue 15): `live`, `warm` and `cold` through two real agents, next to the
 * same moves by hand and to libvirt's own live migration between the two libvirtd instances, in
 * the same run, for a 1 GiB and an 8 GiB disk, with the guest writing its disk at a steady rate
 * (64 KiB a second, synced; `test/integration/hypervisor/writing-guest.ts`).
 *
 * Per move: total time; downtime (source paused or stopped → target running: the agents' job
 * results, libvirt's own figure for its migration); the gap a user of the VM sees between its
 * last heartbeat at cloud-a and its first at cloud-b; whether the guest rebooted at cloud-b;
 * bytes over the wire; peak RSS of the agents; the load average.
 * Aims: live downtime ≤ 3 s and 8 GiB within 20% of 1 GiB; heartbeat gap ≤ 3 s; warm total ≤ 1.5× cold.
 *
 *   npx tsx bench/migration/modes.bench.ts [--sizes 1024,8192] [--runs 1]
 *     [--kinds live,warm,cold,live-by-hand,cold-by-hand,libvirt-live] [--keep]
 *
 * The agents run as an operator installs them: tsc's build (`buildInstalledAgent`), started with
 * the systemd unit's Node flags, without tsx or source maps, which would add ~35 MiB to each.
 * Needs root; runs `scripts/services up` itself and takes the federation lock.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import {
  AgentProcess, buildInstalledAgent, createDemoVm, loadServicesFile, removeVm, waitForText, writeAgentConfig,
} from '../../scripts/local-federation.js';
import { lockFederation } from '../../scripts/federation-lock.js';
import { makeWritingGuestDisk } from '../../test/integration/hypervisor/writing-guest.js';
import { coldByHand, libvirtLiveMigration, liveByHand, type MoveResult, type MoveSubject } from './by-hand.js';
import { HB, HeartbeatWatch, MiB, cutOverPhases, heartbeatGapMs, load, median, option, peakRss, resetPeakRss, secs, sleep } from './measure.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => option(argv, name, dflt);
const KINDS = ['live', 'warm', 'cold', 'live-by-hand', 'cold-by-hand', 'libvirt-live'] as const;
type Kind = typeof KINDS[number];
const SIZES = opt('sizes', '1024,8192').split(',').map(Number);
const RUNS = Number(opt('runs', '1'));
const kinds = opt('kinds', KINDS.join(',')).split(',') as Kind[];
for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`unknown kind '${k}' (one of ${KINDS.join(', ')})`);
const SHUTDOWN_TIMEOUT_MS = 3000;
/** The writing guest's boot disk: its FAT and the region it writes, [48, 64) MiB. */
const BOOT_MIB = 64;

const s = loadServicesFile();

/** A raw image of `sizeMiB`: the writing guest's boot disk, then random bytes to the end (made once per size). */
async function template(dir: string, sizeMiB: number): Promise<string> {
  const file = join(dir, `template-${sizeMiB}.img`);
  if (await fs.stat(file).then(() => true, () => false)) return file;
  await makeWritingGuestDisk(`bench-modes-${sizeMiB}`, `${file}.tmp`, dir);
  await run('dd', ['if=/dev/urandom', `of=${file}.tmp`, 'bs=1M', `count=${sizeMiB - BOOT_MIB}`, `seek=${BOOT_MIB}`, 'conv=notrunc', 'status=none']);
  await fs.rename(`${file}.tmp`, file);
  return file;
}

/** A running copy of the template at cloud-a, heartbeating; resolves with what a move needs. */
async function bootVm(vm: string, tmpl: string, sizeMiB: number, consoles: { a: string; b: string }): Promise<MoveSubject> {
  await removeVm(s, 'cloud-a', vm);
  await removeVm(s, 'cloud-b', vm);
  await fs.rm(consoles.a, { force: true });
  await fs.rm(consoles.b, { force: true });
  const { diskPath } = await createDemoVm(s, 'cloud-a', {
    name: vm, mac: '52:54:00:1c:00:b7', diskId: vm, consoleLog: consoles.a, diskMiB: sizeMiB,
    makeBootDisk: (p) => fs.copyFile(tmpl, p),
  });
  await waitForText(consoles.a, `${HB} n=3`, 120_000);
  return { vm, diskPath, sourceConsole: consoles.a, targetConsole: consoles.b };
}

/** Milliseconds in a job's step results named `downtimeMs`, if the job reports one. */
function reportedDowntime(results: Record<string, unknown>): number | undefined {
  for (const r of Object.values(results)) {
    const d = (r as { downtimeMs?: unknown } | null)?.downtimeMs;
    if (typeof d === 'number') return d;
  }
  return undefined;
}

async function viaAgent(a: AgentProcess, b: AgentProcess, m: MoveSubject, mode: 'live' | 'warm' | 'cold'): Promise<MoveResult> {
  await Promise.all([resetPeakRss(a.pid), resetPeakRss(b.pid)]);
  const src = new HeartbeatWatch(() => m.sourceConsole);
  const dst = new HeartbeatWatch(() => m.targetConsole);
  const l0 = load();
  const t0 = performance.now();
  const { jobId } = await a.api.startMigration({ vm: m.vm, to: 'cloud-b', mode });
  let job = await a.api.job(jobId);
  while (job.state === 'running') {
    await sleep(50);
    job = await a.api.job(jobId);
  }
  const totalMs = performance.now() - t0;
  if (job.state !== 'completed') throw new Error(`${mode} migration job ${jobId} ended '${job.state}': ${JSON.stringify(job.error)}`);
  const [rssA, rssB] = await Promise.all([peakRss(a.pid), peakRss(b.pid)]);
  await waitForText(m.targetConsole, HB, 60_000).catch(() => '');
  await sleep(300);
  src.stop();
  dst.stop();
  const results = job.results as Record<string, Record<string, unknown>>;
  const offerId = (job.input as { offerId?: string }).offerId;
  const targetJob = (await b.api.listJobs()).find((j) => (j.input as { offerId?: string } | undefined)?.offerId === offerId);
  let downtimeMs = reportedDowntime(results) ?? reportedDowntime(targetJob?.results ?? {});
  if (downtimeMs === undefined) {
    // A cold job reports when the source stopped and when the target started.
    const stoppedAt = Date.parse(String(results['stop-source']?.['stoppedAt']));
    const startedAt = Date.parse(String((targetJob?.results['start'] as { startedAt?: string } | undefined)?.startedAt));
    downtimeMs = startedAt - stoppedAt;
  }
  const wireBytes = Object.values(results).reduce((n, r) => n + (typeof r?.['bytesSent'] === 'number' ? r['bytesSent'] : 0), 0);
  return {
    kind: mode, totalMs, downtimeMs, guestGapMs: heartbeatGapMs(src, dst), rebooted: dst.booted,
    wireBytes, rssA, rssB, load: l0,
    ...(mode === 'cold' ? {} : { phases: cutOverPhases(job, targetJob) }),
  };
}

function line(r: MoveResult): string {
  const rss = r.rssA !== undefined ? `  peak RSS a/b ${r.rssA.toFixed(0)}/${r.rssB!.toFixed(0)} MiB` : '';
  const gap = r.guestGapMs === undefined ? '?' : secs(r.guestGapMs);
  return `    ${r.kind.padEnd(13)} ${secs(r.totalMs).padStart(7)} s  downtime ${secs(r.downtimeMs).padStart(6)} s  heartbeat gap ${gap.padStart(6)} s  ${r.rebooted ? 'REBOOTED' : 'no reboot'}  wire ${(r.wireBytes / MiB).toFixed(0)} MiB${rss}  load ${r.load}`
    + (r.phases === undefined ? '' : `\n${' '.repeat(18)}cut-over, s: ${r.phases}`);
}

async function main(): Promise<void> {
  const unlock = await lockFederation({ timeoutS: 1800 });
  execFileSync(join(REPO, 'scripts/services'), ['up'], { stdio: ['ignore', 'ignore', 'inherit'] });
  // The agents run as installed (tsc's build, no tsx, no source maps): their memory and CPU are an operator's.
  await buildInstalledAgent();
  const dir = join(s.stateDir, 'bench-modes');
  await fs.mkdir(dir, { recursive: true });
  const a = new AgentProcess('cloud-a', join(dir, 'cloud-a'));
  const b = new AgentProcess('cloud-b', join(dir, 'cloud-b'));
  const agentKinds = kinds.filter((k): k is 'live' | 'warm' | 'cold' => k === 'live' || k === 'warm' || k === 'cold');
  const results = new Map<string, MoveResult[]>();
  process.stdout.write(`bench/migration modes: disks ${SIZES.join(', ')} MiB (random beyond the boot files), guest writing 64 KiB/s, ${RUNS} run(s); 2 cores shared (load 1/5/15 min per move)\n`);
  try {
    if (agentKinds.length > 0) {
      for (const ag of [a, b]) await writeAgentConfig(s, ag.cloud, ag.dir, { shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS });
      await Promise.all([a.start(180_000), b.start(180_000)]);
      await Promise.all([a, b].map((ag) => waitForText(ag.logFile, '"gateway up"', 180_000)));
    }
    for (const size of SIZES) {
      const tmpl = await template(dir, size);
      process.stdout.write(`  ${size} MiB disk\n`);
      for (let i = 0; i < RUNS; i++) {
        for (const kind of kinds) {
          const vm = `bench-modes-${kind}`;
          const consoles = { a: join(dir, `${vm}-a.log`), b: join(dir, `${vm}-b.log`) };
          if (agentKinds.includes(kind as 'live')) {
            // The target's catalog shows the capacity freed since the last VM arrived once restarted.
            await b.stop();
            await b.start(180_000);
            await waitForText(b.logFile, '"gateway up"', 180_000);
          }
          const m = await bootVm(vm, tmpl, size, consoles);
          // The agents write the target's console where their config says; the bench reads it there.
          const subject = agentKinds.includes(kind as 'live') ? { ...m, targetConsole: join(b.dir, 'consoles', `${vm}-serial0.log`) } : m;
          // An earlier run's console at cloud-b would count as heartbeats at once.
          await fs.rm(subject.targetConsole, { force: true });
          let r: MoveResult;
          try {
            r = kind === 'live-by-hand' ? await liveByHand(s, subject)
              : kind === 'cold-by-hand' ? await coldByHand(s, subject, SHUTDOWN_TIMEOUT_MS)
                : kind === 'libvirt-live' ? await libvirtLiveMigration(s, subject)
                  : await viaAgent(a, b, subject, kind);
          } catch (err) {
            process.stdout.write(`    ${kind.padEnd(13)} FAILED: ${(err as Error).message}\n`);
            continue;
          } finally {
            await removeVm(s, 'cloud-a', vm);
            await removeVm(s, 'cloud-b', vm);
            await fs.rm(join(s.libvirt.instances['cloud-b']!.poolPath, `${vm}-disk0.img`), { force: true });
          }
          process.stdout.write(line(r) + '\n');
          const key = `${size}/${kind}`;
          results.set(key, [...(results.get(key) ?? []), r]);
        }
      }
    }
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  const med = (size: number, kind: Kind, f: (r: MoveResult) => number | undefined): number | undefined => {
    const xs = (results.get(`${size}/${kind}`) ?? []).map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return xs.length ? median(xs) : undefined;
  };
  const fmt = (x: number | undefined): string => (x === undefined ? '—' : secs(x));
  process.stdout.write('\nsummary (median of runs), seconds: total / downtime / heartbeat gap\n');
  process.stdout.write(`  ${'kind'.padEnd(13)} ${SIZES.map((z) => `${z} MiB`.padStart(24)).join('')}\n`);
  for (const kind of kinds) {
    const cells = SIZES.map((z) => `${fmt(med(z, kind, (r) => r.totalMs))} / ${fmt(med(z, kind, (r) => r.downtimeMs))} / ${fmt(med(z, kind, (r) => r.guestGapMs))}`.padStart(24));
    process.stdout.write(`  ${kind.padEnd(13)} ${cells.join('')}\n`);
  }
  process.stdout.write('aims:\n');
  for (const z of SIZES) {
    const d = med(z, 'live', (r) => r.downtimeMs);
    const g = med(z, 'live', (r) => r.guestGapMs);
    const w = med(z, 'warm', (r) => r.totalMs);
    const c = med(z, 'cold', (r) => r.totalMs);
    process.stdout.write(`  ${z} MiB: live downtime ${fmt(d)} s (aim ≤ 3), heartbeat gap ${fmt(g)} s (aim ≤ 3), warm/cold total ${w !== undefined && c ? (w / c).toFixed(2) : '—'}× (aim ≤ 1.5)\n`);
  }
  if (SIZES.length > 1) {
    const d0 = med(SIZES[0]!, 'live', (r) => r.downtimeMs);
    const d1 = med(SIZES[SIZES.length - 1]!, 'live', (r) => r.downtimeMs);
    if (d0 && d1) process.stdout.write(`  live downtime ${SIZES[SIZES.length - 1]} MiB / ${SIZES[0]} MiB: ${(d1 / d0).toFixed(2)}× (aim ≤ 1.20)\n`);
  }
  if (!argv.includes('--keep')) await fs.rm(dir, { recursive: true, force: true });
  await unlock();
}

await main();
