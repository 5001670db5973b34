/**
 * Issue 14 as an operator runs it: two real agent daemons (cloud-a, cloud-b; child processes, as
 * scripts/local-federation.ts starts them, with the storage section it writes from services.json's
 * `swift.<cloud>`), on the real Prosody, each cloud's real RabbitMQ and each cloud's real Swift.
 * Everything is driven through the `intercloud storage` CLI on A's local API; every claim about
 * B's copy is checked on cloud-b's Swift itself (HEAD + GET, SHA-256), never through an agent.
 * The agents, stores and hooks are storage-agents-rig.ts's.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SubcontractView } from '../../../agent/daemon/storage-federation.js';
import { transferPrefix } from '../../../agent/replication/index.js';
import { cliNodeArgs, loadServicesFile, type AgentProcess } from '../../../scripts/local-federation.js';
import { STATE_DIR } from '../../helpers/services.js';
import { storageAgentsRig, waitFor } from './storage-agents-rig.js';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { rawSwiftClient, readAll } from './swift-rig.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const METRICS_PORT = 29_461;

/** Runs `intercloud ARGS` against `agent`'s socket; never throws on a non-zero exit. */
function cli(agent: AgentProcess, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return intercloud(...args, '--socket', join(agent.dir, 'agent.sock'));
}

/** cloud-b's entry in the signed directory, as `intercloud peers` reads it (an observer logged in with cloud-a's certificate). */
async function catalogOfB(): Promise<{ regions: string[]; capabilities: string[]; capacity: { objectStorageGiB: number } } | undefined> {
  const r = await intercloud('peers', '--config', join(rig.a.dir, 'agent.yaml'), '--capability', 'storage-federation', '--region', 'na-east', '--samples', '1', '--wait', '300', '--json');
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { peers: Array<{ entry: { cloudId: string } & NonNullable<Awaited<ReturnType<typeof catalogOfB>>> }> }).peers.find((p) => p.entry.cloudId === 'cloud-b')?.entry;
}

/** cloud-a's permission regex on cloud-b's broker (its transfers vhost), read from RabbitMQ's management API; '' when none. */
async function grantOfAatB(): Promise<string> {
  const broker = (loadServicesFile(STATE_DIR) as unknown as { brokers: Record<string, { url: string; management: { url: string; user: string; passwordFile: string } }> }).brokers['cloud-b']!;
  const vhost = new URL(broker.url).pathname.slice(1);
  const password = (await fs.readFile(broker.management.passwordFile, 'utf8')).trim();
  const res = await fetch(new URL(`/api/permissions/${vhost}/cloud-a`, broker.management.url), {
    headers: { authorization: `Basic ${Buffer.from(`${broker.management.user}:${password}`).toString('base64')}` },
  });
  if (res.status === 404) return '';
  expect(res.status).toBe(200);
  return ((await res.json()) as { configure: string }).configure;
}
const escPrefix = (subcontractId: string): string => transferPrefix(subcontractId).replace(/-/g, '\\-');

function intercloud(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [...cliNodeArgs(), ...args], {
      timeout: 300_000, maxBuffer: 16 * 1024 * 1024,
    }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const rig = storageAgentsRig('sd', { metricsPortA: METRICS_PORT });
let id = '';
let bucketB = '';
const objs = new Map<string, Buffer>();

/** B's Swift holds exactly `bytes` under `key` in the subcontract's bucket: HEAD, then GET hashed. */
async function expectAtB(key: string, bytes: Buffer): Promise<void> {
  const head = await rig.storeB.headObject(bucketB, key);
  expect(head, `${key} at cloud-b`).toMatchObject({ sizeBytes: bytes.length, sha256: sha(bytes) });
  expect(sha(await readAll((await rig.storeB.getObject(bucketB, key)).body)), `${key} bytes at cloud-b`).toBe(sha(bytes));
}

async function status(): Promise<SubcontractView> {
  const r = await cli(rig.a, 'storage', 'status', id, '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as SubcontractView;
}

describe('intercloud storage: a bucket of cloud-a subcontracted to cloud-b by the two agent daemons (issue 14)', () => {
  it('refuses bad input with a clear coded error before anything is offered', async () => {
    const noAck = await cli(rig.a, 'storage', 'subcontract', rig.src, '--to', 'cloud-b', '--replicas', '3', '--region', 'na-east');
    expect(noAck.code).toBe(2);
    expect(noAck.stderr).toMatch(/\[CLI_USAGE\].*--ack must be async, sync or quorum/);
    const both = await cli(rig.a, 'storage', 'subcontract', rig.src, '--to', 'cloud-b', '--auto', '--replicas', '3', '--region', 'na-east', '--ack', 'sync');
    expect(both.code).toBe(2);
    const noBucket = await cli(rig.a, 'storage', 'subcontract', `sd-none-${rig.run}`, '--to', 'cloud-b', '--replicas', '3', '--region', 'na-east', '--ack', 'sync');
    expect(noBucket.code).toBe(1);
    expect(noBucket.stderr).toMatch(/\[SUBCONTRACT_NO_SOURCE\]/);
    const unknown = await cli(rig.a, 'storage', 'status', 'sc-000000000000');
    expect(unknown.stderr).toMatch(/\[SUBCONTRACT_UNKNOWN\]/);
  }, 60_000);

  it('cloud-b\'s signed catalog entry advertises storage federation, its region na-east and its free object storage', async () => {
    const entry = await catalogOfB();
    expect(entry?.capabilities).toContain('storage-federation');
    expect(entry?.regions).toContain('na-east');
    expect(entry?.capacity.objectStorageGiB).toBe(100);
  }, 60_000);

  it('a region cloud-b\'s signed catalog does not list is refused at A (no offer is sent): the subcontract fails SUBCONTRACT_PEER_UNFIT', async () => {
    const r = await cli(rig.a, 'storage', 'subcontract', rig.src, '--to', 'cloud-b', '--replicas', '3', '--region', 'ap-south', '--ack', 'sync', '--json');
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as SubcontractView).error?.code).toBe('SUBCONTRACT_PEER_UNFIT');
  }, 60_000);

  it('subcontracts the bucket to cloud-b in na-east: B made its own bucket in its Swift, A replicates', async () => {
    const r = await cli(rig.a, 'storage', 'subcontract', rig.src, '--to', 'cloud-b', '--replicas', '3', '--region', 'na-east', '--ack', 'sync', '--json');
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(r.stdout) as SubcontractView;
    expect(v).toMatchObject({ side: 'out', state: 'running', peer: 'cloud-b', target: { region: 'na-east' }, ack: 'sync', replicas: 3 });
    id = v.subcontractId;
    bucketB = v.target!.bucket;
    rig.bucketsAtB.push(bucketB);
    expect(bucketB).toMatch(/^ic-cloud-a-[0-9a-f]{20}$/);
    expect(await rig.storeB.headBucket(bucketB)).toBe(true);
    // B lists it as a peer's subcontract it holds
    const atB = await cli(rig.b, 'storage', 'status', '--json');
    expect((JSON.parse(atB.stdout) as SubcontractView[]).find((x) => x.subcontractId === id)).toMatchObject({ side: 'in', peer: 'cloud-a', state: 'running' });
    // cloud-b granted cloud-a the subcontract's transfers (one prefix) at its broker
    expect(await grantOfAatB()).toContain(escPrefix(id));
    // B's catalog now offers what is left: 100 GiB less the subcontract's 1 GiB × 3 replicas
    await waitFor('cloud-b to advertise 97 free object GiB', catalogOfB, (e) => e?.capacity.objectStorageGiB === 97, 30_000);
  }, 120_000);

  it('objects written into cloud-a\'s Swift behind the agent appear verified in cloud-b\'s bucket, and the lag falls to 0', async () => {
    for (const [i, size] of [0, 1024, 70_000, 9 * 1024 * 1024 + 7].entries()) objs.set(`behind/${i}`, randomBytes(size));
    for (const [k, v] of objs) await rig.storeA.putObject(rig.src, k, v, { sizeBytes: v.length, sha256: sha(v) });
    const st = await waitFor('the lag to fall to 0 with 4 objects completed', status, (s) => s.replication?.objects.completed === 4 && s.replication.objects.pending === 0);
    expect(st.replication).toMatchObject({ objects: { pending: 0, completed: 4, failed: 0 }, pendingBytes: 0, oldestPendingAgeSeconds: 0 });
    expect(st.replication!.bytesMoved).toBeGreaterThanOrEqual([...objs.values()].reduce((n, x) => n + x.length, 0));
    for (const [k, v] of objs) await expectAtB(k, v);
    // --objects lists each object's state
    const withObjects = JSON.parse((await cli(rig.a, 'storage', 'status', id, '--objects', '--json')).stdout) as SubcontractView;
    expect(withObjects.objects?.map((o) => [o.key, o.state])).toEqual([...objs.keys()].sort().map((k) => [k, 'COMPLETED']));
    // the same figures on A's Prometheus endpoint
    const metrics = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text();
    expect(metrics).toContain(`intercloud_replication_pending_objects{subcontract="${id}"} 0`);
    expect(metrics).toContain(`intercloud_replication_completed_objects{subcontract="${id}"} 4`);
  }, 180_000);

  it('storage put answers only once cloud-b persisted and verified the object (ack sync)', async () => {
    const bytes = randomBytes(300_000);
    const file = join(rig.dir, 'put.bin');
    await fs.writeFile(file, bytes);
    const r = await cli(rig.a, 'storage', 'put', id, 'put/one', file, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ key: 'put/one', sizeBytes: bytes.length, sha256: sha(bytes), replicated: true, ack: 'sync' });
    // no waiting: the answer came after B's verified write
    await expectAtB('put/one', bytes);
    objs.set('put/one', bytes);
    // a key outside nothing / an unreadable file are usage errors
    expect((await cli(rig.a, 'storage', 'put', id, 'put/two', join(rig.dir, 'no-such-file'))).code).toBe(2);
  }, 120_000);

  it('an object deleted behind the agent\'s back at cloud-b is found and repaired by storage verify', async () => {
    await rig.storeB.deleteObject(bucketB, 'behind/2');
    expect(await rig.storeB.headObject(bucketB, 'behind/2')).toBeUndefined();
    const r = await cli(rig.a, 'storage', 'verify', id, '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { report: { checked: number; missing: string[]; corrupt: string[]; requeued: number }; status: SubcontractView };
    expect(out.report.missing).toEqual(['behind/2']);
    expect(out.report.requeued).toBe(1);
    expect(out.status.replication?.objects).toMatchObject({ pending: 0, failed: 0 });
    await expectAtB('behind/2', objs.get('behind/2')!);
  }, 120_000);

  it('cloud-a\'s agent restarted: its replicator resumes from its journal and copies what was written while it was down', async () => {
    await rig.a.stop('SIGKILL');
    const bytes = randomBytes(50_000);
    await rig.storeA.putObject(rig.src, 'while-down/x', bytes, { sizeBytes: bytes.length, sha256: sha(bytes) });
    objs.set('while-down/x', bytes);
    await rig.a.start();
    const st = await waitFor('the object written while A was down to complete', status, (s) => s.replication?.objects.completed === objs.size && s.replication.objects.pending === 0);
    expect(st.state).toBe('running');
    await expectAtB('while-down/x', bytes);
  }, 180_000);

  it('cloud-b\'s agent restarted: its grant is kept by the reconcile, its receiver served again, the upload its killed put left is aborted, and the copy goes on', async () => {
    await rig.b.stop('SIGKILL');
    // What a put killed with B's agent leaves in B's bucket: a multipart upload with a part, never completed.
    const raw = rawSwiftClient('cloud-b');
    const pending = async (): Promise<number> => (await raw.send(new ListMultipartUploadsCommand({ Bucket: bucketB }))).Uploads?.length ?? 0;
    try {
      const left = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucketB, Key: 'killed-mid-put/z' }));
      await raw.send(new UploadPartCommand({ Bucket: bucketB, Key: 'killed-mid-put/z', UploadId: left.UploadId!, PartNumber: 1, Body: randomBytes(1024 * 1024) }));
      expect(await pending()).toBe(1);
      const bytes = randomBytes(40_000);
      await rig.storeA.putObject(rig.src, 'while-b-down/y', bytes, { sizeBytes: bytes.length, sha256: sha(bytes) });
      objs.set('while-b-down/y', bytes);
      await rig.b.start();
      expect(await grantOfAatB()).toContain(escPrefix(id));
      const st = await waitFor('the object written while B was down to complete', status, (s) => s.replication?.objects.completed === objs.size && s.replication.objects.pending === 0, 120_000);
      expect(st.replication?.objects.failed).toBe(0);
      await expectAtB('while-b-down/y', bytes);
      await waitFor('the upload left by the killed put to be aborted', pending, (n) => n === 0, 30_000);
      expect(await rig.storeB.headObject(bucketB, 'killed-mid-put/z')).toBeUndefined();
    } finally {
      raw.destroy();
    }
  }, 180_000);

  it('storage end: cloud-b deletes every object and its bucket (delete terms), A verifies it and the subcontract completes; A\'s bucket is untouched', async () => {
    const r = await cli(rig.a, 'storage', 'end', id, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'completed' });
    expect(await rig.storeB.headBucket(bucketB)).toBe(false);
    // B's job ended: the grant is withdrawn
    await waitFor('cloud-b to withdraw cloud-a\'s grant', grantOfAatB, (g) => !g.includes(escPrefix(id)), 15_000);
    for (const [k, v] of objs) expect((await rig.storeA.headObject(rig.src, k))?.sizeBytes, k).toBe(v.length);
    const atB = JSON.parse((await cli(rig.b, 'storage', 'status', id, '--json')).stdout) as SubcontractView;
    expect(atB.state).toBe('completed');
    // ended: no more puts
    const file = join(rig.dir, 'put.bin');
    expect((await cli(rig.a, 'storage', 'put', id, 'put/late', file)).stderr).toMatch(/\[SUBCONTRACT_NOT_ACTIVE\]/);
  }, 180_000);

  it('return terms: at the end A checks it still holds every object B held, then B deletes its copy; only the prefix was copied', async () => {
    const start = await cli(rig.a, 'storage', 'subcontract', rig.src, '--to', 'cloud-b', '--replicas', '1', '--region', 'na-east', '--ack', 'async', '--prefix', 'behind/', '--at-end', 'return', '--json');
    expect(start.code, start.stderr).toBe(0);
    const v = JSON.parse(start.stdout) as SubcontractView;
    id = v.subcontractId;
    bucketB = v.target!.bucket;
    rig.bucketsAtB.push(bucketB);
    const behind = [...objs.keys()].filter((k) => k.startsWith('behind/'));
    await waitFor('the prefix to be copied', status, (s) => s.replication?.objects.completed === behind.length && s.replication.objects.pending === 0);
    for (const k of behind) await expectAtB(k, objs.get(k)!);
    expect(await rig.storeB.headObject(bucketB, 'put/one')).toBeUndefined();
    const end = await cli(rig.a, 'storage', 'end', id, '--json');
    expect(end.code, end.stderr).toBe(0);
    const job = JSON.parse(end.stdout) as SubcontractView;
    expect(job.state).toBe('completed');
    expect(await rig.storeB.headBucket(bucketB)).toBe(false);
    const results = (JSON.parse((await cli(rig.a, 'job', job.jobId, '--json')).stdout) as { results: Record<string, unknown> }).results;
    expect(results['return-data']).toEqual({ objects: behind.length, bytes: behind.reduce((n, k) => n + objs.get(k)!.length, 0) });
  }, 180_000);
});
