import { mkdtempSync, readFileSync, writeFileSync, appendFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { AuditLog, formatRecord, nextRecord, verifyAuditFile, verifyAuditText, type AuditHead } from '../../../protocols/trust/index.js';

function makeLog(n: number): { text: string; lines: string[]; head: AuditHead } {
  let head: AuditHead | undefined;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = nextRecord(head, { type: 'trust.verify', peer: `cloud-${i}`, verdict: i % 2 ? 'good' : 'rejected' }, new Date(Date.UTC(2026, 5, 1, 12, 0, i)));
    head = { count: r.seq, hash: r.hash };
    lines.push(formatRecord(r).slice(0, -1));
  }
  return { text: lines.map((l) => `${l}\n`).join(''), lines, head: head! };
}

function brokenAt(fn: () => unknown): { line: number; reason: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof IntercloudError && err.code === 'TRUST_AUDIT_BROKEN') return err.details as { line: number; reason: string };
    throw err;
  }
  throw new Error('expected TRUST_AUDIT_BROKEN');
}

describe('audit hash chain', () => {
  const log = makeLog(6);

  it('an intact log verifies and ends at its head', () => {
    expect(verifyAuditText(log.text)).toEqual(log.head);
    expect(verifyAuditText(log.text, log.head)).toEqual(log.head);
    expect(verifyAuditText('')).toEqual({ count: 0, hash: '0'.repeat(64) });
  });

  it('one byte changed anywhere is detected, at the line that holds it', () => {
    fc.assert(fc.property(fc.nat({ max: log.text.length - 1 }), fc.integer({ min: 1, max: 127 }), (pos, mask) => {
      const bytes = Buffer.from(log.text);
      bytes[pos]! ^= mask;
      const changed = bytes.toString('latin1');
      const line = log.text.slice(0, pos).split('\n').length;
      const at = brokenAt(() => verifyAuditText(changed));
      // A changed newline merges or splits lines: the break is found at that line or the next.
      expect(at.line === line || at.line === line + 1).toBe(true);
    }), { numRuns: 300 });
  });

  it('an edited value with a recomputed-looking layout is a bad hash at its line', () => {
    const edited = log.lines.map((l, i) => (i === 2 ? l.replace('"rejected"', '"good"') : l));
    const text = edited.map((l) => `${l}\n`).join('');
    expect(brokenAt(() => verifyAuditText(text))).toEqual({ line: 3, reason: 'bad-hash' });
  });

  it('a removed line is detected at the line after it', () => {
    const text = log.lines.filter((_, i) => i !== 3).map((l) => `${l}\n`).join('');
    expect(brokenAt(() => verifyAuditText(text))).toEqual({ line: 4, reason: 'bad-seq' });
  });

  it('two swapped lines are detected at the first of them', () => {
    const swapped = [...log.lines];
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    expect(brokenAt(() => verifyAuditText(swapped.map((l) => `${l}\n`).join('')))).toEqual({ line: 2, reason: 'bad-seq' });
  });

  it('a cut last line is detected; lines cut from the end are detected against the remembered head', () => {
    expect(brokenAt(() => verifyAuditText(log.text.slice(0, -20)))).toEqual({ line: 6, reason: 'truncated' });
    const shorter = log.lines.slice(0, 4).map((l) => `${l}\n`).join('');
    expect(verifyAuditText(shorter).count).toBe(4);
    expect(brokenAt(() => verifyAuditText(shorter, log.head))).toEqual({ line: 5, reason: 'head-mismatch' });
  });
});

describe('AuditLog file', () => {
  it('appends fsynced records, resumes the chain when reopened and refuses a broken file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-'));
    const path = join(dir, 'audit.jsonl');
    let t = Date.UTC(2026, 5, 1);
    const clock = (): Date => new Date((t += 1000));
    const first = await AuditLog.open(path, { clock });
    await Promise.all([first.append({ type: 'trust.verify', peer: 'cloud-a' }), first.append({ type: 'trust.verify', peer: 'cloud-b' })]);
    await first.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const second = await AuditLog.open(path, { clock });
    const third = await second.append({ type: 'migration.step', step: 'transfer' });
    expect(third.seq).toBe(3);
    const head = second.head;
    await second.close();
    expect(await verifyAuditFile(path, head)).toEqual(head);

    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace('cloud-b', 'cloud-c'));
    await expect(AuditLog.open(path)).rejects.toMatchObject({ code: 'TRUST_AUDIT_BROKEN', details: { line: 2, reason: 'bad-hash' } });
    writeFileSync(path, text);
    appendFileSync(path, '{"seq":4');
    await expect(verifyAuditFile(path)).rejects.toMatchObject({ code: 'TRUST_AUDIT_BROKEN', details: { line: 4, reason: 'truncated' } });
  });

  it('a missing file is TRUST_AUDIT_IO for verify', async () => {
    await expect(verifyAuditFile(join(tmpdir(), 'no-such-audit-log.jsonl'))).rejects.toMatchObject({ code: 'TRUST_AUDIT_IO' });
  });
});
