/**
 * `intercloud migrate`, `jobs`, `job`, `cancel`: one-off work through the running agent's
 * local API.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { LocalApiClient } from '../../api/index.js';
import type { JobStatus, SequencerEvent } from '../../sequencer/index.js';
import { EXIT, printJson, usageError } from '../output.js';

/** Default socket of the local API (the systemd unit's RuntimeDirectory). */
export const DEFAULT_SOCKET = '/run/intercloud/agent.sock';

function client(cmd: Command): LocalApiClient {
  const opts = cmd.optsWithGlobals<{ socket?: string }>();
  return new LocalApiClient(opts.socket ?? process.env['INTERCLOUD_SOCKET'] ?? DEFAULT_SOCKET);
}

/** Registers the job commands. */
export function registerJobCommands(program: Command): void {
  program
    .command('migrate')
    .description('migrate a VM of this cloud to another cloud')
    .argument('<vm>', 'the VM name in this cloud')
    .option('--to <cloud>', 'target cloud id')
    .option('--auto', 'let discovery choose the target')
    .option('--region <region>', 'only clouds in this region')
    .option('--dry-run', 'discover, verify and negotiate only; move nothing')
    .option('--address <ip...>', "the VM's IP addresses (EIDs) to keep reachable after the move")
    .option('--mode <mode>', 'cold (stop, copy, boot), warm (copy while running, short stop, boot) or live (copy while running, memory and devices kept: no reboot)')
    .option('--fallback <mode>', 'the lowest mode accepted when --mode cannot be used by both clouds')
    .option('--no-wait', 'print the job id and return at once')
    .option('--json', 'print the final job status as json')
    .option('--socket <path>', 'local API socket of the agent', undefined)
    .action(async (vm: string, o: { to?: string; auto?: boolean; region?: string; dryRun?: boolean; address?: string[]; mode?: string; fallback?: string; wait: boolean; json?: boolean }, cmd: Command) => {
      if (!o.to === !o.auto) {
        throw usageError('give exactly one of --to CLOUD or --auto');
      }
      const modes = ['cold', 'warm', 'live'] as const;
      const modeOf = (flag: string, v: string | undefined): (typeof modes)[number] | undefined => {
        if (v === undefined) return undefined;
        if (!(modes as readonly string[]).includes(v)) throw usageError(`${flag} must be cold, warm or live, not '${v}'`);
        return v as (typeof modes)[number];
      };
      const mode = modeOf('--mode', o.mode);
      const fallback = modeOf('--fallback', o.fallback);
      if (fallback !== undefined && mode === undefined) throw usageError('--fallback needs --mode');
      const api = client(cmd);
      const { jobId } = await api.startMigration({
        vm, ...(o.to ? { to: o.to } : { auto: true }), ...(o.region ? { region: o.region } : {}), ...(o.dryRun ? { dryRun: true } : {}),
        ...(o.address ? { addresses: o.address } : {}), ...(mode ? { mode } : {}), ...(fallback ? { fallback } : {}),
      });
      if (!o.wait) { if (o.json) printJson({ jobId }); else process.stdout.write(`${jobId}\n`); return; }
      // A bar on a terminal; on a pipe or log file, a line at every quarter of the bytes.
      const bar = o.json ? undefined : new ProgressLine(process.stderr.isTTY === true);
      await api.follow(jobId, (e) => {
        if (!o.json) describeEvent(e, bar);
      });
      bar?.end();
      const status = await api.job(jobId);
      if (o.json) printJson(status);
      else printSummary(status);
      process.exitCode = status.state === 'completed' ? EXIT.ok : EXIT.failed;
    });

  program
    .command('jobs')
    .description('list the jobs of the running agent')
    .option('--json', 'print json')
    .option('--socket <path>', 'local API socket of the agent')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const jobs = await client(cmd).listJobs();
      if (o.json) { printJson(jobs); return; }
      for (const j of jobs) {
        process.stdout.write(`${j.jobId.padEnd(40)} ${j.kind.padEnd(16)} ${j.state.padEnd(14)} ${j.currentStep ?? j.completedSteps.at(-1) ?? ''}\n`);
      }
    });

  program
    .command('job')
    .description('show one job')
    .argument('<id>')
    .option('--json', 'print json')
    .option('--socket <path>', 'local API socket of the agent')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const j = await client(cmd).job(id);
      if (o.json) printJson(j);
      else printSummary(j);
    });

  program
    .command('cancel')
    .description('cancel a job (too late once the target has committed)')
    .argument('<id>')
    .option('--json', 'print json')
    .option('--socket <path>', 'local API socket of the agent')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const r = await client(cmd).cancel(id);
      if (o.json) printJson(r);
      else process.stdout.write(r.accepted ? `cancelling ${id}\n` : `cannot cancel ${id}: it is ${r.state === 'running' ? 'past the point of no return' : r.state}\n`);
      process.exitCode = r.accepted ? EXIT.ok : EXIT.failed;
    });
}

/**
 * The peers' clock offsets as the running agent measures them (XEP-0202 through its XMPP
 * session), for `intercloud time`; none when no agent runs on `INTERCLOUD_SOCKET`.
 */
export async function runningAgentPeerOffsets(): Promise<Array<{ peer: string; offsetMs: number; roundTripMs: number; measuredAt: number }>> {
  try {
    return await new LocalApiClient(process.env['INTERCLOUD_SOCKET'] ?? DEFAULT_SOCKET).peerTimes();
  } catch (err) {
    if (err instanceof IntercloudError && err.code === 'API_UNREACHABLE') return [];
    throw err;
  }
}

/** Creates a new offer/job id. */
export function newJobId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/** Progress on stderr: bytes, rate, ETA — a redrawn bar on a terminal, quarter lines otherwise. */
class ProgressLine {
  private t0 = Date.now();
  private shown = 0;
  private quarter = 0;
  constructor(private readonly tty: boolean) {}
  update(done: number, total: number): void {
    if (done < this.shown) return; // never backwards
    this.shown = done;
    const s = (Date.now() - this.t0) / 1000;
    const rate = s > 0 ? done / s : 0;
    const eta = rate > 0 ? (total - done) / rate : 0;
    const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
    const text = `${pct}% ${mib(done)}/${mib(total)} MiB ${mib(rate)} MiB/s ETA ${eta.toFixed(0)}s`;
    if (this.tty) {
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      process.stderr.write(`\r  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text} `);
    } else if (Math.floor(pct / 25) > this.quarter) {
      this.quarter = Math.floor(pct / 25);
      process.stderr.write(`    ${text}\n`);
    }
  }
  end(): void {
    if (this.tty && this.shown > 0) process.stderr.write('\n');
    this.shown = 0;
    this.quarter = 0;
    this.t0 = Date.now();
  }
}

function mib(n: number): string {
  return (n / 1048576).toFixed(1);
}

function describeEvent(e: SequencerEvent | { type: 'status'; status: JobStatus }, bar: ProgressLine | undefined): void {
  switch (e.type) {
    case 'step-started':
      bar?.end();
      process.stderr.write(`  ${e.step}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}…\n`);
      break;
    case 'progress': {
      const d = e.detail as { bytesDone?: number; bytesTotal?: number };
      if (bar && typeof d.bytesDone === 'number' && typeof d.bytesTotal === 'number') bar.update(d.bytesDone, d.bytesTotal);
      break;
    }
    case 'step-failed':
      process.stderr.write(`  ${e.step} failed [${e.error.code}]: ${e.error.message}\n`);
      break;
    case 'compensating':
      process.stderr.write(`  undoing ${e.step}\n`);
      break;
    default:
      break;
  }
}

/** The mode and downtime a committed move recorded (issue 15: source stopped → target running). */
function downtimeLines(j: JobStatus): string[] {
  const c = j.results['commit'] as { mode?: string; downtimeMs?: number } | undefined;
  const pre = j.results['pre-copy'] as { rounds?: number } | undefined;
  if (c?.downtimeMs === undefined) return [];
  return [
    `mode      ${c.mode ?? 'cold'}${pre?.rounds ? ` (${pre.rounds} pre-copy rounds)` : ''}`,
    `downtime  ${(c.downtimeMs / 1000).toFixed(2)} s`,
  ];
}

function printSummary(j: JobStatus): void {
  const lines = [
    `job       ${j.jobId} (${j.kind})`,
    `state     ${j.state}`,
    `steps     ${j.completedSteps.join(' → ') || '-'}`,
    ...(j.error ? [`error     [${j.error.code}] ${j.error.message}`] : []),
    ...downtimeLines(j),
    `started   ${j.startedAt}`,
    `updated   ${j.updatedAt}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
