/**
 * Issue 14's daemon tests: two real agent daemons (cloud-a, cloud-b; child processes, as
 * scripts/local-federation.ts starts them, with the storage section it writes from services.json's
 * `swift.<cloud>`) on the real Prosody, each cloud's real RabbitMQ and Swift, and a source bucket
 * in A's Swift. {@link storageAgentsRig} registers the file's hooks: the federation lock (the
 * agents log in as cloud-a and cloud-b), the start, and at the end the stop and the removal of
 * the source bucket and of every bucket the test named in `bucketsAtB`.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { ObjectStore } from '../../../adapters/storage/index.js';
import { lockFederation } from '../../../scripts/federation-lock.js';
import { AgentProcess, loadServicesFile, writeAgentConfig } from '../../../scripts/local-federation.js';
import { STATE_DIR } from '../../helpers/services.js';
import { dropBucket, s3Store, sleep } from './swift-rig.js';

export interface StorageAgents {
  /** A short id of this run, for names that must not clash with another run's. */
  readonly run: string;
  /** The source bucket in cloud-a's Swift (made before the agents start). */
  readonly src: string;
  readonly dir: string;
  readonly a: AgentProcess;
  readonly b: AgentProcess;
  readonly storeA: ObjectStore;
  readonly storeB: ObjectStore;
  /** Buckets at cloud-b the test learnt of (a subcontract's): emptied and removed at the end. */
  readonly bucketsAtB: string[];
}

/** Registers the hooks and returns the rig, filled in once the file's `beforeAll` ran. */
export function storageAgentsRig(name: string, o: { metricsPortA?: number } = {}): StorageAgents {
  const run = `${process.pid.toString(36)}${randomUUID().slice(0, 6)}`;
  const rig = { run, src: `${name}-src-${run}`, dir: join(STATE_DIR, 'test-storage', `${name}-${run}`), bucketsAtB: [] as string[] } as
    { -readonly [K in keyof StorageAgents]: StorageAgents[K] };
  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockFederation();
  }, 1_000 * (Number(process.env['INTERCLOUD_LOCK_WAIT_S'] ?? 600) + 60));

  beforeAll(async () => {
    const s = loadServicesFile(STATE_DIR);
    await fs.rm(rig.dir, { recursive: true, force: true });
    rig.a = new AgentProcess('cloud-a', join(rig.dir, 'cloud-a'));
    rig.b = new AgentProcess('cloud-b', join(rig.dir, 'cloud-b'));
    await writeAgentConfig(s, 'cloud-a', rig.a.dir, { region: 'eu-west', ...(o.metricsPortA === undefined ? {} : { metricsPort: o.metricsPortA }) });
    await writeAgentConfig(s, 'cloud-b', rig.b.dir, { region: 'eu-central' });
    rig.storeA = s3Store('cloud-a');
    rig.storeB = s3Store('cloud-b');
    await rig.storeA.createBucket(rig.src);
    await Promise.all([rig.a.start(), rig.b.start()]);
  }, 180_000);

  afterAll(async () => {
    try {
      await Promise.all([rig.a?.stop(), rig.b?.stop()]);
      if (rig.storeA) await dropBucket(rig.storeA, rig.src);
      if (rig.storeB) for (const bucket of rig.bucketsAtB) await dropBucket(rig.storeB, bucket);
      await rig.storeA?.close();
      await rig.storeB?.close();
      if (process.env['INTERCLOUD_KEEP_TEST_DIRS'] === undefined) await fs.rm(rig.dir, { recursive: true, force: true });
    } finally {
      await unlock?.();
    }
  }, 120_000);

  return rig;
}

/** Asks `get` every 250 ms until `ok` holds of its answer, and returns that answer; throws with the last one after `ms`. */
export async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(v).slice(0, 1500)}`);
    await sleep(250);
  }
}
