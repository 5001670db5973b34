import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TransferJournal, encodeJournalRecord, sendTransfer, type Manifest } from '../../../protocols/amqp/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// Fails before any socket opens, so no broker is needed (the url points nowhere).
const broker = { url: 'amqps://127.0.0.1:1/none', ca: 'x', cert: 'x', key: 'x' };

describe('sender journal checks (before connecting)', () => {
  it('refuses to resume when the source changed since the earlier attempt (XFER_SOURCE_CHANGED)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xfer-send-'));
    dirs.push(dir);
    const src = join(dir, 'disk.raw');
    await fs.writeFile(src, Buffer.alloc(8192, 1));
    const manifest: Manifest = { transferId: TID, from: 'cloud-a', to: 'cloud-b', name: 'disk.raw', size: 4096, chunkSize: 4096, chunkCount: 1, expiresAt: 2e12 };
    const journalDir = join(dir, 'j');
    await fs.mkdir(journalDir);
    await fs.writeFile(TransferJournal.pathFor(journalDir, TID, 'send'), encodeJournalRecord({ t: 'manifest', manifest, source: { size: 4096, mtimeMs: 1 } }));
    let caught: unknown;
    try {
      await sendTransfer({ broker, transferId: TID, from: 'cloud-a', to: 'cloud-b', source: src, expiresAt: 2e12, journalDir });
    } catch (err) {
      caught = err;
    }
    expect(isIntercloudError(caught, 'XFER_SOURCE_CHANGED')).toBe(true);
  });

  it('refuses a transfer id that is not a uuid (XFER_CONFIG)', async () => {
    let caught: unknown;
    try {
      await sendTransfer({ broker, transferId: 'not-a-uuid', from: 'cloud-a', to: 'cloud-b', source: '/nonexistent', expiresAt: 2e12, journalDir: '/nonexistent' });
    } catch (err) {
      caught = err;
    }
    expect(isIntercloudError(caught, 'XFER_CONFIG')).toBe(true);
  });
});
