/**
 * Swift's own view of a cloud's object devices (scripts/services.d/72-swift.sh), for the tests and
 * the benchmark that wipe one behind everyone's back: where an object's replica lives on a device
 * (Swift's hash path: MD5 of the hash prefix, `/account/container/object` and the hash suffix from
 * /etc/swift/swift.conf; partition = its first 32 bits shifted by 32 − part power), how many
 * replicas of a set of objects a device holds, wiping a device, and Swift's own object replicator.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The object ring's part power (the services script builds its rings with 2^8 partitions). */
export const PART_POWER = 8;

/** What this helper reads of services.json → `swift.<cloud>`. */
export interface SwiftDevicesEnv {
  account: string;
  objectConf: string;
  devices: ReadonlyArray<{ name: string; path: string }>;
}

function hashPathAffixes(): { prefix: string; suffix: string } {
  const conf = readFileSync('/etc/swift/swift.conf', 'utf8');
  const get = (k: string): string => new RegExp(`^\\s*${k}\\s*=\\s*(.*?)\\s*$`, 'm').exec(conf)?.[1] ?? '';
  return { prefix: get('swift_hash_path_prefix'), suffix: get('swift_hash_path_suffix') };
}

/** Swift's partition and hash of an object (S3 bucket = container, key = object name). */
export function objectHashPath(account: string, container: string, object: string): { partition: number; hash: string } {
  const { prefix, suffix } = hashPathAffixes();
  const digest = createHash('md5').update(`${prefix}/${account}/${container}/${object}${suffix}`).digest();
  return { partition: digest.readUInt32BE(0) >>> (32 - PART_POWER), hash: digest.toString('hex') };
}

/** Whether `device` holds a current replica (a `.data` file) of the object. */
export async function hasReplica(device: string, account: string, container: string, object: string): Promise<boolean> {
  const { partition, hash } = objectHashPath(account, container, object);
  const files = await fs.readdir(join(device, 'objects', String(partition), hash.slice(-3), hash)).catch(() => [] as string[]);
  return files.some((f) => f.endsWith('.data'));
}

/** How many of `objects` have a replica on each device, by device name. */
export async function replicaCounts(env: SwiftDevicesEnv, container: string, objects: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const d of env.devices) {
    let n = 0;
    for (const o of objects) if (await hasReplica(d.path, env.account, container, o)) n++;
    out[d.name] = n;
  }
  return out;
}

/** Removes every replica of the object from every device (the object is then lost at this cloud, though listed). */
export async function loseEverywhere(env: SwiftDevicesEnv, container: string, object: string): Promise<void> {
  const { partition, hash } = objectHashPath(env.account, container, object);
  for (const d of env.devices) await fs.rm(join(d.path, 'objects', String(partition), hash.slice(-3), hash), { recursive: true, force: true });
}

/** Empties a device (what a replaced disk looks like): its contents go, the folder stays. */
export async function wipeDevice(path: string): Promise<void> {
  for (const f of await fs.readdir(path)) await fs.rm(join(path, f), { recursive: true, force: true });
}

/** Runs Swift's `swift-object-replicator <objectConf> once`; resolves with its wall time in ms. */
export async function objectReplicatorOnce(env: SwiftDevicesEnv): Promise<number> {
  const t0 = Date.now();
  await run('/usr/bin/swift-object-replicator', [env.objectConf, 'once'], { timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  return Date.now() - t0;
}
