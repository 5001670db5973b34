/**
 * The port between A's replicator and B's agent ({@link ReplicaPeer}): what A asks of B, however
 * it travels. `amqp-peer.ts` carries it over the AMQP reliable transfer (requests on the
 * subcontract's request channel, object bytes in transfers); tests use {@link directPeer}.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AuditEntry, BatchObject } from './messages.js';
import type { ReplicaReceiver } from './receiver.js';
import type { ObjectReceipt } from './state.js';

/** The bytes of one batch at A: the objects packed end to end. */
export interface BatchSource {
  readonly size: number;
  /** The bytes from `offset` on (already paced by the subcontract's bandwidth limit). */
  open(offset: number): Readable;
}

/** One batch to replicate. */
export interface ReplicateBatch {
  readonly requestId: string;
  /** The transfer carrying the bytes (absent when every object is empty). */
  readonly transferId?: string;
  readonly objects: readonly BatchObject[];
}

/** What A's replicator needs from B's agent. Every call may reject with a coded error. */
export interface ReplicaPeer {
  /**
   * Sends a batch and resolves with B's receipt for each object: what B read back from its store
   * after writing and verifying it. Resolving means B answered, not that every object is stored.
   */
  replicate(batch: ReplicateBatch, source: BatchSource, signal?: AbortSignal): Promise<ObjectReceipt[]>;
  /** Deletes keys at B; resolves with the keys B confirmed absent. */
  delete(keys: readonly string[], signal?: AbortSignal): Promise<string[]>;
  /** Describes keys as B's store holds them; `deep` makes B read and hash each object. */
  audit(keys: readonly string[], options?: { deep?: boolean; signal?: AbortSignal }): Promise<AuditEntry[]>;
  /** Releases the peer's connections. */
  close(): Promise<void>;
}

/**
 * A peer that hands requests straight to B's {@link ReplicaReceiver} in this process (tests and
 * single-host setups): the batch's bytes are staged in `stagingDir` as a transfer would leave them.
 */
export function directPeer(receiver: ReplicaReceiver, stagingDir: string): ReplicaPeer {
  return {
    async replicate(batch, source, signal) {
      await fs.mkdir(stagingDir, { recursive: true });
      const path = join(stagingDir, `${batch.requestId}.batch`);
      try {
        await pipeline(source.open(0), createWriteStream(path), signal ? { signal } : {});
        return await receiver.storeBatch(batch.objects, path, signal);
      } finally {
        await fs.rm(path, { force: true });
      }
    },
    delete: (keys, signal) => receiver.deleteKeys(keys, signal),
    audit: (keys, options) => receiver.audit(keys, options),
    close: async () => undefined,
  };
}
