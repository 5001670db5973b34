/**
 * `intercloud storage subcontract|status|verify|end|put`: storage subcontracts (issue 14) through
 * the running agent's local API.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { LocalApiClient } from '../../api/index.js';
import type { SubcontractView } from '../../daemon/storage-federation.js';
import { EXIT, printJson, usageError } from '../output.js';
import { DEFAULT_SOCKET } from './jobs.js';

function client(cmd: Command): LocalApiClient {
  const opts = cmd.optsWithGlobals<{ socket?: string }>();
  return new LocalApiClient(opts.socket ?? process.env['INTERCLOUD_SOCKET'] ?? DEFAULT_SOCKET);
}

/** A whole number option within bounds, or a usage error naming the flag. */
function whole(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) throw usageError(`${flag} must be a whole number from ${min} to ${max}, got '${v}'`);
  return n;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Registers the storage commands. */
export function registerStorageCommands(program: Command): void {
  const storage = program.command('storage').description('storage subcontracts: copies of a bucket kept by another cloud (issue 14)');

  storage
    .command('subcontract')
    .description('subcontract a bucket of this cloud to another cloud; returns once the peer made its bucket')
    .argument('<bucket>', "the bucket in this cloud's object store")
    .option('--to <cloud>', 'the cloud to subcontract to')
    .option('--auto', 'let the signed catalog choose the cloud')
    .option('--replicas <n>', 'copies the peer keeps of each object')
    .option('--region <region...>', 'regions the copies may live in (at least one)')
    .option('--ack <mode>', 'when a write through the agent is answered: async | sync | quorum')
    .option('--capacity <GiB>', 'logical capacity (one replica), GiB', '1')
    .option('--days <n>', 'how long the subcontract lasts', '30')
    .option('--prefix <prefix>', 'only the keys under this prefix')
    .option('--at-end <action>', 'what happens to the copies at the end: delete | return', 'delete')
    .option('--source-region <region>', "the region of this cloud's store that holds the bucket (default: the first configured)")
    .option('--bandwidth <bytes/s>', 'sender bytes per second for this subcontract (0: unlimited)', '0')
    .option('--no-wait', 'print the subcontract id and return at once')
    .option('--json', 'print json')
    .option('--socket <path>', 'local API socket of the agent')
    .action(async (bucket: string, o: {
      to?: string; auto?: boolean; replicas?: string; region?: string[]; ack?: string; capacity: string; days: string; prefix?: string;
      atEnd: string; sourceRegion?: string; bandwidth: string; wait: boolean; json?: boolean;
    }, cmd: Command) => {
      if (!o.to === !o.auto) throw usageError('give exactly one of --to CLOUD or --auto');
      if (o.replicas === undefined) throw usageError('--replicas N is required: how many copies the peer keeps');
      if (!o.region?.length) throw usageError('--region R is required: the regions the copies may live in (repeat it or list several)');
      if (o.ack !== 'async' && o.ack !== 'sync' && o.ack !== 'quorum') throw usageError(`--ack must be async, sync or quorum${o.ack === undefined ? '' : `, got '${o.ack}'`}`);
      if (o.atEnd !== 'delete' && o.atEnd !== 'return') throw usageError(`--at-end must be delete or return, got '${o.atEnd}'`);
      const api = client(cmd);
      const { subcontractId, jobId } = await api.startSubcontract({
        bucket, ...(o.to ? { to: o.to } : { auto: true }), replicas: whole('--replicas', o.replicas, 1, 16)!, regions: o.region, ack: o.ack,
        capacityGiB: whole('--capacity', o.capacity, 1, 1_000_000)!, days: whole('--days', o.days, 1, 36_500)!, atEnd: o.atEnd,
        ...(o.prefix ? { prefix: o.prefix } : {}), ...(o.sourceRegion ? { sourceRegion: o.sourceRegion } : {}),
        bandwidthBytesPerSecond: whole('--bandwidth', o.bandwidth, 0, 1e12)!,
      });
      if (!o.wait) { if (o.json) printJson({ subcontractId, jobId }); else process.stdout.write(`${subcontractId}\n`); return; }
      // Active once B made its bucket (`begin` done); a refusal ends the job with its coded reason.
      for (;;) {
        const j = await api.job(jobId);
        if (j.completedSteps.includes('begin') || j.state !== 'running') {
          const view = await api.subcontract(subcontractId);
          if (o.json) printJson(view);
          else if (j.state === 'running') process.stdout.write(`${subcontractId}\n`);
          else printView(view);
          process.exitCode = j.state === 'running' ? EXIT.ok : EXIT.failed;
          if (j.state !== 'running' && !o.json) process.stderr.write(`subcontract ${subcontractId} did not begin: ${j.error ? `[${j.error.code}] ${j.error.message}` : j.state}\n`);
          return;
        }
        await sleep(250);
      }
    });

  storage
    .command('status')
    .description('the state of one subcontract (lag, failures, bytes moved) or of all')
    .argument('[id]', 'the subcontract id')
    .option('--objects', 'list every object with its state (PENDING / COMPLETED / FAILED and why)')
    .option('--json', 'print json')
    .option('--socket <path>', 'local API socket of the agent')
    .action(async (id: string | undefined, o: { objects?: boolean; json?: boolean }, cmd: Command) => {
      const api = client(cmd);
      if (id === undefined) {
        const all = await api.subcontracts();
        if (o.json) { printJson(all); return; }
        if (all.length === 0) { process.stdout.write('no storage subcontracts\n'); return; }
        for (const v of all) {
          const r = v.replication;
          process.stdout.write(`${v.subcontractId.padEnd(18)} ${v.side.padEnd(4)} ${(v.peer ?? '-').padEnd(10)} ${v.state.padEnd(10)} ${(v.step ?? '-').padEnd(12)} ${v.source.bucket}`
            + `${r ? `  pending ${r.objects.pending} (${r.pendingBytes} B) failed ${r.objects.failed} completed ${r.objects.completed}` : ''}\n`);
        }
        return;
      }
      const v = await api.subcontract(id, { objects: o.objects === true });
      if (o.json) printJson(v);
      else printView(v);
    });

  storage
    .command('verify')
    .description("audit the peer's copy (presence, size, sha-256) and send again what is missing or corrupt; waits for the repair")
    .argument('<id>', 'the subcontract id')
    .option('--deep', 'the peer reads and hashes every object instead of trusting its metadata')
    .option('--wait <seconds>', 'longest to wait for the repair', '300')
    .option('--json', 'print json')
    .option('--socket <path>', 'local API socket of the agent')
    .action(async (id: string, o: { deep?: boolean; wait: string; json?: boolean }, cmd: Command) => {
      const out = await client(cmd).verifySubcontract(id, { deep: o.deep === true, waitSeconds: whole('--wait', o.wait, 0, 3600)! });
      const r = out.report;
      const pending = out.status.replication?.objects.pending ?? 0;
      if (o.json) printJson(out);
      else {
        process.stdout.write(`checked ${r.checked}: ${r.missing.length} missing${r.missing.length ? ` (${r.missing.slice(0, 10).join(', ')})` : ''}, `
          + `${r.corrupt.length} corrupt${r.corrupt.length ? ` (${r.corrupt.slice(0, 10).join(', ')})` : ''}, ${r.requeued} sent again\n`);
        printView(out.status);
      }
      process.exitCode = pending === 0 && (out.status.replication?.objects.failed ?? 0) === 0 ? EXIT.ok : EXIT.failed;
    });

  storage
    .command('end')
    .description("end a subcontract now: the peer deletes (or returns) its copies by the terms, and that is verified")
    .argument('<id>', 'the subcontract id')
    .option('--no-wait', 'return once the end is asked')
    .option('--json', 'print json')
    .option('--socket <path>', 'local API socket of the agent')
    .action(async (id: string, o: { wait: boolean; json?: boolean }, cmd: Command) => {
      const api = client(cmd);
      let v = await api.endSubcontract(id);
      while (o.wait && v.state === 'running') {
        await sleep(250);
        v = await api.subcontract(id);
      }
      if (o.json) printJson(v);
      else printView(v);
      process.exitCode = !o.wait || v.state === 'completed' || v.state === 'cancelled' ? EXIT.ok : EXIT.failed;
    });

  storage
    .command('put')
    .description('write FILE as object KEY of the subcontracted bucket through the agent; answers when the ack mode promises (sync: the peer persisted and verified it)')
    .argument('<id>', 'the subcontract id')
    .argument('<key>', 'the object key (inside the subcontract\'s prefix)')
    .argument('<file>', 'the file to write')
    .option('--json', 'print json')
    .option('--socket <path>', 'local API socket of the agent')
    .action(async (id: string, key: string, file: string, o: { json?: boolean }, cmd: Command) => {
      let size: number;
      try {
        const st = await fs.stat(file);
        if (!st.isFile()) throw new Error('not a regular file');
        size = st.size;
      } catch (err) {
        throw usageError(`cannot read FILE '${file}': ${(err as Error).message}`, err);
      }
      const h = createHash('sha256');
      for await (const c of createReadStream(file)) h.update(c as Buffer);
      const sha256 = h.digest('hex');
      const out = await client(cmd).putObject(id, key, file, { sizeBytes: size, sha256 });
      if (o.json) printJson({ key, sizeBytes: size, sha256, ...out });
      else process.stdout.write(`${key}: ${size} bytes, etag ${out.etag}, ${out.replicated ? 'persisted and verified at the peer' : 'stored here, copy queued'} (ack ${out.ack})\n`);
    });
}

function age(s: number): string {
  return s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

function printView(v: SubcontractView): void {
  const r = v.replication;
  const lines = [
    `subcontract ${v.subcontractId} (${v.side === 'out' ? `to ${v.peer ?? '?'}` : `from ${v.peer ?? '?'}`})`,
    `state       ${v.state}${v.step ? ` (${v.step})` : ''}`,
    `source      ${v.source.bucket}${v.source.prefix ? `/${v.source.prefix}` : ''}${v.source.region ? ` in ${v.source.region}` : ''}`,
    `copy        ${v.target ? `${v.target.bucket} in ${v.target.region}` : '-'}, ${v.replicas} replicas, ack ${v.ack}, ends ${v.ends} (${v.atEnd})`,
    ...(v.error ? [`error       [${v.error.code}] ${v.error.message}`] : []),
    ...(r ? [
      `objects     ${r.objects.completed} completed, ${r.objects.pending} pending, ${r.objects.failed} failed`,
      `lag         ${r.objects.pending} objects, ${r.pendingBytes} bytes pending, oldest ${age(r.oldestPendingAgeSeconds)}${r.nextAttemptAt ? `, next attempt ${r.nextAttemptAt}` : ''}`,
      `moved       ${r.bytesMoved} bytes in ${r.objectsMoved} objects; last full pass ${r.lastFullPassAt ?? 'not yet'}`,
      ...r.failures.slice(0, 10).map((f) => `failed      ${f.key}: [${f.code}] ${f.message} (${f.attempts} attempts)`),
    ] : []),
  ];
  for (const o of v.objects ?? []) {
    lines.push(`  ${o.state.padEnd(9)} ${o.key} ${o.size} B${o.op === 'delete' ? ' (delete)' : ''}${o.lastError ? ` [${o.lastError.code}] ${o.lastError.message}` : ''}${o.state === 'PENDING' && o.nextAttemptAt ? ` next ${new Date(o.nextAttemptAt).toISOString()}` : ''}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}
