import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fs, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ContentIndex, StagingFile, TransferJournal, WholeDigest, encodeJournalRecord, streamSource } from '../../../protocols/amqp/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'xfer-unit-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('staging file', () => {
  it('writes at offsets idempotently, keeps zero blocks as holes, commits by rename', async () => {
    const dir = tmp();
    const target = join(dir, 'disk.raw');
    const size = 8 << 20;
    const s = await StagingFile.open(target, TID, size);
    const chunk = Buffer.alloc(1 << 20);
    randomBytes(4096).copy(chunk, 0); // one data block, 255 zero blocks
    await s.write(3 << 20, chunk);
    await s.write(3 << 20, chunk); // applied twice: same bytes
    await s.sync();
    const expected = Buffer.alloc(size);
    chunk.copy(expected, 3 << 20);
    const whole = new WholeDigest(size, 1 << 20);
    for (let i = 0; i < 8; i++) whole.add(i, createHash('sha256').update(expected.subarray(i << 20, (i + 1) << 20)).digest());
    expect(await s.digest(1 << 20)).toBe(whole.hex());
    await s.commit();
    expect(readFileSync(target).equals(expected)).toBe(true);
    expect(statSync(target).blocks * 512).toBeLessThanOrEqual(64 * 1024); // sparse: ~4 KiB allocated
    await expect(fs.access(StagingFile.pathFor(target, TID))).rejects.toThrow();
  });

  it('takes the digest of chunks this run wrote from their verified hashes, without reading them back', async () => {
    const target = join(tmp(), 'disk.raw');
    const chunks = [randomBytes(1 << 20), randomBytes(1 << 20)];
    const sha = chunks.map((c) => createHash('sha256').update(c).digest());
    const s = await StagingFile.open(target, TID, 2 << 20);
    expect(s.createdByThisRun).toBe(true);
    await s.write(0, chunks[0]!, sha[0]);
    await s.write(1 << 20, chunks[1]!, sha[1]);
    // Changed behind the receiver's back after the write: the digest is the verified hashes',
    // so this run does not read the file back.
    await fs.writeFile(StagingFile.pathFor(target, TID), Buffer.alloc(2 << 20, 7), { flag: 'r+' });
    const whole = new WholeDigest(2 << 20, 1 << 20);
    sha.forEach((h, i) => whole.add(i, h));
    expect(await s.digest(1 << 20)).toBe(whole.hex());
    await s.remove();
  });

  it('reads back chunks of a staging file an earlier run made, and chunks written twice with different bytes', async () => {
    const target = join(tmp(), 'disk.raw');
    const stale = randomBytes(1 << 20);
    const first = await StagingFile.open(target, TID, 2 << 20);
    await first.write(0, stale); // an earlier run wrote data here, then died
    await first.close();
    // The resumed run writes chunk 0 with different bytes whose zero blocks it skips: the stale
    // data stays in them, and only reading back sees it.
    const fresh = Buffer.alloc(1 << 20);
    randomBytes(4096).copy(fresh, 0);
    const s = await StagingFile.open(target, TID, 2 << 20);
    expect(s.createdByThisRun).toBe(false);
    await s.write(0, fresh, createHash('sha256').update(fresh).digest());
    const onDisk = Buffer.concat([fresh.subarray(0, 4096), stale.subarray(4096)]);
    const expected = new WholeDigest(2 << 20, 1 << 20);
    expected.add(0, createHash('sha256').update(onDisk).digest());
    expected.add(1, createHash('sha256').update(Buffer.alloc(1 << 20)).digest());
    expect(await s.digest(1 << 20)).toBe(expected.hex());

    // In a run that made the file, a chunk written twice with different bytes is read back too.
    const target2 = join(tmp(), 'disk2.raw');
    const t = await StagingFile.open(target2, TID, 1 << 20);
    await t.write(0, stale, createHash('sha256').update(stale).digest());
    await t.write(0, fresh, createHash('sha256').update(fresh).digest());
    const twice = new WholeDigest(1 << 20, 1 << 20);
    twice.add(0, createHash('sha256').update(onDisk).digest());
    expect(await t.digest(1 << 20)).toBe(twice.hex());
    await s.remove();
    await t.remove();
  });

  it('removes the staging file on abort', async () => {
    const target = join(tmp(), 't');
    const s = await StagingFile.open(target, TID, 100);
    await s.remove();
    await expect(fs.access(StagingFile.pathFor(target, TID))).rejects.toThrow();
  });
});

describe('transfer journal', () => {
  it('reopens with its records and cuts off a torn last line before appending', async () => {
    const path = join(tmp(), 'j', `${TID}.receive.journal`);
    const a = await TransferJournal.open(path);
    await a.journal.append({ t: 'end', digest: 'a'.repeat(64) });
    await a.journal.close();
    await fs.appendFile(path, encodeJournalRecord({ t: 'committed', digest: 'a'.repeat(64) }).slice(0, 15));
    const b = await TransferJournal.open(path);
    expect(b.records).toEqual([{ t: 'end', digest: 'a'.repeat(64) }]);
    await b.journal.append({ t: 'committed', digest: 'a'.repeat(64) });
    await b.journal.close();
    expect((await TransferJournal.open(path)).records.map((r) => r.t)).toEqual(['end', 'committed']);
  });
});

describe('content index', () => {
  it('finds non-zero chunks of an indexed file by hash, and checks them', async () => {
    const dir = tmp();
    const base = join(dir, 'base.raw');
    const data = Buffer.concat([randomBytes(65536), Buffer.alloc(65536), randomBytes(65536)]);
    await fs.writeFile(base, data);
    const idx = new ContentIndex(65536);
    await idx.addFile(base);
    expect(idx.size).toBe(2);
    const h = createHash('sha256').update(data.subarray(131072)).digest('hex');
    expect((await idx.read(h, 65536))?.equals(data.subarray(131072))).toBe(true);
    expect(await idx.read('0'.repeat(64), 65536)).toBeUndefined();
    const again = new ContentIndex(65536); // from the saved index file
    await again.addFile(base);
    expect(again.hashes().sort()).toEqual(idx.hashes().sort());
  });
});

describe('stream source', () => {
  it('reads sequentially from one stream and reopens at an offset to re-send', async () => {
    const data = randomBytes(10000);
    const opened: number[] = [];
    const src = streamSource({
      size: data.length,
      open: (offset) => {
        opened.push(offset);
        return Readable.from([data.subarray(offset, offset + 3000), data.subarray(offset + 3000)]);
      },
    });
    const buf = Buffer.alloc(10000);
    await src.read(0, 4000, buf, 0);
    await src.read(4000, 6000, buf, 4000);
    expect(buf.equals(data)).toBe(true);
    const again = Buffer.alloc(100);
    await src.read(500, 100, again, 0);
    expect(again.equals(data.subarray(500, 600))).toBe(true);
    expect(opened).toEqual([0, 500]);
    await src.close();
  });
});
