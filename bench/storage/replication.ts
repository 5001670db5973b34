/**
 * Replication benchmark (issue 14, "Benchmark"): a mix of objects (1 KiB to 64 MiB, see mix.ts)
 * replicated from cloud-a's Swift to cloud-b's, by `rclone sync` between the two S3 endpoints and
 * by the replication engine (Replicator at A, serveReplicaPeer + ReplicaReceiver at B, over
 * cloud-b's real broker), in the same run, each into a fresh bucket at B:
 *
 *   npx tsx bench/storage/replication.ts [--objects N] [--total-mib M] [--lag-writes K] [--lag-interval-ms T] [--classes small,medium,large]
 *     [--batches N] [--b-requests N] [--part-concurrency N] [--part-mib N]
 *
 * Defaults: 1000 objects, 2048 MiB (the issue's size), 50 steady writes one per 200 ms, every class
 * (`--classes large` seeds and runs only the large objects of the same mix; the lag needs `small`).
 * The engine's knobs default to the agent's: `--batches` (Replicator concurrency, 4), `--b-requests`
 * (serveReplicaPeer concurrency, 4), `--part-concurrency` / `--part-mib` (the s3 adapter's at B, 2 / 16).
 * Each size class (small 1–64 KiB, medium 64 KiB–4 MiB, large 4–64 MiB) is its own timed run
 * (rclone: `sync` of that prefix; ours: a subcontract on that prefix, one full listing pass, until
 * the status shows nothing pending). Both results are checked at B (count and bytes). Prints
 * objects/s on the small objects and MB/s on the medium and large ones, the ratios ours/rclone
 * (aims: ≥ 0.5× on small, ≥ 0.8× on large), the load average before and after each run, and the
 * replication lag (A's put → COMPLETED) p50/p99 under a steady write load (ackMode async).
 *
 * The engine runs in a vhost of its own on cloud-b's broker (as the replication integration test
 * does), deleted at the end with both buckets at B and the source bucket at A. Takes the
 * federation lock (fault tests restart the brokers). Needs `scripts/services up swift rabbitmq`
 * and the `rclone` package (listed with the swift service's packages).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createObjectStore, type ObjectStore } from '../../adapters/storage/index.js';
import {
  AmqpReplicaPeer, ReplicaReceiver, Replicator, serveReplicaPeer, subcontractGrantPattern, type ReplicaPeer, type ReplicaServer, type Subcontract,
} from '../../agent/replication/index.js';
import { lockFederation } from '../../scripts/federation-lock.js';
import { percentile } from '../control-plane/stats.js';
import { loginAs, ensureCertUser, mgmt } from './broker.js';
import { MiB, mixTotals, sizeMix, type MixObject, type SizeClass } from './mix.js';

const { values: args } = parseArgs({
  options: {
    objects: { type: 'string', default: '1000' }, 'total-mib': { type: 'string', default: '2048' },
    'lag-writes': { type: 'string', default: '50' }, 'lag-interval-ms': { type: 'string', default: '200' },
    classes: { type: 'string', default: 'small,medium,large' },
    // The engine's knobs (defaults: the agent's): batches in flight at A, requests served at once at B, the s3 adapter's multipart.
    batches: { type: 'string' }, 'b-requests': { type: 'string' }, 'part-concurrency': { type: 'string' }, 'part-mib': { type: 'string' },
  },
});
const COUNT = Number(args.objects);
const TOTAL = Number(args['total-mib']) * MiB;
const LAG_WRITES = Number(args['lag-writes']);
const LAG_INTERVAL = Number(args['lag-interval-ms']);

interface SwiftEnv { endpoint: string; region: string; accessKeyId: string; secretAccessKeyFile: string }
const stateDir = process.env['INTERCLOUD_STATE_DIR'] ?? '/var/lib/intercloud-dev';
const services = JSON.parse(readFileSync(join(stateDir, 'services.json'), 'utf8')) as {
  swift: Record<string, SwiftEnv>;
};
const swiftA = services.swift['cloud-a']!;
const swiftB = services.swift['cloud-b']!;
const opt = (name: string): number | undefined => (args[name as keyof typeof args] === undefined ? undefined : Number(args[name as keyof typeof args]));
/** A cloud's store; `engine`: the one B's agent writes with, with the multipart options given (seeding and checks use the defaults). */
const store = (name: string, s: SwiftEnv, engine = false): ObjectStore => createObjectStore('s3', {
  name, endpoint: s.endpoint, region: s.region, accessKeyId: s.accessKeyId, secretAccessKeyFile: s.secretAccessKeyFile,
  ...(!engine || opt('part-concurrency') === undefined ? {} : { partConcurrency: opt('part-concurrency') }),
  ...(!engine || opt('part-mib') === undefined ? {} : { partSizeBytes: opt('part-mib')! * MiB }),
});
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const tag = randomBytes(3).toString('hex');
const SRC = `replbench-src-${tag}`;
const DST_RCLONE = `replbench-rclone-${tag}`;
const DST_OURS = `replbench-ours-${tag}`;
const VHOST = `replication-bench-${process.pid}`;
const ALL_CLASSES: readonly SizeClass[] = ['small', 'medium', 'large'];
const CLASSES = args.classes.split(',').map((c) => c.trim()) as SizeClass[];
for (const c of CLASSES) if (!ALL_CLASSES.includes(c)) throw new Error(`--classes: '${c}' is not one of ${ALL_CLASSES.join(', ')}`);

/** rclone's remotes `a:` and `b:` from environment variables (the secrets never reach argv). */
function rcloneEnv(): NodeJS.ProcessEnv {
  // Without the caller's AWS_* settings: rclone's SDK refuses AWS_CA_BUNDLE on its own HTTP transport
  // ("LoadCustomCABundleError"), and the endpoints are the remotes' own.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  for (const [name, s] of [['A', swiftA], ['B', swiftB]] as const) {
    const p = `RCLONE_CONFIG_${name}_`;
    Object.assign(env, {
      [`${p}TYPE`]: 's3', [`${p}PROVIDER`]: 'Other', [`${p}ENDPOINT`]: s.endpoint, [`${p}REGION`]: s.region,
      [`${p}ACCESS_KEY_ID`]: s.accessKeyId, [`${p}SECRET_ACCESS_KEY`]: readFileSync(s.secretAccessKeyFile, 'utf8').trim(),
      [`${p}FORCE_PATH_STYLE`]: 'true',
    });
  }
  return env;
}

/** Runs `cmd` and resolves with its CPU seconds (user + system, from bash's `times` for its children). */
function run(cmd: string, argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((res, rej) => {
    const p = spawn('bash', ['-c', '"$@"; s=$?; times >&2; exit $s', 'bash', cmd, ...argv], { env, stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.once('error', rej);
    p.once('exit', (code) => {
      if (code !== 0) return rej(new Error(`${cmd} ${argv.join(' ')} exited with ${code}: ${err.slice(-2000)}`));
      // `times`: the shell's user/sys, then its children's (`0m1.234s 0m0.567s`).
      const line = err.trim().split('\n').pop() ?? '';
      const secs = [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((t, m) => t + Number(m[1]) * 60 + Number(m[2]), 0);
      res(secs);
    });
  });
}

/** Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait; USER_HZ 100): the servers too, and other work. */
const machineCpu = (): number => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((a, x) => a + x, 0) - (f[3] ?? 0) - (f[4] ?? 0)) / 100;
};

/**
 * CPU seconds so far of the servers' processes, by group: `broker` (RabbitMQ's beam.smp, both clouds'),
 * `swift` (every swift-* server of both clouds). Summed over live processes (/proc/<pid>/stat utime +
 * stime, USER_HZ 100); a process that starts or ends between two samples is counted from or until then.
 */
function serverCpu(): { broker: number; swift: number } {
  const out = { broker: 0, swift: 0 };
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const group = cmd.includes('beam.smp') ? 'broker' : /\/swift-[a-z-]+-server\0/.test(cmd) ? 'swift' : undefined;
      if (!group) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[group] += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds of this process (both agents of the engine run in it). */
const serversSince = (s0: { broker: number; swift: number }): { broker: number; swift: number } => {
  const s1 = serverCpu();
  return { broker: s1.broker - s0.broker, swift: s1.swift - s0.swift };
};
const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function listAll(s: ObjectStore, bucket: string, prefix: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  let startAfter: string | undefined;
  for (;;) {
    const page = await s.listObjects(bucket, { prefix, ...(startAfter ? { startAfter } : {}) });
    for (const o of page.objects) { count++; bytes += o.sizeBytes; }
    if (!page.nextStartAfter) return { count, bytes };
    startAfter = page.nextStartAfter;
  }
}

async function emptyBucket(s: ObjectStore, bucket: string): Promise<void> {
  for (;;) {
    const page = await s.listObjects(bucket, {}).catch(() => undefined);
    if (!page || page.objects.length === 0) break;
    for (const o of page.objects) await s.deleteObject(bucket, o.key);
  }
  await s.deleteBucket(bucket).catch((err: unknown) => process.stderr.write(`could not delete bucket ${bucket}: ${String(err)}\n`));
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => { while (next < items.length) await fn(items[next++]!); }));
}

async function seed(a: ObjectStore, mix: readonly MixObject[]): Promise<void> {
  await mapLimit(mix.filter((o) => CLASSES.includes(o.cls)), 4, async (o) => {
    const bytes = randomBytes(o.size);
    await a.putObject(SRC, o.key, bytes, { sizeBytes: o.size, sha256: createHash('sha256').update(bytes).digest('hex') });
  });
}

/** Summed seconds (over concurrent calls) of the engine's stages, measured from outside it. */
interface Stages { aGet: number; bPut: number; bHead: number; replicate: number; batches: number }
const newStages = (): Stages => ({ aGet: 0, bPut: 0, bHead: 0, replicate: 0, batches: 0 });

/** A property of the real store, its methods bound to it (the adapter keeps private fields). */
function passThrough(target: ObjectStore, prop: string | symbol): unknown {
  const v = Reflect.get(target, prop) as unknown;
  return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
}

/** A's store with `getObject` timed until its body ends (the engine stages it to disk meanwhile). */
function timedSource(s: ObjectStore, st: Stages): ObjectStore {
  return new Proxy(s, {
    get(target, prop) {
      if (prop !== 'getObject') return passThrough(target, prop);
      return async (...a: Parameters<ObjectStore['getObject']>) => {
        const t = performance.now();
        const got = await target.getObject(...a);
        got.body.once('close', () => { st.aGet += (performance.now() - t) / 1000; });
        return got;
      };
    },
  });
}

/** B's store with `putObject` and `headObject` timed. */
function timedTarget(s: ObjectStore, st: Stages): ObjectStore {
  return new Proxy(s, {
    get(target, prop) {
      if (prop !== 'putObject' && prop !== 'headObject') return passThrough(target, prop);
      const fn = (Reflect.get(target, prop) as (...a: unknown[]) => Promise<unknown>).bind(target);
      return async (...a: unknown[]) => {
        const t = performance.now();
        try { return await fn(...a); } finally { st[prop === 'putObject' ? 'bPut' : 'bHead'] += (performance.now() - t) / 1000; }
      };
    },
  });
}

/** The peer with `replicate` timed (the transfer, B's staging, hash, put and head of the batch). */
function timedPeer(p: AmqpReplicaPeer, st: Stages): ReplicaPeer {
  return {
    replicate: async (batch, source, signal) => {
      const t = performance.now();
      try { return await p.replicate(batch, source, signal); } finally { st.replicate += (performance.now() - t) / 1000; st.batches++; }
    },
    delete: (keys, signal) => p.delete(keys, signal),
    audit: (keys, options) => p.audit(keys, options),
    close: () => p.close(),
  };
}

interface Row { tool: string; cls: SizeClass; objects: number; bytes: number; seconds: number; cpu: number; machine: number; broker: number; swift: number; loadBefore: string; loadAfter: string }
const rate = (r: Row): string => (r.cls === 'small' ? `${(r.objects / r.seconds).toFixed(1)} obj/s` : `${(r.bytes / 1e6 / r.seconds).toFixed(1)} MB/s`);
const rateNum = (r: Row): number => (r.cls === 'small' ? r.objects / r.seconds : r.bytes / r.seconds);

async function expectAtB(b: ObjectStore, bucket: string, cls: SizeClass, want: { count: number; bytes: number }, tool: string): Promise<void> {
  const got = await listAll(b, bucket, `${cls}/`);
  if (got.count !== want.count || got.bytes !== want.bytes) throw new Error(`${tool} ${cls}: B holds ${got.count} objects / ${got.bytes} bytes, want ${want.count} / ${want.bytes}`);
}

const mix = sizeMix(COUNT, TOTAL);
const totals = mixTotals(mix);
process.stdout.write(`replication bench: ${totals.count} objects, ${(totals.bytes / MiB).toFixed(1)} MiB (${CLASSES.map((c) => `${c} ${mixTotals(mix, c).count}/${(mixTotals(mix, c).bytes / MiB).toFixed(1)} MiB`).join(', ')}); load ${load()}\n`);

const unlock = await lockFederation();
const dir = mkdtempSync(join(process.env['INTERCLOUD_TEST_TMP'] ?? tmpdir(), 'repl-bench-'));
const a = store('cloud-a', swiftA);
const b = store('cloud-b', swiftB);
const bEngine = store('cloud-b', swiftB, true);
const rows: Row[] = [];
const closers: Array<() => Promise<void>> = [];
let vhostMade = false;
try {
  await a.createBucket(SRC);
  await b.createBucket(DST_RCLONE);
  await b.createBucket(DST_OURS);
  const t0 = performance.now();
  await seed(a, mix);
  process.stdout.write(`seeded A in ${((performance.now() - t0) / 1000).toFixed(1)} s; load ${load()}\n`);

  // (1) rclone sync, one run per class.
  const env = rcloneEnv();
  for (const cls of CLASSES) {
    const want = mixTotals(mix, cls);
    const loadBefore = load();
    const t = performance.now();
    const m0 = machineCpu();
    const s0 = serverCpu();
    const cpu = await run('rclone', ['sync', `A:${SRC}/${cls}`, `B:${DST_RCLONE}/${cls}`, '--s3-no-check-bucket'], env);
    const seconds = (performance.now() - t) / 1000;
    await expectAtB(b, DST_RCLONE, cls, want, 'rclone');
    rows.push({ tool: 'rclone sync', cls, ...{ objects: want.count, bytes: want.bytes }, seconds, cpu, machine: machineCpu() - m0, ...serversSince(s0), loadBefore, loadAfter: load() });
  }

  // (2) the replication engine over cloud-b's broker, in a vhost of its own.
  await mgmt('PUT', `/api/vhosts/${VHOST}`, {});
  vhostMade = true;
  const re = (p: string) => ({ configure: p, write: p, read: p });
  const subs = new Map<SizeClass, Subcontract>(CLASSES.map((cls) => [cls, {
    id: `sc-${randomUUID()}`, from: 'cloud-a', to: 'cloud-b', source: { bucket: SRC, prefix: `${cls}/` }, target: { bucket: DST_OURS },
    ackMode: 'async', bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
  }]));
  await mgmt('PUT', `/api/permissions/${VHOST}/cloud-b`, re('^xfer\\.[a-z0-9-]+\\.cloud\\-b\\.[0-9a-f-]{36}(\\.(data|ctl))?$'));
  // cloud-a: exactly the bench's subcontracts.
  await ensureCertUser('cloud-a');
  await mgmt('PUT', `/api/permissions/${VHOST}/cloud-a`, re([...subs.values()].map((s) => `(${subcontractGrantPattern('cloud-a', 'cloud-b', s.id)})`).join('|')));
  for (const cls of CLASSES) {
    const sub = subs.get(cls)!;
    const want = mixTotals(mix, cls);
    const stages = newStages();
    const server: ReplicaServer = await serveReplicaPeer({ broker: loginAs(VHOST, 'cloud-b'), subcontract: sub, receiver: new ReplicaReceiver(timedTarget(bEngine, stages), DST_OURS), workDir: join(dir, `b-${cls}`), concurrency: opt('b-requests') ?? 4 });
    closers.push(() => server.close());
    const peer = new AmqpReplicaPeer({ broker: loginAs(VHOST, 'cloud-a'), subcontract: sub, journalDir: join(dir, `a-xfer-${cls}`) });
    closers.push(() => peer.close());
    const r = await Replicator.open({ subcontract: sub, store: timedSource(a, stages), peer: timedPeer(peer, stages), journalPath: join(dir, `journal-${cls}`), stagingDir: join(dir, `a-staging-${cls}`), ...(opt('batches') === undefined ? {} : { concurrency: opt('batches')! }) });
    const loadBefore = load();
    const t = performance.now();
    const cpu0 = cpuSeconds();
    const m0 = machineCpu();
    const s0 = serverCpu();
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(3_600_000));
    const seconds = (performance.now() - t) / 1000;
    const cpu = cpuSeconds() - cpu0;
    const machine = machineCpu() - m0;
    const servers = serversSince(s0);
    const st = r.status();
    if (st.objects.pending !== 0 || st.objects.failed !== 0 || st.objects.completed !== want.count) throw new Error(`ours ${cls}: status ${JSON.stringify(st.objects)}, want ${want.count} completed`);
    await expectAtB(b, DST_OURS, cls, want, 'ours');
    rows.push({ tool: 'replication', cls, objects: want.count, bytes: want.bytes, seconds, cpu, machine, ...servers, loadBefore, loadAfter: load() });
    const f = (x: number): string => x.toFixed(2);
    process.stdout.write(`replication ${cls}: wall ${f(seconds)} s, ${stages.batches} batches; summed over concurrent calls: A get+stage ${f(stages.aGet)} s, `
      + `peer.replicate ${f(stages.replicate)} s, in it B put ${f(stages.bPut)} s and B head ${f(stages.bHead)} s`
      // With one object per batch B's put and head are inside that batch's replicate call, so the rest is
      // the transfer and B's staging and hash pass; with more, B writes them concurrently and sums overlap.
      + (stages.batches === want.count ? `, so transfer + B staging/hash ${f(stages.replicate - stages.bPut - stages.bHead)} s` : ` (B writes a batch's objects concurrently)`) + '\n');

    // (3) steady writes on the small subcontract: lag from A's put to COMPLETED.
    if (cls === 'small' && LAG_WRITES > 0) {
      const putAt = new Map<string, number>();
      const lags: number[] = [];
      let done!: () => void;
      const allDone = new Promise<void>((res) => { done = res; });
      const off = r.onEvent((e) => {
        if (e.type !== 'replica-completed') return;
        const at = putAt.get(e.key);
        if (at === undefined) return;
        lags.push(performance.now() - at);
        putAt.delete(e.key);
        if (lags.length === LAG_WRITES) done();
      });
      const lagLoad = load();
      for (let i = 0; i < LAG_WRITES; i++) {
        const bytes = randomBytes(4096 + (i % 16) * 4096);
        const key = `small/lag-${String(i).padStart(5, '0')}`;
        const start = performance.now();
        putAt.set(key, start);
        await r.put(key, bytes, { sizeBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
        await new Promise((res) => setTimeout(res, Math.max(0, LAG_INTERVAL - (performance.now() - start))));
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([allDone, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`lag: ${lags.length} of ${LAG_WRITES} completed after 120 s`)), 120_000); })]);
      } finally {
        clearTimeout(timer);
      }
      off();
      process.stdout.write(`lag (A's put → COMPLETED, ${LAG_WRITES} writes of 4–64 KiB, one per ${LAG_INTERVAL} ms, ackMode async): p50 ${percentile(lags, 50).toFixed(0)} ms, p99 ${percentile(lags, 99).toFixed(0)} ms, max ${Math.max(...lags).toFixed(0)} ms; load ${lagLoad} → ${load()}\n`);
    }
    await r.stop();
  }

  // CPU s: rclone's process, and ours (A's and B's agents, in this process); broker, swift: the servers'
  // processes (both clouds'); machine: every busy core second of the machine during the run (whatever ran).
  process.stdout.write('\ntool         class   objects  MiB      seconds  CPU s    broker   swift    machine  rate           load before → after\n');
  for (const r of rows) {
    process.stdout.write(`${r.tool.padEnd(12)} ${r.cls.padEnd(7)} ${String(r.objects).padStart(7)}  ${(r.bytes / MiB).toFixed(1).padStart(7)}  ${r.seconds.toFixed(2).padStart(7)}  ${r.cpu.toFixed(2).padStart(7)}  ${r.broker.toFixed(2).padStart(7)}  ${r.swift.toFixed(2).padStart(7)}  ${r.machine.toFixed(1).padStart(7)}  ${rate(r).padEnd(13)}  ${r.loadBefore} → ${r.loadAfter}\n`);
  }
  for (const cls of CLASSES) {
    const ours = rows.find((r) => r.tool === 'replication' && r.cls === cls)!;
    const theirs = rows.find((r) => r.tool === 'rclone sync' && r.cls === cls)!;
    const aim = cls === 'small' ? 0.5 : cls === 'large' ? 0.8 : undefined;
    process.stdout.write(`ratio ours/rclone ${cls}: ${(rateNum(ours) / rateNum(theirs)).toFixed(2)}×${aim ? ` (aim ≥ ${aim}×)` : ''}\n`);
  }
} finally {
  for (const c of closers.reverse()) await c().catch((err: unknown) => process.stderr.write(`close: ${String(err)}\n`));
  if (vhostMade) await mgmt('DELETE', `/api/vhosts/${VHOST}`).catch((err: unknown) => process.stderr.write(`vhost: ${String(err)}\n`));
  await emptyBucket(a, SRC);
  await emptyBucket(b, DST_RCLONE);
  await emptyBucket(b, DST_OURS);
  await a.close();
  await b.close();
  await bEngine.close();
  rmSync(dir, { recursive: true, force: true });
  await unlock();
}
