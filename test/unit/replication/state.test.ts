import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  REPL_ERRORS, ReplicationState, TokenBucket, backoffDelay, channelTransferId, decodeReplJournal, decodeReplMessage, encodeReplMessage,
  encodeReplRecord, newTransferId, subcontractGrantPattern, transferPrefix, type ReplRecord,
} from '../../../agent/replication/index.js';
import { readFileSync } from 'node:fs';

const P = { baseMs: 1000, capMs: 60_000, maxAttempts: 5 };
const SHA = 'a'.repeat(64);
const l = (key: string, etag = `e-${key}`, sizeBytes = 10) => ({ key, etag, sizeBytes });

function fold(records: ReplRecord[]): ReplicationState {
  const s = new ReplicationState();
  for (const r of records) s.apply(r);
  return s;
}

/** Applies a plan to the state (as the replicator does after journaling it). */
function run(s: ReplicationState, plan: ReplRecord[]): ReplRecord[] {
  for (const r of plan) s.apply(r);
  return plan;
}

describe('listing pages', () => {
  it('queues new and changed objects, skips what B holds, and checkpoints each page', () => {
    const s = fold([{ t: 'pass', pass: 1, at: 0 }]);
    const p1 = run(s, s.planPage([l('a'), l('b')], false, { prefix: '', deleteAtB: true, listedAt: 1, now: 1 }));
    expect(p1.map((r) => r.t)).toEqual(['pending', 'pending', 'page']);
    expect(p1[2]).toEqual({ t: 'page', pass: 1, after: 'b' });
    run(s, s.planReceipt({ key: 'a', etag: 'e-a', size: 10, sha256: SHA }, { key: 'a', ok: true, size: 10, sha256: SHA, etag: 'x' }, 2, P, () => 0));
    expect(s.objects.get('a')!.state).toBe('COMPLETED');
    run(s, s.planPage([l('c')], true, { prefix: '', deleteAtB: true, listedAt: 3, now: 3 }));
    expect(s.lastFullPassAt).toBe(3);
    // Second pass: a unchanged (nothing), a changed ETag → pending again.
    run(s, [{ t: 'pass', pass: 2, at: 4 }]);
    expect(s.planPage([l('a'), l('b'), l('c')], true, { prefix: '', deleteAtB: true, listedAt: 5, now: 5 }).map((r) => r.t)).toEqual(['pass-end']);
    const changed = s.planPage([l('a', 'e-a2'), l('b'), l('c')], true, { prefix: '', deleteAtB: true, listedAt: 5, now: 5 });
    expect(changed[0]).toMatchObject({ t: 'pending', key: 'a', etag: 'e-a2' });
  });

  it('takes a known key missing from its page range for gone: delete at B by the terms, forget otherwise', () => {
    const base = (): ReplicationState => {
      const s = fold([{ t: 'pass', pass: 1, at: 0 }]);
      run(s, s.planPage([l('a'), l('b'), l('c'), l('d')], true, { prefix: '', deleteAtB: true, listedAt: 1, now: 1 }));
      for (const k of ['a', 'b', 'c', 'd']) run(s, s.planReceipt({ key: k, etag: `e-${k}`, size: 10, sha256: SHA }, { key: k, ok: true, size: 10, sha256: SHA, etag: 'x' }, 2, P, () => 0));
      run(s, [{ t: 'pass', pass: 2, at: 3 }]);
      return s;
    };
    const s = base();
    // Page [a, c] (more follow): b is in range and gone; d is beyond the page and not judged yet.
    const p = run(s, s.planPage([l('a'), l('c')], false, { prefix: '', deleteAtB: true, listedAt: 4, now: 4 }));
    expect(p.filter((r) => r.t === 'delete').map((r) => (r as { key: string }).key)).toEqual(['b']);
    expect(s.objects.get('b')).toMatchObject({ state: 'PENDING', op: 'delete' });
    // Last page empty: d is gone too.
    const p2 = s.planPage([], true, { prefix: '', deleteAtB: true, listedAt: 5, now: 5 });
    expect(p2.map((r) => r.t)).toEqual(['delete', 'pass-end']);
    const kept = base();
    const p3 = run(kept, kept.planPage([l('a'), l('c'), l('d')], true, { prefix: '', deleteAtB: false, listedAt: 4, now: 4 }));
    expect(p3.filter((r) => r.t === 'deleted')).toEqual([{ t: 'deleted', key: 'b', forgotten: true, at: 4 }]);
    expect(kept.objects.has('b')).toBe(false);
  });

  it('never takes for gone a key written after the listing began', () => {
    const s = fold([{ t: 'pass', pass: 1, at: 0 }, { t: 'pending', key: 'new', size: 1, etag: 'e', at: 10 }]);
    expect(s.planPage([], true, { prefix: '', deleteAtB: true, listedAt: 9, now: 11 }).map((r) => r.t)).toEqual(['pass-end']);
  });

  it('compares keys in UTF-8 byte order, as listings do', () => {
    // 'ｚ' (U+FF5A) sorts after '😀' (U+1F600) in UTF-16 code units but before it in UTF-8 bytes.
    const s = fold([{ t: 'pass', pass: 1, at: 0 }, { t: 'pending', key: '😀', size: 1, etag: 'e', at: 0 }, { t: 'page', pass: 1, after: 'ｚ' }]);
    // The page after 'ｚ' is the last and holds '😀': nothing gone, nothing new.
    expect(s.planPage([l('😀', 'e', 1)], true, { prefix: '', deleteAtB: true, listedAt: 1, now: 1 }).map((r) => r.t)).toEqual(['pass-end']);
    // And a page ending at 'ｚ' must not judge '😀' (beyond it in byte order).
    const s2 = fold([{ t: 'pass', pass: 1, at: 0 }, { t: 'pending', key: '😀', size: 1, etag: 'e', at: 0 }]);
    expect(s2.planPage([l('ｚ')], false, { prefix: '', deleteAtB: true, listedAt: 1, now: 1 }).map((r) => r.t)).toEqual(['pending', 'page']);
  });
});

describe('failures and retries', () => {
  it('schedules every retry with capped, jittered backoff, then FAILED with the coded reason', () => {
    const s = fold([{ t: 'pending', key: 'k', size: 1, etag: 'e', at: 0 }]);
    const delays: number[] = [];
    let now = 0;
    for (let i = 1; i < P.maxAttempts; i++) {
      const [r] = run(s, s.planFailure('k', 'e', { code: 'XFER_BROKER', message: 'down', retryable: true }, now, P, () => 0.5));
      expect(r).toMatchObject({ t: 'retry', attempts: i, code: 'XFER_BROKER' });
      const o = s.objects.get('k')!;
      expect(o.state).toBe('PENDING');
      expect(o.nextAttemptAt).toBeGreaterThan(now);
      delays.push(o.nextAttemptAt! - now);
      now = o.nextAttemptAt!;
    }
    expect(delays).toEqual([750, 1500, 3000, 6000]);
    const [f] = run(s, s.planFailure('k', 'e', { code: 'XFER_BROKER', message: 'down', retryable: true }, now, P, () => 0.5));
    expect(f).toMatchObject({ t: 'failed', attempts: 5, code: 'XFER_BROKER' });
    expect(s.objects.get('k')).toMatchObject({ state: 'FAILED', lastError: { code: 'XFER_BROKER' } });
    expect(s.objects.get('k')!.nextAttemptAt).toBeUndefined();
    expect(s.status(now).failedByCode).toEqual({ XFER_BROKER: 1 });
  });

  it('fails at once on an error that cannot be retried', () => {
    const s = fold([{ t: 'pending', key: 'k', size: 1, etag: 'e', at: 0 }]);
    expect(s.planFailure('k', 'e', { code: 'STORE_NAME_INVALID', message: 'x', retryable: false }, 1, P, Math.random)[0]!.t).toBe('failed');
  });

  it('keeps the delay within [d/2, d] and under the cap', () => {
    for (let n = 1; n < 40; n++) {
      for (const r of [0, 0.3, 0.999]) {
        const d = backoffDelay(P, n, () => r);
        const top = Math.min(P.capMs, P.baseMs * 2 ** (n - 1));
        expect(d).toBeGreaterThanOrEqual(top / 2);
        expect(d).toBeLessThanOrEqual(top);
      }
    }
  });

  it('never leaves a PENDING object without a next attempt, whatever happens', () => {
    const s = new ReplicationState();
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let step = 0; step < 2000; step++) {
      const key = `k${Math.floor(rnd() * 5)}`;
      const o = s.objects.get(key);
      const x = rnd();
      const now = step * 10;
      if (x < 0.25 || !o) run(s, [{ t: 'pending', key, size: 3, etag: `e${Math.floor(rnd() * 3)}`, at: now }]);
      else if (x < 0.5) run(s, s.planFailure(key, o.etag, { code: 'C', message: '', retryable: rnd() < 0.8 }, now, P, rnd));
      else if (x < 0.7) run(s, s.planReceipt({ key, etag: rnd() < 0.8 ? o.etag : 'old', size: 3, sha256: SHA }, { key, ok: true, size: 3, sha256: rnd() < 0.8 ? SHA : 'b'.repeat(64), etag: 'x' }, now, P, rnd));
      else if (x < 0.8) run(s, [{ t: 'delete', key, at: now }]);
      else run(s, [{ t: 'deleted', key, at: now }]);
      for (const v of s.objects.values()) {
        if (v.state === 'PENDING') expect(v.nextAttemptAt).toBeTypeOf('number');
        if (v.state === 'COMPLETED') expect(v.replica?.etag).toBe(v.etag);
      }
    }
  });
});

describe("B's receipt", () => {
  const sent = { key: 'k', etag: 'e', size: 5, sha256: SHA };
  it('completes only when B read back the size and SHA-256 that were sent', () => {
    const s = fold([{ t: 'pending', key: 'k', size: 5, etag: 'e', at: 0 }]);
    expect(s.planReceipt(sent, { key: 'k', ok: true, size: 4, sha256: SHA, etag: 'x' }, 1, P, () => 0)[0]).toMatchObject({ t: 'retry', code: 'REPL_VERIFY_FAILED' });
    expect(s.planReceipt(sent, { key: 'k', ok: true, size: 5, sha256: 'b'.repeat(64), etag: 'x' }, 1, P, () => 0)[0]).toMatchObject({ t: 'retry', code: 'REPL_VERIFY_FAILED' });
    expect(s.planReceipt(sent, undefined, 1, P, () => 0)[0]).toMatchObject({ t: 'retry', code: 'REPL_VERIFY_FAILED' });
    expect(s.planReceipt(sent, { key: 'k', ok: false, code: 'STORE_FULL', message: 'full', retryable: true }, 1, P, () => 0)[0])
      .toMatchObject({ t: 'retry', code: 'STORE_FULL' });
    expect(s.planReceipt(sent, { key: 'k', ok: true, size: 5, sha256: SHA, etag: 'x' }, 1, P, () => 0)[0]).toMatchObject({ t: 'completed', replicaEtag: 'x' });
  });

  it('does not complete an object that changed at A while its old version was copied', () => {
    const s = fold([{ t: 'pending', key: 'k', size: 5, etag: 'e', at: 0 }, { t: 'pending', key: 'k', size: 6, etag: 'e2', at: 1 }]);
    run(s, s.planReceipt(sent, { key: 'k', ok: true, size: 5, sha256: SHA, etag: 'x' }, 2, P, () => 0));
    expect(s.objects.get('k')).toMatchObject({ state: 'PENDING', etag: 'e2', replica: { etag: 'e' } });
    expect(s.status(3)).toMatchObject({ objects: { pending: 1, completed: 0 }, pendingBytes: 6, oldestPendingAgeSeconds: 0.003 });
  });
});

describe('journal records', () => {
  const recs: ReplRecord[] = [
    { t: 'open', subcontractId: 'sc', at: 1 },
    { t: 'pending', key: 'a/ü', size: 3, etag: 'e', at: 2 },
    { t: 'completed', key: 'a/ü', etag: 'e', size: 3, sha256: SHA, replicaEtag: 'x', at: 3 },
  ];
  it('round-trips and cuts a torn last line', () => {
    const text = recs.map(encodeReplRecord).join('');
    expect(decodeReplJournal(text).records).toEqual(recs);
    const torn = text + encodeReplRecord({ t: 'pass', pass: 1, at: 4 }).slice(0, 20);
    const d = decodeReplJournal(torn);
    expect(d).toMatchObject({ records: recs, tornTail: true, goodBytes: Buffer.byteLength(text) });
  });
  it('refuses damage before the last line', () => {
    const lines = recs.map(encodeReplRecord);
    lines[1] = lines[1]!.replace('"size":3', '"size":4');
    expect(() => decodeReplJournal(lines.join(''))).toThrow(expect.objectContaining({ code: 'REPL_JOURNAL' }));
  });
});

describe('transfer naming', () => {
  it("one regex grants every transfer of a subcontract and nothing of another's", () => {
    const re = new RegExp(subcontractGrantPattern('cloud-a', 'cloud-b', 'sc-1'));
    const t = newTransferId('sc-1');
    expect(t.startsWith(transferPrefix('sc-1'))).toBe(true);
    for (const suffix of ['', '.data', '.ctl']) {
      expect(re.test(`xfer.cloud-a.cloud-b.${t}${suffix}`)).toBe(true);
      expect(re.test(`xfer.cloud-a.cloud-b.${channelTransferId('sc-1')}${suffix}`)).toBe(true);
      expect(re.test(`xfer.cloud-a.cloud-b.${newTransferId('sc-2')}${suffix}`)).toBe(false);
      expect(re.test(`xfer.cloud-c.cloud-b.${t}${suffix}`)).toBe(false);
    }
    expect(re.test('')).toBe(false);
    expect(re.test(`xfer.cloud-a.cloud-b.${t}.other`)).toBe(false);
  });
});

describe('messages', () => {
  it('round-trip, and a batch whose objects do not follow each other is refused', () => {
    const m = { type: 'replicate' as const, v: 1 as const, requestId: randomUUID(), subcontractId: 's', transferId: newTransferId('s'), objects: [
      { key: 'a', etag: 'e', size: 3, sha256: SHA, offset: 0 }, { key: 'b', etag: 'e', size: 2, sha256: SHA, offset: 3 }] };
    expect(decodeReplMessage(encodeReplMessage(m))).toEqual(m);
    const bad = { ...m, objects: [m.objects[0]!, { ...m.objects[1]!, offset: 4 }] };
    expect(() => decodeReplMessage(encodeReplMessage(bad))).toThrow(expect.objectContaining({ code: 'REPL_BAD_MESSAGE' }));
    expect(() => decodeReplMessage(Buffer.from('{"type":"replicate"}'))).toThrow(expect.objectContaining({ code: 'REPL_BAD_MESSAGE' }));
    // a request id is a uuid and nothing else: B names no file after it, but it is refused anyway
    for (const requestId of ['../../victim', 'r', `${randomUUID()}/x`, randomUUID().toUpperCase()]) {
      expect(() => decodeReplMessage(encodeReplMessage({ ...m, requestId })), requestId).toThrow(expect.objectContaining({ code: 'REPL_BAD_MESSAGE' }));
    }
  });
});

describe('token bucket', () => {
  it('lets the burst go at once, then paces to the rate', () => {
    const b = new TokenBucket(1000, 500, 0);
    expect(b.take(500, 0)).toBe(0);
    expect(b.take(1000, 0)).toBe(1000);
    expect(b.take(500, 1000)).toBe(500);
    expect(new TokenBucket(0, 0, 0).take(1e9, 0)).toBe(0);
  });
});

describe('error codes', () => {
  it('are each documented in the README', () => {
    const readme = readFileSync(new URL('../../../agent/replication/README.md', import.meta.url), 'utf8');
    for (const [code, info] of Object.entries(REPL_ERRORS)) expect(readme).toContain(`| \`${code}\` | ${info.doc} | ${info.retryable ? 'yes' : 'no'} |`);
  });
});
