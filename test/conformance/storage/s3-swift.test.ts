/**
 * The object-store conformance suite against the `s3` adapter on each cloud's real OpenStack Swift
 * (s3api + tempauth, 3 replicas), as `scripts/services` started it: services.json → `swift`.
 * What the harness checks (pending uploads, presence) it asks Swift directly with a plain S3 client.
 */
import { execFileSync } from 'node:child_process';
import { openSync, readdirSync, readFileSync, readSync, writeSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { createObjectStore } from '../../../adapters/storage/index.js';
import { serviceEnv } from '../../helpers/services.js';
import { objectStoreConformance } from './object-store.conformance.js';

/** What this test reads of services.json → `swift.<cloud>` (scripts/services.d: the swift service). */
interface SwiftCloud {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKeyFile: string;
  swiftDir: string;
  objectRing: string;
  account: string;
  devices: { name: string; path: string }[];
}

const PART = 8 * 1024 * 1024;

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Flips the first byte of every replica's `.data` file of the object, keeping its metadata (bit rot on all three disks). */
function corruptReplicas(env: SwiftCloud, bucket: string, key: string): void {
  const out = execFileSync('/usr/bin/swift-get-nodes', [env.objectRing, env.account, bucket, key], { encoding: 'utf8' });
  const dirs = [...out.matchAll(/\/(d\d+)\/(objects\/\d+\/[0-9a-f]{3}\/[0-9a-f]{32})"/g)].map(([, device, rel]) => {
    const dev = env.devices.find((d) => d.name === device);
    if (dev === undefined) throw new Error(`swift-get-nodes names device '${device}' that services.json does not list`);
    return join(dev.path, rel!);
  });
  let flipped = 0;
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.data'))) {
      const fd = openSync(join(dir, f), 'r+');
      try {
        const b = Buffer.alloc(1);
        readSync(fd, b, 0, 1, 0);
        b[0] = b[0]! ^ 0xff;
        writeSync(fd, b, 0, 1, 0);
        flipped += 1;
      } finally {
        closeSync(fd);
      }
    }
  }
  if (flipped === 0) throw new Error(`no replica of '${key}' found under ${dirs.join(', ')}`);
}

/** Swift's own API (tempauth token): sets or removes a container's byte quota (container_quotas middleware answers 413). */
async function containerQuota(env: SwiftCloud, bucket: string, bytes: number | undefined): Promise<void> {
  const auth = await fetch(`${env.endpoint}/auth/v1.0`, {
    headers: { 'x-auth-user': env.accessKeyId, 'x-auth-key': readFileSync(env.secretAccessKeyFile, 'utf8').trim() },
  });
  const token = auth.headers.get('x-auth-token');
  const storage = auth.headers.get('x-storage-url');
  if (!auth.ok || token === null || storage === null) throw new Error(`tempauth login to ${env.endpoint} failed: http ${auth.status}`);
  const headers: Record<string, string> = { 'x-auth-token': token };
  if (bytes === undefined) headers['x-remove-container-meta-quota-bytes'] = 'x';
  else headers['x-container-meta-quota-bytes'] = String(bytes);
  const res = await fetch(`${storage}/${bucket}`, { method: 'POST', headers });
  if (res.status !== 204) throw new Error(`setting the quota of '${bucket}' failed: http ${res.status}`);
}

for (const cloud of ['cloud-a', 'cloud-b'] as const) {
  const env = (): SwiftCloud => serviceEnv<Record<string, SwiftCloud>>('swift')[cloud]!;
  let raw: S3Client | undefined;
  const rawClient = (): S3Client => {
    const e = env();
    raw ??= new S3Client({
      endpoint: e.endpoint, region: e.region, forcePathStyle: true, maxAttempts: 1,
      credentials: { accessKeyId: e.accessKeyId, secretAccessKey: readFileSync(e.secretAccessKeyFile, 'utf8').trim() },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return raw;
  };
  const s3Config = (endpoint: string): Record<string, unknown> => {
    const e = env();
    return { name: cloud, endpoint, region: e.region, accessKeyId: e.accessKeyId, secretAccessKeyFile: e.secretAccessKeyFile, partSizeBytes: PART };
  };

  objectStoreConformance({
    name: `s3 on swift (${cloud})`,
    async create() {
      return createObjectStore('s3', s3Config(env().endpoint));
    },
    async createUnreachable() {
      return createObjectStore('s3', { ...s3Config(`http://127.0.0.1:${await closedPort()}`), maxAttempts: 1 });
    },
    partSizeBytes: PART,
    async pendingUploads(bucket) {
      const out = await rawClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return out.Uploads?.length ?? 0;
    },
    async leaveUpload(bucket, key) {
      await rawClient().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    },
    async rawExists(bucket, key) {
      try {
        await rawClient().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw err;
      }
    },
    async fill(bucket) {
      await containerQuota(env(), bucket, 1);
      return async () => { await containerQuota(env(), bucket, undefined); };
    },
    async corrupt(bucket, key) {
      corruptReplicas(env(), bucket, key);
    },
  });
}
