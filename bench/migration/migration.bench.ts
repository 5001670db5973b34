/**
 * A cold migration of a VM with a 1 GiB disk, end to end through two real agents (local API
 * `startMigration` → job completed), next to doing it by hand in the same run: stop the source
 * VM (`virsh shutdown`, forced off after the same timeout the agent uses), `scp` its disk image
 * from the loopback sshd into cloud-b's pool, `virsh define` + `virsh start` in cloud-b.
 * Three disks: random data (~1000 MiB of random bytes), sparse (only the boot files
 * allocated) and real (a 2112 MiB disk whose tail holds bench/transfer's Debian 12 root image,
 * `--real-image`, built by bench/transfer/real-image.sh when missing). Migration and by-hand runs
 * alternate; each case runs `--runs` times.
 *
 * Printed per run: both times and the ratio, the VM's downtime (source stopped → target
 * running, from the jobs' step results, and the gap between the guest's last heartbeat at the
 * source and its first at the target), bytes over the wire, peak RSS of both agents and the
 * load average. The agents run as installed (tsc's build, the systemd unit's Node flags; see
 * modes.bench.ts). Needs root; runs `scripts/services up` itself.
 *
 *   npx tsx bench/migration/migration.bench.ts [--runs 2] [--cases random,sparse,real] [--keep] [--real-image PATH]
 *     [--persistent] [--chunk-mib N] [--window N] [--shutdown-timeout-ms 3000] [--hv ssh|local]
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
import { coldByHand, type MoveResult } from './by-hand.js';
import { HB, HeartbeatWatch, MiB, heartbeatGapMs, load, median, option, peakRss, resetPeakRss, secs, sleep } from './measure.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => option(argv, name, dflt);
const RUNS = Number(opt('runs', '2'));
const CASES = opt('cases', 'random,sparse').split(',') as Kase[];
const REAL_IMAGE = opt('real-image', '/var/tmp/intercloud-bench-transfer/r-debian12.raw');
const SHUTDOWN_TIMEOUT_MS = Number(opt('shutdown-timeout-ms', '3000'));
const DISK_MIB = Number(opt('disk-mib', '1024'));
/** The real case's disk: the 2 GiB root image after the 64 MiB of boot files. */
const REAL_DISK_MIB = 2112;
type Kase = 'random' | 'sparse' | 'real';
const RANDOM_MIB = Number(opt('random-mib', String(DISK_MIB - 24)));
const CHUNK_MIB = Number(opt('chunk-mib', '0'));
const WINDOW = Number(opt('window', '0'));
const HV_MODE = opt('hv', 'ssh');

const s = loadServicesFile();
const lvB = s.libvirt.instances['cloud-b']!;

async function makeVm(name: string, kase: Kase, consoleLog: string): Promise<string> {
  await removeVm(s, 'cloud-a', name);
  await removeVm(s, 'cloud-b', name);
  await fs.rm(consoleLog, { force: true });
  const { diskPath } = await createDemoVm(s, 'cloud-a', {
    name, mac: '52:54:00:1c:00:b1', diskId: `${name}-${Date.now()}`, consoleLog,
    diskMiB: kase === 'real' ? REAL_DISK_MIB : DISK_MIB,
    ...(kase === 'random' ? { randomMiB: RANDOM_MIB } : {}),
    ...(kase === 'real' ? { tailImage: REAL_IMAGE } : {}),
  });
  await waitForText(consoleLog, HB, 120_000);
  return diskPath;
}

async function allocatedMiB(path: string): Promise<number> {
  const { stdout } = await run('du', ['-k', path]);
  return Number(stdout.split('\t')[0]) / 1024;
}

async function viaAgent(a: AgentProcess, b: AgentProcess, vm: string, targetConsole: string, sourceConsole: string): Promise<MoveResult> {
  await Promise.all([resetPeakRss(a.pid), resetPeakRss(b.pid)]);
  const srcHb = new HeartbeatWatch(() => sourceConsole);
  const dstHb = new HeartbeatWatch(() => targetConsole);
  const l0 = load();
  const t0 = performance.now();
  const { jobId } = await a.api.startMigration({ vm, to: 'cloud-b' });
  let job = await a.api.job(jobId);
  while (job.state === 'running') {
    await sleep(50);
    job = await a.api.job(jobId);
  }
  const totalMs = performance.now() - t0;
  if (job.state !== 'completed') throw new Error(`migration job ${jobId} ended '${job.state}': ${JSON.stringify(job.error)}`);
  const [rssA, rssB] = await Promise.all([peakRss(a.pid), peakRss(b.pid)]);
  await waitForText(targetConsole, HB, 60_000).catch(() => '');
  await sleep(200);
  srcHb.stop(); dstHb.stop();
  const r = job.results as Record<string, Record<string, unknown>>;
  const stoppedAt = Date.parse(String(r['stop-source']?.['stoppedAt']));
  const offerId = (job.input as { offerId?: string }).offerId;
  const targetJob = (await b.api.listJobs()).find((j) => (j.input as { offerId?: string } | undefined)?.offerId === offerId);
  const startedAt = Date.parse(String((targetJob?.results['start'] as { startedAt?: string } | undefined)?.startedAt));
  return {
    kind: 'agent', totalMs, downtimeMs: startedAt - stoppedAt,
    guestGapMs: heartbeatGapMs(srcHb, dstHb), rebooted: dstHb.booted,
    wireBytes: Number(r['transfer']?.['bytesSent'] ?? NaN), rssA, rssB, load: l0,
  };
}

/** How many times `ag` logged that its gateway is up (its XMPP session online, catalog published). */
async function gatewayUps(ag: AgentProcess): Promise<number> {
  return (await fs.readFile(ag.logFile, 'utf8').catch(() => '')).split('"gateway up"').length - 1;
}

function line(r: MoveResult): string {
  const rss = r.rssA !== undefined ? `  peak RSS a/b ${r.rssA.toFixed(0)}/${r.rssB!.toFixed(0)} MiB` : '';
  return `    ${r.kind.padEnd(8)} ${secs(r.totalMs).padStart(7)} s  downtime ${secs(r.downtimeMs)} s  guest heartbeat gap ${r.guestGapMs === undefined ? '?' : secs(r.guestGapMs)} s  wire ${(r.wireBytes / MiB).toFixed(1)} MiB${rss}  load ${r.load}`;
}

async function main(): Promise<void> {
  // One federation at a time on this machine (the agents' XMPP and AMQP names are fixed).
  if (CASES.includes('real')) execFileSync('sh', [join(REPO, 'bench/transfer/real-image.sh'), REAL_IMAGE], { stdio: 'inherit' });
  const unlock = await lockFederation({ timeoutS: 1800 });
  execFileSync(join(REPO, 'scripts/services'), ['up'], { stdio: ['ignore', 'ignore', 'inherit'] });
  // The agents run as installed (tsc's build, no tsx, no source maps): their memory and CPU are an operator's.
  await buildInstalledAgent();
  const dir = join(s.stateDir, 'bench-migration');
  await fs.rm(dir, { recursive: true, force: true });
  const a = new AgentProcess('cloud-a', join(dir, 'cloud-a'));
  const b = new AgentProcess('cloud-b', join(dir, 'cloud-b'));
  const persistent = argv.includes('--persistent');
  for (const ag of [a, b]) {
    const file = await writeAgentConfig(s, ag.cloud, ag.dir, { shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS, persistentTransfers: persistent });
    // Transfer tuning (agent config `amqp.chunkBytes` / `amqp.window`), when asked for.
    const tuning = [CHUNK_MIB ? `chunkBytes: ${CHUNK_MIB * MiB}` : '', WINDOW ? `window: ${WINDOW}` : ''].filter(Boolean).join(', ');
    if (tuning) await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replace(/^amqp: \{ (.*) \}$/m, `amqp: { $1, ${tuning} }`));
    // `--hv local`: the adapter runs virsh/qemu-img here instead of over the loopback sshd (a
    // gateway on its hypervisor host), as the by-hand path does.
    if (HV_MODE === 'local') await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replace(/^ {4}ssh: .*\n/m, ''));
  }
  const summary: Record<string, { agent: number[]; hand: number[] }> = {};
  process.stdout.write(`bench/migration: ${DISK_MIB} MiB disk, ${RUNS} run(s) per case, persistentTransfers ${persistent}, adapter over ${HV_MODE === 'local' ? 'local commands' : 'ssh'}${CHUNK_MIB ? `, chunk ${CHUNK_MIB} MiB` : ''}${WINDOW ? `, window ${WINDOW}` : ''}; 2 cores shared with other engineers (load average 1/5/15 min shown per run)\n`);
  try {
    await Promise.all([a.start(180_000), b.start(180_000)]);
    // Both gateways online in the directory before discovery looks for cloud-b.
    await Promise.all([a, b].map((ag) => waitForText(ag.logFile, '"gateway up"', 180_000)));
    for (const kase of CASES) {
      summary[kase] = { agent: [], hand: [] };
      for (let i = 0; i < RUNS; i++) {
        if (summary[kase].agent.length > 0 || kase !== CASES[0]) {
          // The target's catalog entry shows its free capacity as of its last job (the VM that
          // came in): a restarted agent publishes the capacity freed since.
          await b.stop();
          const ups = await gatewayUps(b);
          await b.start(180_000);
          while ((await gatewayUps(b)) === ups) await sleep(100);
        }
        const vm = `bench-mig-${kase}`;
        const consoleA = join(a.dir, 'consoles', `${vm}-src.log`);
        const consoleB = join(b.dir, 'consoles', `${vm}-serial0.log`);
        // Migration through the agents.
        let diskPath = await makeVm(vm, kase, consoleA);
        const alloc = await allocatedMiB(diskPath);
        const diskMiB = kase === 'real' ? REAL_DISK_MIB : DISK_MIB;
        process.stdout.write(`  ${kase} #${i + 1}: disk ${diskMiB} MiB, ${alloc.toFixed(0)} MiB allocated (${((alloc / diskMiB) * 100).toFixed(1)}%)\n`);
        await fs.rm(consoleB, { force: true });
        const ra = await viaAgent(a, b, vm, consoleB, consoleA);
        process.stdout.write(line(ra) + '\n');
        // By hand, from a fresh VM with the same kind of disk.
        diskPath = await makeVm(vm, kase, consoleA);
        const handConsole = join(b.dir, 'consoles', `${vm}-hand.log`);
        const rh = await coldByHand(s, { vm, diskPath, sourceConsole: consoleA, targetConsole: handConsole }, SHUTDOWN_TIMEOUT_MS);
        process.stdout.write(line(rh) + '\n');
        process.stdout.write(`    ratio agent / by hand: ${(ra.totalMs / rh.totalMs).toFixed(2)}×  (downtime ${(ra.downtimeMs / rh.downtimeMs).toFixed(2)}×)\n`);
        summary[kase].agent.push(ra.totalMs);
        summary[kase].hand.push(rh.totalMs);
        await removeVm(s, 'cloud-a', vm);
        await removeVm(s, 'cloud-b', vm);
        // The by-hand copy was never a volume of the pool (no refresh): remove the file itself.
        await fs.rm(join(lvB.poolPath, `${vm}-disk0.img`), { force: true });
      }
    }
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  process.stdout.write('summary (median of runs; of two, their mean):\n');
  const med = median;
  for (const [kase, v] of Object.entries(summary)) {
    const aim = kase === 'random' ? '≤ 1.20×' : kase === 'real' ? '≤ 0.50×, i.e. ≥ 2× the move by hand (issue 16)' : '< 1.00×';
    const ratios = v.agent.map((x, i) => (x / v.hand[i]!).toFixed(2)).join(', ');
    process.stdout.write(`  ${kase.padEnd(6)} agent ${secs(med(v.agent))} s, by hand ${secs(med(v.hand))} s, ratio ${(med(v.agent) / med(v.hand)).toFixed(2)}× (per run ${ratios}; aim ${aim})\n`);
  }
  if (!argv.includes('--keep')) await fs.rm(dir, { recursive: true, force: true });
  await unlock();
}

await main();
