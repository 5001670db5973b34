/**
 * "Repair of a wiped device" (issue 14, "Benchmark": time to repair a wiped device at B next to
 * Swift's own object replicator):
 *
 *   npx tsx bench/storage/wiped-device.ts [--objects 200] [--total-mib 256]
 *
 * A mix of objects (mix.ts) is replicated from cloud-a's Swift to cloud-b's by the engine
 * (Replicator at A, serveReplicaPeer + ReplicaReceiver at B, over cloud-b's real broker in a vhost
 * of its own). Then two repairs of the same objects, each timed:
 * - Swift: device d1 of cloud-b wiped, `swift-object-replicator <objectConf> once` puts its
 *   replicas back from the two other devices (inside B; it restores the whole device, other
 *   buckets' replicas too, whose bytes are printed);
 * - the agent: every replica of the objects lost at B (their hash folders removed from all three
 *   devices: what Swift cannot repair), its deep audit finds them and sends them again from A
 *   (across clouds, through the broker), until the status shows nothing pending.
 * Both results are checked on the device folders (3 replicas of each object) and by HEAD at B.
 * Prints both times, the bytes, the ratio agent/Swift and the load average before and after each.
 * Takes the federation lock; wipes a device of a shared server (run it alone).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createObjectStore, type ObjectStore } from '../../adapters/storage/index.js';
import {
  AmqpReplicaPeer, ReplicaReceiver, Replicator, serveReplicaPeer, subcontractGrantPattern, type Subcontract,
} from '../../agent/replication/index.js';
import { lockFederation } from '../../scripts/federation-lock.js';
import { loseEverywhere, objectReplicatorOnce, replicaCounts, wipeDevice, type SwiftDevicesEnv } from '../../test/helpers/swift-devices.js';
import { loginAs, ensureCertUser, mgmt } from './broker.js';
import { MiB, mixTotals, sizeMix } from './mix.js';

const { values: args } = parseArgs({ options: { objects: { type: 'string', default: '200' }, 'total-mib': { type: 'string', default: '256' } } });
interface SwiftEnv extends SwiftDevicesEnv { endpoint: string; region: string; accessKeyId: string; secretAccessKeyFile: string }
const stateDir = process.env['INTERCLOUD_STATE_DIR'] ?? '/var/lib/intercloud-dev';
const services = JSON.parse(readFileSync(join(stateDir, 'services.json'), 'utf8')) as {
  swift: Record<string, SwiftEnv>;
};
const swiftA = services.swift['cloud-a']!;
const swiftB = services.swift['cloud-b']!;
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const tag = randomBytes(3).toString('hex');
const SRC = `wipebench-src-${tag}`;
const DST = `wipebench-dst-${tag}`;
const VHOST = `wipe-bench-${process.pid}`;
const store = (name: string, s: SwiftEnv): ObjectStore => createObjectStore('s3', {
  name, endpoint: s.endpoint, region: s.region, accessKeyId: s.accessKeyId, secretAccessKeyFile: s.secretAccessKeyFile,
});

async function dropBucket(s: ObjectStore, bucket: string): Promise<void> {
  if (!(await s.headBucket(bucket).catch(() => false))) return;
  for (;;) {
    const page = await s.listObjects(bucket, {});
    if (page.objects.length === 0) break;
    for (const o of page.objects) await s.deleteObject(bucket, o.key);
  }
  await s.deleteBucket(bucket);
}

const du = (path: string): number => Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);

const mix = sizeMix(Number(args.objects), Number(args['total-mib']) * MiB);
const totals = mixTotals(mix);
const keys = mix.map((o) => o.key);
process.stdout.write(`wiped-device bench: ${totals.count} objects, ${(totals.bytes / MiB).toFixed(1)} MiB; load ${load()}\n`);
const unlock = await lockFederation();
const dir = mkdtempSync(join(process.env['INTERCLOUD_TEST_TMP'] ?? tmpdir(), 'wipe-bench-'));
const a = store('cloud-a', swiftA);
const b = store('cloud-b', swiftB);
const closers: Array<() => Promise<void>> = [];
let vhostMade = false;
let deviceWiped = false;
try {
  await a.createBucket(SRC);
  await b.createBucket(DST);
  for (const o of mix) {
    const bytes = randomBytes(o.size);
    await a.putObject(SRC, o.key, bytes, { sizeBytes: o.size, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  const sub: Subcontract = {
    id: `sc-${randomUUID()}`, from: 'cloud-a', to: 'cloud-b', source: { bucket: SRC, prefix: '' }, target: { bucket: DST },
    ackMode: 'async', bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
  };
  await mgmt('PUT', `/api/vhosts/${VHOST}`, {});
  vhostMade = true;
  const re = (p: string) => ({ configure: p, write: p, read: p });
  await mgmt('PUT', `/api/permissions/${VHOST}/cloud-b`, re('^xfer\\.[a-z0-9-]+\\.cloud\\-b\\.[0-9a-f-]{36}(\\.(data|ctl))?$'));
  await ensureCertUser('cloud-a');
  await mgmt('PUT', `/api/permissions/${VHOST}/cloud-a`, re(subcontractGrantPattern('cloud-a', 'cloud-b', sub.id)));
  const server = await serveReplicaPeer({ broker: loginAs(VHOST, 'cloud-b'), subcontract: sub, receiver: new ReplicaReceiver(b, DST), workDir: join(dir, 'b'), concurrency: 4 });
  closers.push(() => server.close());
  const peer = new AmqpReplicaPeer({ broker: loginAs(VHOST, 'cloud-a'), subcontract: sub, journalDir: join(dir, 'a-xfer') });
  closers.push(() => peer.close());
  const r = await Replicator.open({ subcontract: sub, store: a, peer, journalPath: join(dir, 'journal'), stagingDir: join(dir, 'a-staging') });
  closers.push(() => r.stop());
  r.start();
  await r.runPass();
  await r.idle(AbortSignal.timeout(1_800_000));
  const full = JSON.stringify(Object.fromEntries(swiftB.devices.map((d) => [d.name, keys.length])));
  if (JSON.stringify(await replicaCounts(swiftB, DST, keys)) !== full) throw new Error('replicated objects do not have 3 replicas at B before the wipe');

  // (1) Swift: d1 wiped, its own replicator puts it back.
  const device = swiftB.devices[0]!;
  const deviceBytes = du(device.path);
  const swiftLoad = load();
  await wipeDevice(device.path);
  deviceWiped = true;
  const swiftMs = await objectReplicatorOnce(swiftB);
  deviceWiped = false;
  const swiftLoadAfter = load();
  const afterSwift = await replicaCounts(swiftB, DST, keys);
  if (JSON.stringify(afterSwift) !== full) throw new Error(`after swift-object-replicator: ${JSON.stringify(afterSwift)}, want ${full}`);

  // (2) the agent: the same objects lost at B on every device, repaired from A.
  for (const k of keys) await loseEverywhere(swiftB, DST, k);
  const agentLoad = load();
  const t0 = performance.now();
  const rep = await r.audit({ deep: true });
  await r.idle(AbortSignal.timeout(1_800_000));
  const agentMs = performance.now() - t0;
  const agentLoadAfter = load();
  if (rep.missing.length !== keys.length) throw new Error(`the deep audit found ${rep.missing.length} of ${keys.length} lost objects`);
  const afterAgent = await replicaCounts(swiftB, DST, keys);
  if (JSON.stringify(afterAgent) !== full) throw new Error(`after the agent's repair: ${JSON.stringify(afterAgent)}, want ${full}`);
  for (const k of keys) if (!(await b.headObject(DST, k))) throw new Error(`'${k}' missing at B after the agent's repair`);

  const mb = (n: number): string => (n / 1e6).toFixed(1);
  process.stdout.write([
    '| repair | what | bytes | time | rate | load before → after |',
    '|---|---|---|---|---|---|',
    `| swift-object-replicator once | device ${device.name} of cloud-b wiped (all its buckets), from B's 2 other replicas | ${mb(deviceBytes)} MB on the device | ${(swiftMs / 1000).toFixed(1)} s | ${mb(deviceBytes / (swiftMs / 1000))} MB/s | ${swiftLoad} → ${swiftLoadAfter} |`,
    `| agent: deep audit + re-send | ${keys.length} objects lost at B on all 3 devices, from A over the broker | ${mb(totals.bytes)} MB of objects (×3 replicas written) | ${(agentMs / 1000).toFixed(1)} s | ${mb(totals.bytes / (agentMs / 1000))} MB/s | ${agentLoad} → ${agentLoadAfter} |`,
    `agent/swift time ratio: ${(agentMs / swiftMs).toFixed(2)}×`,
  ].join('\n') + '\n');
} finally {
  // never leave the shared device empty
  if (deviceWiped) await objectReplicatorOnce(swiftB).catch((err: unknown) => process.stderr.write(`swift-object-replicator failed: ${String(err)}\n`));
  for (const c of closers.reverse()) await c().catch((err: unknown) => process.stderr.write(`close: ${String(err)}\n`));
  await dropBucket(b, DST).catch((err: unknown) => process.stderr.write(`drop ${DST}: ${String(err)}\n`));
  await dropBucket(a, SRC).catch((err: unknown) => process.stderr.write(`drop ${SRC}: ${String(err)}\n`));
  if (vhostMade) await mgmt('DELETE', `/api/vhosts/${VHOST}`).catch((err: unknown) => process.stderr.write(`vhost: ${String(err)}\n`));
  await a.close();
  await b.close();
  rmSync(dir, { recursive: true, force: true });
  await unlock();
}
