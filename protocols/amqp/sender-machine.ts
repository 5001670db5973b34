/**
 * The sender's state machine (pure): how each chunk travels, what to re-send, when the
 * transfer is done. The I/O side (`sender.ts`) reads the source, publishes and feeds events.
 *
 * - Before streaming, the receiver's `status` tells which chunks it already holds (a restart of
 *   either side) and which hashes it can copy locally (its content index): those are not sent.
 * - All-zero chunks travel as header-only `zero` frames; known hashes as `ref` frames.
 * - A `need` is always answered with `data` (or `zero`) frames, never `ref`: the receiver asks
 *   exactly when its copy did not work out.
 * - `committed` ends the transfer only when its digest is the one the sender computed.
 */
import { ChunkSet, type ChunkRanges } from './chunk-set.js';
import type { FrameKind } from './frame.js';
import type { ControlOf, Manifest } from './messages.js';

/** Where the sender is. */
export type SenderPhase = 'announcing' | 'streaming' | 'ending' | 'committed' | 'aborted';

/** How one chunk goes out, or that it need not. */
export type ChunkPlan = { readonly send: false; readonly reason: 'held' } | { readonly send: true; readonly kind: FrameKind };

/** The sender's bookkeeping for one transfer. */
export class SenderMachine {
  private phaseValue: SenderPhase = 'announcing';
  private held: ChunkSet;
  private targetHashes = new Set<string>();
  private digestValue: string | undefined;

  constructor(readonly manifest: Manifest) {
    this.held = new ChunkSet(manifest.chunkCount);
  }

  get phase(): SenderPhase {
    return this.phaseValue;
  }
  get digest(): string | undefined {
    return this.digestValue;
  }
  /** Chunks the receiver reported as held. */
  get heldCount(): number {
    return this.held.size;
  }

  /** The receiver's `status`: remember what it holds and can copy. Returns true the first time. */
  onStatus(status: ControlOf<'status'>): boolean {
    if (status.chunkCount === this.manifest.chunkCount && status.have !== '') {
      const have = ChunkSet.fromBase64(status.chunkCount, status.have);
      for (const [a, b] of have.ranges()) for (let i = a; i < b; i++) this.held.add(i);
    }
    for (const h of status.hashes) this.targetHashes.add(h);
    const first = this.phaseValue === 'announcing';
    if (first) this.phaseValue = 'streaming';
    return first;
  }

  /** Decides how chunk `index` goes out, given whether it is all zero and its hash (hex). */
  plan(index: number, allZero: boolean, sha256Hex: string | undefined): ChunkPlan {
    if (this.held.has(index)) return { send: false, reason: 'held' };
    if (allZero) return { send: true, kind: 'zero' };
    if (sha256Hex !== undefined && this.targetHashes.has(sha256Hex)) return { send: true, kind: 'ref' };
    return { send: true, kind: 'data' };
  }

  /** Every chunk was published and confirmed once; the whole digest is known. */
  onStreamed(digest: string): void {
    this.digestValue = digest;
    if (this.phaseValue === 'streaming') this.phaseValue = 'ending';
  }

  /** The receiver's `need`: the indices to send again, as data. */
  onNeed(chunks: ChunkRanges): number[] {
    const out: number[] = [];
    for (const [a, b] of chunks) for (let i = a; i < b && i < this.manifest.chunkCount; i++) out.push(i);
    return out;
  }

  /** The receiver's `committed`: true when it matches what was sent. */
  onCommitted(msg: ControlOf<'committed'>): boolean {
    const ok = this.digestValue !== undefined && msg.digest === this.digestValue && msg.size === this.manifest.size;
    if (ok) this.phaseValue = 'committed';
    return ok;
  }

  /** The transfer is over without a commit. */
  onAborted(): void {
    this.phaseValue = 'aborted';
  }
}
