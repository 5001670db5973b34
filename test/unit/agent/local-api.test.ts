import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalApiClient, parseMigrationRequest, startLocalApi } from '../../../agent/api/index.js';
import { Sequencer, type SequencerEvent } from '../../../agent/sequencer/index.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'api-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

describe('local API', () => {
  it('starts a job, lists it, streams its events and cancels', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const seq = new Sequencer({
      journalDir: join(dir, 'journal'), backoffMs: () => 0,
      definitions: [{ kind: 'migrate-out', version: 1, steps: [
        { name: 'one', run: async (ctx) => { ctx.progress({ bytesDone: 1, bytesTotal: 2 }); await gate; return 1; } },
        { name: 'two', run: async () => 2 },
      ] }],
    });
    const socket = join(dir, 'agent.sock');
    const server = await startLocalApi(socket, {
      cloudId: 'cloud-a',
      startMigration: async (req) => (await seq.start('migrate-out', `out-${req.vm}`, req)),
      listJobs: () => seq.list(),
      job: (id) => seq.status(id),
      cancel: (id) => seq.cancel(id),
      subscribe: (id, l) => seq.watch((e) => { if (e.jobId === id) l(e); }),
      peerTimes: async () => [{ peer: 'cloud-b', offsetMs: 1.5, roundTripMs: 3, measuredAt: 1 }],
    });
    try {
      expect(((await stat(socket)).mode & 0o777).toString(8)).toBe('660');
      const api = new LocalApiClient(socket);
      expect(await api.health()).toEqual({ ok: true, cloud: 'cloud-a' });
      expect(await api.peerTimes()).toEqual([{ peer: 'cloud-b', offsetMs: 1.5, roundTripMs: 3, measuredAt: 1 }]);
      const { jobId } = await api.startMigration({ vm: 'web1', to: 'cloud-b' });
      expect(jobId).toBe('out-web1');
      const events: string[] = [];
      const following = api.follow(jobId, (e) => events.push(e.type));
      await new Promise((r) => setTimeout(r, 50));
      release();
      await following;
      expect(events[0]).toBe('status');
      expect(events.at(-1)).toBe('job-finished' satisfies SequencerEvent['type']);
      expect((await api.job(jobId)).state).toBe('completed');
      expect((await api.listJobs()).map((j) => j.jobId)).toEqual(['out-web1']);
      await expect(api.job('nope')).rejects.toMatchObject({ code: 'SEQ_UNKNOWN_JOB', details: { httpStatus: 404 } });
      await expect(api.startMigration({ vm: 'web1', to: 'cloud-b' })).rejects.toMatchObject({ code: 'SEQ_JOB_EXISTS' });
      await expect(api.startMigration({ vm: 'bad name!', to: 'cloud-b' } as never)).rejects.toMatchObject({ code: 'API_BAD_REQUEST' });
    } finally {
      server.close();
    }
    await expect(new LocalApiClient(socket).health()).rejects.toMatchObject({ code: 'API_UNREACHABLE' });
  });

  it('validates migration requests strictly', () => {
    expect(parseMigrationRequest({ vm: 'web1', auto: true, region: 'eu' })).toEqual({ vm: 'web1', auto: true, region: 'eu' });
    expect(() => parseMigrationRequest({ vm: 'web1' })).toThrow(/exactly one of 'to' or 'auto/);
    expect(() => parseMigrationRequest({ vm: 'web1', to: 'cloud-b', extra: 1 })).toThrow(/unknown field 'extra'/);
    expect(() => parseMigrationRequest([])).toThrow(/json object/);
    expect(parseMigrationRequest({ vm: 'web1', to: 'cloud-b', addresses: ['10.1.0.5'] }).addresses).toEqual(['10.1.0.5']);
    expect(() => parseMigrationRequest({ vm: 'web1', to: 'cloud-b', addresses: ['not-ip'] })).toThrow(/list of ip addresses/);
    // Issue 15: the mode and the lowest accepted fallback.
    expect(parseMigrationRequest({ vm: 'web1', to: 'cloud-b', mode: 'live', fallback: 'warm' })).toMatchObject({ mode: 'live', fallback: 'warm' });
    expect(() => parseMigrationRequest({ vm: 'web1', to: 'cloud-b', mode: 'hot' })).toThrow(/'mode' must be 'cold', 'warm' or 'live'/);
    expect(() => parseMigrationRequest({ vm: 'web1', to: 'cloud-b', fallback: 'cold' })).toThrow(/'fallback' needs a 'mode'/);
  });
});
