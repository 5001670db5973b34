/**
 * Transfer benchmark: our AMQP transfer against `scp` and `rsync -e ssh` over the loopback sshd,
 * in the same run, on
 *   (a) 1 GiB of random data,
 *   (b) a 1 GiB image of which ~6% is allocated,
 *   (c) a second VM image sharing a base with one the target already holds — flat (the target's
 *       content index of the base), and as a qcow2 overlay over that base (only the overlay is
 *       sent; the target links it onto its own copy of the base, found by whole-image SHA-256),
 *   (s) an 8 GiB sparse image (peak RSS; ours only),
 *   (r) a real system: a Debian 12 root in an ext4 filesystem in a 2 GiB raw disk, built once by
 *       `real-image.sh` (mmdebstrap; needs root, the mmdebstrap package and the Debian mirror,
 *       ~6 min) into `<dir>/r-debian12.raw` or `--real-image`, and reused; against scp, `scp -C`
 *       and `rsync -z`, ours with the allocation map without and with compression (issue 16).
 * Prints MB/s, the ratio to scp, bytes on the wire and the peak RSS of our two processes; for (a)
 * also the limit of the transport itself (a bare amqplib publisher and consumer through the same
 * broker, TLS and message size, no hashing, no disk) and our throughput as a fraction of it.
 * Our transfer runs with transient messages (the default) and, for (a), also persistent ones;
 * compression is on (the default: only chunks that pay are compressed) unless a row says
 * `uncompressed`. (b) also has `scp -C` and `rsync -z` rows (cheap there: mostly zeros).
 *
 *   npx tsx bench/transfer/transfer.bench.ts [--cases a,b,c,s,r] [--gib 1] [--sparse-gib 8] [--dir D] [--real-image F] [--profile DIR]
 *
 * `--frame-max N` sets the AMQP frame size both our sides and the bare pair ask for (default:
 * amqplib's 128 KiB). Tried at 32 KiB (1 GiB, load 9-12): CPU moves from the receiver (11.9 ->
 * 10.1 s) to the broker (6.1 -> 8.3 s), the total stays 23.3 s, so the default is kept; on hosts
 * where the broker has cores of its own the smaller frame may pay.
 * `--node-args '…'` passes V8/Node flags to the side processes (e.g. `--trace-gc`).
 * `--profile DIR` writes a V8 CPU profile of each side process into DIR (open in Chrome's DevTools
 * or summarise with `node bench/transfer/profile-summary.ts`). Every row also shows the CPU time
 * the broker (RabbitMQ's beam.smp) spent while it ran.
 *
 * Needs `scripts/services up rabbitmq sshd` and the rsync package.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../scripts/local-federation.js';
import { serviceEnv } from '../../test/helpers/services.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: 'a,b,c,s,r' },
    gib: { type: 'string', default: '1' },
    'sparse-gib': { type: 'string', default: '8' },
    dir: { type: 'string', default: '/var/tmp/intercloud-bench-transfer' },
    chunk: { type: 'string', default: String(MiB) },
    window: { type: 'string', default: String(8 * MiB) },
    profile: { type: 'string' },
    'frame-max': { type: 'string' },
    'node-args': { type: 'string', default: '' },
    'real-image': { type: 'string' },
  },
});
const SIZE = Number(values.gib) * GiB;
const DIR = values.dir!;
const CHUNK = Number(values.chunk);
const WINDOW = Number(values.window);
const here = import.meta.dirname;

interface Rabbit { pidFile: string; url: string; servername: string; tls: { ca: string }; users: Record<string, { cert: string; key: string }> }
interface Sshd { host: string; port: number; user: string; privateKey: string; knownHostsFile: string }
const rabbit = serviceEnv<Rabbit>('rabbitmq');
const sshd = serviceEnv<Sshd>('sshd');
const broker = (c: string) => ({
  url: values['frame-max'] ? `${rabbit.url}?frameMax=${values['frame-max']}` : rabbit.url,
  ca: rabbit.tls.ca, cert: rabbit.users[c]!.cert, key: rabbit.users[c]!.key, servername: rabbit.servername,
});
const sshArgs = ['-p', String(sshd.port), '-i', sshd.privateKey, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'];

interface Row { case: string; tool: string; seconds: number; wireBytes: number; rssMiB?: number; brokerCpuS?: number; note?: string; size?: number }

/** CPU seconds (user + system) the broker's process has used so far (`/proc/<pid>/stat`). */
function brokerCpuSeconds(): number {
  const pid = readFileSync(rabbit.pidFile, 'utf8').trim();
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}
const rows: Row[] = [];

async function writeImage(path: string, size: number, extents: Array<[number, number]>): Promise<void> {
  const h = await fs.open(path, existsSync(path) ? 'r+' : 'w');
  try {
    await h.truncate(size);
    for (const [offset, length] of extents) {
      for (let o = 0; o < length; o += 64 * MiB) {
        const n = Math.min(64 * MiB, length - o);
        await h.write(randomBytes(n), 0, n, offset + o);
      }
    }
  } finally {
    await h.close();
  }
}

/** ~`fraction` of `size` allocated, in runs of 64 KiB … 2 MiB spread over the image (like a fresh guest fs). */
function scattered(size: number, fraction: number, seed: number): Array<[number, number]> {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const out: Array<[number, number]> = [];
  const target = size * fraction;
  let total = 0;
  const slots = Math.floor(size / (4 * MiB));
  for (let s = 0; s < slots && total < target; s++) {
    if (rnd() > fraction * 4) continue;
    const len = Math.max(64 * 1024, Math.round((rnd() * 2 * MiB) / 4096) * 4096);
    const off = s * 4 * MiB + Math.round((rnd() * (4 * MiB - len)) / 4096) * 4096;
    out.push([off, len]);
    total += len;
  }
  return out;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB });
}

function remoteRm(path: string): void {
  sh('ssh', [...sshArgs, `${sshd.user}@${sshd.host}`, 'rm', '-f', path]);
}

function timeIt(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

/** `scp` (with `-C`: ssh's zlib compression, whose bytes on the wire scp does not report). */
function runScp(name: string, src: string, dst: string, size: number, compress = false): void {
  remoteRm(dst);
  const s = timeIt(() => sh('scp', [...sshArgs.map((a) => (a === '-p' ? '-P' : a)), ...(compress ? ['-C'] : []), '-q', src, `${sshd.user}@${sshd.host}:${dst}`]));
  rows.push({ case: name, tool: compress ? 'scp -C' : 'scp', seconds: s, wireBytes: compress ? NaN : size, size, note: compress ? 'whole file, zlib (wire not reported)' : 'whole file' });
  rmSync(dst, { force: true });
}

function runRsync(name: string, src: string, dst: string, opts: { basis?: string; compress?: boolean; size?: number } = {}): void {
  remoteRm(dst);
  if (opts.basis) execFileSync('cp', ['--sparse=always', opts.basis, dst]);
  let out = '';
  const s = timeIt(() => {
    out = sh('rsync', ['-e', ['ssh', ...sshArgs].join(' '), '--sparse', ...(opts.compress ? ['-z'] : []), '--stats', src, `${sshd.user}@${sshd.host}:${dst}`]);
  });
  const sent = Number(/Total bytes sent: ([\d,]+)/.exec(out)?.[1]?.replace(/,/g, '') ?? NaN);
  const tool = `rsync -e ssh${opts.compress ? ' -z' : ''}${opts.basis ? ' (delta vs base)' : ''}`;
  rows.push({ case: name, tool, seconds: s, wireBytes: sent, ...(opts.size ? { size: opts.size } : {}) });
  rmSync(dst, { force: true });
}

interface SideOut { result: Record<string, unknown>; elapsedMs: number; startedAt: number; endedAt: number; maxRssKiB: number; cpuMs: number }

/**
 * Compiles side.ts (and what it imports) with tsc into node_modules/.cache, once per run; in a
 * folder of this checkout's own (worktrees share one node_modules), so that a bench of another
 * checkout running at the same time does not replace the compiled sides under this one.
 */
const compiled = join(here, `../../node_modules/.cache/icx-bench-transfer-${createHash('sha256').update(join(here, '../..')).digest('hex').slice(0, 12)}`);
function compileSide(): void {
  execFileSync(process.execPath, [
    join(here, '../../node_modules/typescript/bin/tsc'), join(here, 'side.ts'), '--outDir', compiled, '--rootDir', join(here, '../..'),
    '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--strict',
  ], { stdio: 'inherit' });
}

function side(which: 'send' | 'receive' | 'index' | 'base-hash' | 'base-store' | 'bare-send' | 'bare-receive', args: Record<string, unknown>, onReady?: () => void): Promise<SideOut> {
  return new Promise((resolve, reject) => {
    const profile = values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile, '--cpu-prof-name', `${which}-${Date.now()}.cpuprofile`] : [];
    // Our sides run with the agent daemon's V8 flags and malloc settings (their RSS is the agent's concern); the bare pair without.
    const ours = !which.startsWith('bare-');
    const flags = ours ? AGENT_NODE_FLAGS : [];
    const child = spawn(process.execPath, [...profile, ...flags, ...values['node-args']!.split(' ').filter(Boolean), join(compiled, 'bench/transfer/side.js'), which, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...(ours ? AGENT_ENV : {}) },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (onReady && out.includes('"ready"')) {
        onReady();
        onReady = undefined;
      }
    });
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as SideOut) : reject(new Error(`${which} exited ${code}`))));
  });
}

/**
 * The allocation map of `path` as the hypervisor adapter would hand it over: `qemu-img map`
 * (SEEK_DATA/SEEK_HOLE underneath), data extents only, written to a JSON file.
 */
function allocationMap(path: string): string {
  const map = JSON.parse(sh('qemu-img', ['map', '--output=json', '-f', 'raw', path])) as Array<{ start: number; length: number; data: boolean }>;
  const extents = map.filter((e) => e.data).map((e) => ({ offset: e.start, length: e.length }));
  const file = `${path}.extents.json`;
  execFileSync('sh', ['-c', `cat > '${file}'`], { input: JSON.stringify(extents) });
  return file;
}

async function runOurs(name: string, src: string, dst: string, opts: { persistent?: boolean; base?: string; map?: boolean; compress?: boolean; size?: number } = {}): Promise<void> {
  rmSync(dst, { force: true });
  const transferId = randomUUID();
  const common = { transferId, chunkSize: CHUNK, windowBytes: WINDOW, persistent: opts.persistent ?? false, expiresAt: Date.now() + 3600_000, compress: opts.compress ?? true };
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const receiving = side('receive', { ...common, broker: broker('cloud-b'), path: dst, journalDir: join(DIR, 'journal-b'), ...(opts.base ? { base: opts.base } : {}) }, ready);
  await isReady;
  const cpu0 = brokerCpuSeconds();
  const sending = side('send', { ...common, broker: broker('cloud-a'), path: src, journalDir: join(DIR, 'journal-a'), ...(opts.map ? { extentsFile: allocationMap(src) } : {}) });
  const [s, r] = await Promise.all([sending, receiving]);
  const res = s.result as { wireBytes: number; chunks: Record<string, number>; compression?: { compressed: number; raw: number; compressedChunkBytes: number; compressedPayloadBytes: number } };
  const z = res.compression;
  rows.push({
    case: name,
    tool: `amqp ${opts.persistent ? 'persistent' : 'transient'}${opts.map ? ' + alloc map' : ' (scan)'}${opts.base ? ' + base index' : ''}${opts.compress === false ? ' uncompressed' : ''}`,
    seconds: s.elapsedMs / 1000,
    wireBytes: res.wireBytes,
    rssMiB: Math.max(s.maxRssKiB, r.maxRssKiB) / 1024,
    brokerCpuS: brokerCpuSeconds() - cpu0,
    ...(opts.size ? { size: opts.size } : {}),
    note: `chunks ${JSON.stringify(res.chunks)}` +
      (z && z.compressed > 0 ? `; compressed ${z.compressed} (${(z.compressedChunkBytes / MiB).toFixed(0)} → ${(z.compressedPayloadBytes / MiB).toFixed(0)} MiB), raw ${z.raw}` : '') +
      `; rss send ${(s.maxRssKiB / 1024).toFixed(0)} / recv ${(r.maxRssKiB / 1024).toFixed(0)} MiB; cpu send ${(s.cpuMs / 1000).toFixed(2)} / recv ${(r.cpuMs / 1000).toFixed(2)} s`,
  });
  const a = sh('sha256sum', [src]).split(' ')[0];
  const b = sh('sha256sum', [dst]).split(' ')[0];
  rmSync(`${src}.extents.json`, { force: true });
  if (a !== b) throw new Error(`${name}: target differs from source`);
  rmSync(dst, { force: true });
}

/**
 * Case (c) as clouds store it: the second VM's disk is a qcow2 overlay over the base (holding
 * the VM's own writes), and the target holds a copy of the base under a name of its own in its
 * base directory. Ours sends the whole-image SHA-256 of the base (saved beside it) and the
 * overlay only; the target finds its own base by that hash and links the overlay onto it
 * (`qemu-img rebase -u -F raw`). Timed from the source's hash lookup to the rebase done; the
 * first hashing of each side's base is printed apart (done once, then saved). Checked with
 * `qemu-img compare` against the flat image. Also scp of the overlay file, for comparison.
 */
async function runOverlay(name: string, base: string, flat: string, writes: Array<[number, number]>): Promise<void> {
  const overlay = join(DIR, 'c-vm2.qcow2');
  rmSync(overlay, { force: true });
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);
  const h = await fs.open(flat, 'r');
  const cmds: string[] = [];
  try {
    for (const [i, [offset, length]] of writes.entries()) {
      const piece = Buffer.alloc(length);
      await h.read(piece, 0, length, offset);
      await fs.writeFile(join(DIR, `c-piece-${i}`), piece);
      cmds.push('-c', `write -q -s ${join(DIR, `c-piece-${i}`)} ${offset} ${length}`);
    }
  } finally {
    await h.close();
  }
  sh('qemu-io', ['-f', 'qcow2', ...cmds, overlay]);
  for (let i = 0; i < writes.length; i++) rmSync(join(DIR, `c-piece-${i}`), { force: true });
  if (!sh('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', flat, overlay]).includes('identical')) throw new Error(`${name}: overlay differs from the flat image`);
  const ovlSize = (await fs.stat(overlay)).size;
  const bases = join(DIR, 'target-bases');
  await fs.mkdir(bases, { recursive: true });
  const held = join(bases, 'golden-os.raw');
  // The base is written anew each run: the target's copy too (under a name of its own).
  rmSync(held, { force: true });
  rmSync(`${held}.icx-sha256.json`, { force: true });
  execFileSync('cp', ['--sparse=always', base, held]);
  let t = performance.now();
  const firstHash = await side('base-hash', { base });
  const source1 = (performance.now() - t) / 1000;
  t = performance.now();
  await side('base-store', { baseDirs: [bases] });
  const target1 = (performance.now() - t) / 1000;
  console.log(`(c) overlay ${(ovlSize / 1e6).toFixed(1)} MB; first whole-image hash of the base: source ${source1.toFixed(1)} s, target ${target1.toFixed(1)} s (saved beside each, reused)`);
  runScp(name, overlay, remote('c.qcow2'), ovlSize);
  rows[rows.length - 1]!.tool = 'scp (overlay file only)';

  const dst = remote('c.qcow2');
  rmSync(dst, { force: true });
  const hashed = await side('base-hash', { base });
  const baseSha256 = (hashed.result as { sha256: string }).sha256;
  if (baseSha256 !== (firstHash.result as { sha256: string }).sha256) throw new Error('base hash changed');
  const transferId = randomUUID();
  const common = { transferId, chunkSize: CHUNK, windowBytes: WINDOW, persistent: false, expiresAt: Date.now() + 3600_000 };
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const receiving = side('receive', { ...common, broker: broker('cloud-b'), path: dst, journalDir: join(DIR, 'journal-b'), baseDirs: [bases], baseSha256 }, ready);
  await isReady;
  const s = await side('send', { ...common, broker: broker('cloud-a'), path: overlay, journalDir: join(DIR, 'journal-a') });
  const r = await receiving;
  const res = s.result as { wireBytes: number; chunks: Record<string, number> };
  const rebaseMs = (r.result as { rebaseMs: number }).rebaseMs;
  rows.push({
    case: name,
    tool: 'amqp overlay + held base (rebase)',
    seconds: (hashed.elapsedMs + (Math.max(s.endedAt, r.endedAt) - s.startedAt)) / 1000,
    wireBytes: res.wireBytes,
    rssMiB: Math.max(s.maxRssKiB, r.maxRssKiB) / 1024,
    note: `overlay ${(ovlSize / 1e6).toFixed(1)} MB; hash lookup ${hashed.elapsedMs.toFixed(0)} ms, rebase ${rebaseMs.toFixed(0)} ms; chunks ${JSON.stringify(res.chunks)}; cpu send ${(s.cpuMs / 1000).toFixed(2)} / recv ${(r.cpuMs / 1000).toFixed(2)} s`,
  });
  const info = JSON.parse(sh('qemu-img', ['info', '--output=json', dst])) as { 'backing-filename'?: string };
  if (info['backing-filename'] !== held) throw new Error(`${name}: overlay at the target is backed by '${info['backing-filename']}', not its own base`);
  if (!sh('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', flat, dst]).includes('identical')) throw new Error(`${name}: target differs from source`);
  rmSync(dst, { force: true });
}

/**
 * The limit of the transport on this machine: a bare amqplib publisher and consumer through the
 * same broker, TLS and logins, messages of the chunk size, the same window and prefetch, one
 * ack per message, no hashing, no disk. Timed from the publisher's start to the last message
 * consumed.
 */
async function runBare(name: string, persistent = false): Promise<void> {
  const common = { transferId: randomUUID(), chunkSize: CHUNK, windowBytes: WINDOW, persistent, totalBytes: SIZE };
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const receiving = side('bare-receive', { ...common, broker: broker('cloud-b') }, ready);
  await isReady;
  const cpu0 = brokerCpuSeconds();
  const [s, r] = await Promise.all([side('bare-send', { ...common, broker: broker('cloud-a') }), receiving]);
  rows.push({
    case: name, tool: `${LIMIT_TOOL}${persistent ? ' persistent' : ''}`, seconds: (Math.max(s.endedAt, r.endedAt) - s.startedAt) / 1000,
    wireBytes: Number(s.result['bytes']), rssMiB: Math.max(s.maxRssKiB, r.maxRssKiB) / 1024, brokerCpuS: brokerCpuSeconds() - cpu0,
    note: `nacked and sent again ${String(s.result['nacked'])}; cpu send ${(s.cpuMs / 1000).toFixed(2)} / recv ${(r.cpuMs / 1000).toFixed(2)} s`,
  });
}
const LIMIT_TOOL = 'broker limit (bare amqplib)';

function print(): void {
  const byCase = new Map<string, Row[]>();
  for (const r of rows) byCase.set(r.case, [...(byCase.get(r.case) ?? []), r]);
  console.log(`\nload average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (2 cores shared with other engineers' processes)`);
  for (const [c, rs] of byCase) {
    const scp = rs.find((r) => r.tool === 'scp');
    const limit = rs.find((r) => r.tool === LIMIT_TOOL);
    console.log(`\n${c}`);
    for (const r of rs) {
      const size = r.size ?? (c.startsWith('(s)') ? Number(values['sparse-gib']) * GiB : SIZE);
      const mbps = size / 1e6 / r.seconds;
      const ratio = scp ? (scp.seconds / r.seconds).toFixed(2) + '× scp' : '';
      const ofLimit = limit && r.tool.startsWith('amqp') ? `${(limit.seconds / r.seconds).toFixed(2)}× limit` : '';
      console.log(
        `  ${r.tool.padEnd(34)} ${r.seconds.toFixed(2).padStart(7)} s ${mbps.toFixed(0).padStart(6)} MB/s ${ratio.padStart(10)} ${ofLimit.padStart(12)}  wire ${(Number.isNaN(r.wireBytes) ? '?' : (r.wireBytes / 1e6).toFixed(1)).padStart(8)} MB` +
          (r.rssMiB ? `  peak rss ${r.rssMiB.toFixed(0)} MiB` : '') + (r.brokerCpuS !== undefined ? `  broker cpu ${r.brokerCpuS.toFixed(2)} s` : '') + (r.note ? `  (${r.note})` : ''),
      );
    }
  }
}

await fs.mkdir(DIR, { recursive: true });
compileSide();
const cases = new Set(values.cases!.split(','));
console.log(`transfer bench: ${SIZE / GiB} GiB, chunk ${CHUNK / MiB} MiB, window ${WINDOW / MiB} MiB, frame max ${values['frame-max'] ?? 'default'}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const remote = (n: string) => join(DIR, `remote-${n}`);

if (cases.has('a')) {
  const src = join(DIR, 'a-random.raw');
  if (!existsSync(src) || (await fs.stat(src)).size !== SIZE) await writeImage(src, SIZE, [[0, SIZE]]);
  runScp('(a) random', src, remote('a'), SIZE);
  runRsync('(a) random', src, remote('a'));
  await runBare('(a) random');
  await runOurs('(a) random', src, remote('a'));
  await runOurs('(a) random', src, remote('a'), { persistent: true });
}
if (cases.has('b')) {
  const src = join(DIR, 'b-sparse.raw');
  rmSync(src, { force: true });
  await writeImage(src, SIZE, scattered(SIZE, 0.06, 7));
  const alloc = (await fs.stat(src)).blocks * 512;
  console.log(`(b) image: ${(alloc / MiB).toFixed(0)} MiB allocated of ${SIZE / MiB} MiB (${((100 * alloc) / SIZE).toFixed(1)}%)`);
  runScp('(b) 6% allocated', src, remote('b'), SIZE);
  runScp('(b) 6% allocated', src, remote('b'), SIZE, true);
  runRsync('(b) 6% allocated', src, remote('b'));
  runRsync('(b) 6% allocated', src, remote('b'), { compress: true });
  await runOurs('(b) 6% allocated', src, remote('b'));
  await runOurs('(b) 6% allocated', src, remote('b'), { map: true });
}
if (cases.has('c')) {
  const base = join(DIR, 'c-base.raw');
  const vm2 = join(DIR, 'c-vm2.raw');
  rmSync(base, { force: true });
  rmSync(vm2, { force: true });
  await writeImage(base, SIZE, [[0, Math.round(SIZE * 0.4)]]); // a base OS image, 40% used
  execFileSync('cp', ['--sparse=always', base, vm2]);
  const writes = scattered(SIZE, 0.03, 11);
  await writeImage(vm2, SIZE, writes); // the second VM's own writes
  const t = performance.now();
  const idx = await side('index', { base, chunkSize: CHUNK });
  console.log(`(c) content index of the base at the target: ${JSON.stringify(idx.result)} in ${((performance.now() - t) / 1000).toFixed(1)} s (kept beside the base, reused)`);
  runScp('(c) shares a base', vm2, remote('c'), SIZE);
  runRsync('(c) shares a base', vm2, remote('c'), { basis: base });
  await runOurs('(c) shares a base', vm2, remote('c'), { base });
  await runOurs('(c) shares a base', vm2, remote('c'), { base, map: true });
  await runOverlay('(c) shares a base', base, vm2, writes);
}
if (cases.has('s')) {
  const size = Number(values['sparse-gib']) * GiB;
  const src = join(DIR, 's-sparse.raw');
  rmSync(src, { force: true });
  await writeImage(src, size, scattered(size, 0.06, 5));
  await runOurs('(s) 8 GiB sparse', src, remote('s'), { map: true });
  rmSync(src, { force: true });
}
if (cases.has('r')) {
  const src = values['real-image'] ?? join(DIR, 'r-debian12.raw');
  if (!existsSync(src)) {
    console.log(`(r) building the real-system image ${src} (bench/transfer/real-image.sh, once) …`);
    execFileSync('sh', [join(here, 'real-image.sh'), src], { stdio: 'inherit' });
  }
  const size = (await fs.stat(src)).size;
  const alloc = (await fs.stat(src)).blocks * 512;
  console.log(`(r) image: debian 12 root in ext4, ${(alloc / MiB).toFixed(0)} MiB allocated of ${size / MiB} MiB`);
  const name = '(r) real image';
  runScp(name, src, remote('r'), size);
  runScp(name, src, remote('r'), size, true);
  runRsync(name, src, remote('r'), { size });
  runRsync(name, src, remote('r'), { size, compress: true });
  await runOurs(name, src, remote('r'), { map: true, compress: false, size });
  await runOurs(name, src, remote('r'), { map: true, size });
}
print();
