import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ChunkSet,
  ProgressMeter,
  ReceiverMachine,
  type FrameHeader,
  type FrameKind,
  type Manifest,
  type ReceiverAction,
} from '../../../protocols/amqp/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const manifestOf = (chunkCount: number): Manifest => ({
  transferId: TID, from: 'cloud-a', to: 'cloud-b', name: 'x', size: chunkCount * 4096, chunkSize: 4096, chunkCount, expiresAt: 2e12,
});
const header = (index: number, kind: FrameKind = 'data'): FrameHeader => ({
  kind, transferId: TID, index, offset: index * 4096, length: 4096, sha256: createHash('sha256').update(String(index)).digest(),
});
const DIGEST = 'e'.repeat(64);
const sent = (actions: ReceiverAction[]) => actions.flatMap((a) => (a.type === 'send' ? [a.message] : []));

describe('receiver machine', () => {
  it('creates staging, journals the manifest and answers with status', () => {
    const m = new ReceiverMachine(TID);
    const actions = m.onManifest(manifestOf(4), ['f'.repeat(64)]);
    expect(actions.map((a) => a.type)).toEqual(['create-staging', 'journal', 'send']);
    expect(sent(actions)[0]).toMatchObject({ type: 'status', chunkCount: 4, hashes: ['f'.repeat(64)] });
    expect(m.onManifest(manifestOf(4)).map((a) => a.type)).toEqual(['send']);
  });

  it('applies each chunk once whatever the order, duplication and corruption (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }).chain((n) =>
          fc.tuple(fc.constant(n), fc.array(fc.record({ index: fc.nat(n - 1), ok: fc.boolean(), kind: fc.constantFrom<FrameKind>('data', 'zero', 'ref') }), { maxLength: 120 })),
        ),
        ([n, deliveries]) => {
          const m = new ReceiverMachine(TID);
          m.onManifest(manifestOf(n));
          const applied = new Map<number, number>();
          const apply = (index: number, kind: FrameKind, ok: boolean) => {
            const d = m.onFrame(header(index, kind), ok);
            if (d.action === 'write' || d.action === 'hole' || d.action === 'copy-local') {
              applied.set(index, (applied.get(index) ?? 0) + 1);
              m.onDurable([index]);
            }
          };
          for (const d of deliveries) apply(d.index, d.kind, d.ok);
          // The `end` poll asks for exactly what is missing; answering it completes the transfer.
          const ask = sent(m.onEnd(manifestOf(n), DIGEST)).find((x) => x.type === 'need');
          if (ask?.type === 'need') for (const [a, b] of ask.chunks) for (let i = a; i < b; i++) apply(i, 'data', true);
          expect(m.heldCount).toBe(n);
          for (const count of applied.values()) expect(count).toBe(1);
          expect(m.phase).toBe('verifying');
        },
      ),
    );
  });

  it('asks again for a corrupted chunk at once', () => {
    const m = new ReceiverMachine(TID);
    m.onManifest(manifestOf(4));
    expect(m.onFrame(header(2), false)).toMatchObject({ action: 'need', message: { type: 'need', chunks: [[2, 3]] } });
    expect(m.onFrame(header(2), true)).toEqual({ action: 'write', index: 2 });
  });

  it('asks again at the end for a chunk whose write failed after it was decided on', () => {
    const m = new ReceiverMachine(TID);
    m.onManifest(manifestOf(3));
    for (const i of [0, 1, 2]) expect(m.onFrame(header(i), true)).toEqual({ action: 'write', index: i });
    m.onDurable([0, 2]);
    m.release(1); // e.g. the broker went away mid-write
    expect(sent(m.onEnd(manifestOf(3), DIGEST))).toEqual([{ type: 'need', v: 1, transferId: TID, chunks: [[1, 2]] }]);
    expect(m.onFrame(header(1), true)).toEqual({ action: 'write', index: 1 });
  });

  it('drops frames of other transfers, out of range, or before the manifest', () => {
    const m = new ReceiverMachine(TID);
    expect(m.onFrame(header(0), true)).toMatchObject({ action: 'drop', reason: 'no-manifest' });
    m.onManifest(manifestOf(2));
    expect(m.onFrame({ ...header(0), transferId: '00000000-0000-4000-8000-000000000000' }, true)).toMatchObject({ reason: 'foreign' });
    expect(m.onFrame(header(5), true)).toMatchObject({ reason: 'out-of-range' });
    expect(m.onFrame({ ...header(1), offset: 1 }, true)).toMatchObject({ reason: 'out-of-range' });
  });

  it('commits once verified and then answers committed to anything', () => {
    const m = new ReceiverMachine(TID);
    m.onManifest(manifestOf(1));
    m.onFrame(header(0), true);
    m.onDurable([0]);
    expect(m.onEnd(manifestOf(1), DIGEST).map((a) => a.type)).toEqual(['journal', 'verify']);
    const c = m.onVerified(true);
    // Journaled first, renamed next, answered last: the sender learns of a file in place.
    expect(c.map((a) => a.type)).toEqual(['journal', 'commit-staging', 'send']);
    expect(c[0]).toEqual({ type: 'journal', record: { t: 'committed', digest: DIGEST } });
    expect(sent(m.onEnd(manifestOf(1), DIGEST))[0]).toMatchObject({ type: 'committed', digest: DIGEST, size: 4096 });
  });

  it('aborts on a digest mismatch: staging removed, sender told', () => {
    const m = new ReceiverMachine(TID);
    m.onManifest(manifestOf(1));
    m.onFrame(header(0), true);
    m.onDurable([0]);
    m.onEnd(manifestOf(1), DIGEST);
    const a = m.onVerified(false);
    expect(a.map((x) => x.type)).toEqual(['remove-staging', 'journal', 'send']);
    expect(sent(a)[0]).toMatchObject({ type: 'abort', reason: 'failed', code: 'XFER_DIGEST_MISMATCH' });
    expect(m.phase).toBe('aborted');
  });

  it('journals which held chunks are holes, and restores that', () => {
    const m = new ReceiverMachine(TID);
    m.onManifest(manifestOf(3));
    m.onFrame(header(0, 'zero'), true);
    m.onFrame(header(1), true);
    const [journal] = m.onDurable([0, 1]);
    expect(journal).toEqual({ type: 'journal', record: { t: 'have', chunks: [[0, 2]], holes: [[0, 1]] } });
    const r = ReceiverMachine.restore(TID, [{ t: 'manifest', manifest: manifestOf(3) }, { t: 'have', chunks: [[0, 2]], holes: [[0, 1]] }]);
    expect([r.isHole(0), r.isHole(1), r.isHole(2)]).toEqual([true, false, false]);
  });

  it('restores from its journal what was held (a restarted receiver)', () => {
    const m = ReceiverMachine.restore(TID, [{ t: 'manifest', manifest: manifestOf(8) }, { t: 'have', chunks: [[0, 3], [5, 6]] }]);
    expect(m.heldCount).toBe(4);
    expect(m.onFrame(header(1), true)).toMatchObject({ reason: 'duplicate' });
    const status = m.status();
    expect(status.type === 'status' && ChunkSet.fromBase64(8, status.have).ranges()).toEqual([[0, 3], [5, 6]]);
  });
});

// The sender machine's tests: sender-machine.test.ts.

describe('progress', () => {
  it('never goes backwards and reaches an eta of 0 (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ dt: fc.nat(500), bytes: fc.integer({ min: -10, max: 5000 }), resend: fc.boolean() }), { maxLength: 50 }), (steps) => {
        const p = new ProgressMeter(TID, 100_000, 0);
        let t = 0;
        let last = 0;
        for (const s of steps) {
          t += s.dt;
          if (s.resend) p.resent(s.bytes);
          else p.advance(s.bytes);
          const r = p.report(t);
          expect(r.bytesDone).toBeGreaterThanOrEqual(last);
          expect(r.bytesDone).toBeLessThanOrEqual(100_000);
          last = r.bytesDone;
        }
        p.advance(100_000);
        expect(p.report(t + 1).etaSeconds).toBe(0);
      }),
    );
  });
});
