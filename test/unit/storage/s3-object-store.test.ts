/**
 * The s3 adapter against a scripted loopback HTTP server: how store answers map to STORE_… codes
 * (by status and S3 code, with the store's fields kept), that a hung store times out, that a put is
 * checked against what the store says it stored, that every body carries a Content-MD5, and that a
 * store answering a put before reading its body, then closing, fails the put and crashes nothing.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createObjectStore, type ObjectStore } from '../../../adapters/storage/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }
type Handler = (req: Seen, res: ServerResponse) => void;

const servers: Server[] = [];
const sockets: Socket[] = [];
const stores: ObjectStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

function secretFile(mode = 0o600): string {
  const dir = mkdtempSync(join(tmpdir(), 's3-unit-'));
  const f = join(dir, 'secret');
  writeFileSync(f, 'not-a-real-secret\n');
  chmodSync(f, mode);
  return f;
}

async function scripted(handler: Handler): Promise<{ store: ObjectStore; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(s);
      handler(s, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const store = createObjectStore('s3', {
    name: 'unit', endpoint: `http://127.0.0.1:${port}`, region: 'eu-west', accessKeyId: 'test:tester', secretAccessKeyFile: secretFile(),
    maxAttempts: 1, idleTimeoutMs: 1000, connectTimeoutMs: 500, partSizeBytes: 5 * 1024 * 1024,
  });
  stores.push(store);
  return { store, seen };
}

function s3Error(res: ServerResponse, status: number, code: string, requestId = 'tx-unit-1'): void {
  const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>scripted ${code}</Message><RequestId>${requestId}</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': requestId, 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

async function failure(p: Promise<unknown>): Promise<{ code: string; retryable: boolean; details: Record<string, unknown> }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!isIntercloudError(err)) throw new Error(`expected an adapter error, got ${String(err)}`);
  return { code: err.code, retryable: err.retryable, details: { ...err.details } };
}

const one = Buffer.from('x');
const oneSha = createHash('sha256').update(one).digest('hex');
const oneMd5 = createHash('md5').update(one).digest('hex');

describe('s3 adapter: store answers mapped to contract codes', () => {
  const table: [number, string, string, boolean][] = [
    [404, 'NoSuchBucket', 'STORE_BUCKET_NOT_FOUND', false],
    [404, 'NoSuchKey', 'STORE_OBJECT_NOT_FOUND', false],
    [412, 'PreconditionFailed', 'STORE_PRECONDITION_FAILED', true],
    [400, 'BadDigest', 'STORE_INTEGRITY', true],
    [507, 'InsufficientStorage', 'STORE_FULL', true],
    [413, 'EntityTooLarge', 'STORE_FULL', true],
    [403, 'QuotaExceeded', 'STORE_FULL', true],
    [403, 'AccessDenied', 'STORE_REFUSED', false],
    [403, 'SignatureDoesNotMatch', 'STORE_REFUSED', false],
    [401, 'Unauthorized', 'STORE_REFUSED', false],
    [503, 'ServiceUnavailable', 'STORE_UNAVAILABLE', true],
    [500, 'InternalError', 'STORE_UNAVAILABLE', true],
  ];
  for (const [status, s3Code, code, retryable] of table) {
    it(`${status} ${s3Code} → ${code}, keeping status, S3 code and request id`, async () => {
      const { store } = await scripted((_req, res) => s3Error(res, status, s3Code));
      const f = await failure(store.getObject('bucket', 'key'));
      expect(f).toMatchObject({ code, retryable, details: { status, s3Code, requestId: 'tx-unit-1', bucket: 'bucket', key: 'key', op: 'getObject' } });
    });
  }

  it('409 BucketNotEmpty → STORE_BUCKET_NOT_EMPTY; 404 on delete bucket is success; 409 BucketAlreadyOwnedByYou on create is success', async () => {
    let answer: [number, string] = [409, 'BucketNotEmpty'];
    const { store } = await scripted((_req, res) => s3Error(res, ...answer));
    expect((await failure(store.deleteBucket('bucket'))).code).toBe('STORE_BUCKET_NOT_EMPTY');
    answer = [404, 'NoSuchBucket'];
    await expect(store.deleteBucket('bucket')).resolves.toBeUndefined();
    answer = [409, 'BucketAlreadyOwnedByYou'];
    await expect(store.createBucket('bucket')).resolves.toBeUndefined();
    answer = [409, 'BucketAlreadyExists'];
    expect((await failure(store.createBucket('bucket'))).code).toBe('STORE_REFUSED');
  });

  it('a 404 HEAD of an object tells an absent key (undefined) from an absent bucket (STORE_BUCKET_NOT_FOUND)', async () => {
    let bucketThere = true;
    const { store } = await scripted((req, res) => {
      const isBucket = req.url.split('?')[0]!.split('/').filter(Boolean).length === 1;
      res.writeHead(isBucket && bucketThere ? 200 : 404).end();
    });
    expect(await store.headObject('bucket', 'key')).toBeUndefined();
    bucketThere = false;
    expect((await failure(store.headObject('bucket', 'key'))).code).toBe('STORE_BUCKET_NOT_FOUND');
  });

  it('a refused connection is STORE_UNAVAILABLE with the system error code', async () => {
    const probe = createTcpServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as { port: number };
    await new Promise((r) => probe.close(r));
    const store = createObjectStore('s3', { name: 'unit', endpoint: `http://127.0.0.1:${port}`, region: 'eu-west', accessKeyId: 'k', secretAccessKeyFile: secretFile(), maxAttempts: 1 });
    stores.push(store);
    expect(await failure(store.headBucket('bucket'))).toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true, details: { errno: 'ECONNREFUSED' } });
  });

  it('a store that accepts and never answers fails with STORE_UNAVAILABLE after the idle timeout, not never', async () => {
    const hung = createTcpServer((s) => { sockets.push(s); });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    servers.push(hung as unknown as Server);
    const { port } = hung.address() as { port: number };
    const store = createObjectStore('s3', { name: 'unit', endpoint: `http://127.0.0.1:${port}`, region: 'eu-west', accessKeyId: 'k', secretAccessKeyFile: secretFile(), maxAttempts: 1, idleTimeoutMs: 1000 });
    stores.push(store);
    const t0 = Date.now();
    expect((await failure(store.headObject('bucket', 'key'))).code).toBe('STORE_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(8000);
  });
});

describe('s3 adapter: puts', () => {
  it('sends Content-MD5 and the sha256 metadata, and refuses a put whose HEAD shows other bytes (STORE_INTEGRITY)', async () => {
    let headEtag = oneMd5;
    const { store, seen } = await scripted((req, res) => {
      if (req.method === 'PUT') res.writeHead(200, { etag: `"${oneMd5}"` }).end();
      else res.writeHead(200, { etag: `"${headEtag}"`, 'content-length': '1', 'last-modified': new Date().toUTCString(), 'x-amz-meta-intercloud-sha256': oneSha }).end();
    });
    const info = await store.putObject('bucket', 'key', one, { sizeBytes: 1, sha256: oneSha, metadata: { a: 'b' } });
    expect(info).toMatchObject({ sizeBytes: 1, etag: oneMd5, sha256: oneSha });
    const put = seen.find((s) => s.method === 'PUT')!;
    expect(put.headers['content-md5']).toBe(createHash('md5').update(one).digest('base64'));
    expect(put.headers['x-amz-meta-intercloud-sha256']).toBe(oneSha);
    expect(put.headers['x-amz-meta-a']).toBe('b');
    expect(Object.keys(put.headers).some((h) => h.startsWith('x-amz-checksum-'))).toBe(false);
    headEtag = '0'.repeat(32);
    expect((await failure(store.putObject('bucket', 'key', one, { sizeBytes: 1, sha256: oneSha }))).code).toBe('STORE_INTEGRITY');
  });

  it('refuses a put the store acknowledges with another ETag than the bytes sent', async () => {
    const { store } = await scripted((_req, res) => res.writeHead(200, { etag: '"ffffffffffffffffffffffffffffffff"' }).end());
    expect((await failure(store.putObject('bucket', 'key', one, { sizeBytes: 1, sha256: oneSha }))).code).toBe('STORE_INTEGRITY');
  });

  it('sends each part with its own Content-MD5 and aborts the upload when a part fails', async () => {
    const part = 5 * 1024 * 1024;
    const data = Buffer.alloc(part * 2 + 3, 7);
    const sha = createHash('sha256').update(data).digest('hex');
    const { store, seen } = await scripted((req, res) => {
      if (req.method === 'POST' && req.url.includes('uploads')) {
        res.writeHead(200, { 'content-type': 'application/xml' }).end('<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>key</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>');
      } else if (req.method === 'PUT' && req.url.includes('partNumber=2')) {
        s3Error(res, 507, 'InsufficientStorage');
      } else if (req.method === 'PUT') {
        res.writeHead(200, { etag: `"${createHash('md5').update(req.body).digest('hex')}"` }).end();
      } else if (req.method === 'DELETE') {
        res.writeHead(204).end();
      } else {
        res.writeHead(500).end();
      }
    });
    const f = await failure(store.putObject('bucket', 'key', data, { sizeBytes: data.length, sha256: sha }));
    expect(f).toMatchObject({ code: 'STORE_FULL', details: { status: 507 } });
    const parts = seen.filter((s) => s.method === 'PUT');
    expect(parts.length).toBeGreaterThan(0);
    for (const p of parts) expect(p.headers['content-md5']).toBe(createHash('md5').update(p.body).digest('base64'));
    expect(seen.some((s) => s.method === 'DELETE' && s.url.includes('uploadId=up-1'))).toBe(true);
    expect(seen.some((s) => s.method === 'POST' && s.url.includes('uploadId=up-1'))).toBe(false);
  });
  it("a store that answers 403 before reading a large body and closes the connection fails the put with STORE_REFUSED, and the write cut short crashes nothing (Swift with a wrong key)", async () => {
    // Answers as Swift's proxy does to a signature it refuses: the 403 at once (no 100 Continue),
    // a keep-alive response, then the connection closed with most of the body unread.
    const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>scripted</Message><RequestId>tx-unit-2</RequestId></Error>';
    const early = createTcpServer((s) => {
      sockets.push(s);
      let received = 0;
      const answer = (d: Buffer): void => {
        received += d.length;
        if (received < 4 * 1024 * 1024) return;
        s.off('data', answer);
        s.write(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nx-amz-request-id: tx-unit-2\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n${Buffer.byteLength(xml).toString(16)}\r\n${xml}\r\n0\r\n\r\n`);
        s.end();
        setTimeout(() => s.destroy(), 10);
      };
      s.on('data', answer);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => early.listen(0, '127.0.0.1', r));
    servers.push(early as unknown as Server);
    const { port } = early.address() as { port: number };
    const store = createObjectStore('s3', { name: 'unit', endpoint: `http://127.0.0.1:${port}`, region: 'eu-west', accessKeyId: 'k', secretAccessKeyFile: secretFile(), maxAttempts: 1 });
    stores.push(store);
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => { uncaught.push(err); };
    process.on('uncaughtException', onUncaught);
    try {
      for (let i = 0; i < 3; i++) {
        const body = Buffer.alloc(9 * 1024 * 1024 + i, i);
        const sha = createHash('sha256').update(body).digest('hex');
        expect(await failure(store.putObject('bucket', `key-${i}`, body, { sizeBytes: body.length, sha256: sha }))).toMatchObject({ code: 'STORE_REFUSED', details: { status: 403 } });
      }
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
  });
});

describe('s3 adapter: config', () => {
  it('refuses a secret key file others may read, and unknown keys', () => {
    const base = { name: 'unit', endpoint: 'http://127.0.0.1:1', region: 'eu-west', accessKeyId: 'k' };
    const code = (f: () => unknown): string | undefined => {
      try { f(); } catch (e) { return isIntercloudError(e) ? e.code : String(e); }
      return undefined;
    };
    expect(code(() => createObjectStore('s3', { ...base, secretAccessKeyFile: secretFile(0o644) }))).toBe('STORE_CONFIG_INVALID');
    expect(code(() => createObjectStore('s3', { ...base, secretAccessKeyFile: '/nonexistent/secret' }))).toBe('STORE_CONFIG_INVALID');
    expect(code(() => createObjectStore('s3', { ...base, secretAccessKeyFile: secretFile(), secretAccessKey: 'inline' }))).toBe('STORE_CONFIG_INVALID');
    expect(code(() => createObjectStore('s3', { ...base, secretAccessKeyFile: secretFile(), caFile: '/x.pem' }))).toBe('STORE_CONFIG_INVALID');
    expect(code(() => createObjectStore('s3', { ...base, secretAccessKeyFile: secretFile(), partSizeBytes: 1024 }))).toBe('STORE_CONFIG_INVALID');
    expect(code(() => createObjectStore('swift', {}))).toBe('STORE_UNKNOWN_BACKEND');
    expect(code(() => createObjectStore('s3', { ...base, secretAccessKeyFile: secretFile() }))).toBeUndefined();
  });

  it('never puts the secret in an error', async () => {
    const { store } = await scripted((_req, res) => s3Error(res, 403, 'SignatureDoesNotMatch'));
    const err = await store.headBucket('bucket').then(() => undefined, (e: unknown) => e);
    expect(JSON.stringify((err as { toJSON(): unknown }).toJSON())).not.toContain('not-a-real-secret');
  });
});
