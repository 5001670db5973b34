/**
 * A client of the local API (used by the CLI): JSON over HTTP on the agent's Unix socket.
 */
import { createReadStream } from 'node:fs';
import { request } from 'node:http';
import { IntercloudError } from '../../protocols/errors/index.js';
import type { StorageSubcontractRequest, SubcontractView } from '../daemon/storage-federation.js';
import type { AuditReport } from '../replication/index.js';
import type { JobStatus, SequencerEvent } from '../sequencer/index.js';
import type { MigrationRequest } from './server.js';

/** Talks to a running agent over its Unix socket. */
export class LocalApiClient {
  constructor(private readonly socketPath: string) {}

  health(): Promise<{ ok: boolean; cloud: string }> { return this.call('GET', '/v1/health'); }
  startMigration(req: MigrationRequest): Promise<{ jobId: string }> { return this.call('POST', '/v1/migrations', req); }
  listJobs(): Promise<JobStatus[]> { return this.call('GET', '/v1/jobs'); }
  job(id: string): Promise<JobStatus> { return this.call('GET', `/v1/jobs/${encodeURIComponent(id)}`); }
  cancel(id: string): Promise<{ accepted: boolean; state: string }> { return this.call('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`); }
  peerTimes(): Promise<Array<{ peer: string; offsetMs: number; roundTripMs: number; measuredAt: number }>> { return this.call('GET', '/v1/peers/time'); }

  /** Starts a storage subcontract of a bucket (issue 14). */
  startSubcontract(req: StorageSubcontractRequest): Promise<{ subcontractId: string; jobId: string }> { return this.call('POST', '/v1/storage/subcontracts', req); }
  /** Every storage subcontract of the agent. */
  subcontracts(): Promise<SubcontractView[]> { return this.call('GET', '/v1/storage/subcontracts'); }
  /** One storage subcontract, with its objects' states when asked. */
  subcontract(id: string, o: { objects?: boolean } = {}): Promise<SubcontractView> {
    return this.call('GET', `/v1/storage/subcontracts/${encodeURIComponent(id)}${o.objects ? '?objects=1' : ''}`);
  }
  /** Audit and repair of B's copy; waits up to `waitSeconds` for the repair. */
  verifySubcontract(id: string, o: { deep?: boolean; waitSeconds?: number } = {}): Promise<{ report: AuditReport; status: SubcontractView }> {
    return this.call('POST', `/v1/storage/subcontracts/${encodeURIComponent(id)}/verify`, o);
  }
  /** Ends a subcontract now (its data is deleted or returned at B by its terms). */
  endSubcontract(id: string): Promise<SubcontractView> { return this.call('POST', `/v1/storage/subcontracts/${encodeURIComponent(id)}/end`); }

  /** Writes file `path` as object `key` through the agent; answers when the subcontract's ack mode says. */
  putObject(id: string, key: string, path: string, o: { sizeBytes: number; sha256: string }): Promise<{ etag: string; replicated: boolean; ack: string }> {
    return new Promise((resolve, reject) => {
      const req = request({
        socketPath: this.socketPath, method: 'PUT',
        path: `/v1/storage/subcontracts/${encodeURIComponent(id)}/objects/${key.split('/').map(encodeURIComponent).join('/')}`,
        headers: { 'content-type': 'application/octet-stream', 'content-length': o.sizeBytes, 'x-intercloud-sha256': o.sha256 },
      }, (res) => {
        collect(res).then((text) => {
          if ((res.statusCode ?? 500) >= 400) { reject(apiError(res.statusCode ?? 500, text)); return; }
          resolve(JSON.parse(text) as { etag: string; replicated: boolean; ack: string });
        }, reject);
      });
      req.on('error', (err) => reject(unreachable(this.socketPath, err)));
      const file = createReadStream(path);
      file.on('error', (err) => { req.destroy(err); reject(err); });
      file.pipe(req);
    });
  }

  /** Follows a job's events until it finishes; resolves with the final event. */
  follow(id: string, onEvent: (e: SequencerEvent | { type: 'status'; status: JobStatus }) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, path: `/v1/jobs/${encodeURIComponent(id)}/events`, method: 'GET' }, (res) => {
        if (res.statusCode !== 200) { collect(res).then((b) => reject(apiError(res.statusCode ?? 0, b)), reject); return; }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev === undefined || data === undefined) continue;
            const parsed = JSON.parse(data) as unknown;
            onEvent(ev === 'status' ? { type: 'status', status: parsed as JobStatus } : (parsed as SequencerEvent));
          }
        });
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', (err) => reject(unreachable(this.socketPath, err)));
      req.end();
    });
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request({
        socketPath: this.socketPath, path, method,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      }, (res) => {
        collect(res).then((text) => {
          if ((res.statusCode ?? 500) >= 400) { reject(apiError(res.statusCode ?? 500, text)); return; }
          resolve(JSON.parse(text) as T);
        }, reject);
      });
      req.on('error', (err) => reject(unreachable(this.socketPath, err)));
      req.end(payload);
    });
  }
}

function unreachable(socketPath: string, err: Error): IntercloudError {
  return new IntercloudError('API_UNREACHABLE', `cannot reach the agent at '${socketPath}': is 'intercloud agent' running?`, { cause: err });
}

async function collect(res: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const c of res) s += c.toString();
  return s;
}

function apiError(status: number, text: string): IntercloudError {
  try {
    const e = (JSON.parse(text) as { error: { code: string; message: string; retryable: boolean } }).error;
    return new IntercloudError(e.code, e.message, { retryable: e.retryable, details: { httpStatus: status } });
  } catch (err) {
    return new IntercloudError('API_BAD_REQUEST', `agent answered http ${status}: ${text.slice(0, 200)}`, { cause: err });
  }
}
