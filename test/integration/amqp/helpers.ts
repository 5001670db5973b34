/**
 * Shared pieces of the transfer integration tests: broker options per cloud from
 * services.json, scratch files, and digests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, promises as fs, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrokerOptions, ProgressEvent } from '../../../protocols/amqp/index.js';
import { serviceEnv } from '../../helpers/services.js';

/** What scripts/services.d/30-rabbitmq.sh writes into services.json. */
export interface RabbitEnv {
  url: string;
  servername: string;
  tls: { ca: string };
  users: Record<string, { cert: string; key: string }>;
  pidFile: string;
  admin: { username: string; password: string };
}

const CLI = join(import.meta.dirname, '../../../scripts/intercloud');

export const rabbit = (): RabbitEnv => serviceEnv<RabbitEnv>('rabbitmq');

/** Broker options to log in as `cloud` (certificate CN = cloud id, SASL EXTERNAL). */
export function brokerFor(cloud: string): BrokerOptions {
  const r = rabbit();
  const u = r.users[cloud];
  if (!u) throw new Error(`no broker user '${cloud}' in services.json`);
  return { url: r.url, ca: r.tls.ca, cert: u.cert, key: u.key, servername: r.servername, heartbeatSeconds: 2 };
}

/** A scratch directory removed by {@link cleanup}. */
const made: string[] = [];
export function scratch(): string {
  const d = mkdtempSync(join(process.env['INTERCLOUD_TEST_TMP'] ?? tmpdir(), 'xfer-it-'));
  made.push(d);
  return d;
}
export function cleanup(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * Writes a sparse image of `size` bytes with random data at `dataRanges` ([offset, length]),
 * holes elsewhere.
 */
export async function writeImage(path: string, size: number, dataRanges: Array<[number, number]>, seed?: Buffer): Promise<void> {
  const h = await fs.open(path, existsSync(path) ? 'r+' : 'w');
  try {
    await h.truncate(size);
    for (const [offset, length] of dataRanges) {
      const bytes = seed ? Buffer.alloc(length, seed) : randomBytes(length);
      await h.write(bytes, 0, length, offset);
    }
  } finally {
    await h.close();
  }
}

/** SHA-256 (hex) of a file, streamed. */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(piece as Buffer);
  return hash.digest('hex');
}

/** Bytes a file occupies on disk (holes excluded). */
export async function allocated(path: string): Promise<number> {
  return (await fs.stat(path)).blocks * 512;
}

/** The common options of a transfer from cloud-a to cloud-b. */
export function pair(dir: string, minutes = 2) {
  const transferId = randomUUID();
  const expiresAt = Date.now() + minutes * 60_000;
  return {
    transferId,
    expiresAt,
    send: { broker: brokerFor('cloud-a'), transferId, from: 'cloud-a', to: 'cloud-b', expiresAt, journalDir: join(dir, 'journal-a'), reconnectDelayMs: 300, endRetryMs: 500 },
    receive: { broker: brokerFor('cloud-b'), transferId, from: 'cloud-a', to: 'cloud-b', journalDir: join(dir, 'journal-b'), reconnectDelayMs: 300 },
  };
}

/** True when queue `name` exists on the broker (checked as `cloud`, passively). */
export async function queueExists(name: string, cloud = 'cloud-b'): Promise<boolean> {
  const { connectBroker } = await import('../../../protocols/amqp/index.js');
  const conn = await connectBroker(brokerFor(cloud));
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.checkQueue(name);
      await ch.close();
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Runs `intercloud transfer …` as a child (`--json` result on stdout); calls `onProgress` for each json progress line. */
export function cli(args: string[], onProgress?: (e: ProgressEvent) => void): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(CLI, ['transfer', ...args, '--progress', 'json', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (!l.startsWith('{')) continue;
      const e = JSON.parse(l) as ProgressEvent & { event?: string };
      if (e.event === 'progress') onProgress?.(e);
    }
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

/** The `intercloud transfer send|receive` arguments of transfer `p` (cloud-a → cloud-b, expiring in 300 s). */
export function cliArgs(side: 'send' | 'receive', p: ReturnType<typeof pair>, extra: string[]): string[] {
  const o = side === 'send' ? p.send : p.receive;
  const b = o.broker;
  return [
    side, '--id', p.transferId, '--from', 'cloud-a', '--to', 'cloud-b', '--broker', b.url, '--ca', String(b.ca), '--cert', String(b.cert),
    '--key', String(b.key), '--servername', b.servername!, '--journal-dir', o.journalDir, '--expires-in', '300', ...extra,
  ];
}
