/** `intercloud audit verify` on a log written by AuditLog: exit 0 intact, 3 broken with the line. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../../protocols/trust/index.js';

const CLI = resolve(import.meta.dirname, '../../../scripts/intercloud');

function auditVerify(...args: string[]): { status: number | null; out: Record<string, unknown> } {
  const r = spawnSync(CLI, ['audit', 'verify', '--json', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: JSON.parse(r.stdout) as Record<string, unknown> };
}

describe('intercloud audit verify', () => {
  it('accepts the log AuditLog wrote and names the line of a removal, a swap and a cut tail', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-cli-')), 'audit.jsonl');
    const log = await AuditLog.open(path);
    for (const peer of ['cloud-a', 'cloud-b', 'cloud-c', 'cloud-d']) await log.append({ type: 'trust.verify', peer, verdict: 'good' });
    const head = log.head;
    await log.close();
    expect(auditVerify(path, '--count', String(head.count), '--head', head.hash)).toEqual({ status: 0, out: { verdict: 'intact', file: path, ...head } });

    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    writeFileSync(path, [lines[0], lines[2], lines[3]].map((l) => `${l}\n`).join(''));
    expect(auditVerify(path)).toMatchObject({ status: 3, out: { verdict: 'broken', code: 'TRUST_AUDIT_BROKEN', line: 2, reason: 'bad-seq' } });
    writeFileSync(path, [lines[0], lines[1], lines[3], lines[2]].map((l) => `${l}\n`).join(''));
    expect(auditVerify(path)).toMatchObject({ status: 3, out: { line: 3, reason: 'bad-seq' } });
    writeFileSync(path, lines.slice(0, 3).map((l) => `${l}\n`).join(''));
    expect(auditVerify(path, '--count', String(head.count), '--head', head.hash)).toMatchObject({ status: 3, out: { line: 4, reason: 'head-mismatch' } });
  });
});
