/**
 * The write path across several subcontracts of one bucket (I/O): one write into A's store, the
 * copy queued in each subcontract, and an answer per ack mode counted over all the object's
 * copies (README "Ack modes").
 */
import type { Readable } from 'node:stream';
import type { ObjectInfo } from '../../adapters/storage/index.js';
import { replError } from './errors.js';
import type { Replicator } from './replicator.js';
import type { AckMode } from './subcontract.js';

/** How many of `n` subcontracts must confirm before a write in `mode` is answered. */
export function confirmationsNeeded(mode: AckMode, n: number): number {
  if (mode === 'async') return 0;
  if (mode === 'sync') return n;
  // A majority of the n + 1 copies (A's own and one per subcontract); A's is one of them.
  return Math.floor((n + 1) / 2);
}

/**
 * Writes `key` once into A's store (through the first replicator; all must replicate the same
 * source bucket) and queues it in every replicator; resolves once `confirmationsNeeded` of them
 * confirmed this version at their B, and rejects as soon as that can no longer happen (with the
 * first failure's coded reason).
 */
export async function putQuorum(
  replicators: readonly Replicator[],
  key: string,
  body: Readable | Uint8Array,
  options: { sizeBytes: number; sha256: string; mode: AckMode; metadata?: Record<string, string>; signal?: AbortSignal },
): Promise<{ info: ObjectInfo; confirmed: number }> {
  const [first, ...rest] = replicators;
  if (!first) throw replError('REPL_CONFIG', 'a write needs at least one subcontract');
  const bucket = first.subcontract.source.bucket;
  if (rest.some((r) => r.subcontract.source.bucket !== bucket)) throw replError('REPL_CONFIG', 'the subcontracts of one write must replicate the same bucket');
  const info = await first.write(key, body, options);
  for (const r of rest) await r.track(key, info);
  const need = confirmationsNeeded(options.mode, replicators.length);
  if (need === 0) return { info, confirmed: 0 };
  return new Promise((resolve, reject) => {
    let ok = 0;
    let failed = 0;
    let firstErr: unknown;
    for (const r of replicators) {
      r.waitReplicated(key, info.etag, options.signal).then(() => {
        ok++;
        if (ok === need) resolve({ info, confirmed: ok });
      }, (err: unknown) => {
        failed++;
        firstErr ??= err;
        if (replicators.length - failed < need) reject(firstErr);
      });
    }
  });
}
