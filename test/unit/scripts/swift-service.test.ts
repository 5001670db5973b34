/**
 * scripts/services.d/72-swift.sh without servers: the configuration, rings and services.json
 * entry it makes for each cloud's Swift, in a private state folder. The rings are made by the
 * real `swift-ring-builder` (Debian `swift`, which the service's packages install).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SwiftEnv } from '../../helpers/services.js';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../../scripts');

let state: string;
beforeEach(async () => { state = await fs.mkdtemp(join(tmpdir(), 'swift-service-')); });
afterEach(async () => { await fs.rm(state, { recursive: true, force: true }); });

/** Runs bash SCRIPT with common.sh and 72-swift.sh sourced, STATE the private folder. */
async function sh(script: string, ...args: string[]): Promise<string> {
  const full = `. "${SCRIPTS}/lib/strict.sh"; . "${SCRIPTS}/services.d/common.sh"; . "${SCRIPTS}/services.d/72-swift.sh"; ${script}`;
  return (await run('bash', ['-c', full, 'test', ...args], { env: { ...process.env, STATE: state } })).stdout;
}

/** The services.json `swift` entry as swift_up writes it (without starting anything). */
async function swiftEnv(): Promise<SwiftEnv> {
  const out = await sh('sep=""; echo "{"; for c in $SWIFT_CLOUDS; do echo "$sep$(swift_cloud_env "$c")"; sep=","; done; echo "}"');
  return JSON.parse(out) as SwiftEnv;
}

/** The INI file FILE as { section: { key: value } }. */
async function ini(file: string): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  let section = '';
  for (const line of (await fs.readFile(file, 'utf8')).split('\n')) {
    const s = /^\[(.+)\]$/.exec(line);
    if (s) { section = s[1]!; out[section] = {}; continue; }
    const kv = /^([^#=\s][^=]*?)\s*=\s*(.*)$/.exec(line);
    if (kv) out[section]![kv[1]!] = kv[2]!;
  }
  return out;
}

interface RingSummary {
  replicas: number;
  partitions: number;
  devs: Array<{ device: string; region: number; zone: number; ip: string; port: number }>;
  /** The distinct counts of different devices holding a partition's replicas. */
  distinctDevicesPerPartition: number[];
}

/** What the servers will read: the .ring.gz files of DIR, loaded by Swift's own code. */
async function readRings(dir: string): Promise<Record<string, RingSummary>> {
  const py = `
import json, sys
from swift.common.ring import RingData
out = {}
for name in ("object", "container", "account"):
    r = RingData.load(f"{sys.argv[1]}/{name}.ring.gz")
    parts = len(r._replica2part2dev_id[0])
    out[name] = {
        "replicas": len(r._replica2part2dev_id), "partitions": parts,
        "devs": [{k: d[k] for k in ("device", "region", "zone", "ip", "port")} for d in r.devs if d],
        "distinctDevicesPerPartition": sorted({len({row[p] for row in r._replica2part2dev_id}) for p in range(parts)}),
    }
print(json.dumps(out))
`;
  // Debian's Python (the one with swift), not whichever python3 is first on PATH
  return JSON.parse((await run('/usr/bin/python3', ['-c', py, dir])).stdout) as Record<string, RingSummary>;
}

describe('services.d/72-swift.sh', () => {
  it('gives each cloud its own ports, folder and key id; services.json carries no secret', async () => {
    const env = await swiftEnv();
    expect(Object.keys(env)).toEqual(['cloud-a', 'cloud-b']);
    const ports = Object.values(env).flatMap((e) => Object.values(e.ports));
    expect(new Set(ports).size).toBe(10);
    for (const p of ports) expect(p).toBeLessThan(32768);
    // no port another service file names
    const others = (await fs.readdir(join(SCRIPTS, 'services.d'))).filter((f) => /^\d\d-.*\.sh$/.test(f) && f !== '72-swift.sh');
    const taken = new Set<number>();
    for (const f of others) for (const m of (await fs.readFile(join(SCRIPTS, 'services.d', f), 'utf8')).matchAll(/\b(\d{4,5})\b/g)) taken.add(Number(m[1]));
    expect(ports.filter((p) => taken.has(p))).toEqual([]);
    expect(env['cloud-a']!.dir).toBe(join(state, 'swift', 'cloud-a'));
    expect(env['cloud-b']!.dir).toBe(join(state, 'swift', 'cloud-b'));
    expect(env['cloud-a']!.accessKeyId).toBe('cloud-a:agent');
    expect(env['cloud-b']!.accessKeyId).toBe('cloud-b:agent');
    expect(env['cloud-a']!.ringRegions).toEqual({ 1: 'eu-west', 2: 'eu-central' });
    expect(env['cloud-b']!.ringRegions).toEqual({ 1: 'na-east' });
    expect(env['cloud-a']!.region).toBe('eu-west');
    expect(env['cloud-b']!.region).toBe('na-east');
  });

  it('writes servers bound to 127.0.0.1 with the S3 pipeline, a per-cloud secret (0600) and a short error suppression', async () => {
    await sh('for c in $SWIFT_CLOUDS; do swift_vars "$c"; mkdir -p "$sw_dir/etc"; swift_proxy_conf "$c" "$(secret "$sw_dir/s3-secret-key")" | update_file "$sw_dir/etc/proxy-server.conf" 600; for s in account container object; do swift_backend_conf "$c" "$s" "$(swift_port "$sw_base" "$s")" > "$sw_dir/etc/$s-server.conf"; done; done');
    const env = await swiftEnv();
    const secrets: string[] = [];
    for (const [cloud, e] of Object.entries(env)) {
      const secret = (await fs.readFile(e.secretAccessKeyFile, 'utf8')).trim();
      expect(secret.length).toBeGreaterThanOrEqual(24);
      secrets.push(secret);
      expect((await fs.stat(e.secretAccessKeyFile)).mode & 0o777).toBe(0o600);
      expect((await fs.stat(e.proxyConf)).mode & 0o777).toBe(0o600);
      const proxy = await ini(e.proxyConf);
      expect(proxy['DEFAULT']).toMatchObject({ bind_ip: '127.0.0.1', bind_port: String(e.ports.proxy), workers: '0', swift_dir: e.swiftDir });
      const pipeline = proxy['pipeline:main']!['pipeline']!.split(' ');
      expect(pipeline.indexOf('s3api')).toBeGreaterThan(-1);
      expect(pipeline.indexOf('s3api')).toBeLessThan(pipeline.indexOf('tempauth'));
      expect(pipeline).toContain('cache');
      expect(pipeline.at(-1)).toBe('proxy-server');
      expect(proxy['app:proxy-server']).toMatchObject({ account_autocreate: 'true', error_suppression_interval: '1' });
      expect(proxy['filter:s3api']!['location']).toBe(e.region);
      expect(proxy['filter:tempauth']).toEqual({ use: 'egg:swift#tempauth', [`user_${cloud}_agent`]: `${secret} .admin` });
      expect(proxy['filter:cache']!['memcache_servers']).toBe(`127.0.0.1:${e.ports.memcached}`);
      for (const [server, file] of [['object', e.objectConf], ['container', e.containerConf], ['account', e.accountConf]] as const) {
        const conf = await ini(file);
        expect(conf['DEFAULT']).toMatchObject({
          bind_ip: '127.0.0.1', bind_port: String(e.ports[server]), workers: '0', devices: e.devicesDir,
          mount_check: 'false', disable_fallocate: 'true', swift_dir: e.swiftDir, recon_cache_path: join(e.dir, 'run'),
        });
        expect(await fs.readFile(file, 'utf8')).not.toContain(secret);
      }
      expect((await ini(e.objectConf))['object-replicator']!['sync_method']).toBe('ssync');
    }
    expect(secrets[0]).not.toBe(secrets[1]);
    // a second write keeps the secret (made once)
    await sh('swift_vars cloud-a; secret "$sw_dir/s3-secret-key" >/dev/null');
    expect((await fs.readFile(env['cloud-a']!.secretAccessKeyFile, 'utf8')).trim()).toBe(secrets[0]);
  });

  it('makes a 3-replica object ring over three devices (two ring regions at cloud-a), once', async () => {
    await sh('for c in $SWIFT_CLOUDS; do swift_vars "$c"; mkdir -p "$sw_dir/etc" "$sw_dir/log"; sw_rings_made=0; swift_rings "$c"; echo "$c $sw_rings_made"; done');
    const env = await swiftEnv();
    for (const [cloud, e] of Object.entries(env)) {
      const rings = await readRings(e.swiftDir);
      const object = rings['object']!;
      expect(object.replicas).toBe(3);
      expect(object.devs.map(({ device, region, zone }) => ({ name: device, ringRegion: region, zone })))
        .toEqual(e.devices.map(({ name, ringRegion, zone }) => ({ name, ringRegion, zone })));
      for (const d of object.devs) expect(d, cloud).toMatchObject({ ip: '127.0.0.1', port: e.ports.object });
      // the three replicas of every partition are on three different devices
      expect(object.partitions).toBe(256);
      expect(object.distinctDevicesPerPartition).toEqual([3]);
      for (const r of ['container', 'account'] as const) {
        expect(rings[r]).toMatchObject({ replicas: 1, partitions: 256, devs: [{ device: 'meta', ip: '127.0.0.1', port: e.ports[r] }] });
      }
    }
    expect(new Set(env['cloud-a']!.devices.map((d) => d.ringRegion)).size).toBe(2);
    // unchanged layout: the rings are kept
    const before = await fs.stat(env['cloud-a']!.objectRing);
    const again = await sh('swift_vars cloud-a; sw_rings_made=0; swift_rings cloud-a; echo "$sw_rings_made"');
    expect(again.trim()).toBe('0');
    expect((await fs.stat(env['cloud-a']!.objectRing)).mtimeMs).toBe(before.mtimeMs);
  }, 60_000);
});
