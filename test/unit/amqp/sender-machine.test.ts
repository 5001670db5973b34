/**
 * The sender's state machine (pure): its transitions driven step by step, the actions it
 * returns, and its restore from the sender journals recorded by the real sender against the
 * real broker (test/fixtures/transfer-journals, recorded before the machine existed: a journal
 * that no longer restores is a breaking change).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ChunkSet,
  SenderMachine,
  WholeDigest,
  decodeJournal,
  isAllZero,
  zeroChunkSha256,
  type ControlOf,
  type JournalRecord,
  type Manifest,
  type SenderAction,
} from '../../../protocols/amqp/index.js';
import { IntercloudError, isIntercloudError } from '../../../protocols/errors/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const CHUNK = 4096;
const FIXTURES = join(import.meta.dirname, '../../fixtures/transfer-journals');

const manifestOf = (chunkCount: number, size = chunkCount * CHUNK): Manifest => ({
  transferId: TID, from: 'cloud-a', to: 'cloud-b', name: 'x', size, chunkSize: CHUNK, chunkCount, expiresAt: 2e12,
});
const status = (chunkCount: number, have: number[] = [], hashes: string[] = []): ControlOf<'status'> => {
  const set = new ChunkSet(chunkCount);
  for (const i of have) set.add(i);
  return { type: 'status', v: 1, transferId: TID, chunkCount, have: have.length > 0 ? set.toBase64() : '', hashes };
};
const committed = (digest: string, size: number): ControlOf<'committed'> => ({ type: 'committed', v: 1, transferId: TID, digest, size });
const abortMsg = (reason: 'expired' | 'aborted' | 'failed', code?: string): ControlOf<'abort'> => ({
  type: 'abort', v: 1, transferId: TID, reason, ...(code ? { code } : {}),
});

/** A source of chunks: data chunks hold their index as bytes, zero chunks are zero. */
const chunkBytes = (index: number, zero: boolean): Buffer => (zero ? Buffer.alloc(CHUNK) : Buffer.alloc(CHUNK, (index % 255) + 1));
const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/** The whole digest of `chunks` as digest.ts defines it. */
function wholeOf(chunks: Buffer[]): string {
  const w = new WholeDigest(chunks.length * CHUNK, CHUNK);
  chunks.forEach((c, i) => w.add(i, isAllZero(c) ? zeroChunkSha256(CHUNK) : sha(c)));
  return w.hex();
}

/**
 * Carries out the machine's steps the way sender.ts does, against in-memory chunks, until it
 * polls with `end` (or finishes or fails); returns every action in order. `onPublish` may
 * throw to play a publish that failed mid-session.
 */
function drive(m: SenderMachine, chunks: Buffer[], limit = 10_000): SenderAction[] {
  const log: SenderAction[] = [];
  let steps = m.next();
  for (let n = 0; n < limit; n++) {
    if (steps.length === 0) steps = m.next();
    const a = steps.shift()!;
    log.push(a);
    if (a.type === 'read') {
      const bytes = chunks[a.index]!;
      const zero = isAllZero(bytes);
      const h = zero ? zeroChunkSha256(CHUNK) : sha(bytes);
      const published = m.onRead(a.index, zero, zero ? undefined : h.toString('hex'), a.resend);
      log.push(...published);
      if (!a.resend) steps.push(...m.onSent(a.index, h));
    } else if (a.type === 'poll' || a.type === 'finished' || a.type === 'fail' || a.type === 'await-status') {
      return log;
    }
  }
  throw new Error('the machine did not come to a wait');
}
const published = (log: SenderAction[]) => log.flatMap((a) => (a.type === 'publish' ? [[a.index, a.kind] as const] : []));
const reads = (log: SenderAction[]) => log.flatMap((a) => (a.type === 'read' ? [[a.index, a.resend] as const] : []));
const records = (log: SenderAction[]) => log.flatMap((a) => (a.type === 'journal' ? [a.record] : []));

describe('sender machine: a transfer step by step', () => {
  it('journals the manifest with the source, announces it and waits for the status', () => {
    const m = new SenderMachine(manifestOf(2), { source: { size: 8192, mtimeMs: 5 } });
    expect(m.begin()).toEqual([{ type: 'journal', record: { t: 'manifest', manifest: manifestOf(2), source: { size: 8192, mtimeMs: 5 } } }]);
    expect(m.onConnected()).toEqual([{ type: 'send', message: { type: 'manifest', v: 1, transferId: TID, manifest: manifestOf(2) } }]);
    expect(m.next()).toEqual([{ type: 'await-status' }]);
    // any other message leaves it waiting; the status lets it stream
    m.onNeed([[0, 1]]);
    expect(m.next()).toEqual([{ type: 'await-status' }]);
    m.onStatus(status(2));
    expect(m.phase).toBe('streaming');
    expect(m.next()).toEqual([{ type: 'read', index: 0, resend: true }]);
  });

  it('streams every chunk in order: held ones skipped, zero and known ones header-only; then end, poll, commit', () => {
    const chunks = [chunkBytes(0, false), chunkBytes(1, true), chunkBytes(2, false), chunkBytes(3, false)];
    const m = new SenderMachine(manifestOf(4));
    m.onConnected();
    m.onStatus(status(4, [0], [sha(chunks[2]!).toString('hex')]));
    const log = drive(m, chunks);
    expect(reads(log)).toEqual([[0, false], [1, false], [2, false], [3, false]]);
    expect(published(log)).toEqual([[1, 'zero'], [2, 'ref'], [3, 'data']]);
    const digest = wholeOf(chunks);
    expect(records(log)).toEqual([{ t: 'end', digest }]);
    expect(log.at(-1)).toEqual({ type: 'poll', message: { type: 'end', v: 1, transferId: TID, manifest: manifestOf(4), digest } });
    expect(m.phase).toBe('ending');
    expect(m.chunks).toEqual({ data: 1, zero: 1, ref: 1, held: 1, resent: 0 });
    // no answer yet: it polls again
    expect(m.next()[0]?.type).toBe('poll');
    m.onCommittedMessage(committed(digest, 4 * CHUNK));
    expect(m.next()).toEqual([
      { type: 'journal', record: { t: 'committed', digest } },
      { type: 'delete-topology', queues: ['control', 'data'], exchange: true },
      { type: 'finished' },
    ]);
    expect(m.phase).toBe('committed');
    expect(m.digest).toBe(digest);
  });

  it('takes the latest status\'s hashes only: a chunk the receiver no longer offers goes as data', () => {
    const chunks = [chunkBytes(0, false), chunkBytes(1, false)];
    const m = new SenderMachine(manifestOf(2));
    m.onConnected();
    m.onStatus(status(2, [], [sha(chunks[0]!).toString('hex'), sha(chunks[1]!).toString('hex')]));
    // A new session: the receiver now offers chunk 1's bytes only.
    m.onConnected();
    m.onStatus(status(2, [], [sha(chunks[1]!).toString('hex')]));
    const log = drive(m, chunks);
    expect(published(log)).toEqual([[0, 'data'], [1, 'ref']]);
  });

  it('answers a need with data or zero frames (never ref) before the stream goes on', () => {
    const chunks = [chunkBytes(0, false), chunkBytes(1, true), chunkBytes(2, false), chunkBytes(3, false)];
    const m = new SenderMachine(manifestOf(4));
    m.onConnected();
    m.onStatus(status(4, [], [sha(chunks[0]!).toString('hex')]));
    // stream chunk 0 (as ref), then a need arrives for 0..1 and for an index past the end
    let steps = m.next();
    expect(steps).toEqual([{ type: 'read', index: 0, resend: false }]);
    expect(m.onRead(0, false, sha(chunks[0]!).toString('hex'), false)).toEqual([{ type: 'publish', index: 0, kind: 'ref', attempt: 1 }]);
    m.onSent(0, sha(chunks[0]!));
    m.onNeed([[0, 2], [7, 9]]);
    const log = drive(m, chunks);
    expect(reads(log)).toEqual([[0, true], [1, true], [1, false], [2, false], [3, false]]);
    expect(published(log)).toEqual([[0, 'data'], [1, 'zero'], [1, 'zero'], [2, 'data'], [3, 'data']]);
    expect(log.filter((a) => a.type === 'publish' && a.index === 0).map((a) => a.type === 'publish' && a.attempt)).toEqual([2]);
    expect(m.chunks.resent).toBe(2);
    // a need while polling comes back as re-sends, then the poll again
    m.onNeed([[3, 4]]);
    steps = drive(m, chunks);
    expect(reads(steps)).toEqual([[3, true]]);
    expect(steps.at(-1)?.type).toBe('poll');
  });

  it('puts a chunk into the stream only once it was sent: a session that failed mid-publish reads it again', () => {
    const chunks = [chunkBytes(0, false), chunkBytes(1, false)];
    const m = new SenderMachine(manifestOf(2));
    m.onConnected();
    m.onStatus(status(2));
    expect(m.next()).toEqual([{ type: 'read', index: 0, resend: false }]);
    expect(m.onRead(0, false, sha(chunks[0]!).toString('hex'), false)).toMatchObject([{ kind: 'data', attempt: 1 }]);
    // the publish threw (broker gone): no onSent; a new session announces again
    expect(m.onConnected()[0]).toMatchObject({ type: 'send', message: { type: 'manifest' } });
    m.onStatus(status(2));
    expect(m.nextIndex).toBe(0);
    const log = drive(m, chunks);
    expect(published(log)).toEqual([[0, 'data'], [1, 'data']]);
    expect(log.find((a) => a.type === 'publish' && a.index === 0)).toMatchObject({ attempt: 2 });
    expect(m.chunks).toMatchObject({ data: 2 });
    expect(records(log)).toEqual([{ t: 'end', digest: wholeOf(chunks) }]);
  });

  it('sends only the chunks it is told to; the others are read for the digest and count as held', () => {
    const chunks = [0, 1, 2, 3, 4].map((i) => chunkBytes(i, i === 3));
    const m = new SenderMachine(manifestOf(5), { send: [[1, 2], [3, 5]] });
    m.onConnected();
    m.onStatus(status(5));
    const log = drive(m, chunks);
    expect(reads(log).map(([i]) => i)).toEqual([0, 1, 2, 3, 4]);
    expect(published(log)).toEqual([[1, 'data'], [3, 'zero'], [4, 'data']]);
    expect(m.chunks).toEqual({ data: 2, zero: 1, ref: 0, held: 2, resent: 0 });
    expect(records(log)).toEqual([{ t: 'end', digest: wholeOf(chunks) }]);
    // the receiver asks for an unselected chunk after all: it gets it
    m.onNeed([[0, 1]]);
    expect(published(drive(m, chunks))).toEqual([[0, 'data']]);
  });

  it('ends an empty source at once', () => {
    const m = new SenderMachine(manifestOf(0, 0));
    m.onConnected();
    m.onStatus(status(0));
    const log = drive(m, []);
    expect(reads(log)).toEqual([]);
    expect(records(log)).toEqual([{ t: 'end', digest: new WholeDigest(0, CHUNK).hex() }]);
    expect(log.at(-1)?.type).toBe('poll');
  });

  it('fails on a commit of another digest, and journals that as the end of the transfer', () => {
    const chunks = [chunkBytes(0, false)];
    const m = new SenderMachine(manifestOf(1));
    m.onConnected();
    m.onStatus(status(1));
    drive(m, chunks);
    m.onCommittedMessage(committed('f'.repeat(64), CHUNK));
    const [fail] = m.next();
    expect(fail?.type === 'fail' && fail.error.code).toBe('XFER_DIGEST_MISMATCH');
    expect(m.windDown()).toEqual([{ type: 'journal', record: { t: 'aborted', reason: 'failed', code: 'XFER_DIGEST_MISMATCH' } }]);
    expect(m.phase).toBe('aborted');
  });

  it('acts on a commit only once its own digest is known', () => {
    const chunks = [chunkBytes(0, false), chunkBytes(1, false)];
    const m = new SenderMachine(manifestOf(2));
    m.onConnected();
    m.onStatus(status(2));
    m.onCommittedMessage(committed(wholeOf(chunks), 2 * CHUNK)); // early (a receiver that committed before)
    expect(m.next()).toEqual([{ type: 'read', index: 0, resend: false }]);
    const log = drive(m, chunks);
    expect(log.at(-1)).toEqual({ type: 'finished' });
    expect(m.phase).toBe('committed');
  });
});

describe('sender machine: aborts and what they leave to clean up', () => {
  const started = () => {
    const m = new SenderMachine(manifestOf(2));
    m.onConnected();
    return m;
  };

  it('the caller\'s abort: tells the receiver on a fresh connection, deletes its control queue, journals aborted', () => {
    const m = started();
    expect(m.fail({ kind: 'caller-abort' }).code).toBe('XFER_ABORTED');
    expect(m.next()).toMatchObject([{ type: 'fail', error: { code: 'XFER_ABORTED' } }]);
    expect(m.windDown()).toEqual([
      { type: 'abort-cleanup', declare: true, tell: { type: 'abort', v: 1, transferId: TID, reason: 'aborted', code: 'XFER_ABORTED' }, queues: ['control'], exchange: false },
      { type: 'journal', record: { t: 'aborted', reason: 'aborted', code: 'XFER_ABORTED' } },
    ]);
  });

  it('expiry: deletes both queues and the exchange, journals expired', () => {
    const m = started();
    expect(m.fail({ kind: 'expired' }).code).toBe('XFER_EXPIRED');
    expect(m.windDown()).toEqual([
      { type: 'abort-cleanup', declare: true, queues: ['data', 'control'], exchange: true },
      { type: 'journal', record: { t: 'aborted', reason: 'expired', code: 'XFER_EXPIRED' } },
    ]);
  });

  it('the receiver\'s abort: fails with its code, removes what is left, journals failed', () => {
    const m = started();
    const err = m.fail({ kind: 'peer-abort', message: abortMsg('failed', 'XFER_DISK_FULL') });
    expect(err.code).toBe('XFER_DISK_FULL');
    expect(err.details).toMatchObject({ peerReason: 'failed', peerCode: 'XFER_DISK_FULL' });
    expect(m.windDown()).toEqual([
      { type: 'abort-cleanup', declare: false, queues: ['control', 'data'], exchange: true },
      { type: 'journal', record: { t: 'aborted', reason: 'failed', code: 'XFER_DISK_FULL' } },
    ]);
    // a code the sender does not know, or none: XFER_ABORTED; the receiver's expiry: XFER_EXPIRED
    expect(started().fail({ kind: 'peer-abort', message: abortMsg('failed', 'NOT_OURS') }).code).toBe('XFER_ABORTED');
    const e = started();
    expect(e.fail({ kind: 'peer-abort', message: abortMsg('expired') }).code).toBe('XFER_EXPIRED');
    expect(e.windDown().at(-1)).toEqual({ type: 'journal', record: { t: 'aborted', reason: 'expired', code: 'XFER_EXPIRED' } });
  });

  it('other failures (a login, a read) leave the journal open for a retry', () => {
    const m = started();
    m.fail({ kind: 'error', error: new IntercloudError('XFER_IO', 'cannot read') });
    expect(m.windDown()).toEqual([]);
    expect(m.phase).not.toBe('aborted');
  });

  it('the first failure is the error; a later abort by the caller still decides what is journaled', () => {
    const m = started();
    m.fail({ kind: 'peer-abort', message: abortMsg('aborted') });
    expect(m.fail({ kind: 'caller-abort' }).details).toMatchObject({ peerReason: 'aborted' });
    expect(m.windDown()).toEqual([
      { type: 'abort-cleanup', declare: false, queues: ['control', 'data'], exchange: true },
      { type: 'journal', record: { t: 'aborted', reason: 'aborted', code: 'XFER_ABORTED' } },
    ]);
    const e = started();
    e.fail({ kind: 'expired' });
    e.fail({ kind: 'caller-abort' });
    expect(e.windDown().at(-1)).toEqual({ type: 'journal', record: { t: 'aborted', reason: 'expired', code: 'XFER_EXPIRED' } });
  });
});

describe('sender machine: restore', () => {
  const load = (name: string): JournalRecord[] => decodeJournal(readFileSync(join(FIXTURES, `${name}.send.journal`), 'utf8')).records;

  it('restores every recorded sender journal', () => {
    const names = readdirSync(FIXTURES).filter((f) => f.endsWith('.send.journal')).map((f) => f.replace('.send.journal', '')).sort();
    expect(names).toEqual(['aborted', 'announced', 'committed', 'expired', 'polling', 'refused']);
    const phases = Object.fromEntries(names.map((n) => [n, SenderMachine.restore(load(n))?.phase]));
    expect(phases).toEqual({
      aborted: 'aborted', announced: 'announcing', committed: 'committed', expired: 'aborted', polling: 'announcing', refused: 'aborted',
    });
  });

  it('a committed journal: done, with the committed digest', () => {
    const recs = load('committed');
    const m = SenderMachine.restore(recs)!;
    const digest = recs.find((r) => r.t === 'committed')!;
    expect(digest.t === 'committed' && m.digest).toBe(digest.t === 'committed' && digest.digest);
    expect(m.next()).toEqual([{ type: 'finished' }]);
  });

  it('a journal from before the status: the manifest and source it began with; a changed source is refused', () => {
    const recs = load('announced');
    const first = recs[0]!;
    if (first.t !== 'manifest') throw new Error('fixture starts with its manifest');
    const m = SenderMachine.restore(recs)!;
    expect(m.manifest).toEqual(first.manifest);
    expect(m.source).toEqual(first.source);
    expect(m.restoredDigest).toBeUndefined();
    expect(() => m.checkSource(first.source!)).not.toThrow();
    let caught: unknown;
    try {
      m.checkSource({ size: first.source!.size, mtimeMs: first.source!.mtimeMs! + 1 });
    } catch (err) {
      caught = err;
    }
    expect(isIntercloudError(caught, 'XFER_SOURCE_CHANGED')).toBe(true);
    // it announces again and streams from the first chunk
    expect(m.onConnected()).toMatchObject([{ type: 'send', message: { type: 'manifest', manifest: first.manifest } }]);
    m.onStatus(status(first.manifest.chunkCount));
    expect(m.next()).toEqual([{ type: 'read', index: 0, resend: false }]);
  });

  it('a journal that reached end: knows its digest, and journals it again only if the source now hashes differently', () => {
    const polling = load('polling');
    const end = polling.find((r) => r.t === 'end');
    expect(SenderMachine.restore(polling)!.restoredDigest).toBe(end?.t === 'end' && end.digest);
    const chunks = [chunkBytes(0, false), chunkBytes(1, true)];
    const digest = wholeOf(chunks);
    const same = SenderMachine.restore([{ t: 'manifest', manifest: manifestOf(2) }, { t: 'end', digest }])!;
    same.onConnected();
    same.onStatus(status(2, [0, 1]));
    const log = drive(same, chunks);
    expect(published(log)).toEqual([]);
    expect(records(log)).toEqual([]);
    expect(log.at(-1)).toMatchObject({ type: 'poll', message: { digest } });
    const other = SenderMachine.restore([{ t: 'manifest', manifest: manifestOf(2) }, { t: 'end', digest: 'a'.repeat(64) }])!;
    other.onConnected();
    other.onStatus(status(2));
    expect(records(drive(other, chunks))).toEqual([{ t: 'end', digest }]);
  });

  it('a journal that ends after end: a committed answer with that digest, while it waits for status, finishes it without reading the source', () => {
    // The sender crashed after the receiver committed but before it journaled `committed`: a
    // committed receiver answers `committed` and never `status`, so waiting for one hangs.
    const polling = load('polling');
    const end = polling.find((r) => r.t === 'end')!;
    if (end.t !== 'end' || polling[0]?.t !== 'manifest') throw new Error('fixture: manifest, then end');
    const m = SenderMachine.restore(polling)!;
    expect(m.onConnected()).toMatchObject([{ type: 'send', message: { type: 'manifest' } }]);
    expect(m.next()).toEqual([{ type: 'await-status' }]);
    const fin = polling[0].manifest;
    m.onCommittedMessage({ type: 'committed', v: 1, transferId: fin.transferId, digest: end.digest, size: fin.size });
    expect(m.next()).toEqual([
      { type: 'journal', record: { t: 'committed', digest: end.digest } },
      { type: 'delete-topology', queues: ['control', 'data'], exchange: true },
      { type: 'finished' },
    ]);
    expect(m.phase).toBe('committed');
    expect(m.digest).toBe(end.digest);
  });

  it('a journal that ends after end: a committed answer with another digest or size fails with XFER_DIGEST_MISMATCH, journaled aborted', () => {
    for (const bad of [committed('b'.repeat(64), 2 * CHUNK), committed('a'.repeat(64), 2 * CHUNK + 1)]) {
      const m = SenderMachine.restore([{ t: 'manifest', manifest: manifestOf(2) }, { t: 'end', digest: 'a'.repeat(64) }])!;
      m.onConnected();
      m.onCommittedMessage(bad);
      const [step] = m.next();
      expect(step?.type === 'fail' && step.error.code).toBe('XFER_DIGEST_MISMATCH');
      expect(records(m.windDown())).toEqual([{ t: 'aborted', reason: 'failed', code: 'XFER_DIGEST_MISMATCH' }]);
    }
  });

  it('a reconnect while polling with end: the committed answer finishes it, although no status comes', () => {
    const chunks = [chunkBytes(0, false), chunkBytes(1, true)];
    const m = new SenderMachine(manifestOf(2));
    m.onConnected();
    m.onStatus(status(2));
    expect(drive(m, chunks).at(-1)).toMatchObject({ type: 'poll' });
    m.onConnected(); // the broker connection broke and came back; the receiver committed meanwhile
    expect(m.next()).toEqual([{ type: 'await-status' }]);
    m.onCommittedMessage(committed(wholeOf(chunks), 2 * CHUNK));
    expect(m.next()).toEqual([
      { type: 'journal', record: { t: 'committed', digest: wholeOf(chunks) } },
      { type: 'delete-topology', queues: ['control', 'data'], exchange: true },
      { type: 'finished' },
    ]);
  });

  it('a journal from before end: a committed answer while waiting for status is not taken on trust', () => {
    const m = SenderMachine.restore([{ t: 'manifest', manifest: manifestOf(2) }])!;
    m.onConnected();
    m.onCommittedMessage(committed('a'.repeat(64), 2 * CHUNK));
    expect(m.next()).toEqual([{ type: 'await-status' }]);
  });

  it('no manifest journaled: nothing to restore (a new transfer)', () => {
    expect(SenderMachine.restore([])).toBeUndefined();
  });

  it('an abort anywhere wins over a commit', () => {
    const m = SenderMachine.restore([
      { t: 'manifest', manifest: manifestOf(1) },
      { t: 'aborted', reason: 'failed', code: 'XFER_DIGEST_MISMATCH' },
      { t: 'committed', digest: 'a'.repeat(64) },
    ]);
    expect(m?.phase).toBe('aborted');
  });
});

describe('sender machine: property', () => {
  it('streams each chunk once in order, answers every need, never re-sends as ref, and ends with the whole digest', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            zeros: fc.uniqueArray(fc.nat(n - 1)),
            held: fc.uniqueArray(fc.nat(n - 1)),
            known: fc.uniqueArray(fc.nat(n - 1)),
            needs: fc.array(fc.record({ at: fc.nat(n), from: fc.nat(n - 1), len: fc.integer({ min: 1, max: 3 }) }), { maxLength: 6 }),
          }),
        ),
        ({ n, zeros, held, known, needs }) => {
          const chunks = Array.from({ length: n }, (_, i) => chunkBytes(i, zeros.includes(i)));
          const m = new SenderMachine(manifestOf(n));
          m.onConnected();
          m.onStatus(status(n, held, known.map((i) => sha(chunks[i]!).toString('hex'))));
          const streamed: number[] = [];
          const resent: number[] = [];
          const applied = new Set<number>();
          let steps: SenderAction[] = [];
          for (let guard = 0; guard < 10_000; guard++) {
            needs.forEach((x, k) => {
              if (x.at !== streamed.length || applied.has(k)) return;
              applied.add(k);
              m.onNeed([[x.from, x.from + x.len]]);
            });
            if (steps.length === 0) steps = m.next();
            const a = steps.shift()!;
            if (a.type === 'poll') break;
            if (a.type !== 'read' && a.type !== 'journal') throw new Error(`unexpected ${a.type}`);
            if (a.type === 'journal') continue;
            const zero = isAllZero(chunks[a.index]!);
            const h = zero ? zeroChunkSha256(CHUNK) : sha(chunks[a.index]!);
            const out = m.onRead(a.index, zero, zero ? undefined : h.toString('hex'), a.resend);
            if (a.resend) {
              resent.push(a.index);
              expect(out).toMatchObject([{ kind: zero ? 'zero' : 'data' }]);
            } else {
              streamed.push(a.index);
              const expected = held.includes(a.index) ? [] : [{ kind: zero ? 'zero' : known.includes(a.index) ? 'ref' : 'data' }];
              expect(out).toMatchObject(expected);
              steps.push(...m.onSent(a.index, h));
            }
          }
          expect(streamed).toEqual(Array.from({ length: n }, (_, i) => i));
          const asked = needs.filter((_, k) => applied.has(k)).flatMap((x) => Array.from({ length: x.len }, (_, k) => x.from + k).filter((i) => i < n));
          expect(resent.sort((a, b) => a - b)).toEqual(asked.sort((a, b) => a - b));
          expect(m.digest).toBe(wholeOf(chunks));
        },
      ),
    );
  });
});
