/**
 * `intercloud transfer send|receive`: a one-off reliable transfer over AMQP (testing by hand,
 * fault tests that kill a side). Both sides must agree on the id, the two cloud ids and
 * `--persistent`. SIGINT/SIGTERM abort the transfer (both sides are told).
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import {
  ContentIndex,
  receiveTransfer,
  sendTransfer,
  type BrokerOptions,
  type ProgressEvent,
} from '../../../protocols/amqp/index.js';
import { printJson, usageError } from '../output.js';

interface BrokerFlags {
  broker: string;
  ca: string;
  cert: string;
  key: string;
  servername?: string;
}

interface CommonFlags extends BrokerFlags {
  id: string;
  from: string;
  to: string;
  journalDir: string;
  persistent?: boolean;
  expiresIn: string;
  progress: 'none' | 'json' | 'bar';
  json?: boolean;
}

function brokerOf(o: BrokerFlags): BrokerOptions {
  return { url: o.broker, ca: o.ca, cert: o.cert, key: o.key, ...(o.servername ? { servername: o.servername } : {}) };
}

function intOf(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw usageError(`${flag} '${value}' is not a positive integer`);
  }
  return n;
}

function progressPrinter(mode: CommonFlags['progress']): ((e: ProgressEvent) => void) | undefined {
  if (mode === 'json') return (e) => process.stderr.write(JSON.stringify({ event: 'progress', ...e }) + '\n');
  if (mode === 'bar') {
    return (e) => {
      const pct = e.bytesTotal === 0 ? 100 : (100 * e.bytesDone) / e.bytesTotal;
      const eta = e.etaSeconds === undefined ? '?' : `${Math.round(e.etaSeconds)}s`;
      process.stderr.write(`\r${pct.toFixed(1).padStart(5)}%  ${(e.rate / 1e6).toFixed(1)} MB/s  eta ${eta}   `);
    };
  }
  return undefined;
}

function withSignals<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return run(ac.signal).finally(() => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  });
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--id <uuid>', 'transfer id (lowercase uuid), the same on both sides')
    .requiredOption('--from <cloud>', 'sending cloud id')
    .requiredOption('--to <cloud>', 'receiving cloud id')
    .requiredOption('--broker <url>', 'amqps://host:port/vhost')
    .requiredOption('--ca <file>', 'root certificate(s) the broker must chain to (PEM)')
    .requiredOption('--cert <file>', "this cloud's certificate (PEM); its CN is the broker user")
    .requiredOption('--key <file>', "this cloud's key (PEM)")
    .option('--servername <name>', "name to check the broker's certificate against")
    .requiredOption('--journal-dir <dir>', "this side's transfer journals")
    .option('--persistent', 'broker-persistent messages and durable queues (both sides)')
    .option('--expires-in <seconds>', 'deadline from now', '3600')
    .option('--progress <mode>', 'none | json (lines on stderr) | bar', 'none')
    .option('--json', 'print the result as json');
}

/** Registers `intercloud transfer`. */
export function registerTransferCommands(program: Command): void {
  const transfer = program.command('transfer').description('reliable transfer of a disk or object over AMQP');

  transfer.command('new-id').description('print a fresh transfer id').action(() => {
    process.stdout.write(`${randomUUID()}\n`);
  });

  common(transfer.command('send').description('send FILE to the receiving cloud'))
    .requiredOption('--source <file>', 'file to send (kept unchanged until the receiver commits)')
    .option('--chunk-size <bytes>', 'chunk size', String(1024 * 1024))
    .option('--window <bytes>', 'unconfirmed bytes in flight at most', String(8 * 1024 * 1024))
    .action(async (o: CommonFlags & { source: string; chunkSize: string; window: string }) => {
      const result = await withSignals((signal) =>
        sendTransfer({
          broker: brokerOf(o),
          transferId: o.id,
          from: o.from,
          to: o.to,
          source: o.source,
          chunkSize: intOf(o.chunkSize, '--chunk-size'),
          windowBytes: intOf(o.window, '--window'),
          persistent: o.persistent ?? false,
          expiresAt: Date.now() + intOf(o.expiresIn, '--expires-in') * 1000,
          journalDir: o.journalDir,
          signal,
          ...(progressPrinter(o.progress) ? { onProgress: progressPrinter(o.progress)! } : {}),
        }),
      );
      if (o.progress === 'bar') process.stderr.write('\n');
      if (o.json) printJson(result);
      else process.stdout.write(`sent ${result.size} bytes (${result.bytesSent} on the wire), sha-256 ${result.digest}\n`);
    });

  common(transfer.command('receive').description('receive into FILE (staged beside it, renamed on commit)'))
    .requiredOption('--target <file>', 'where the file lands')
    .option('--base <file...>', 'files this side already holds (content index): matching chunks are not sent')
    .option('--chunk-size <bytes>', 'chunk size of the content index (the sender\'s)', String(1024 * 1024))
    .action(async (o: CommonFlags & { target: string; base?: string[]; chunkSize: string }) => {
      let index: ContentIndex | undefined;
      if (o.base?.length) {
        index = new ContentIndex(intOf(o.chunkSize, '--chunk-size'));
        for (const b of o.base) await index.addFile(b);
      }
      const result = await withSignals((signal) =>
        receiveTransfer({
          broker: brokerOf(o),
          transferId: o.id,
          from: o.from,
          to: o.to,
          targetPath: o.target,
          journalDir: o.journalDir,
          durable: o.persistent ?? false,
          expiresAt: Date.now() + intOf(o.expiresIn, '--expires-in') * 1000,
          signal,
          ...(index ? { contentIndex: index } : {}),
          ...(progressPrinter(o.progress) ? { onProgress: progressPrinter(o.progress)! } : {}),
        }),
      );
      if (o.progress === 'bar') process.stderr.write('\n');
      if (o.json) printJson(result);
      else process.stdout.write(`received ${result.size} bytes into '${result.path}', sha-256 ${result.digest}\n`);
    });
}
