/**
 * A receiving agent killed around its commit, and started again: `receiveTransfer` over a
 * stand-in broker session (the session's messages are scripted, what it publishes recorded),
 * the kill played by a journal append or a rename that never returns. A real broker cannot
 * place a kill between two fsyncs; the live-move fault tests hit these windows by chance.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConsumeMessage } from 'amqplib';
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('../../../protocols/amqp/connection.js', async (importOriginal) => ({
  ...(await importOriginal<typeof connection>()),
  connectBroker: vi.fn(),
  assertTopology: vi.fn(async () => undefined),
  deleteTopology: vi.fn(async () => undefined),
}));

import * as connection from '../../../protocols/amqp/connection.js';
import { ioError } from '../../../protocols/amqp/staging-file.js';
import {
  CONTROL_VERSION, StagingFile, TransferJournal, WholeDigest, decodeControl, encodeControl, encodeFrame, receiveTransfer,
  type ControlMessage, type JournalRecord, type Manifest,
} from '../../../protocols/amqp/index.js';

const TID = '123e4567-e89b-12d3-a456-426614174000';
const CHUNK = 64 * 1024;
const dirs: string[] = [];

afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every session delivers `script()` on the data queue and records what the receiver publishes. */
function standInBroker(script: () => Buffer[], published: ControlMessage[]): void {
  vi.mocked(connection.connectBroker).mockImplementation(async () => {
    const ch = {
      on: () => ch,
      prefetch: async () => undefined,
      consume: async (_q: string, deliver: (m: ConsumeMessage | null) => void) => {
        let tag = 0;
        for (const content of script()) deliver({ content, fields: { deliveryTag: ++tag }, properties: {} } as unknown as ConsumeMessage);
        return { consumerTag: 'c' };
      },
      publish: (_x: string, _k: string, body: Buffer, _o: unknown, confirmed: (err: unknown) => void) => {
        published.push(decodeControl(body));
        setImmediate(() => confirmed(null));
        return true;
      },
      ack: () => undefined,
      close: async () => undefined,
    };
    const conn = { on: () => conn, createConfirmChannel: async () => ch, close: async () => undefined };
    return conn as never;
  });
}

/** A transfer of four chunks (random, random, zero, half a chunk) and the messages a sender sends. */
function transfer() {
  const dir = mkdtempSync(join(tmpdir(), 'xfer-restart-'));
  dirs.push(dir);
  const chunks = [randomBytes(CHUNK), randomBytes(CHUNK), Buffer.alloc(CHUNK), randomBytes(CHUNK / 2)];
  const content = Buffer.concat(chunks);
  const manifest: Manifest = {
    transferId: TID, from: 'cloud-a', to: 'cloud-b', name: 'state', size: content.length, chunkSize: CHUNK, chunkCount: chunks.length,
    expiresAt: Date.now() + 600_000,
  };
  const sha = chunks.map((c) => createHash('sha256').update(c).digest());
  const whole = new WholeDigest(content.length, CHUNK);
  sha.forEach((h, i) => whole.add(i, h));
  const digest = whole.hex();
  const frames = chunks.map((c, i) => (i === 2
    ? encodeFrame({ kind: 'zero', transferId: TID, index: i, offset: i * CHUNK, length: c.length, sha256: sha[i]! })
    : encodeFrame({ kind: 'data', transferId: TID, index: i, offset: i * CHUNK, length: c.length, sha256: sha[i]! }, c)));
  const target = join(dir, 'state.img');
  return {
    content, digest, target,
    all: [encodeControl({ type: 'manifest', v: CONTROL_VERSION, transferId: TID, manifest }), ...frames],
    end: encodeControl({ type: 'end', v: CONTROL_VERSION, transferId: TID, manifest, digest }),
    receive: () => receiveTransfer({
      broker: { url: 'amqps://stand-in' } as never, transferId: TID, from: 'cloud-a', to: 'cloud-b', targetPath: target,
      journalDir: join(dir, 'transfers'), syncIntervalMs: 5,
    }),
  };
}

/** The first receiver's death: `die()` is a call that never returns; `dead` resolves when it was made. */
function death(): { dead: Promise<void>; die: () => Promise<never> } {
  let died!: () => void;
  const dead = new Promise<void>((r) => { died = r; });
  return { dead, die: () => { died(); return new Promise<never>(() => undefined); } };
}

/** Kills the first receiver in the append of a journal record `t` (the records before it are written). */
function dieInAppendOf(t: JournalRecord['t']): Promise<void> {
  const { dead, die } = death();
  const append = TransferJournal.prototype.append;
  vi.spyOn(TransferJournal.prototype, 'append').mockImplementation(function (this: TransferJournal, ...records: JournalRecord[]) {
    return records.some((r) => r.t === t) ? die() : append.apply(this, records);
  });
  return dead;
}

const journaled = async (t: ReturnType<typeof transfer>): Promise<string[]> => (await fs.readFile(join(t.target, '..', 'transfers', `${TID}.receive.journal`), 'utf8'))
  .split('\n').filter(Boolean).map((l) => (JSON.parse(l.slice(l.indexOf(' ') + 1)) as JournalRecord).t);

describe('a receiver killed around its commit and started again', () => {
  it('killed after `committed` was journaled, before the rename: the restart renames and answers committed', async () => {
    const t = transfer();
    const { dead, die } = death();
    vi.spyOn(StagingFile.prototype, 'commit').mockImplementation(die);
    standInBroker(() => [...t.all, t.end], []);
    void t.receive();
    await dead;
    await expect(fs.access(t.target)).rejects.toThrow();
    expect(await journaled(t)).toContain('committed');
    vi.restoreAllMocks();

    const published: ControlMessage[] = [];
    standInBroker(() => [t.end], published); // the sender never heard: it polls with `end`
    await expect(t.receive()).resolves.toMatchObject({ digest: t.digest, size: t.content.length });
    expect(readFileSync(t.target).equals(t.content)).toBe(true);
    await expect(fs.access(StagingFile.pathFor(t.target, TID))).rejects.toThrow();
    expect(published.map((m) => m.type)).toContain('committed');
    expect(published.map((m) => m.type)).not.toContain('abort');
  });

  it('killed in the append of `committed`: the staging file is still there, verified again and committed', async () => {
    const t = transfer();
    const dead = dieInAppendOf('committed');
    standInBroker(() => [...t.all, t.end], []);
    void t.receive();
    await dead;
    // The rename comes after the record: before this fix it had happened, and the restart
    // verified an empty new staging file (XFER_DIGEST_MISMATCH, found by live-transfer-faults).
    await expect(fs.access(t.target)).rejects.toThrow();
    vi.restoreAllMocks();

    const published: ControlMessage[] = [];
    standInBroker(() => [t.end], published);
    await expect(t.receive()).resolves.toMatchObject({ digest: t.digest, size: t.content.length });
    expect(readFileSync(t.target).equals(t.content)).toBe(true);
    expect(published.map((m) => m.type)).toContain('committed');
  });

  it('`committed` not journaled (disk full): fails, the target as it was, the staging file kept for a restart that commits', async () => {
    const t = transfer();
    await fs.writeFile(t.target, 'an older version of the file');
    const append = TransferJournal.prototype.append;
    vi.spyOn(TransferJournal.prototype, 'append').mockImplementation(function (this: TransferJournal, ...records: JournalRecord[]) {
      if (records.some((r) => r.t === 'committed')) return Promise.reject(ioError(Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'cannot append'));
      return append.apply(this, records);
    });
    const published: ControlMessage[] = [];
    standInBroker(() => [...t.all, t.end], published);
    await expect(t.receive()).rejects.toMatchObject({ code: 'XFER_DISK_FULL' });
    expect(readFileSync(t.target, 'utf8')).toBe('an older version of the file');
    expect(published.map((m) => m.type)).not.toContain('committed');
    await fs.access(StagingFile.pathFor(t.target, TID));
    vi.restoreAllMocks();

    standInBroker(() => [t.end], []);
    await expect(t.receive()).resolves.toMatchObject({ digest: t.digest });
    expect(readFileSync(t.target).equals(t.content)).toBe(true);
  });

  it('a staging file removed behind its back while chunks were held: aborts with XFER_IO, never a digest mismatch', async () => {
    const t = transfer();
    const dead = dieInAppendOf('end');
    standInBroker(() => [...t.all, t.end], []);
    void t.receive();
    await dead;
    expect(await journaled(t)).toContain('have');
    vi.restoreAllMocks();
    await fs.rm(StagingFile.pathFor(t.target, TID));

    const published: ControlMessage[] = [];
    standInBroker(() => [t.end], published);
    await expect(t.receive()).rejects.toMatchObject({ code: 'XFER_IO', message: expect.stringMatching(/staging file .* is gone with the 4 chunks it held/) });
    expect(published.filter((m) => m.type === 'abort')).toEqual([expect.objectContaining({ reason: 'failed', code: 'XFER_IO' })]);
    await expect(fs.access(StagingFile.pathFor(t.target, TID))).rejects.toThrow();
    await expect(fs.access(t.target)).rejects.toThrow();
  });

  it('a staging file removed while only holes were held: nothing was lost, the transfer goes on', async () => {
    const t = transfer();
    // Only the manifest and the zero frame (chunk 2) arrive before the kill.
    const dead = dieInAppendOf('end');
    standInBroker(() => [t.all[0]!, t.all[3]!, t.end], []);
    void t.receive();
    await dead;
    vi.restoreAllMocks();
    await fs.rm(StagingFile.pathFor(t.target, TID));

    standInBroker(() => [...t.all, t.end], []);
    await expect(t.receive()).resolves.toMatchObject({ digest: t.digest });
    expect(readFileSync(t.target).equals(t.content)).toBe(true);
  });
});
