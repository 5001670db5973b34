/**
 * Issue 14: the storage part of the local API — request validation, routes, the streamed put
 * (size and SHA-256 handed to the daemon as the client declared them), coded errors and their
 * HTTP statuses — with the daemon's storage handlers replaced by a recording stand-in.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalApiClient, parseStorageSubcontractRequest, startLocalApi, type StorageApiHandlers } from '../../../agent/api/index.js';
import type { SubcontractView } from '../../../agent/daemon/storage-federation.js';
import type { ReplicationEvent } from '../../../agent/replication/index.js';
import { subcontractError } from '../../../agent/subcontract/index.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'storage-api-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

const ok = { bucket: 'photos', to: 'cloud-b', replicas: 3, regions: ['na-east'], ack: 'sync' };

const view = (id: string): SubcontractView => ({
  subcontractId: id, jobId: `subcontract-out-${id}`, side: 'out', state: 'running', step: 'active', peer: 'cloud-b',
  source: { bucket: 'photos', prefix: '' }, target: { bucket: 'ic-cloud-a-0123456789abcdef0123', region: 'na-east' },
  ack: 'sync', replicas: 3, ends: '2027-01-01T00:00:00.000Z', atEnd: 'delete', error: undefined,
});

describe('local API: storage subcontracts (issue 14)', () => {
  it('validates a subcontract request strictly, naming the field and what it must be', () => {
    expect(parseStorageSubcontractRequest(ok)).toEqual(ok);
    expect(parseStorageSubcontractRequest({ ...ok, to: undefined, auto: true, prefix: 'a/', capacityGiB: 5, days: 2, atEnd: 'return' }))
      .toMatchObject({ auto: true, prefix: 'a/', atEnd: 'return' });
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...ok, bucket: 'Not_A_Bucket' }, /'bucket' must be a bucket name/],
      [{ ...ok, auto: true }, /exactly one of 'to' or 'auto/],
      [{ ...ok, replicas: 0 }, /'replicas' must be a whole number from 1 to 16/],
      [{ ...ok, replicas: 2.5 }, /'replicas'/],
      [{ ...ok, regions: [] }, /'regions' must list the regions/],
      [{ ...ok, regions: ['eu west'] }, /'regions'/],
      [{ ...ok, ack: 'eventually' }, /'ack' must be async, sync or quorum/],
      [{ ...ok, atEnd: 'keep' }, /'atEnd' must be return or delete/],
      [{ ...ok, days: 0 }, /'days'/],
      [{ ...ok, bucketName: 'x' }, /unknown field 'bucketName'/],
    ];
    for (const [body, message] of bad) expect(() => parseStorageSubcontractRequest(body), JSON.stringify(body)).toThrow(message);
  });

  it('routes subcontract, status, verify, end and a streamed put to the daemon; coded errors keep their code and status', async () => {
    const calls: unknown[] = [];
    const storage: StorageApiHandlers = {
      subcontract: async (req) => { calls.push(['subcontract', req]); return { subcontractId: 'sc-1', jobId: 'subcontract-out-sc-1' }; },
      list: async () => [view('sc-1')],
      status: async (id, o) => {
        calls.push(['status', id, o]);
        if (id !== 'sc-1') throw subcontractError('SUBCONTRACT_UNKNOWN', `no subcontract '${id}'`);
        return view(id);
      },
      verify: async (id, o) => { calls.push(['verify', id, o]); return { report: { checked: 3, missing: ['k'], corrupt: [], requeued: 1 }, status: view(id) }; },
      end: async (id) => { throw subcontractError('SUBCONTRACT_NOT_ACTIVE', `subcontract '${id}' has ended already (completed)`); },
      put: async (id, key, body, o) => {
        const h = createHash('sha256');
        let n = 0;
        for await (const c of body) { h.update(c as Buffer); n += (c as Buffer).length; }
        calls.push(['put', id, key, o.sizeBytes, o.sha256, n, h.digest('hex')]);
        return { etag: '"e"', replicated: true, ack: 'sync' };
      },
      subscribe: () => () => undefined,
    };
    const socket = join(dir, 'agent.sock');
    const server = await startLocalApi(socket, {
      cloudId: 'cloud-a', startMigration: async () => ({ jobId: 'x' }), listJobs: async () => [], job: async () => { throw new Error('unused'); },
      cancel: async () => ({ accepted: false, state: 'completed' }), subscribe: () => () => undefined, peerTimes: async () => [], storage,
    });
    try {
      const api = new LocalApiClient(socket);
      expect(await api.startSubcontract({ ...ok, ack: 'sync' })).toEqual({ subcontractId: 'sc-1', jobId: 'subcontract-out-sc-1' });
      await expect(api.startSubcontract({ ...ok, ack: 'later' } as never)).rejects.toMatchObject({ code: 'API_BAD_REQUEST', details: { httpStatus: 400 } });
      expect((await api.subcontracts()).map((v) => v.subcontractId)).toEqual(['sc-1']);
      expect(await api.subcontract('sc-1', { objects: true })).toMatchObject({ subcontractId: 'sc-1' });
      await expect(api.subcontract('sc-2')).rejects.toMatchObject({ code: 'SUBCONTRACT_UNKNOWN', details: { httpStatus: 404 } });
      expect((await api.verifySubcontract('sc-1', { deep: true, waitSeconds: 5 })).report.missing).toEqual(['k']);
      await expect(api.endSubcontract('sc-1')).rejects.toMatchObject({ code: 'SUBCONTRACT_NOT_ACTIVE', details: { httpStatus: 409 } });
      const bytes = Buffer.alloc(200_000, 7);
      const file = join(dir, 'obj');
      await writeFile(file, bytes);
      const sha = createHash('sha256').update(bytes).digest('hex');
      expect(await api.putObject('sc-1', 'dir/a b.txt', file, { sizeBytes: bytes.length, sha256: sha })).toEqual({ etag: '"e"', replicated: true, ack: 'sync' });
      expect(calls).toContainEqual(['status', 'sc-1', { objects: true }]);
      expect(calls).toContainEqual(['verify', 'sc-1', { deep: true, waitMs: 5000 }]);
      expect(calls).toContainEqual(['put', 'sc-1', 'dir/a b.txt', bytes.length, sha, bytes.length, sha]);
      // a put without the declared sha-256 never reaches the daemon
      await expect(api.putObject('sc-1', 'k', file, { sizeBytes: bytes.length, sha256: 'nope' })).rejects.toMatchObject({ code: 'API_BAD_REQUEST' });
      expect(calls.filter((c) => (c as unknown[])[0] === 'put')).toHaveLength(1);
    } finally {
      server.close();
    }
  });

  it('streams the replication events of every subcontract as server-sent events', async () => {
    const listeners = new Set<(e: ReplicationEvent) => void>();
    const socket = join(dir, 'agent.sock');
    const server = await startLocalApi(socket, {
      cloudId: 'cloud-a', startMigration: async () => ({ jobId: 'x' }), listJobs: async () => [], job: async () => { throw new Error('unused'); },
      cancel: async () => ({ accepted: false, state: 'completed' }), subscribe: () => () => undefined, peerTimes: async () => [],
      storage: {
        subcontract: async () => { throw new Error('unused'); }, list: async () => [], status: async () => { throw new Error('unused'); },
        verify: async () => { throw new Error('unused'); }, end: async () => { throw new Error('unused'); }, put: async () => { throw new Error('unused'); },
        subscribe: (l) => { listeners.add(l); return () => listeners.delete(l); },
      },
    });
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const req = request({ socketPath: socket, path: '/v1/storage/events' }, (res) => {
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            buf += d;
            if (buf.includes('replica-completed')) { resolve(buf); req.destroy(); }
          });
          // connected: the daemon's replicators announce something
          setTimeout(() => { for (const l of listeners) l({ type: 'replica-completed', subcontractId: 'sc-1', key: 'k', size: 3, at: '2026-12-06T00:00:00.000Z' }); }, 20);
        });
        req.on('error', reject);
        req.end();
      });
      expect(text).toContain('event: replica-completed\ndata: {"type":"replica-completed","subcontractId":"sc-1","key":"k"');
      // the client went away: its listener is removed
      for (let i = 0; i < 50 && listeners.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(listeners.size).toBe(0);
    } finally {
      server.close();
    }
  });

  it('answers API_NOT_FOUND for the storage routes of an agent without storage federation', async () => {
    const socket = join(dir, 'agent.sock');
    const server = await startLocalApi(socket, {
      cloudId: 'cloud-a', startMigration: async () => ({ jobId: 'x' }), listJobs: async () => [], job: async () => { throw new Error('unused'); },
      cancel: async () => ({ accepted: false, state: 'completed' }), subscribe: () => () => undefined, peerTimes: async () => [],
    });
    try {
      await expect(new LocalApiClient(socket).subcontracts()).rejects.toMatchObject({ code: 'API_NOT_FOUND', details: { httpStatus: 404 } });
    } finally {
      server.close();
    }
  });
});
