/**
 * A file read while it is filled front to back: readers get each byte once the writer said it is
 * there, never before; a writer's failure reaches every reader still waiting; a file renamed
 * onto its target (B's staging file at the transfer's commit) is still found.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, renameSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GrowingFile } from '../../../agent/replication/growing-file.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'growing-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A file of `size` bytes (holes) and a writer of its slices. */
function sparse(name: string, size: number): { path: string; write: (bytes: Buffer, at: number) => void } {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  writeSync(fd, Buffer.alloc(1), 0, 1, size - 1);
  closeSync(fd);
  return {
    path,
    write: (bytes, at) => {
      const h = openSync(path, 'r+');
      writeSync(h, bytes, 0, bytes.length, at);
      closeSync(h);
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('GrowingFile', () => {
  it('streams a slice as the writer advances, piece by piece, and never past what it said is there', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const f = sparse('x', data.length);
    const g = new GrowingFile([f.path], data.length);
    const got: Buffer[] = [];
    let received = 0;
    const reading = (async () => {
      for await (const piece of g.stream(100, data.length)) {
        got.push(piece as Buffer);
        received += (piece as Buffer).length;
      }
    })();
    await tick();
    expect(received).toBe(0);
    f.write(data.subarray(0, 1024 * 1024), 0);
    g.advance(1024 * 1024);
    await tick();
    expect(received).toBe(1024 * 1024 - 100);
    f.write(data.subarray(1024 * 1024), 1024 * 1024);
    g.advance(data.length);
    await reading;
    expect(Buffer.concat(got).equals(data.subarray(100))).toBe(true);
  });

  it('reads a slice once all of it is there', async () => {
    const data = randomBytes(4096);
    const f = sparse('x', data.length);
    const g = new GrowingFile([f.path], data.length);
    let done = false;
    const reading = g.read(1000, 2000).then((b) => { done = true; return b; });
    f.write(data.subarray(0, 2999), 0);
    g.advance(2999);
    await tick();
    expect(done).toBe(false);
    f.write(data.subarray(2999), 2999);
    g.advance(3000);
    expect((await reading).equals(data.subarray(1000, 3000))).toBe(true);
  });

  it("rejects every waiting reader with the writer's failure, and later readers too", async () => {
    const f = sparse('x', 2048);
    const g = new GrowingFile([f.path], 2048);
    g.advance(1024);
    const stream = (async () => { for await (const piece of g.stream(0, 2048)) void piece; })();
    const read = g.read(1000, 100);
    const err = Object.assign(new Error('transfer aborted'), { code: 'XFER_ABORTED' });
    g.fail(err);
    await Promise.all([expect(stream).rejects.toBe(err), expect(read).rejects.toBe(err)]);
    await expect(g.read(0, 10)).resolves.toHaveLength(10); // what is there stays readable
    await expect(g.waitFor(2048)).rejects.toBe(err);
  });

  it('finds the file at its next path once it was renamed there', async () => {
    const data = randomBytes(5000);
    const f = sparse('staging', data.length);
    f.write(data, 0);
    const target = join(dir, 'target');
    const g = new GrowingFile([f.path, target], data.length);
    g.advance(data.length);
    renameSync(f.path, target);
    expect((await g.read(0, data.length)).equals(data)).toBe(true);
  });
});
