/**
 * A's replication journal compacted (every pass, retry and receipt appends to it, and a
 * subcontract lives for months): the state folded from a compacted journal is the state it
 * replaced, and a replicator keeps its journal bounded across passes and restarts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promises as fsp } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ReplicaReceiver, ReplicationJournal, ReplicationState, Replicator, decodeReplJournal, directPeer, encodeReplRecord, type ReplRecord, type ReplicatorOptions, type Subcontract,
} from '../../../agent/replication/index.js';
import { MemoryStore } from './memory-store.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'repl-compact-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const H = 'a'.repeat(64);
/** Every kind of record, in an order a replicator could write them. */
const HISTORY: ReplRecord[] = [
  { t: 'open', subcontractId: 'sc-1', at: 1 },
  { t: 'pass', pass: 1, at: 2 },
  { t: 'pending', key: 'a', size: 10, etag: '"e1"', at: 3 },
  { t: 'pending', key: 'b', size: 20, etag: '"e2"', at: 3 },
  { t: 'pending', key: 'c', size: 30, etag: '"e3"', at: 3 },
  { t: 'pending', key: 'd', size: 40, etag: '"e4"', at: 3 },
  { t: 'page', pass: 1, after: 'd' },
  { t: 'completed', key: 'a', etag: '"e1"', size: 10, sha256: H, replicaEtag: '"r1"', at: 4 },
  { t: 'retry', key: 'b', attempts: 1, code: 'REPL_PEER_UNAVAILABLE', message: 'no answer', nextAt: 50 },
  { t: 'failed', key: 'c', attempts: 4, code: 'REPL_OVER_RESERVATION', message: 'full', at: 5 },
  { t: 'completed', key: 'd', etag: '"e4"', size: 40, sha256: H, replicaEtag: '"r4"', at: 6 },
  { t: 'delete', key: 'd', at: 7 },
  { t: 'pass-end', pass: 1, at: 8 },
  { t: 'pass', pass: 2, at: 9 },
  { t: 'page', pass: 2, after: 'b' },
];

/** A replicator's options over A's 20 small objects and B's empty bucket, compacting past `compactMinRecords`. */
async function twentyObjects(compactMinRecords: number): Promise<ReplicatorOptions & { journalPath: string }> {
  const a = new MemoryStore();
  const b = new MemoryStore();
  await a.createBucket('src');
  await b.createBucket('dst');
  for (let i = 0; i < 20; i++) {
    const bytes = randomBytes(50 + i);
    a.rawPut('src', `o${String(i).padStart(2, '0')}`, bytes, sha(bytes));
  }
  const subcontract: Subcontract = {
    id: 'sc-1', from: 'cloud-a', to: 'cloud-b', source: { bucket: 'src', prefix: '' }, target: { bucket: 'dst' },
    ackMode: 'async', bandwidthBytesPerSecond: 0, deletePolicy: 'propagate',
  };
  return { subcontract, store: a, peer: directPeer(new ReplicaReceiver(b, 'dst'), join(dir, 'b')), journalPath: join(dir, 'journal'), stagingDir: join(dir, 'a'), compactMinRecords };
}

const folded = (records: readonly ReplRecord[]): ReplicationState => {
  const s = new ReplicationState();
  for (const r of records) s.apply(r);
  return s;
};

describe('replication journal compaction', () => {
  it('folds back to the state it replaced: objects in each state, the counters, the pass under way', () => {
    const before = folded(HISTORY);
    const text = before.snapshotRecords().map(encodeReplRecord).join('');
    const after = folded(decodeReplJournal(text).records);
    expect([...after.objects.entries()]).toEqual([...before.objects.entries()]);
    expect(after.status(100)).toEqual(before.status(100));
    expect(after.pass).toEqual(before.pass);
    expect(after.subcontractId).toBe('sc-1');
    // What comes after a compaction applies as before it.
    const next: ReplRecord = { t: 'completed', key: 'b', etag: '"e2"', size: 20, sha256: H, replicaEtag: '"r2"', at: 60 };
    expect(folded([...decodeReplJournal(text).records, next]).status(100)).toEqual(folded([...HISTORY, next]).status(100));
  });

  it('keeps a replicator\'s journal bounded across passes, and a restart folds it to the same status', async () => {
    const o = await twentyObjects(50);
    const journalPath = o.journalPath;
    const lines = (): number => readFileSync(journalPath, 'utf8').split('\n').length - 1;
    const r = await Replicator.open(o);
    r.start();
    let most = 0;
    for (let pass = 0; pass < 60; pass++) {
      await r.runPass();
      await r.idle(AbortSignal.timeout(10_000));
      most = Math.max(most, lines());
    }
    const status = r.status();
    await r.stop();
    // 60 passes write 120 pass records beyond the 20 objects' own: compacted at 50 + what one commit adds.
    expect(status.objects).toEqual({ pending: 0, completed: 20, failed: 0 });
    expect(most).toBeLessThanOrEqual(50 + 22 + 20);
    const again = await Replicator.open(o);
    expect(again.status()).toEqual(status);
    await again.stop();
  });

  it('rewrites the journal once per as many records as it holds, never at every commit, nor at every open', async () => {
    // Fewer records than objects before a compaction: the objects set the pace.
    const o = await twentyObjects(10);
    const r = await Replicator.open(o);
    r.start();
    await r.runPass();
    await r.idle(AbortSignal.timeout(10_000));
    const compact = vi.spyOn(ReplicationJournal.prototype, 'compact');
    const append = vi.spyOn(ReplicationJournal.prototype, 'append');
    for (let p = 0; p < 40; p++) await r.runPass();
    // 40 passes, two records each: about one compaction per 20 records (the 20 objects' snapshot).
    expect(append.mock.calls.length).toBe(80);
    expect(compact.mock.calls.length).toBeGreaterThanOrEqual(3);
    expect(compact.mock.calls.length).toBeLessThanOrEqual(5);
    await r.stop();
    compact.mockClear();
    const again = await Replicator.open(o);
    expect(compact).not.toHaveBeenCalled();
    await again.stop();
  });

  it('a compaction renamed but not made durable (the directory cannot be synced): appends go on into the new journal, nothing lost', async () => {
    const path = join(dir, 'journal');
    const open: ReplRecord = { t: 'open', subcontractId: 'sc-1', at: 1 };
    const { journal } = await ReplicationJournal.open(path);
    await journal.append([open, { t: 'pass', pass: 1, at: 2 }]);
    const real = fsp.open.bind(fsp);
    const spy = vi.spyOn(fsp, 'open').mockImplementation((async (p: string, ...rest: unknown[]) => {
      if (p === dir) throw Object.assign(new Error('too many open files'), { code: 'EMFILE' });
      return (real as (...a: unknown[]) => Promise<unknown>)(p, ...rest);
    }) as typeof fsp.open);
    await expect(journal.compact([open])).rejects.toMatchObject({ code: 'REPL_JOURNAL' });
    spy.mockRestore();
    await journal.append([{ t: 'pass', pass: 2, at: 3 }]);
    await journal.close();
    expect((await ReplicationJournal.open(path)).records).toEqual([open, { t: 'pass', pass: 2, at: 3 }]);
  });
});
