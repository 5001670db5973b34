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

/**
 * The terms B accepted for a subcontract, as its receiver holds them (issue 14, "a subcontract
 * that expires", "a peer asking for more than its reservation"). Each object refused by them
 * gets its own receipt with the coded reason, not retryable, so A reports it FAILED with it.
 */
export interface ReceiverTerms {
  /** The subcontract's end (ISO time): from then on no object is stored (`REPL_SUBCONTRACT_ENDED`). */
  readonly ends?: string;
  /** Bytes reserved for the subcontract (the accepted capacity: `capacityGiB` × 2^30). */
  readonly capacityBytes?: number;
  /** Most objects reserved for the subcontract (the offer's `maxObjects`). */
  readonly maxObjects?: number;
  /** The clock (tests). */
  readonly now?: () => number;
}

/** What B's bucket holds, as the reservation counts it: each object's bytes and its key's. */
interface Usage {
  readonly sizes: Map<string, number>;
  bytes: number;
}

/** What an object takes of the reservation: its bytes, and its key's (a key is stored too: empty objects are not free). */
function reserved(key: string, size: number): number {
  return size + Buffer.byteLength(key, 'utf8');
}

/** B's replica store for one subcontract. */
export class ReplicaReceiver {
  readonly #terms: ReceiverTerms;
  #usage: Promise<Usage> | undefined;
  /** Bytes declared by the batches admitted and not yet released. */
  #admittedBytes = 0;
  /**
   * Keys being written or deleted, each with the end of that operation: one operation per key at
   * a time, so a delete never lands in a write's window and the reservation counts what the store
   * holds (a delete right after a batch's transfer once took a key out of the count while its put
   * was under way, and the put then stored it uncounted).
   */
  readonly #busy = new Map<string, Promise<void>>();
  /** A deep audit is running: another is refused until it ends (each reads every object it names). */
  #deepAuditing = false;

  /**
   * @param store B's object store (in the region the subcontract names)
   * @param bucket B's bucket made for A
   * @param writers objects of one batch written at once
   * @param terms the end time and reservation B holds A to (none: unbounded)
   */
  constructor(readonly store: ObjectStore, readonly bucket: string, readonly writers = 8, terms: ReceiverTerms = {}) {
    this.#terms = terms;
  }

  /**
   * Admits a batch before any byte of it is received, or refuses it: one that names a key twice
   * (`REPL_BAD_MESSAGE`), or declares more bytes than the whole reservation
   * (`REPL_OVER_RESERVATION`, final). The staging space and the time B gives a batch's transfer
   * follow the sizes A declares, so without this a certified peer could have B stage far more than
   * it reserved. The batches admitted and not yet released together declare at most the
   * reservation: one that would go beyond it while others are received is refused as
   * `REPL_PEER_BUSY` (A sends it again later; alone it is always admitted). Returns the release,
   * to call once the batch is stored or has failed. {@link storeBatch} then counts, object by
   * object, what B's bucket already holds and the reserved number of objects.
   */
  admitBatch(objects: readonly BatchObject[]): () => void {
    const keys = new Set<string>();
    let bytes = 0;
    for (const o of objects) {
      if (keys.has(o.key)) throw replError('REPL_BAD_MESSAGE', `a batch names '${o.key}' twice`);
      keys.add(o.key);
      bytes += o.size;
    }
    const t = this.#terms;
    if (t.capacityBytes !== undefined && bytes > t.capacityBytes) {
      throw replError('REPL_OVER_RESERVATION', `a batch of ${bytes} bytes for a subcontract reserved for ${t.capacityBytes}`, { details: { capacityBytes: t.capacityBytes } });
    }
    if (t.capacityBytes !== undefined && this.#admittedBytes + bytes > t.capacityBytes) {
      throw replError('REPL_PEER_BUSY', `a batch of ${bytes} bytes while ${this.#admittedBytes} of the ${t.capacityBytes} reserved are being received`, {
        details: { capacityBytes: t.capacityBytes, admittedBytes: this.#admittedBytes },
      });
    }
    this.#admittedBytes += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#admittedBytes -= bytes;
    };
  }

  /**
   * Stores each object of a batch from `stagedPath` (the batch's bytes, packed end to end):
   * reads its slice once, straight into `putObject` declaring the size and SHA-256 A announced
   * (the store verifies both as the bytes flow and stores nothing on a mismatch, answered as
   * `REPL_VERIFY_FAILED`), reads it back with `headObject`, and answers what it read.
   * One object's failure is its own receipt (`ok: false` with the coded reason); the others go on.
   * Past the terms' end every object is refused (`REPL_SUBCONTRACT_ENDED`); an object that would
   * take the bucket beyond the reserved bytes or objects is refused before anything is written
   * (`REPL_OVER_RESERVATION`).
   */
  async storeBatch(objects: readonly BatchObject[], stagedPath: string, signal?: AbortSignal): Promise<ObjectReceipt[]> {
    const out: ObjectReceipt[] = new Array<ObjectReceipt>(objects.length);
    const t = this.#terms;
    if (t.ends !== undefined && (t.now ?? Date.now)() >= Date.parse(t.ends)) {
      return objects.map((o) => ({ key: o.key, ok: false, code: 'REPL_SUBCONTRACT_ENDED', message: `subcontract ended at ${t.ends}: '${o.key}' not stored`, retryable: false }));
    }
    const usage = t.capacityBytes === undefined && t.maxObjects === undefined ? undefined : await this.#loadUsage(signal);
    let next = 0;
    // A few writes at once: a batch of small objects is bound by the store's per-request latency.
    const worker = async (): Promise<void> => {
      for (let i = next++; i < objects.length; i = next++) {
        const o = objects[i]!;
        let undo: (() => void) | undefined;
        let unlock: (() => void) | undefined;
        try {
          // Another batch writing the key, or a delete of it: sent again later.
          if (this.#busy.has(o.key)) throw replError('REPL_PEER_BUSY', `'${o.key}' is being written or deleted by another request`);
          unlock = this.#lock(o.key);
          if (usage) undo = this.#reserve(usage, o);
          out[i] = await this.#storeOne(o, stagedPath, signal);
          undo = undefined;
        } catch (err) {
          undo?.();
          const e = asCoded(err);
          out[i] = { key: o.key, ok: false, code: e.code, message: e.message, retryable: e.retryable };
        } finally {
          unlock?.();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.writers, objects.length) }, worker));
    return out;
  }

  /** The bucket's usage, from one listing when first needed, then kept by this receiver's writes and deletes. */
  #loadUsage(signal?: AbortSignal): Promise<Usage> {
    this.#usage ??= (async () => {
      const usage: Usage = { sizes: new Map(), bytes: 0 };
      for (let after: string | undefined; ;) {
        const page = await this.store.listObjects(this.bucket, { maxKeys: 1000, ...(after === undefined ? {} : { startAfter: after }), ...(signal ? { signal } : {}) });
        for (const o of page.objects) {
          const r = reserved(o.key, o.sizeBytes);
          usage.sizes.set(o.key, r);
          usage.bytes += r;
        }
        if (page.nextStartAfter === undefined) return usage;
        after = page.nextStartAfter;
      }
    })();
    const p = this.#usage;
    p.catch(() => {
      if (this.#usage === p) this.#usage = undefined;
    });
    return p;
  }

  /**
   * Counts `o` into the reservation before it is written (synchronously, so concurrent writers
   * never both take the last room), or throws `REPL_OVER_RESERVATION`. Returns the undo for a
   * write that fails (the store then still holds the previous version, if any).
   */
  #reserve(usage: Usage, o: BatchObject): () => void {
    const t = this.#terms;
    const old = usage.sizes.get(o.key);
    const objects = usage.sizes.size + (old === undefined ? 1 : 0);
    const size = reserved(o.key, o.size);
    const bytes = usage.bytes + size - (old ?? 0);
    if (t.maxObjects !== undefined && objects > t.maxObjects) {
      throw replError('REPL_OVER_RESERVATION', `'${o.key}' would be object ${objects} of a subcontract reserved for ${t.maxObjects}`, { details: { maxObjects: t.maxObjects } });
    }
    if (t.capacityBytes !== undefined && bytes > t.capacityBytes && size > (old ?? 0)) {
      throw replError('REPL_OVER_RESERVATION', `'${o.key}' (${o.size} bytes and its key) would take the subcontract to ${bytes} bytes, beyond the ${t.capacityBytes} reserved`, {
        details: { capacityBytes: t.capacityBytes, bytes },
      });
    }
    usage.sizes.set(o.key, size);
    usage.bytes = bytes;
    return () => {
      usage.bytes -= size - (old ?? 0);
      if (old === undefined) usage.sizes.delete(o.key);
      else usage.sizes.set(o.key, old);
    };
  }

  /** Marks `key` busy ({@link #busy}); returns the release. */
  #lock(key: string): () => void {
    let release!: () => void;
    this.#busy.set(key, new Promise<void>((r) => { release = r; }));
    return () => {
      this.#busy.delete(key);
      release();
    };
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
    const usage = this.#usage ? await this.#usage.catch(() => undefined) : undefined;
    for (const key of new Set(keys)) {
      // After a write of the key under way (the delete comes after it, as A sent them).
      for (let w = this.#busy.get(key); w !== undefined; w = this.#busy.get(key)) await w;
      const unlock = this.#lock(key);
      try {
        await this.store.deleteObject(this.bucket, key, opts);
        if ((await this.store.headObject(this.bucket, key, opts)) !== undefined) continue;
        gone.push(key);
        const size = usage?.sizes.get(key);
        if (usage && size !== undefined) {
          usage.sizes.delete(key);
          usage.bytes -= size;
        }
      } finally {
        unlock();
      }
    }
    return gone;
  }

  /**
   * What the store holds for `keys` (HEAD each). With `deep`, each present object is read and its
   * SHA-256 computed from the bytes, so corruption the store's metadata does not show is found.
   */
  async audit(keys: readonly string[], options: { deep?: boolean; signal?: AbortSignal } = {}): Promise<AuditEntry[]> {
    // A deep audit reads every object it names: one at a time, each key once (a request naming a
    // large object ten thousand times once had B read it ten thousand times).
    if (options.deep) {
      if (this.#deepAuditing) throw replError('REPL_PEER_BUSY', 'a deep audit of this subcontract is running: asked again later');
      this.#deepAuditing = true;
      try {
        return await this.#audit(keys, true, options.signal);
      } finally {
        this.#deepAuditing = false;
      }
    }
    return this.#audit(keys, false, options.signal);
  }

  async #audit(keys: readonly string[], deep: boolean, signal?: AbortSignal): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    const opts = signal ? { signal } : {};
    const options = { deep };
    for (const key of new Set(keys)) {
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
        try {
          for await (const piece of read.body) {
            h.update(piece as Buffer);
            size += (piece as Buffer).length;
          }
          sha = h.digest('hex');
        } catch (err) {
          // The store's own check of what it delivers (size, SHA-256, MD5) found the bytes are not
          // what was written: corrupt, answered without a SHA-256 so A sends the object again.
          if (!isIntercloudError(err) || !['STORE_INTEGRITY', 'STORE_STREAM_SHORT', 'STORE_STREAM_LONG'].includes(err.code)) throw err;
          sha = undefined;
        }
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
