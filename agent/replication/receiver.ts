/**
 * B's side of replication (I/O, transport-independent): stores the objects of a batch that
 * arrived in a staging file into B's bucket, verifying each end to end, and answers what it
 * holds. The receipt for an object is what B's store says after the write — read back with a
 * HEAD — never the write call's word alone.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import type { IntercloudError } from '../../protocols/errors/index.js';
import { isIntercloudError } from '../../protocols/errors/index.js';
import type { ObjectStore } from '../../adapters/storage/index.js';
import { replError } from './errors.js';
import type { AuditEntry, BatchObject } from './messages.js';
import type { ObjectReceipt } from './state.js';

/** Objects up to this size are read into memory in one read and put from there; larger ones are streamed. */
const IN_MEMORY_BYTES = 8 * 1024 * 1024;

/** B's replica store for one subcontract. */
export class ReplicaReceiver {
  /**
   * @param store B's object store (in the region the subcontract names)
   * @param bucket B's bucket made for A
   * @param writers objects of one batch written at once
   */
  constructor(readonly store: ObjectStore, readonly bucket: string, readonly writers = 8) {}

  /**
   * Stores each object of a batch from `stagedPath` (the batch's bytes, packed end to end):
   * reads its slice once, straight into `putObject` declaring the size and SHA-256 A announced
   * (the store verifies both as the bytes flow and stores nothing on a mismatch, answered as
   * `REPL_VERIFY_FAILED`), reads it back with `headObject`, and answers what it read.
   * One object's failure is its own receipt (`ok: false` with the coded reason); the others go on.
   */
  async storeBatch(objects: readonly BatchObject[], stagedPath: string, signal?: AbortSignal): Promise<ObjectReceipt[]> {
    const out: ObjectReceipt[] = new Array<ObjectReceipt>(objects.length);
    let next = 0;
    // A few writes at once: a batch of small objects is bound by the store's per-request latency.
    const worker = async (): Promise<void> => {
      for (let i = next++; i < objects.length; i = next++) {
        const o = objects[i]!;
        try {
          out[i] = await this.#storeOne(o, stagedPath, signal);
        } catch (err) {
          const e = asCoded(err);
          out[i] = { key: o.key, ok: false, code: e.code, message: e.message, retryable: e.retryable };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.writers, objects.length) }, worker));
    return out;
  }

  async #storeOne(o: BatchObject, path: string, signal?: AbortSignal): Promise<ObjectReceipt> {
    // One read of the staged slice, straight into the put, declaring the SHA-256 A announced. No
    // separate hash pass: the transfer already compared the whole staged file with A's digest
    // before it committed, and `putObject` checks size and SHA-256 as the bytes flow and stores
    // nothing when they differ (the contract's integrity rule) — a mismatch surfaces here as
    // REPL_VERIFY_FAILED with the store's error as its cause.
    let body: Buffer | Readable;
    if (o.size <= IN_MEMORY_BYTES) {
      body = Buffer.alloc(o.size);
      if (o.size > 0) {
        const h = await fs.open(path, 'r');
        try {
          const { bytesRead } = await h.read(body, 0, o.size, o.offset);
          if (bytesRead !== o.size) throw replError('REPL_VERIFY_FAILED', `staged batch ends inside '${o.key}'`);
        } finally {
          await h.close();
        }
      }
    } else {
      body = createReadStream(path, { start: o.offset, end: o.offset + o.size - 1, highWaterMark: 1 << 20 });
    }
    let put;
    try {
      put = await this.store.putObject(this.bucket, o.key, body, {
        sizeBytes: o.size, sha256: o.sha256, ...(signal ? { signal } : {}),
      });
    } catch (err) {
      const code = isIntercloudError(err) ? err.code : '';
      if (code === 'STORE_INTEGRITY' || code === 'STORE_STREAM_SHORT' || code === 'STORE_STREAM_LONG') {
        throw replError('REPL_VERIFY_FAILED', `staged '${o.key}' does not match the size and sha-256 the sender declared`, { cause: err });
      }
      throw err;
    }
    const back = await this.store.headObject(this.bucket, o.key, signal ? { signal } : {});
    if (!back || back.sizeBytes !== o.size || back.sha256 !== o.sha256 || back.etag !== put.etag) {
      throw replError('REPL_VERIFY_FAILED', `'${o.key}' read back from the store does not match what was written`, {
        details: { size: back?.sizeBytes, sha256: back?.sha256, etag: back?.etag, putEtag: put.etag },
      });
    }
    return { key: o.key, ok: true, size: back.sizeBytes, sha256: back.sha256, etag: back.etag };
  }

  /** Deletes `keys` and answers those a HEAD then finds absent. */
  async deleteKeys(keys: readonly string[], signal?: AbortSignal): Promise<string[]> {
    const gone: string[] = [];
    const opts = signal ? { signal } : {};
    for (const key of keys) {
      await this.store.deleteObject(this.bucket, key, opts);
      if ((await this.store.headObject(this.bucket, key, opts)) === undefined) gone.push(key);
    }
    return gone;
  }

  /**
   * What the store holds for `keys` (HEAD each). With `deep`, each present object is read and its
   * SHA-256 computed from the bytes, so corruption the store's metadata does not show is found.
   */
  async audit(keys: readonly string[], options: { deep?: boolean; signal?: AbortSignal } = {}): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    const opts = options.signal ? { signal: options.signal } : {};
    for (const key of keys) {
      const info = await this.store.headObject(this.bucket, key, opts);
      if (!info) {
        out.push({ key, present: false });
        continue;
      }
      let sha = info.sha256;
      let size = info.sizeBytes;
      if (options.deep) {
        const read = await this.store.getObject(this.bucket, key, opts);
        const h = createHash('sha256');
        size = 0;
        for await (const piece of read.body) {
          h.update(piece as Buffer);
          size += (piece as Buffer).length;
        }
        sha = h.digest('hex');
      }
      out.push({ key, present: true, size, etag: info.etag, ...(sha === undefined ? {} : { sha256: sha }) });
    }
    return out;
  }
}

/** Any error as a coded one (an uncoded one is a bug of ours, reported as not retryable). */
export function asCoded(err: unknown): { code: string; message: string; retryable: boolean } {
  if (isIntercloudError(err)) return { code: (err as IntercloudError).code, message: err.message, retryable: err.retryable };
  return { code: 'REPL_PEER_REJECTED', message: err instanceof Error ? err.message : String(err), retryable: false };
}
