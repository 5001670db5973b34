/**
 * A plain S3 client of a cloud's Swift (services.json → `swift.<cloud>`), for the demo's storage
 * part: it writes, lists, hashes and deletes objects as any client of the cloud would — behind the
 * agents' backs, with the AWS SDK directly, not through the project's adapter. Not part of the agent.
 *
 *   node --import tsx scripts/swift-objects.ts reset CLOUD BUCKET        empty (or make) BUCKET
 *   node --import tsx scripts/swift-objects.ts put CLOUD BUCKET KEY BYTES  write BYTES random bytes
 *   node --import tsx scripts/swift-objects.ts ls CLOUD BUCKET           every object: key, size, sha-256 of its bytes (read back)
 *   node --import tsx scripts/swift-objects.ts rm CLOUD BUCKET KEY
 *   node --import tsx scripts/swift-objects.ts exists CLOUD BUCKET       prints "exists" or "gone"
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { loadServicesFile } from './local-federation.js';

interface SwiftCloud { endpoint: string; region: string; accessKeyId: string; secretAccessKeyFile: string }

function client(cloud: string): S3Client {
  const swift = (loadServicesFile() as unknown as { swift?: Record<string, SwiftCloud> }).swift?.[cloud];
  if (!swift) throw new Error(`services.json has no swift for '${cloud}': run 'scripts/services up swift'`);
  return new S3Client({
    endpoint: swift.endpoint, region: swift.region, forcePathStyle: true,
    credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: readFileSync(swift.secretAccessKeyFile, 'utf8').trim() },
    // Swift's s3api answers 501 to the SDK's default streaming checksums.
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function exists(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return false;
    throw err;
  }
}

async function keys(s3: S3Client, bucket: string): Promise<Array<{ key: string; size: number }>> {
  const out: Array<{ key: string; size: number }> = [];
  for (let token: string | undefined; ;) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key ?? '', size: o.Size ?? 0 });
    if (!page.IsTruncated) return out;
    token = page.NextContinuationToken;
  }
}

const USAGE = 'usage: swift-objects.ts reset|put|ls|rm|exists CLOUD BUCKET [KEY [BYTES]]\n';
const COMMANDS = ['reset', 'put', 'ls', 'rm', 'exists'];

/** Runs one command against `cloud`'s Swift; the client is closed whatever happens. */
async function main(cmd: string, cloud: string, bucket: string, key: string | undefined, bytes: string | undefined): Promise<void> {
  const s3 = client(cloud);
  try {
    switch (cmd) {
      case 'reset':
        if (await exists(s3, bucket)) for (const o of await keys(s3, bucket)) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.key }));
        else await s3.send(new CreateBucketCommand({ Bucket: bucket }));
        break;
      case 'put': {
        const body = randomBytes(Number(bytes));
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentMD5: createHash('md5').update(body).digest('base64') }));
        process.stdout.write(`${key} ${body.length} bytes sha256 ${createHash('sha256').update(body).digest('hex').slice(0, 16)}…\n`);
        break;
      }
      case 'ls':
        for (const o of await keys(s3, bucket)) {
          const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.key }));
          const h = createHash('sha256').update(Buffer.from(await got.Body!.transformToByteArray())).digest('hex');
          process.stdout.write(`${o.key.padEnd(22)} ${String(o.size).padStart(9)} bytes sha256 ${h.slice(0, 16)}…\n`);
        }
        break;
      case 'rm':
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        break;
      case 'exists':
        process.stdout.write(`${(await exists(s3, bucket)) ? 'exists' : 'gone'}\n`);
        break;
    }
  } finally {
    s3.destroy();
  }
}

const [cmd, cloud, bucket, key, bytes] = process.argv.slice(2);
if (!cmd || !cloud || !bucket || !COMMANDS.includes(cmd)) {
  // A usage error, checked before any client opens: status 2 as the other scripts' CLIs give,
  // set rather than exiting so that stderr is flushed (the process has nothing left to run).
  process.stderr.write(cmd && cloud && bucket ? `unknown command '${cmd}'\n${USAGE}` : USAGE);
  process.exitCode = 2;
} else {
  await main(cmd, cloud, bucket, key, bytes);
}
