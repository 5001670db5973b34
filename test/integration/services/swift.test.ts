/**
 * Each cloud's own object store (issue 14): OpenStack Swift with the S3 API, started by
 * scripts/services.d/72-swift.sh, reached with @aws-sdk/client-s3 the way the storage adapter
 * will (path style, checksums only when required: Swift answers 501 to aws-chunked bodies).
 * cloud-a's and cloud-b's clusters are independent; every object has 3 replicas on 3 devices,
 * in two ring regions at cloud-a.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand,
  HeadObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { service, type SwiftCloudEnv } from '../../helpers/services.js';

const run = promisify(execFile);
const SERVICES = resolve(import.meta.dirname, '../../../scripts/services');
const CLOUDS = ['cloud-a', 'cloud-b'] as const;

function env(cloud: string): SwiftCloudEnv {
  const e = service('swift')[cloud];
  if (!e) throw new Error(`no swift for ${cloud} in services.json`);
  return e;
}

/** An S3 client for `cloud`'s store, signing with `creds` (by default the cloud's own). */
function client(cloud: string, creds?: { accessKeyId: string; secretAccessKey: string }): S3Client {
  const e = env(cloud);
  return new S3Client({
    endpoint: e.endpoint,
    region: e.region,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    credentials: creds ?? { accessKeyId: e.accessKeyId, secretAccessKey: readFileSync(e.secretAccessKeyFile, 'utf8').trim() },
  });
}

/** The HTTP status and S3 error code of a refused call; throws if the call succeeded. */
async function refusal(p: Promise<unknown>): Promise<{ status: number | undefined; code: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof S3ServiceException)) throw new Error(`expected an S3 error, got ${String(err)}`, { cause: err });
  return { status: err.$metadata.httpStatusCode, code: err.name };
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('base64');

/** Where Swift keeps the replicas of ACCOUNT/BUCKET/KEY: device name and hash folder, from swift-get-nodes. */
async function replicaPlaces(e: SwiftCloudEnv, bucket: string, key: string): Promise<Array<{ device: string; folder: string }>> {
  const { stdout } = await run('swift-get-nodes', [e.objectRing, e.account, bucket, key]);
  // ssh 127.0.0.1 "ls -lah ${DEVICE:-/srv/node*}/d2/objects/114/47e/72a0…"
  return [...stdout.matchAll(/\/(\w+)\/(objects\/\d+\/[0-9a-f]{3}\/[0-9a-f]{32})"/g)].map((m) => ({ device: m[1]!, folder: join(e.devicesDir, m[1]!, m[2]!) }));
}

const suffix = randomBytes(4).toString('hex');
const made: Array<{ cloud: string; bucket: string; keys: string[] }> = [];
afterAll(async () => {
  for (const { cloud, bucket, keys } of made) {
    const s3 = client(cloud);
    for (const Key of keys) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => undefined);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  }
});

describe('swift: each cloud\'s object store (S3 API)', () => {
  it('describes two clusters with their own ports, folders, credentials and ring layout', () => {
    const a = env('cloud-a');
    const b = env('cloud-b');
    const ports = [...Object.values(a.ports), ...Object.values(b.ports)];
    expect(new Set(ports).size).toBe(ports.length);
    expect(a.endpoint).toBe(`http://127.0.0.1:${a.ports.proxy}`);
    expect(a.accessKeyId).not.toBe(b.accessKeyId);
    expect(readFileSync(a.secretAccessKeyFile, 'utf8').trim()).not.toBe(readFileSync(b.secretAccessKeyFile, 'utf8').trim());
    for (const e of [a, b]) {
      for (const f of [e.secretAccessKeyFile, e.proxyConf, e.objectConf, e.objectRing, e.devicesDir]) expect(f.startsWith(`${e.dir}/`), f).toBe(true);
      expect(statSync(e.secretAccessKeyFile).mode & 0o777).toBe(0o600);
      // tempauth reads the secret from the proxy's configuration
      expect(statSync(e.proxyConf).mode & 0o777).toBe(0o600);
      expect(e.replicas).toBe(3);
      expect(e.devices).toHaveLength(3);
      for (const d of e.devices) {
        expect(d.path).toBe(join(e.devicesDir, d.name));
        expect(existsSync(d.path)).toBe(true);
        expect(e.ringRegions[String(d.ringRegion)]).toBe(d.region);
      }
      expect(e.regions).toEqual(Object.values(e.ringRegions));
      expect(e.regions).toContain(e.region);
    }
    expect(a.dir).not.toBe(b.dir);
    // cloud-a: three devices in two ring regions; cloud-b: one region, three zones
    expect(a.devices.map((d) => [d.ringRegion, d.zone])).toEqual([[1, 1], [1, 2], [2, 1]]);
    expect(b.devices.map((d) => [d.ringRegion, d.zone])).toEqual([[1, 1], [1, 2], [1, 3]]);
    expect(a.regions).toHaveLength(2);
    expect(b.regions).toHaveLength(1);
    expect(a.regions.filter((r) => b.regions.includes(r))).toEqual([]);
  });

  it.each(CLOUDS)('%s: bucket and object round trip (put, head, get, list, delete) with Content-MD5', async (cloud) => {
    const s3 = client(cloud);
    const Bucket = `svc-${cloud}-${suffix}`;
    const Key = 'dir/hello.txt';
    made.push({ cloud, bucket: Bucket, keys: [Key, 'bad-md5.txt'] });
    await s3.send(new CreateBucketCommand({ Bucket }));
    const body = Buffer.from(`hello from ${cloud} ${suffix}\n`);
    const put = await s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentMD5: md5(body), Metadata: { sha256: createHash('sha256').update(body).digest('hex') } }));
    expect(put.ETag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    const head = await s3.send(new HeadObjectCommand({ Bucket, Key }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.Metadata?.['sha256']).toBe(createHash('sha256').update(body).digest('hex'));
    const get = await s3.send(new GetObjectCommand({ Bucket, Key }));
    expect(Buffer.from(await get.Body!.transformToByteArray())).toEqual(body);
    const list = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'dir/' }));
    expect(list.Contents?.map((o) => [o.Key, o.Size])).toEqual([[Key, body.length]]);
    // a body that does not match its Content-MD5 is refused, and nothing is stored
    const bad = await refusal(s3.send(new PutObjectCommand({ Bucket, Key: 'bad-md5.txt', Body: body, ContentMD5: md5(Buffer.from('other')) })));
    expect(bad).toEqual({ status: 400, code: 'BadDigest' });
    expect((await refusal(s3.send(new HeadObjectCommand({ Bucket, Key: 'bad-md5.txt' })))).status).toBe(404);
    await s3.send(new DeleteObjectCommand({ Bucket, Key }));
    expect((await refusal(s3.send(new HeadObjectCommand({ Bucket, Key })))).status).toBe(404);
    expect((await s3.send(new ListObjectsV2Command({ Bucket }))).KeyCount).toBe(0);
    await s3.send(new DeleteBucketCommand({ Bucket }));
    expect((await refusal(s3.send(new HeadBucketCommand({ Bucket })))).status).toBe(404);
  });

  it.each(CLOUDS)('%s: an object has its 3 replicas on 3 different devices (spanning every ring region)', async (cloud) => {
    const e = env(cloud);
    const s3 = client(cloud);
    const Bucket = `svc-replicas-${cloud}-${suffix}`;
    const Key = `replicated-${suffix}.bin`;
    made.push({ cloud, bucket: Bucket, keys: [Key] });
    await s3.send(new CreateBucketCommand({ Bucket }));
    const body = randomBytes(64 << 10);
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentMD5: md5(body) }));
    const places = await replicaPlaces(e, Bucket, Key);
    expect(places).toHaveLength(3);
    expect(new Set(places.map((p) => p.device))).toEqual(new Set(e.devices.map((d) => d.name)));
    for (const p of places) {
      // the write is acknowledged at quorum (2 of 3); the third replica follows at once here
      const data = readdirSync(p.folder).filter((f) => f.endsWith('.data'));
      expect(data, `${p.folder}`).toHaveLength(1);
      expect(readFileSync(join(p.folder, data[0]!))).toEqual(body);
    }
    const regions = new Set(places.map((p) => e.devices.find((d) => d.name === p.device)!.region));
    expect([...regions].sort()).toEqual([...e.regions].sort());
  });

  it('swift-object-replicator <objectConf> once re-creates a replica lost on one device', async () => {
    const e = env('cloud-b');
    const s3 = client('cloud-b');
    const Bucket = `svc-repair-${suffix}`;
    const Key = `repaired-${suffix}.bin`;
    made.push({ cloud: 'cloud-b', bucket: Bucket, keys: [Key] });
    await s3.send(new CreateBucketCommand({ Bucket }));
    const body = randomBytes(32 << 10);
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentMD5: md5(body) }));
    const places = await replicaPlaces(e, Bucket, Key);
    const lost = places[0]!;
    // lose this object's replica on one device (and that partition's cached suffix hashes there,
    // as a wiped device would), touching no other object
    await fs.rm(lost.folder, { recursive: true });
    const partition = join(lost.folder, '..', '..');
    await fs.rm(join(partition, 'hashes.pkl'), { force: true });
    expect(existsSync(lost.folder)).toBe(false);
    // still readable from the two others
    const get = await s3.send(new GetObjectCommand({ Bucket, Key }));
    expect(Buffer.from(await get.Body!.transformToByteArray())).toEqual(body);
    await run('swift-object-replicator', [e.objectConf, 'once', `--partitions=${partition.split('/').at(-1)!}`]);
    const data = readdirSync(lost.folder).filter((f) => f.endsWith('.data'));
    expect(data).toHaveLength(1);
    expect(readFileSync(join(lost.folder, data[0]!))).toEqual(body);
  });

  it('the two clouds\' stores are independent: buckets and credentials of one are unknown to the other', async () => {
    const a = client('cloud-a');
    const b = client('cloud-b');
    const Bucket = `svc-only-a-${suffix}`;
    made.push({ cloud: 'cloud-a', bucket: Bucket, keys: [] });
    await a.send(new CreateBucketCommand({ Bucket }));
    await a.send(new HeadBucketCommand({ Bucket }));
    expect((await refusal(b.send(new HeadBucketCommand({ Bucket })))).status).toBe(404);
    expect((await b.send(new ListBucketsCommand({}))).Buckets?.map((x) => x.Name)).not.toContain(Bucket);
    // cloud-b's credentials, signed for cloud-a's region, are refused by cloud-a's store
    const eb = env('cloud-b');
    const bCreds = { accessKeyId: eb.accessKeyId, secretAccessKey: readFileSync(eb.secretAccessKeyFile, 'utf8').trim() };
    const ea = env('cloud-a');
    const withBCreds = new S3Client({
      endpoint: ea.endpoint, region: ea.region, forcePathStyle: true, maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', credentials: bCreds,
    });
    expect((await refusal(withBCreds.send(new ListBucketsCommand({})))).status).toBe(403);
    expect((await refusal(withBCreds.send(new HeadBucketCommand({ Bucket })))).status).toBe(403);
    // and cloud-a's key id with a wrong secret too
    const wrongSecret = client('cloud-a', { accessKeyId: ea.accessKeyId, secretAccessKey: 'not-the-secret' });
    expect(await refusal(wrongSecret.send(new ListBucketsCommand({})))).toEqual({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('status says which server is down; up starts that one again and leaves the other nine running', async () => {
    const pidsOf = (): Record<string, number> => Object.fromEntries(CLOUDS.flatMap((c) =>
      Object.entries(env(c).pidFiles).map(([server, f]) => [`${c}/${server}`, Number(readFileSync(f, 'utf8').trim())])));
    const before = pidsOf();
    // cloud-b's memcached: the one process whose loss no S3 request notices (the proxy's cache
    // is only a cache), so other tests using the stores meanwhile are not disturbed
    const victim = before['cloud-b/memcached']!;
    process.kill(victim, 'SIGTERM');
    for (let i = 0; i < 100 && existsSync(`/proc/${victim}`) && !readFileSync(`/proc/${victim}/status`, 'utf8').includes('State:\tZ'); i++) await new Promise((r) => setTimeout(r, 50));
    const status = await run(SERVICES, ['status', 'swift']).then(() => undefined, (e: { code: number; stdout: string }) => e);
    expect(status?.code).toBe(1);
    expect(status?.stdout).toMatch(/swift +down +cloud-b: memcached \(no live pid\)/);
    const { stdout } = await run(SERVICES, ['up', 'swift']);
    expect(stdout).toMatch(/swift-cloud-b +up in/);
    expect(stdout).not.toMatch(/swift-cloud-a +up in|restarting/);
    const after = pidsOf();
    expect(after['cloud-b/memcached']).not.toBe(victim);
    expect(existsSync(`/proc/${after['cloud-b/memcached']!}`)).toBe(true);
    expect({ ...after, 'cloud-b/memcached': victim }).toEqual(before);
    expect((await run(SERVICES, ['status', 'swift'])).stdout).toMatch(/swift +up +cloud-a .*cloud-b/);
  });
});
