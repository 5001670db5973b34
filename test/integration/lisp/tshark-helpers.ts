/**
 * Captures loopback UDP with Debian's `tshark` and reads the LISP fields it decodes: the
 * independent check that what our codec writes is what RFC 9301 / RFC 6833 say.
 */
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A running capture: `done` resolves once tshark has written `count` packets (or timed out). */
export interface Capture {
  file: string;
  done: Promise<void>;
}

/** Starts `tshark -i lo -f 'udp port PORT' -c COUNT -w FILE`; resolves once it captures. */
export async function startCapture(port: number, count: number, timeoutMs = 30_000): Promise<Capture> {
  const file = join(mkdtempSync(join(tmpdir(), 'lisp-cap-')), 'cap.pcapng');
  const child = spawn('tshark', ['-i', 'lo', '-f', `udp port ${port}`, '-c', String(count), '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tshark did not start capturing: ${stderr}`)), 15_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // tshark says so before dumpcap's filter is attached: give it a moment.
      if (stderr.includes('Capturing on')) { clearTimeout(t); setTimeout(resolve, 1500); }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`tshark exited ${code}: ${stderr}`)); });
  });
  const done = new Promise<void>((resolve) => {
    const t = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.once('exit', () => { clearTimeout(t); resolve(); });
  });
  return { file, done };
}

/** The LISP fields tshark reads, one object per packet (multi-valued fields as arrays). */
export async function readLispFields(file: string, port: number, fields: string[]): Promise<Array<Record<string, string[]>>> {
  const { stdout } = await run('tshark', [
    '-r', file, '-d', `udp.port==${port},lisp`, '-T', 'fields', '-E', 'separator=\t', '-E', 'aggregator=|', '-E', 'occurrence=a',
    ...fields.flatMap((f) => ['-e', f]),
  ], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.split('\n').filter((l) => l.length > 0).map((line) => {
    const cols = line.split('\t');
    return Object.fromEntries(fields.map((f, i) => [f, cols[i] ? cols[i]!.split('|') : []]));
  });
}

/** The raw UDP payloads tshark captured (hex), in capture order. */
export async function readPayloads(file: string): Promise<string[]> {
  const { stdout } = await run('tshark', ['-r', file, '-T', 'fields', '-e', 'udp.payload']);
  return stdout.split('\n').filter((l) => l.length > 0).map((l) => l.replace(/:/g, ''));
}

/** HMAC of `hex` under `key` computed by Python's `hmac` module (an independent implementation). */
export async function pythonHmac(hex: string, key: string, digest: 'sha1' | 'sha256'): Promise<string> {
  const { stdout } = await run('python3', ['-c',
    'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), bytes.fromhex(sys.argv[2]), getattr(hashlib, sys.argv[3])).hexdigest())',
    key, hex, digest]);
  return stdout.trim();
}
