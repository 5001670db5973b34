/**
 * One side of a benchmarked transfer, run as its own process so that its peak RSS is its own:
 * `node side.js send|receive|index|bare-send|bare-receive '<json options>'` (compiled by the bench, so tsx's own compiler
 * does not count in the peak RSS). The receiver prints `{"ready":true}` first; every side ends
 * with one JSON line: the result, its elapsed ms, `process.resourceUsage().maxRSS` and its CPU time
 * (user + system, ms: on a shared machine a steadier measure of a side's own cost than elapsed time).
 *
 * `bare-send`/`bare-receive` measure what the broker itself carries on this machine (issue 16): a
 * plain amqplib publisher and consumer on the same broker, TLS and login, the same transfer
 * exchange and queue, messages of the chunk size, the same window of unconfirmed bytes and
 * prefetch, one ack per message, no hashing and no disk.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { ConfirmChannel } from 'amqplib';
import {
  ContentIndex, ROUTING, connectBroker, fileSource, receiveTransfer, sendTransfer, transferTopology, type BrokerOptions, type Extent,
} from '../../protocols/amqp/index.js';
import { assertTopology } from '../../protocols/amqp/connection.js';
import { BaseImageStore, imageSha256 } from '../../agent/base-images/index.js';

interface Args {
  broker: BrokerOptions;
  transferId: string;
  path: string;
  journalDir: string;
  chunkSize: number;
  windowBytes: number;
  persistent: boolean;
  /** Compress data frames that pay (issue 16; sendTransfer's default is true). */
  compress?: boolean;
  base?: string;
  /** JSON file with the source's allocation map (what a hypervisor adapter would hand over). */
  extentsFile?: string;
  expiresAt: number;
  /**
   * The overlay case (receive): the directories of base images the target holds, and the
   * whole-image SHA-256 of the overlay's base as the source names it. The target looks it up
   * in its own store and links the received qcow2 overlay onto its own file.
   */
  baseDirs?: string[];
  baseSha256?: string;
  /** Bytes the bare pair moves (`bare-send`, `bare-receive`). */
  totalBytes?: number;
}

/**
 * The bare publisher: `totalBytes` in messages of `chunkSize`, at most `windowBytes` unconfirmed.
 * A nacked message (the queue's `x-max-length-bytes` with `reject-publish`, reached when the
 * consumer falls behind) is published again after a short pause, as the transfer's sender does,
 * so the limit measured is what the broker carries with the same queue arguments.
 */
async function bareSend(a: Args): Promise<unknown> {
  const conn = await connectBroker(a.broker);
  const ch: ConfirmChannel = await conn.createConfirmChannel();
  const topo = transferTopology('cloud-a', 'cloud-b', a.transferId);
  await assertTopology(ch, topo, a.persistent);
  const body = randomBytes(a.chunkSize);
  const count = Math.ceil(a.totalBytes! / a.chunkSize);
  let inFlight = 0;
  let toSend = count;
  let nacked = 0;
  let retrying = 0;
  let wake: (() => void) | undefined;
  while (toSend > 0 || inFlight > 0 || retrying > 0) {
    if (toSend === 0 || inFlight + a.chunkSize > a.windowBytes) {
      await new Promise<void>((r) => (wake = r));
      continue;
    }
    toSend--;
    inFlight += a.chunkSize;
    ch.publish(topo.exchange, ROUTING.data, body, { persistent: a.persistent }, (err) => {
      inFlight -= a.chunkSize;
      if (err) {
        nacked++;
        retrying++;
        setTimeout(() => {
          retrying--;
          toSend++;
          wake?.();
        }, 20);
        return;
      }
      wake?.();
    });
  }
  await conn.close();
  return { messages: count, bytes: count * a.chunkSize, nacked };
}

/** The bare consumer: acks each message until `totalBytes` arrived. */
async function bareReceive(a: Args): Promise<unknown> {
  const conn = await connectBroker(a.broker);
  const ch = await conn.createChannel();
  const topo = transferTopology('cloud-a', 'cloud-b', a.transferId);
  await assertTopology(ch, topo, a.persistent);
  await ch.prefetch(Math.max(8, Math.ceil(a.windowBytes / a.chunkSize)));
  const count = Math.ceil(a.totalBytes! / a.chunkSize);
  let got = 0;
  let bytes = 0;
  process.stdout.write('{"ready":true}\n');
  await new Promise<void>((resolve) => {
    void ch.consume(topo.dataQueue, (m) => {
      if (!m) return;
      bytes += m.content.length;
      ch.ack(m);
      if (++got === count) resolve();
    }, { noAck: false });
  });
  await ch.deleteQueue(topo.dataQueue);
  await ch.deleteQueue(topo.controlQueue);
  await ch.deleteExchange(topo.exchange);
  await conn.close();
  return { messages: got, bytes };
}

const [side, json] = process.argv.slice(2);
const a = JSON.parse(json ?? '{}') as Args;
const started = performance.now();
const startedAt = Date.now();
let result: unknown;
if (side === 'bare-send') {
  result = await bareSend(a);
} else if (side === 'bare-receive') {
  result = await bareReceive(a);
} else if (side === 'base-hash') {
  // The source: the whole-image SHA-256 of the overlay's backing base (saved beside it, reused).
  result = await imageSha256(a.base!);
} else if (side === 'base-store') {
  // The target at start-up: hashes every base of its directories not hashed yet.
  result = { bases: (await (await BaseImageStore.open(a.baseDirs!)).list()).length };
} else if (side === 'index') {
  const idx = new ContentIndex(a.chunkSize);
  await idx.addFile(a.base!);
  result = { chunks: idx.size };
} else if (side === 'send') {
  result = await sendTransfer({
    broker: a.broker, transferId: a.transferId, from: 'cloud-a', to: 'cloud-b', chunkSize: a.chunkSize,
    source: a.extentsFile ? await fileSource(a.path, JSON.parse(readFileSync(a.extentsFile, 'utf8')) as Extent[]) : a.path,
    windowBytes: a.windowBytes, persistent: a.persistent, expiresAt: a.expiresAt, journalDir: a.journalDir,
    ...(a.compress === undefined ? {} : { compress: a.compress }),
  });
} else {
  process.stdout.write('{"ready":true}\n');
  let contentIndex: ContentIndex | undefined;
  if (a.base) {
    contentIndex = new ContentIndex(a.chunkSize);
    await contentIndex.addFile(a.base);
  }
  // The overlay case: the peer names a hash; this side answers with its own file or nothing.
  const held = a.baseSha256 ? await (await BaseImageStore.open(a.baseDirs!)).resolve(a.baseSha256) : undefined;
  if (a.baseSha256 && !held) throw new Error(`the target holds no base ${a.baseSha256}`);
  const got = await receiveTransfer({
    broker: a.broker, transferId: a.transferId, from: 'cloud-a', to: 'cloud-b', targetPath: a.path, journalDir: a.journalDir,
    durable: a.persistent, prefetch: Math.max(8, Math.ceil(a.windowBytes / a.chunkSize)), ...(contentIndex ? { contentIndex } : {}),
  });
  let rebaseMs: number | undefined;
  if (held) {
    // As the hypervisor adapter links a received chain: the backing reference is replaced by
    // this host's own base, read as raw (never probed), before anything reads through it.
    const t = performance.now();
    execFileSync('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-F', 'raw', '-b', held.path, a.path]);
    rebaseMs = performance.now() - t;
  }
  result = { ...got, ...(rebaseMs === undefined ? {} : { rebaseMs, base: held!.path }) };
}
const usage = process.resourceUsage();
process.stdout.write(JSON.stringify({ side, result, elapsedMs: performance.now() - started, startedAt, endedAt: Date.now(), maxRssKiB: usage.maxRSS, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000 }) + '\n');
