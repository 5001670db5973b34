/**
 * Reliable transfer against the real RabbitMQ (TLS, EXTERNAL login by certificate) that
 * `scripts/services up rabbitmq` starts: whole transfers, deduplication, and the in-flight
 * faults (corruption, duplicates, reordering), expiry, abort, privacy of a transfer's queues.
 */
import { existsSync, promises as fs } from 'node:fs';
import { brotliCompressSync, constants } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ContentIndex,
  QUEUE_IDLE_EXPIRY_MS,
  QUEUE_LIMITS,
  ROUTING,
  StagingFile,
  connectBroker,
  decodeFrame,
  encodeFrame,
  fileSource,
  receiveTransfer,
  sendTransfer,
  transferTopology,
  type FrameTap,
  type ProgressEvent,
  type ReceiveResult,
  type SendResult,
  type TransferSource,
} from '../../../protocols/amqp/index.js';
import { publishConfirmed } from '../../../protocols/amqp/session-util.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { allocated, brokerFor, cleanup, fileDigest, pair, queueExists, scratch, writeImage } from './helpers.js';

const MiB = 1024 * 1024;
afterAll(cleanup);

/** Text-like bytes (numbered log lines): compress several times over with Brotli quality 1. */
function textLike(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  for (let i = 0; o < n; i++) o += out.write(`${(i * 7919) % 100003} kernel: eth0 link up, 1000 Mbps, flow control rx/tx (${i})\n`, o);
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isIntercloudError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('transfer over the real broker', () => {
  it('moves a sparse image byte-identically, holes stay holes, zero chunks are not sent, progress is monotonic', async () => {
    const dir = scratch();
    const src = join(dir, 'src.raw');
    await writeImage(src, 48 * MiB, [[0, 3 * MiB], [20 * MiB + 4096, 100_000], [47 * MiB, MiB]]);
    const p = pair(dir);
    const events: ProgressEvent[] = [];
    const [sent, got] = await Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB, onProgress: (e) => events.push(e), progressIntervalMs: 0 }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst.raw') }),
    ]);
    expect(await fileDigest(join(dir, 'dst.raw'))).toBe(await fileDigest(src));
    expect(got.digest).toBe(sent.digest);
    expect(sent.chunks).toMatchObject({ data: 5, zero: 43 });
    expect(sent.bytesSent).toBe(5 * MiB);
    expect(await allocated(join(dir, 'dst.raw'))).toBeLessThan(6 * MiB);
    for (let i = 1; i < events.length; i++) expect(events[i]!.bytesDone).toBeGreaterThanOrEqual(events[i - 1]!.bytesDone);
    expect(events.at(-1)!.bytesDone).toBe(48 * MiB);
    // committed: the transfer's queues are gone
    const topo = transferTopology('cloud-a', 'cloud-b', p.transferId);
    expect(await queueExists(topo.dataQueue)).toBe(false);
    expect(await queueExists(topo.controlQueue)).toBe(false);
  });

  it('skips holes named by an allocation map (from the hypervisor adapter) without reading them', async () => {
    const dir = scratch();
    const src = join(dir, 'src.raw');
    await writeImage(src, 16 * MiB, [[2 * MiB, MiB], [9 * MiB + 512, 4096]]);
    let reads = 0;
    const file = await fileSource(src, [{ offset: 2 * MiB, length: MiB }, { offset: 9 * MiB, length: 8192 }]);
    const counting: TransferSource = { ...file, read: (...args) => ((reads += 1), file.read(...args)), close: () => file.close() };
    const p = pair(dir);
    const [sent] = await Promise.all([
      sendTransfer({ ...p.send, source: counting, chunkSize: MiB }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst.raw') }),
    ]);
    expect(reads).toBe(2);
    expect(sent.chunks).toMatchObject({ data: 2, zero: 14 });
    expect(await fileDigest(join(dir, 'dst.raw'))).toBe(await fileDigest(src));
  });

  it('does not send chunks the target already holds (content index of a base image)', async () => {
    const dir = scratch();
    const base = join(dir, 'base.raw');
    await writeImage(base, 32 * MiB, [[0, 24 * MiB]]);
    const src = join(dir, 'vm2.raw');
    await fs.copyFile(base, src);
    await writeImage(src, 32 * MiB, [[4 * MiB, MiB], [30 * MiB, MiB]].map(([o, l]) => [o!, l!] as [number, number]));
    const index = new ContentIndex(MiB);
    await index.addFile(base);
    const p = pair(dir);
    const [sent, got] = await Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst.raw'), contentIndex: index }),
    ]);
    expect(await fileDigest(join(dir, 'dst.raw'))).toBe(await fileDigest(src));
    expect(sent.chunks).toMatchObject({ data: 2, ref: 23, zero: 7 });
    expect(got.frames.ref).toBe(23);
    expect(sent.bytesSent).toBe(2 * MiB);
  });

  it('detects a chunk corrupted in flight and has it re-sent', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 8 * MiB, [[0, 8 * MiB]]);
    const p = pair(dir);
    const tap: FrameTap = (frame, info) => {
      if (info.index !== 3 || info.attempt !== 1) return [frame];
      const bad = Buffer.from(frame);
      bad[bad.length - 10] = bad[bad.length - 10]! ^ 0xff; // payload byte: the sha-256 no longer matches
      return [bad];
    };
    const [sent, got] = await Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB, tap }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst') }),
    ]);
    expect(got.frames.corrupt).toBe(1);
    expect(sent.chunks.resent).toBeGreaterThanOrEqual(1);
    expect(await fileDigest(join(dir, 'dst'))).toBe(await fileDigest(src));
  });

  it('compresses what compresses (issue 16): fewer bytes on the wire, random chunks raw, the target byte-identical', async () => {
    const dir = scratch();
    const src = join(dir, 'src.raw');
    // 16 MiB: 12 MiB of text-like lines, 2 MiB random, 2 MiB hole.
    await writeImage(src, 16 * MiB, [[12 * MiB, 2 * MiB]]);
    const h = await fs.open(src, 'r+');
    await h.write(textLike(12 * MiB), 0, 12 * MiB, 0);
    await h.close();
    const p = pair(dir);
    const [sent, got] = await Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst.raw') }),
    ]);
    expect(await fileDigest(join(dir, 'dst.raw'))).toBe(await fileDigest(src));
    expect(got.digest).toBe(sent.digest);
    expect(sent.chunks).toMatchObject({ data: 14, zero: 2 });
    expect(sent.compression).toMatchObject({ compressed: 12, raw: 2, compressedChunkBytes: 12 * MiB });
    expect(got.frames).toMatchObject({ data: 14, compressed: 12, corrupt: 0 });
    expect(sent.bytesSent).toBe(14 * MiB);
    expect(sent.wireBytes).toBeLessThan(16 * MiB);
    expect(sent.wireBytes).toBeLessThan(2 * MiB + 12 * MiB * 0.5);
  });

  it('asks again for a compressed chunk that is a decompression bomb (issue 16), and ends byte-identical', async () => {
    const dir = scratch();
    const src = join(dir, 'src.raw');
    await fs.writeFile(src, textLike(4 * MiB));
    const p = pair(dir);
    // 64 MiB of zeros compress to a few bytes: far shorter than the 1 MiB chunk the header claims.
    const bomb = brotliCompressSync(Buffer.alloc(64 * MiB), { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
    const tap: FrameTap = (frame, info) => {
      const f = decodeFrame(frame);
      if (info.index !== 2 || info.attempt !== 1 || f.codec === 'raw') return [frame];
      return [encodeFrame({ ...f, codec: 'brotli' }, bomb)];
    };
    const [sent, got] = await Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB, tap }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst.raw') }),
    ]);
    expect(got.frames.corrupt).toBe(1);
    expect(sent.chunks.resent).toBeGreaterThanOrEqual(1);
    expect(got.frames.compressed).toBe(4);
    expect(await fileDigest(join(dir, 'dst.raw'))).toBe(await fileDigest(src));
  });

  it('applies a chunk delivered twice once', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 8 * MiB, [[0, 8 * MiB]]);
    const p = pair(dir);
    const tap: FrameTap = (frame, info) => (info.index === 2 || info.index === 5 ? [frame, frame] : [frame]);
    const [, got] = await Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB, tap }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst') }),
    ]);
    expect(got.frames.duplicate).toBe(2);
    expect(got.frames.data).toBe(8);
    const journal = await fs.readFile(join(p.receive.journalDir, `${p.transferId}.receive.journal`), 'utf8');
    const held = journal.split('\n').filter((l) => l.includes('"t":"have"')).flatMap((l) => JSON.parse(l.slice(9)).chunks as number[][]);
    const indices = held.flatMap(([a, b]) => Array.from({ length: b! - a! }, (_, k) => a! + k));
    expect(indices.sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(await fileDigest(join(dir, 'dst'))).toBe(await fileDigest(src));
  });

  it('assembles chunks delivered out of order', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 8 * MiB, [[0, 8 * MiB]]);
    const p = pair(dir);
    let held: Buffer[] = [];
    // Hold chunks 0..5 back and release them reversed after chunk 6.
    const tap: FrameTap = (frame, info) => {
      if (info.attempt > 1) return [frame];
      if (info.index < 6) {
        held.push(frame);
        return [];
      }
      if (info.index === 6) {
        const out = [frame, ...held.reverse()];
        held = [];
        return out;
      }
      return [frame];
    };
    const [sent, got] = await Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB, tap }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst') }),
    ]);
    expect(got.frames.data).toBe(8);
    expect(sent.chunks.resent).toBe(0);
    expect(await fileDigest(join(dir, 'dst'))).toBe(await fileDigest(src));
  });

  it('expires: both sides fail with XFER_EXPIRED, staging and queues are removed', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 4 * MiB, [[0, 4 * MiB]]);
    const p = pair(dir);
    const expiresAt = Date.now() + 3000;
    const drop: FrameTap = (frame, info) => (info.index === 3 ? [] : [frame]); // never completes
    const target = join(dir, 'dst');
    const [s, r] = await Promise.all([
      codeOf(sendTransfer({ ...p.send, expiresAt, source: src, chunkSize: MiB, tap: drop, endRetryMs: 60_000 })),
      codeOf(receiveTransfer({ ...p.receive, targetPath: target, expiresAt })),
    ]);
    expect([s, r]).toEqual(['XFER_EXPIRED', 'XFER_EXPIRED']);
    expect(existsSync(StagingFile.pathFor(target, p.transferId))).toBe(false);
    expect(existsSync(target)).toBe(false);
    const topo = transferTopology('cloud-a', 'cloud-b', p.transferId);
    expect(await queueExists(topo.dataQueue)).toBe(false);
    expect(await queueExists(topo.controlQueue)).toBe(false);
  });

  it('aborts on the caller\'s signal and tells the other side', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 16 * MiB, [[0, 16 * MiB]]);
    const p = pair(dir);
    const ac = new AbortController();
    const target = join(dir, 'dst');
    const slow: FrameTap = (frame, info) => {
      if (info.index === 4) ac.abort();
      return [frame];
    };
    const [s, r] = await Promise.all([
      codeOf(sendTransfer({ ...p.send, source: src, chunkSize: MiB, windowBytes: 2 * MiB, tap: slow, signal: ac.signal })),
      codeOf(receiveTransfer({ ...p.receive, targetPath: target })),
    ]);
    expect([s, r]).toEqual(['XFER_ABORTED', 'XFER_ABORTED']);
    expect(existsSync(StagingFile.pathFor(target, p.transferId))).toBe(false);
  });

  it('refuses chunks larger than the receiver takes before any is sent: the sender is told why, nothing is staged', async () => {
    // Every unacked delivery sits whole in the receiver's memory: the sender does not choose how big.
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 40 * MiB, [[0, 40 * MiB]]);
    const p = pair(dir);
    const target = join(dir, 'dst');
    let published = 0;
    const counting: FrameTap = (frame) => ((published += 1), [frame]);
    const [s, r] = await Promise.all([
      codeOf(sendTransfer({ ...p.send, source: src, chunkSize: 32 * MiB, tap: counting })),
      codeOf(receiveTransfer({ ...p.receive, targetPath: target })),
    ]);
    expect([s, r]).toEqual(['XFER_TOO_LARGE', 'XFER_TOO_LARGE']);
    expect(published).toBe(0);
    expect(existsSync(StagingFile.pathFor(target, p.transferId))).toBe(false);
  });

  it('a target whose broker hands the sender an oversized control message: the sender refuses it unread and ends with XFER_TOO_LARGE', async () => {
    // The control queue is on the target's broker, whose max_message_size is the target's to set
    // (RabbitMQ passes up to 512 MiB): the sender's own cap, here 64 KiB, is what holds.
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 4 * MiB, [[0, 4 * MiB]]);
    const p = pair(dir);
    const topo = transferTopology('cloud-a', 'cloud-b', p.transferId);
    const sending = codeOf(sendTransfer({ ...p.send, broker: { ...p.send.broker, maxMessageBytes: 64 * 1024 }, source: src, chunkSize: MiB }));
    // The hostile target, once the sender's queues exist, publishes 1 MiB where the sender reads.
    const target = await connectBroker(brokerFor('cloud-b'));
    try {
      for (let i = 0; i < 100 && !(await queueExists(topo.controlQueue)); i++) await new Promise((r) => setTimeout(r, 100));
      const ch = await target.createConfirmChannel();
      await publishConfirmed(ch, topo.exchange, ROUTING.control, Buffer.alloc(MiB, 0x41), false);
      const t0 = Date.now();
      expect(await sending).toBe('XFER_TOO_LARGE');
      // Not a reconnect loop until the transfer expires (2 minutes).
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      await target.close();
    }
  });

  it('completes a transfer whose control queue an agent of an earlier version declared non-durable (an upgrade in flight)', async () => {
    const dir = scratch();
    const src = join(dir, 'src');
    await writeImage(src, 8 * MiB, [[0, 8 * MiB]]);
    const p = pair(dir);
    const topo = transferTopology('cloud-a', 'cloud-b', p.transferId);
    // The queues as the receiver declared them before the control queue became durable.
    const owner = await connectBroker(brokerFor('cloud-b'));
    const ch = await owner.createChannel();
    const args = (l: { maxLength: number; maxLengthBytes: number }) => ({
      'x-expires': QUEUE_IDLE_EXPIRY_MS, 'x-max-length': l.maxLength, 'x-max-length-bytes': l.maxLengthBytes, 'x-overflow': 'reject-publish',
    });
    await ch.assertExchange(topo.exchange, 'direct', { durable: false, autoDelete: false });
    await ch.assertQueue(topo.dataQueue, { durable: false, autoDelete: false, arguments: args(QUEUE_LIMITS.data) });
    await ch.assertQueue(topo.controlQueue, { durable: false, autoDelete: false, arguments: args(QUEUE_LIMITS.control) });
    await owner.close();
    const bound = new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 30_000).unref());
    const abort = new AbortController();
    const both = Promise.all([
      sendTransfer({ ...p.send, source: src, chunkSize: MiB, signal: abort.signal }),
      receiveTransfer({ ...p.receive, targetPath: join(dir, 'dst'), signal: abort.signal }),
    ]);
    both.catch(() => undefined);
    const outcome = await Promise.race([both, bound]);
    if (outcome === 'stuck') abort.abort();
    expect(outcome, 'the transfer completed within 30 s').not.toBe('stuck');
    const [sent, got] = outcome as [SendResult, ReceiveResult];
    expect(got.digest).toBe(sent.digest);
    expect(await fileDigest(join(dir, 'dst'))).toBe(await fileDigest(src));
  });

  it("keeps a transfer's queues private to its two clouds", async () => {
    const topo = transferTopology('cloud-a', 'cloud-b', '0b7c4b4e-5a0f-4c39-9d52-0a43f0f7d6a1');
    const conn = await connectBroker(brokerFor('cloud-c'));
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      const err = await ch.assertQueue(topo.dataQueue, { durable: false }).then(() => undefined, (e: unknown) => e);
      expect((err as { code?: number }).code).toBe(403);
    } finally {
      await conn.close().catch(() => undefined);
    }
  });

  it('refuses a connection whose broker certificate does not chain to the given root', async () => {
    const other = brokerFor('cloud-a');
    const code = await codeOf(connectBroker({ ...other, ca: other.cert }));
    expect(code).toBe('XFER_BROKER');
  });
});
