/**
 * A client of the local API (used by the CLI): JSON over HTTP on the agent's Unix socket.
 */
import { request } from 'node:http';
import { IntercloudError } from '../../protocols/errors/index.js';
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
