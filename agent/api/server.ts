/**
 * The local API: HTTP/1.1 on a Unix socket, for the cloud's own orchestration (hooks,
 * scripts) and the CLI. The socket file is mode 0660: whoever may write to it may move VMs.
 *
 *   POST /v1/migrations          {vm, to? | auto: true, region?, dryRun?, mode?, fallback?}  → 202 {jobId}
 *   GET  /v1/jobs                                                         → 200 [JobStatus]
 *   GET  /v1/jobs/:id                                                     → 200 JobStatus
 *   GET  /v1/jobs/:id/events     server-sent events until the job ends
 *   POST /v1/jobs/:id/cancel                                              → 200 {accepted, state}
 *   GET  /v1/health                                                       → 200 {ok, cloud}
 *   GET  /v1/peers/time          XEP-0202 clock offset and round trip per online peer → 200 [PeerOffset]
 *
 * Storage subcontracts (issue 14):
 *   POST /v1/storage/subcontracts            {bucket, prefix?, to? | auto: true, replicas, regions, ack,
 *                                             capacityGiB?, days?, maxObjects?, atEnd?, sourceRegion?,
 *                                             bandwidthBytesPerSecond?, maxPricePerGbMonth?}  → 202 {subcontractId, jobId}
 *   GET  /v1/storage/subcontracts                                          → 200 [SubcontractView]
 *   GET  /v1/storage/subcontracts/:id[?objects=1]                          → 200 SubcontractView
 *   POST /v1/storage/subcontracts/:id/verify  {deep?, waitSeconds?}        → 200 {report, status}
 *   POST /v1/storage/subcontracts/:id/end                                  → 200 SubcontractView
 *   PUT  /v1/storage/subcontracts/:id/objects/:key   body: the bytes; content-length and
 *        x-intercloud-sha256 (hex) required; answers when the ack mode's promise holds → 200 {etag, replicated, ack}
 *   GET  /v1/storage/events      server-sent replication events of every subcontract
 *
 * Errors are `{error: {code, message, retryable}}` with 400 (bad request), 404 (unknown
 * job), 409 (conflict), 503 (retryable) or 500.
 */
import { chmod, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { defineErrorCodes, IntercloudError } from '../../protocols/errors/index.js';
import type { Readable } from 'node:stream';
import type { StorageSubcontractRequest, SubcontractView } from '../daemon/storage-federation.js';
import type { AuditReport, ReplicationEvent } from '../replication/index.js';
import type { JobStatus, SequencerEvent } from '../sequencer/index.js';

export const API_ERRORS = defineErrorCodes('api', {
  API_BAD_REQUEST: { doc: 'the local api request is malformed', retryable: false },
  API_NOT_FOUND: { doc: 'no such local api route', retryable: false },
  API_UNREACHABLE: { doc: 'the agent is not running or its socket cannot be reached', retryable: true },
});

/** A migration request as the local API takes it. */
export interface MigrationRequest {
  /** The VM's name in the local hypervisor. */
  vm: string;
  /** Target cloud id; omit with `auto` to let discovery choose. */
  to?: string;
  auto?: boolean;
  region?: string;
  /** Discover, verify and negotiate only; release the reservation; move nothing. */
  dryRun?: boolean;
  /** The VM's IP addresses (EIDs) to keep reachable after the move. */
  addresses?: string[];
  /** The migration mode (issue 15): `cold`, `warm` or `live`; absent: cold. */
  mode?: 'cold' | 'warm' | 'live';
  /** The lowest mode accepted when `mode` cannot be used. */
  fallback?: 'cold' | 'warm' | 'live';
}

/** What the API server needs from the daemon. */
export interface LocalApiHandlers {
  cloudId: string;
  startMigration(req: MigrationRequest): Promise<{ jobId: string }>;
  listJobs(): Promise<JobStatus[]>;
  job(jobId: string): Promise<JobStatus>;
  cancel(jobId: string): Promise<{ accepted: boolean; state: string }>;
  /** Measures each online peer's clock offset and round trip (XEP-0202). */
  peerTimes(): Promise<Array<{ peer: string; offsetMs: number; roundTripMs: number; measuredAt: number }>>;
  /** Calls `listener` for each event of `jobId`; returns an unsubscribe function. */
  subscribe(jobId: string, listener: (e: SequencerEvent) => void): () => void;
  /** Storage subcontracts (issue 14). */
  storage?: StorageApiHandlers;
}

/** The storage part of the local API. */
export interface StorageApiHandlers {
  subcontract(req: StorageSubcontractRequest): Promise<{ subcontractId: string; jobId: string }>;
  list(): Promise<SubcontractView[]>;
  status(id: string, o: { objects?: boolean }): Promise<SubcontractView>;
  verify(id: string, o: { deep?: boolean; waitMs?: number }): Promise<{ report: AuditReport; status: SubcontractView }>;
  end(id: string): Promise<SubcontractView>;
  put(id: string, key: string, body: Readable, o: { sizeBytes: number; sha256: string; signal?: AbortSignal }): Promise<{ etag: string; replicated: boolean; ack: string }>;
  subscribe(listener: (e: ReplicationEvent) => void): () => void;
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const CLOUD_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const REGION_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Validates a storage subcontract request body (`API_BAD_REQUEST` naming the field and what it
 * must be). The peer's policy decides the rest (regions it has, replicas it keeps, capacity).
 */
export function parseStorageSubcontractRequest(body: unknown): StorageSubcontractRequest {
  const b = body as Record<string, unknown>;
  const bad = (m: string): never => { throw new IntercloudError('API_BAD_REQUEST', m); };
  if (typeof b !== 'object' || b === null || Array.isArray(b)) bad('body must be a json object');
  const known = new Set(['bucket', 'prefix', 'to', 'auto', 'replicas', 'regions', 'ack', 'capacityGiB', 'days', 'maxObjects', 'atEnd', 'sourceRegion', 'bandwidthBytesPerSecond', 'maxPricePerGbMonth']);
  for (const k of Object.keys(b)) if (!known.has(k)) bad(`unknown field '${k}'`);
  if (typeof b['bucket'] !== 'string' || !BUCKET_RE.test(b['bucket'])) bad("'bucket' must be a bucket name (3-63 lowercase letters, digits, dots and dashes)");
  if (b['prefix'] !== undefined && (typeof b['prefix'] !== 'string' || Buffer.byteLength(b['prefix']) > 512)) bad("'prefix' must be a key prefix of at most 512 bytes");
  if (b['to'] !== undefined && (typeof b['to'] !== 'string' || !CLOUD_RE.test(b['to']))) bad("'to' must be a cloud id");
  if ((b['to'] === undefined) === (b['auto'] !== true)) bad("give exactly one of 'to' or 'auto: true'");
  const int = (k: string, min: number, max: number, required = false): void => {
    const v = b[k];
    if (v === undefined && !required) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`'${k}' must be a whole number from ${min} to ${max}`);
  };
  int('replicas', 1, 16, true);
  int('capacityGiB', 1, 1_000_000);
  int('days', 1, 36_500);
  int('maxObjects', 1, 1e12);
  int('bandwidthBytesPerSecond', 0, 1e12);
  const regions = b['regions'];
  if (!Array.isArray(regions) || regions.length === 0 || regions.length > 32 || regions.some((r) => typeof r !== 'string' || !REGION_RE.test(r))) {
    bad("'regions' must list the regions the copies may live in, e.g. [\"na-east\"]");
  }
  if (b['ack'] !== 'async' && b['ack'] !== 'sync' && b['ack'] !== 'quorum') bad("'ack' must be async, sync or quorum");
  if (b['atEnd'] !== undefined && b['atEnd'] !== 'return' && b['atEnd'] !== 'delete') bad("'atEnd' must be return or delete");
  if (b['sourceRegion'] !== undefined && (typeof b['sourceRegion'] !== 'string' || !REGION_RE.test(b['sourceRegion']))) bad("'sourceRegion' must be a region");
  if (b['maxPricePerGbMonth'] !== undefined && (typeof b['maxPricePerGbMonth'] !== 'number' || !(b['maxPricePerGbMonth'] >= 0))) bad("'maxPricePerGbMonth' must be a price, 0 or more");
  return b as unknown as StorageSubcontractRequest;
}

const MAX_BODY = 64 * 1024;

/** Validates a migration request body. */
export function parseMigrationRequest(body: unknown): MigrationRequest {
  const b = body as Record<string, unknown>;
  const bad = (m: string): never => { throw new IntercloudError('API_BAD_REQUEST', m); };
  if (typeof b !== 'object' || b === null || Array.isArray(b)) bad('body must be a json object');
  const known = new Set(['vm', 'to', 'auto', 'region', 'dryRun', 'addresses', 'mode', 'fallback']);
  for (const k of Object.keys(b)) if (!known.has(k)) bad(`unknown field '${k}'`);
  if (typeof b['vm'] !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(b['vm'])) bad("'vm' must be a vm name");
  if (b['to'] !== undefined && (typeof b['to'] !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(b['to']))) bad("'to' must be a cloud id");
  if ((b['to'] === undefined) === (b['auto'] !== true)) bad("give exactly one of 'to' or 'auto: true'");
  if (b['region'] !== undefined && typeof b['region'] !== 'string') bad("'region' must be a string");
  if (b['dryRun'] !== undefined && typeof b['dryRun'] !== 'boolean') bad("'dryRun' must be a boolean");
  for (const f of ['mode', 'fallback']) {
    if (b[f] !== undefined && b[f] !== 'cold' && b[f] !== 'warm' && b[f] !== 'live') bad(`'${f}' must be 'cold', 'warm' or 'live'`);
  }
  if (b['fallback'] !== undefined && b['mode'] === undefined) bad("'fallback' needs a 'mode'");
  const addresses = b['addresses'];
  if (addresses !== undefined && (!Array.isArray(addresses) || addresses.length > 64 || addresses.some((a) => typeof a !== 'string' || isIP(a) === 0))) {
    bad("'addresses' must be a list of ip addresses");
  }
  return b as unknown as MigrationRequest;
}

/** Starts the API on the Unix socket `socketPath` (replacing a stale socket file). */
export async function startLocalApi(socketPath: string, h: LocalApiHandlers): Promise<Server> {
  await rm(socketPath, { force: true });
  const server = createServer((req, res) => {
    route(req, res, h).catch((err: unknown) => sendError(res, err));
  });
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(socketPath, ok));
  await chmod(socketPath, 0o660);
  return server;
}

async function route(req: IncomingMessage, res: ServerResponse, h: LocalApiHandlers): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  const parts = url.pathname.split('/').filter(Boolean);
  const m = req.method ?? 'GET';
  if (m === 'GET' && url.pathname === '/v1/health') return sendJson(res, 200, { ok: true, cloud: h.cloudId });
  if (m === 'POST' && url.pathname === '/v1/migrations') {
    const request = parseMigrationRequest(await readJson(req));
    return sendJson(res, 202, await h.startMigration(request));
  }
  if (m === 'GET' && url.pathname === '/v1/jobs') return sendJson(res, 200, await h.listJobs());
  if (m === 'GET' && url.pathname === '/v1/peers/time') return sendJson(res, 200, await h.peerTimes());
  if (parts[0] === 'v1' && parts[1] === 'storage') return routeStorage(req, res, url, parts, h);
  if (parts[0] === 'v1' && parts[1] === 'jobs' && parts[2] !== undefined) {
    const id = decodeURIComponent(parts[2]);
    if (m === 'GET' && parts.length === 3) return sendJson(res, 200, await h.job(id));
    if (m === 'POST' && parts[3] === 'cancel' && parts.length === 4) return sendJson(res, 200, await h.cancel(id));
    if (m === 'GET' && parts[3] === 'events' && parts.length === 4) return streamEvents(res, id, h);
  }
  throw new IntercloudError('API_NOT_FOUND', `no route '${m} ${url.pathname}'`);
}

async function routeStorage(req: IncomingMessage, res: ServerResponse, url: URL, parts: string[], h: LocalApiHandlers): Promise<void> {
  const m = req.method ?? 'GET';
  const st = h.storage;
  if (!st) throw new IntercloudError('API_NOT_FOUND', 'this agent has no storage federation');
  if (m === 'GET' && parts.length === 3 && parts[2] === 'events') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.write(': replication events\n\n');
    const off = st.subscribe((e) => res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
    res.on('close', off);
    return;
  }
  if (parts[2] !== 'subcontracts') throw new IntercloudError('API_NOT_FOUND', `no route '${m} ${url.pathname}'`);
  if (parts.length === 3) {
    if (m === 'POST') return sendJson(res, 202, await st.subcontract(parseStorageSubcontractRequest(await readJson(req))));
    if (m === 'GET') return sendJson(res, 200, await st.list());
  }
  const id = decodeURIComponent(parts[3] ?? '');
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id)) throw new IntercloudError('API_BAD_REQUEST', `'${id}' is not a subcontract id`);
  if (m === 'GET' && parts.length === 4) return sendJson(res, 200, await st.status(id, { objects: url.searchParams.get('objects') === '1' }));
  if (m === 'POST' && parts.length === 5 && parts[4] === 'end') return sendJson(res, 200, await st.end(id));
  if (m === 'POST' && parts.length === 5 && parts[4] === 'verify') {
    const b = ((await readJson(req)) ?? {}) as { deep?: unknown; waitSeconds?: unknown };
    if (typeof b !== 'object' || Array.isArray(b)) throw new IntercloudError('API_BAD_REQUEST', 'body must be a json object');
    if (b.deep !== undefined && typeof b.deep !== 'boolean') throw new IntercloudError('API_BAD_REQUEST', "'deep' must be a boolean");
    if (b.waitSeconds !== undefined && (typeof b.waitSeconds !== 'number' || b.waitSeconds < 0 || b.waitSeconds > 3600)) throw new IntercloudError('API_BAD_REQUEST', "'waitSeconds' must be 0 to 3600");
    return sendJson(res, 200, await st.verify(id, { deep: b.deep === true, waitMs: (b.waitSeconds ?? 300) as number * 1000 }));
  }
  if (m === 'PUT' && parts.length >= 6 && parts[4] === 'objects') {
    const key = parts.slice(5).map(decodeURIComponent).join('/');
    const size = Number(req.headers['content-length']);
    const sha256 = req.headers['x-intercloud-sha256'];
    if (!Number.isSafeInteger(size) || size < 0) throw new IntercloudError('API_BAD_REQUEST', 'a put needs its content-length');
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw new IntercloudError('API_BAD_REQUEST', 'a put needs x-intercloud-sha256: the hex sha-256 of the bytes');
    const gone = new AbortController();
    res.on('close', () => { if (!res.writableEnded) gone.abort(new IntercloudError('API_BAD_REQUEST', 'the client went away')); });
    return sendJson(res, 200, await st.put(id, key, req, { sizeBytes: size, sha256, signal: gone.signal }));
  }
  throw new IntercloudError('API_NOT_FOUND', `no route '${m} ${url.pathname}'`);
}

async function streamEvents(res: ServerResponse, jobId: string, h: LocalApiHandlers): Promise<void> {
  const status = await h.job(jobId);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  res.write(`event: status\ndata: ${JSON.stringify(status)}\n\n`);
  if (status.state !== 'running') { res.end(); return; }
  const off = h.subscribe(jobId, (e) => {
    res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    if (e.type === 'job-finished') { off(); res.end(); }
  });
  res.on('close', off);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new IntercloudError('API_BAD_REQUEST', `body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch (err) {
    throw new IntercloudError('API_BAD_REQUEST', 'body is not json', { cause: err });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) { res.destroy(); return; }
  if (err instanceof IntercloudError) {
    const status = err.code === 'API_BAD_REQUEST' ? 400
      : err.code === 'API_NOT_FOUND' || err.code === 'SEQ_UNKNOWN_JOB' || err.code === 'SUBCONTRACT_UNKNOWN' ? 404
        : err.code === 'SEQ_JOB_EXISTS' || err.code === 'SUBCONTRACT_NOT_ACTIVE' ? 409 : err.retryable ? 503 : 500;
    sendJson(res, status, { error: { code: err.code, message: err.message, retryable: err.retryable } });
    return;
  }
  sendJson(res, 500, { error: { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err), retryable: false } });
}
