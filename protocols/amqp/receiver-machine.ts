/**
 * The receiver's state machine (pure): which frames to apply, which to drop as duplicates,
 * what to ask for again, when to verify and commit. The I/O side (`receiver.ts`) feeds it
 * events and carries out the actions it returns; a restarted receiver rebuilds it from its
 * journal ({@link ReceiverMachine.restore}).
 *
 * Invariants:
 * - a chunk index is *held* only once its bytes are durable in the staging file (the journal's
 *   `have` records are written after the staging fsync), so a crash never loses a held chunk;
 * - a chunk index is applied at most once per staging file (duplicates and redeliveries are
 *   dropped; writes are positional, so even a repeated write would be harmless);
 * - the target is committed only when every index is held and the whole SHA-256 matches;
 * - `committed` is journaled before the staging file is renamed onto the target (the rename is
 *   the action after it), so a receiver killed between the two finds `committed` and a staging
 *   file still there, and renames it (`StagingFile.completeCommit`); killed after the
 *   rename, it finds `committed` and no staging file. Never a held chunk without its file.
 */
import { ChunkSet, type ChunkRanges } from './chunk-set.js';
import type { FrameHeader } from './frame.js';
import { xferError } from './errors.js';
import { CONTROL_VERSION, MAX_STATUS_HASHES, needMessage, type AbortReason, type ControlMessage, type Manifest } from './messages.js';
import type { JournalRecord } from './journal-records.js';

/**
 * Most chunks one transfer may have: the receiver keeps two bitmaps of this many bits (2 MiB
 * each at most) and sends one in every `status`, whatever size the sender declares. With the
 * default 1 MiB chunks that is 16 TiB.
 */
export const MAX_CHUNK_COUNT = 2 ** 24;

/**
 * Most ranges one `need` message asks for: the sender answers them and polls again with `end`,
 * which asks for the next ones, so a message (and the arrays behind it) stays small however
 * scattered the missing chunks are.
 */
export const MAX_NEED_RANGES = 4096;

/**
 * Largest chunk a receiver takes unless told otherwise: 4 MiB, the largest chunk size
 * bench/migration measured (the agent's default is 1 MiB; the manifest's schema allows 64 MiB).
 * Every unacked delivery sits whole in the receiver's memory: with its prefetch of 8, an
 * honest sender's chunks make at most 32 MiB (`MAX_TRANSFER_MESSAGE_BYTES` bounds a dishonest one's).
 */
export const MAX_RECEIVED_CHUNK_SIZE = 4 * 1024 * 1024;

/** What a receiver takes for one transfer. */
export interface ReceiverLimits {
  /** Most bytes the file may have (e.g. the capacity of the disk that was offered). */
  readonly maxSize?: number;
  /** Largest chunk (default {@link MAX_RECEIVED_CHUNK_SIZE}). */
  readonly maxChunkSize?: number;
}

/**
 * Refuses, with `XFER_TOO_LARGE`, a manifest declaring more than `limits.maxSize` bytes, chunks
 * larger than `limits.maxChunkSize`, or more than {@link MAX_CHUNK_COUNT} chunks — before anything is allocated for it (issue 12 finding 8:
 * the sender must not decide how much the target stores or keeps in memory).
 */
export function checkManifestLimits(manifest: Manifest, limits: ReceiverLimits = {}): void {
  if (limits.maxSize !== undefined && manifest.size > limits.maxSize) {
    throw xferError('XFER_TOO_LARGE', `transfer '${manifest.transferId}' declares ${manifest.size} bytes, more than the ${limits.maxSize} it may have`, {
      details: { size: manifest.size, maxSize: limits.maxSize },
    });
  }
  const maxChunkSize = limits.maxChunkSize ?? MAX_RECEIVED_CHUNK_SIZE;
  if (manifest.chunkSize > maxChunkSize) {
    throw xferError('XFER_TOO_LARGE', `transfer '${manifest.transferId}' declares chunks of ${manifest.chunkSize} bytes, more than the ${maxChunkSize} this receiver takes`, {
      details: { chunkSize: manifest.chunkSize, maxChunkSize },
    });
  }
  if (manifest.chunkCount > MAX_CHUNK_COUNT) {
    throw xferError('XFER_TOO_LARGE', `transfer '${manifest.transferId}' declares ${manifest.chunkCount} chunks, more than ${MAX_CHUNK_COUNT}`, {
      details: { chunkCount: manifest.chunkCount, maxChunkCount: MAX_CHUNK_COUNT },
    });
  }
}

/** Where the receiver is. */
export type ReceiverPhase = 'waiting' | 'receiving' | 'verifying' | 'committed' | 'aborted';

/** What the machine decides about one frame. */
export type FrameDecision =
  | { readonly action: 'write'; readonly index: number }
  | { readonly action: 'hole'; readonly index: number }
  | { readonly action: 'copy-local'; readonly index: number }
  | { readonly action: 'drop'; readonly reason: 'duplicate' | 'foreign' | 'no-manifest' | 'out-of-range' | 'finished' }
  | { readonly action: 'need'; readonly message: ControlMessage };

/** Actions the I/O side performs, in order. */
export type ReceiverAction =
  | { readonly type: 'create-staging'; readonly size: number }
  | { readonly type: 'journal'; readonly record: JournalRecord }
  | { readonly type: 'send'; readonly message: ControlMessage }
  | { readonly type: 'verify'; readonly digest: string }
  /** Rename the verified staging file onto the target (after `committed` is journaled). */
  | { readonly type: 'commit-staging' }
  | { readonly type: 'remove-staging' };

/** The receiver's bookkeeping for one transfer. */
export class ReceiverMachine {
  private phaseValue: ReceiverPhase = 'waiting';
  private manifestValue: Manifest | undefined;
  private held: ChunkSet | undefined;
  private holes: ChunkSet | undefined;
  private readonly inFlightHoles = new Set<number>();
  private readonly inFlight = new Set<number>();
  private digestValue: string | undefined;

  /** @param limits — what a manifest may declare ({@link checkManifestLimits}). */
  constructor(readonly transferId: string, readonly limits: ReceiverLimits = {}) {}

  /** Rebuilds the machine from journal records (a restarted receiver). */
  static restore(transferId: string, records: readonly JournalRecord[], limits: ReceiverLimits = {}): ReceiverMachine {
    const m = new ReceiverMachine(transferId, limits);
    for (const r of records) {
      if (r.t === 'manifest') {
        m.manifestValue = r.manifest;
        m.held = new ChunkSet(r.manifest.chunkCount);
        m.holes = new ChunkSet(r.manifest.chunkCount);
        m.phaseValue = 'receiving';
      } else if (r.t === 'have') {
        m.held?.addRanges(r.chunks);
        if (r.holes) m.holes?.addRanges(r.holes);
      }
      else if (r.t === 'end') m.digestValue = r.digest;
      else if (r.t === 'committed') m.phaseValue = 'committed';
      else if (r.t === 'aborted') m.phaseValue = 'aborted';
    }
    return m;
  }

  get phase(): ReceiverPhase {
    return this.phaseValue;
  }
  get manifest(): Manifest | undefined {
    return this.manifestValue;
  }
  get digest(): string | undefined {
    return this.digestValue;
  }
  /** Chunks held durably. */
  get heldCount(): number {
    return this.held?.size ?? 0;
  }
  /** Chunks held durably that hold data: held and not holes (a hole is never written into the staging file). */
  get heldDataCount(): number {
    return (this.held?.size ?? 0) - (this.holes?.size ?? 0);
  }
  /** Bytes of the file held durably. */
  get heldBytes(): number {
    const m = this.manifestValue;
    if (!m || !this.held) return 0;
    let bytes = this.held.size * m.chunkSize;
    if (m.chunkCount > 0 && this.held.has(m.chunkCount - 1)) bytes -= m.chunkCount * m.chunkSize - m.size;
    return bytes;
  }

  /** The `status` message for the sender: what is held, plus the content index's hashes (at most {@link MAX_STATUS_HASHES}). */
  status(hashes: readonly string[] = []): ControlMessage {
    return {
      type: 'status',
      v: CONTROL_VERSION,
      transferId: this.transferId,
      chunkCount: this.manifestValue?.chunkCount ?? 0,
      have: this.held?.toBase64() ?? '',
      hashes: hashes.slice(0, MAX_STATUS_HASHES),
    };
  }

  /**
   * A `manifest` arrived (first time or again). Throws `XFER_TOO_LARGE` ({@link checkManifestLimits})
   * for a first manifest beyond the limits; the caller aborts the transfer.
   */
  onManifest(manifest: Manifest, hashes: readonly string[] = []): ReceiverAction[] {
    if (manifest.transferId !== this.transferId || this.isFinal()) return this.finalAnswer();
    const out: ReceiverAction[] = [];
    if (!this.manifestValue) {
      checkManifestLimits(manifest, this.limits);
      this.manifestValue = manifest;
      this.held = new ChunkSet(manifest.chunkCount);
      this.holes = new ChunkSet(manifest.chunkCount);
      this.phaseValue = 'receiving';
      out.push({ type: 'create-staging', size: manifest.size }, { type: 'journal', record: { t: 'manifest', manifest } });
    }
    out.push({ type: 'send', message: this.status(hashes) });
    return out;
  }

  /**
   * A frame arrived. `payloadOk` is the SHA-256 check of a `data` frame's payload. The I/O side
   * calls {@link onDurable} once the write (if any) is fsync'ed.
   */
  onFrame(header: FrameHeader, payloadOk: boolean): FrameDecision {
    if (header.transferId !== this.transferId) return { action: 'drop', reason: 'foreign' };
    if (this.isFinal() || this.phaseValue === 'verifying') return { action: 'drop', reason: 'finished' };
    const m = this.manifestValue;
    if (!m || !this.held) return { action: 'drop', reason: 'no-manifest' };
    const expectedLength = header.index === m.chunkCount - 1 ? m.size - header.index * m.chunkSize : m.chunkSize;
    if (header.index >= m.chunkCount || header.offset !== header.index * m.chunkSize || header.length !== expectedLength) {
      return { action: 'drop', reason: 'out-of-range' };
    }
    if (this.held.has(header.index) || this.inFlight.has(header.index)) return { action: 'drop', reason: 'duplicate' };
    if (header.kind === 'data' && !payloadOk) {
      return { action: 'need', message: needMessage(this.transferId, [[header.index, header.index + 1]]) };
    }
    this.inFlight.add(header.index);
    if (header.kind === 'zero') {
      this.inFlightHoles.add(header.index);
      return { action: 'hole', index: header.index };
    }
    if (header.kind === 'ref') return { action: 'copy-local', index: header.index };
    return { action: 'write', index: header.index };
  }

  /** A write or local copy failed to find its bytes (a `ref` not in the index): ask for data. */
  onLocalMiss(index: number): ControlMessage {
    this.release(index);
    return needMessage(this.transferId, [[index, index + 1]]);
  }

  /** Chunk `index` was decided on but not written (its write failed): it is missing again. */
  release(index: number): void {
    this.inFlight.delete(index);
    this.inFlightHoles.delete(index);
  }

  /** True when chunk `index` is held as a hole (a zero frame: never written to the staging file). */
  isHole(index: number): boolean {
    return this.holes?.has(index) ?? false;
  }

  /** The staging file was fsync'ed with these chunks in it: journal them as held. */
  onDurable(indices: readonly number[]): ReceiverAction[] {
    if (!this.held || indices.length === 0) return [];
    const fresh: number[] = [];
    const holes: number[] = [];
    for (const i of indices) {
      this.inFlight.delete(i);
      const hole = this.inFlightHoles.delete(i);
      if (this.held.add(i)) {
        fresh.push(i);
        if (hole) {
          this.holes!.add(i);
          holes.push(i);
        }
      }
    }
    if (fresh.length === 0) return [];
    fresh.sort((a, b) => a - b);
    holes.sort((a, b) => a - b);
    const record: JournalRecord = holes.length > 0
      ? { t: 'have', chunks: toRanges(fresh), holes: toRanges(holes) }
      : { t: 'have', chunks: toRanges(fresh) };
    const out: ReceiverAction[] = [{ type: 'journal', record }];
    if (this.digestValue && this.held.complete && this.phaseValue === 'receiving') out.push(...this.startVerify());
    return out;
  }

  /** The sender's `end` (or its repetition): verify when complete, otherwise ask for what is missing. */
  onEnd(manifest: Manifest, digest: string): ReceiverAction[] {
    if (this.isFinal()) return this.finalAnswer();
    const out: ReceiverAction[] = [];
    if (!this.manifestValue) out.push(...this.onManifest(manifest).filter((a) => a.type !== 'send'));
    if (this.digestValue !== digest) {
      this.digestValue = digest;
      out.push({ type: 'journal', record: { t: 'end', digest } });
    }
    if (this.phaseValue === 'verifying') return out;
    if (this.held!.complete) return [...out, ...this.startVerify()];
    const missing = this.held!.missing(MAX_NEED_RANGES).filter(([a, b]) => !rangeAllInFlight(this.inFlight, a, b));
    const ranges = subtract(missing, this.inFlight).slice(0, MAX_NEED_RANGES);
    if (ranges.length > 0) out.push({ type: 'send', message: needMessage(this.transferId, ranges) });
    return out;
  }

  /**
   * The verification's outcome: commit or abort on a mismatch. Commit is `committed` journaled,
   * then the rename, then the answer: the sender learns of the commit only once the file is in place.
   */
  onVerified(ok: boolean): ReceiverAction[] {
    if (this.phaseValue !== 'verifying') return [];
    if (!ok) return this.abort('failed', 'XFER_DIGEST_MISMATCH');
    this.phaseValue = 'committed';
    return [
      { type: 'journal', record: { t: 'committed', digest: this.digestValue! } },
      { type: 'commit-staging' },
      ...this.finalAnswer(),
    ];
  }

  /** Aborts (deadline, signal, failure or the peer's abort): remove staging, tell the sender. */
  abort(reason: AbortReason, code?: string, tellPeer = true): ReceiverAction[] {
    if (this.isFinal()) return [];
    this.phaseValue = 'aborted';
    const out: ReceiverAction[] = [
      { type: 'remove-staging' },
      { type: 'journal', record: { t: 'aborted', reason, ...(code ? { code } : {}) } },
    ];
    if (tellPeer) {
      out.push({ type: 'send', message: { type: 'abort', v: CONTROL_VERSION, transferId: this.transferId, reason, ...(code ? { code } : {}) } });
    }
    return out;
  }

  private startVerify(): ReceiverAction[] {
    this.phaseValue = 'verifying';
    return [{ type: 'verify', digest: this.digestValue! }];
  }

  private isFinal(): boolean {
    return this.phaseValue === 'committed' || this.phaseValue === 'aborted';
  }

  /** What a finished receiver answers to anything: `committed` again, or `abort`. */
  private finalAnswer(): ReceiverAction[] {
    if (this.phaseValue === 'committed') {
      return [{
        type: 'send',
        message: { type: 'committed', v: CONTROL_VERSION, transferId: this.transferId, digest: this.digestValue!, size: this.manifestValue!.size },
      }];
    }
    if (this.phaseValue === 'aborted') {
      return [{ type: 'send', message: { type: 'abort', v: CONTROL_VERSION, transferId: this.transferId, reason: 'failed' } }];
    }
    return [];
  }
}

function toRanges(sorted: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else out.push([i, i + 1]);
  }
  return out;
}

function rangeAllInFlight(inFlight: ReadonlySet<number>, a: number, b: number): boolean {
  if (b - a > inFlight.size) return false;
  for (let i = a; i < b; i++) if (!inFlight.has(i)) return false;
  return true;
}

/** `ranges` without the indices in `drop`, split around them (never expanded index by index). */
function subtract(ranges: ChunkRanges, drop: ReadonlySet<number>): Array<[number, number]> {
  if (drop.size === 0) return ranges.map(([a, b]) => [a, b] as [number, number]);
  const cuts = [...drop].sort((x, y) => x - y);
  const out: Array<[number, number]> = [];
  let k = 0;
  for (const [a, b] of ranges) {
    let start = a;
    while (k < cuts.length && cuts[k]! < a) k++;
    for (let j = k; j < cuts.length && cuts[j]! < b; j++) {
      if (cuts[j]! > start) out.push([start, cuts[j]!]);
      start = cuts[j]! + 1;
    }
    if (start < b) out.push([start, b]);
  }
  return out;
}
