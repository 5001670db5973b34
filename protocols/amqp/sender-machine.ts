/**
 * The sender's state machine (pure): which chunk to read next, how each chunk travels, what to
 * re-send, when to poll with `end`, when the transfer is done and what an abort leaves to clean
 * up. The I/O side (`sender.ts`) reads the source, hashes chunks, feeds the results and the
 * receiver's messages in as events and carries out the actions they return with its publisher
 * (`publisher.ts`); a restarted sender rebuilds the machine from its journal
 * ({@link SenderMachine.restore}).
 *
 * - Before streaming, the receiver's `status` tells which chunks it already holds (a restart of
 *   either side) and which hashes it can copy locally (its content index): those are not sent.
 * - Which chunks are to be sent at all is an input ({@link SenderMachineOptions.send}): the
 *   others are taken as already at the target. Every chunk is still read in order, because the
 *   whole digest (`digest.ts`) is over every chunk's SHA-256.
 * - All-zero chunks travel as header-only `zero` frames; known hashes as `ref` frames.
 * - A `need` is always answered with `data` (or `zero`) frames, never `ref`: the receiver asks
 *   exactly when its copy did not work out. Re-sends go before the next chunk of the stream.
 * - A chunk is part of the stream (its hash in the whole digest, the cursor past it) only once
 *   its frames were handed to the publisher: a session that fails mid-publish streams it again.
 * - `committed` ends the transfer only when its digest is the one the sender computed — or, for a
 *   restarted sender waiting for `status`, the one it journaled with `end`: a receiver that
 *   committed answers `committed` and never `status`.
 *
 * Journal (`journal-records.ts`): `manifest` (+ the source's identity) before anything is sent,
 * `end` once the whole digest is known, `committed` or `aborted` at the end.
 */
import { ChunkSet, type ChunkRanges } from './chunk-set.js';
import { WholeDigest } from './digest.js';
import { xferError, XFER_ERRORS, type XferCode, type XferError } from './errors.js';
import type { FrameKind } from './frame.js';
import type { JournalRecord, SourceIdentity } from './journal-records.js';
import { CONTROL_VERSION, type ControlMessage, type ControlOf, type Manifest } from './messages.js';

/** Where the sender is. */
export type SenderPhase = 'announcing' | 'streaming' | 'ending' | 'committed' | 'aborted';

/** How one chunk goes out, or that it need not. */
export type ChunkPlan = { readonly send: false; readonly reason: 'held' } | { readonly send: true; readonly kind: FrameKind };

/** One of the transfer's two queues. */
export type TransferQueue = 'data' | 'control';

/**
 * What the machine asks the I/O side to do, in order. {@link SenderMachine.next} returns the
 * next step; event methods return what follows from the event.
 */
export type SenderAction =
  /** Append a record to the sender's journal (fsync'ed before the next action). */
  | { readonly type: 'journal'; readonly record: JournalRecord }
  /** Publish a control message to the receiver and wait for the broker's confirm. */
  | { readonly type: 'send'; readonly message: ControlMessage }
  /** Wait for the receiver's next control message (its `status` first), or the connection's end. */
  | { readonly type: 'await-status' }
  /** Read chunk `index` from the source, hash it, then call {@link SenderMachine.onRead}. */
  | { readonly type: 'read'; readonly index: number; readonly resend: boolean }
  /** Publish chunk `index` as a frame of `kind` (`attempt`: 1 the first time in this run). */
  | { readonly type: 'publish'; readonly index: number; readonly kind: FrameKind; readonly attempt: number }
  /** Wait until every published frame is confirmed, send `message` (`end`), then wait for an answer or the retry interval. */
  | { readonly type: 'poll'; readonly message: ControlOf<'end'> }
  /** Delete the transfer's queues (and exchange) on the session's channel. */
  | { readonly type: 'delete-topology'; readonly queues: readonly TransferQueue[]; readonly exchange: boolean }
  /**
   * After a failure, on a connection of its own: declare the topology (when `declare`), tell
   * the receiver (`tell`), then delete `queues` (and the exchange).
   */
  | {
      readonly type: 'abort-cleanup';
      readonly declare: boolean;
      readonly tell?: ControlOf<'abort'>;
      readonly queues: readonly TransferQueue[];
      readonly exchange: boolean;
    }
  /** The receiver committed what was sent: the transfer is done. */
  | { readonly type: 'finished' }
  /** The transfer failed with `error` (the I/O side winds down, then asks {@link SenderMachine.windDown}). */
  | { readonly type: 'fail'; readonly error: XferError };

/** Why a transfer ends without a commit, as the I/O side sees it. */
export type SenderFailure =
  /** The caller's abort signal. */
  | { readonly kind: 'caller-abort' }
  /** The manifest's deadline passed. */
  | { readonly kind: 'expired' }
  /** The receiver's `abort`. */
  | { readonly kind: 'peer-abort'; readonly message: ControlOf<'abort'> }
  /** Any other error (a broker refusal, a source read, a digest mismatch …). */
  | { readonly kind: 'error'; readonly error: XferError };

/** How the chunks of this run travelled (`held`: not sent, the receiver has them already). */
export interface SenderChunkCounts {
  data: number;
  zero: number;
  ref: number;
  held: number;
  resent: number;
}

/** Inputs of a {@link SenderMachine} besides its manifest. */
export interface SenderMachineOptions {
  /** The source's identity, journaled with the manifest to notice a changed source on resume. */
  readonly source?: SourceIdentity;
  /**
   * The chunks to send, as ranges (default: all). Chunks outside are taken as already at the
   * target (e.g. unchanged since an earlier round): read for the whole digest, never published,
   * counted as `held`. A receiver that nevertheless asks for one (`need`) gets it.
   */
  readonly send?: ChunkRanges;
}

/** The sender's bookkeeping for one transfer. */
export class SenderMachine {
  private phaseValue: SenderPhase = 'announcing';
  private readonly held: ChunkSet;
  private readonly selected: ChunkSet | undefined;
  private readonly targetHashes = new Set<string>();
  private readonly sourceValue: SourceIdentity | undefined;
  /** Whole digest computed in this run (set once every chunk was streamed). */
  private digestValue: string | undefined;
  /** Digest of an earlier run's `end` record, or of its `committed` one. */
  private journaledDigest: string | undefined;
  private whole: WholeDigest;
  private cursor = 0;
  private awaitingStatus = false;
  private readonly resends: number[] = [];
  private readonly attempts = new Map<number, number>();
  /** The plan of the stream chunk being published (counted once it is sent). */
  private pending: { readonly index: number; readonly plan: ChunkPlan } | undefined;
  private committedMsg: ControlOf<'committed'> | undefined;
  private failure: XferError | undefined;
  private ending: 'expired' | 'aborted' | undefined;
  private restoredAborted = false;
  private readonly counts: SenderChunkCounts = { data: 0, zero: 0, ref: 0, held: 0, resent: 0 };

  constructor(readonly manifest: Manifest, options: SenderMachineOptions = {}) {
    this.held = new ChunkSet(manifest.chunkCount);
    this.whole = new WholeDigest(manifest.size, manifest.chunkSize);
    this.sourceValue = options.source;
    if (options.send) {
      this.selected = new ChunkSet(manifest.chunkCount);
      this.selected.addRanges(options.send);
    }
  }

  /**
   * Rebuilds the machine from the sender's journal records (a restarted sender). Returns
   * `undefined` when no manifest was journaled: the transfer has not begun.
   */
  static restore(records: readonly JournalRecord[], options: Omit<SenderMachineOptions, 'source'> = {}): SenderMachine | undefined {
    const first = records.find((r) => r.t === 'manifest');
    if (first?.t !== 'manifest') return undefined;
    const m = new SenderMachine(first.manifest, { ...options, ...(first.source ? { source: first.source } : {}) });
    for (const r of records) {
      if (r.t === 'end') m.journaledDigest = r.digest;
      else if (r.t === 'committed') {
        m.journaledDigest = r.digest;
        m.phaseValue = 'committed';
      } else if (r.t === 'aborted') m.restoredAborted = true;
    }
    // An abort anywhere in the journal wins: the transfer is over, whatever else was recorded.
    if (m.restoredAborted) m.phaseValue = 'aborted';
    return m;
  }

  get phase(): SenderPhase {
    return this.phaseValue;
  }
  /** The whole digest: computed in this run, or the committed one of a finished transfer. */
  get digest(): string | undefined {
    return this.digestValue ?? (this.phaseValue === 'committed' ? this.journaledDigest : undefined);
  }
  /** The digest an earlier run journaled with `end` (or `committed`). */
  get restoredDigest(): string | undefined {
    return this.journaledDigest;
  }
  /** The source's identity as journaled with the manifest. */
  get source(): SourceIdentity | undefined {
    return this.sourceValue;
  }
  /** Chunks the receiver reported as held. */
  get heldCount(): number {
    return this.held.size;
  }
  /** The next chunk of the stream (all of them were streamed when it equals the chunk count). */
  get nextIndex(): number {
    return this.cursor;
  }
  /** How the chunks of this run travelled so far. */
  get chunks(): Readonly<SenderChunkCounts> {
    return this.counts;
  }
  /** The first failure, once the transfer failed. */
  get failed(): XferError | undefined {
    return this.failure;
  }

  /** A transfer that has not begun: journal the manifest (with the source's identity) first. */
  begin(): SenderAction[] {
    return [{ type: 'journal', record: { t: 'manifest', manifest: this.manifest, ...(this.sourceValue ? { source: this.sourceValue } : {}) } }];
  }

  /** Throws `XFER_SOURCE_CHANGED` when `now` is not the source the journal was begun with. */
  checkSource(now: SourceIdentity): void {
    const was = this.sourceValue;
    if (was && (was.size !== now.size || was.mtimeMs !== now.mtimeMs)) {
      throw xferError('XFER_SOURCE_CHANGED', `source of transfer '${this.manifest.transferId}' changed since the earlier attempt`, {
        details: { was, now },
      });
    }
  }

  /** A (new) broker session: announce the manifest and wait for the receiver's `status`. */
  onConnected(): SenderAction[] {
    this.awaitingStatus = true;
    return [{ type: 'send', message: { type: 'manifest', v: CONTROL_VERSION, transferId: this.manifest.transferId, manifest: this.manifest } }];
  }

  /** The receiver's `status`: remember what it holds and can copy; streaming may go on. */
  onStatus(status: ControlOf<'status'>): SenderAction[] {
    if (status.chunkCount === this.manifest.chunkCount && status.have !== '') {
      const have = ChunkSet.fromBase64(status.chunkCount, status.have);
      for (const [a, b] of have.ranges()) for (let i = a; i < b; i++) this.held.add(i);
    }
    // Each status names all the receiver can copy: the last one counts (a set that only grew
    // would let a receiver's repeated statuses fill this side's memory).
    this.targetHashes.clear();
    for (const h of status.hashes) this.targetHashes.add(h);
    this.awaitingStatus = false;
    if (this.phaseValue === 'announcing') this.phaseValue = 'streaming';
    return [];
  }

  /** The receiver's `need`: those chunks are sent again, as data, before the stream goes on. */
  onNeed(chunks: ChunkRanges): SenderAction[] {
    for (const [a, b] of chunks) for (let i = a; i < b && i < this.manifest.chunkCount; i++) this.resends.push(i);
    return [];
  }

  /** The receiver's `committed`: acted on once the whole digest is known ({@link next}). */
  onCommittedMessage(msg: ControlOf<'committed'>): SenderAction[] {
    this.committedMsg = msg;
    return [];
  }

  /** What to do now (after a session began, and after each step): one step, in order. */
  next(): SenderAction[] {
    if (this.failure) return [{ type: 'fail', error: this.failure }];
    if (this.phaseValue === 'committed') return [{ type: 'finished' }];
    // A sender that sent `end` before this session (a restart whose journal reached `end`, or a
    // reconnect while polling) may find the receiver committed already: a committed receiver
    // answers `committed`, never `status`, so waiting for a status would hang until expiry. Its
    // answer is checked against the digest that `end` carried.
    const sentDigest = this.digestValue ?? this.journaledDigest;
    if (this.awaitingStatus && this.committedMsg && sentDigest !== undefined) return this.commit(this.committedMsg, sentDigest);
    if (this.awaitingStatus) return [{ type: 'await-status' }];
    if (this.phaseValue === 'ending' && this.committedMsg && this.digestValue !== undefined) return this.commit(this.committedMsg, this.digestValue);
    const again = this.resends.shift();
    if (again !== undefined) return [{ type: 'read', index: again, resend: true }];
    if (this.cursor < this.manifest.chunkCount) return [{ type: 'read', index: this.cursor, resend: false }];
    if (this.digestValue === undefined) return this.streamed(); // an empty source: no chunk to read
    return [{ type: 'poll', message: { type: 'end', v: CONTROL_VERSION, transferId: this.manifest.transferId, manifest: this.manifest, digest: this.digestValue! } }];
  }

  /** Decides how chunk `index` goes out, given whether it is all zero and its hash (hex). */
  plan(index: number, allZero: boolean, sha256Hex: string | undefined): ChunkPlan {
    if (this.held.has(index) || (this.selected !== undefined && !this.selected.has(index))) return { send: false, reason: 'held' };
    if (allZero) return { send: true, kind: 'zero' };
    if (sha256Hex !== undefined && this.targetHashes.has(sha256Hex)) return { send: true, kind: 'ref' };
    return { send: true, kind: 'data' };
  }

  /**
   * Chunk `index` was read (a `read` step): whether it is all zero, and its SHA-256 (hex) when
   * it is not. Returns the frame to publish, if any. For a stream chunk, call {@link onSent}
   * once its frames are handed to the publisher.
   */
  onRead(index: number, allZero: boolean, sha256Hex: string | undefined, resend: boolean): SenderAction[] {
    if (resend) {
      this.counts.resent++;
      return [this.publish(index, allZero ? 'zero' : 'data')];
    }
    if (index !== this.cursor) throw xferError('XFER_CONFIG', `chunk '${index}' read out of order (expected '${this.cursor}')`);
    const plan = this.plan(index, allZero, sha256Hex);
    this.pending = { index, plan };
    return plan.send ? [this.publish(index, plan.kind)] : [];
  }

  /**
   * Stream chunk `index` went out (or was skipped): its hash joins the whole digest and the
   * stream moves on. After the last chunk the digest is known and journaled with `end`.
   */
  onSent(index: number, chunkSha256: Buffer): SenderAction[] {
    const p = this.pending;
    if (!p || p.index !== index) throw xferError('XFER_CONFIG', `chunk '${index}' sent without being read`);
    this.pending = undefined;
    if (p.plan.send) this.counts[p.plan.kind]++;
    else this.counts.held++;
    this.whole.add(index, chunkSha256);
    this.cursor++;
    if (this.cursor < this.manifest.chunkCount) return [];
    return this.streamed();
  }

  /** Every chunk was streamed: the whole digest is known; journal it with `end`. */
  private streamed(): SenderAction[] {
    const digest = this.whole.hex();
    this.digestValue = digest;
    if (this.phaseValue === 'streaming') this.phaseValue = 'ending';
    // An earlier run that journaled the same digest needs no second record.
    return this.journaledDigest === digest ? [] : [{ type: 'journal', record: { t: 'end', digest } }];
  }

  /**
   * Records a failure and returns the error the transfer fails with: the first one wins, but a
   * later abort by the caller or the deadline still decides how the peer is told
   * ({@link windDown}).
   */
  fail(f: SenderFailure): XferError {
    const id = this.manifest.transferId;
    let err: XferError;
    switch (f.kind) {
      case 'caller-abort':
        this.ending ??= 'aborted';
        err = xferError('XFER_ABORTED', `transfer '${id}' aborted by the caller`);
        break;
      case 'expired':
        this.ending ??= 'expired';
        err = xferError('XFER_EXPIRED', `transfer '${id}' expired at '${new Date(this.manifest.expiresAt).toISOString()}'`);
        break;
      case 'peer-abort': {
        const m = f.message;
        const peer = m.code && m.code in XFER_ERRORS ? (m.code as XferCode) : undefined;
        const code: XferCode = m.reason === 'expired' ? 'XFER_EXPIRED' : (peer ?? 'XFER_ABORTED');
        err = xferError(code, `receiver ${m.reason === 'expired' ? 'expired' : 'aborted'} transfer '${id}'${m.code ? ` (${m.code})` : ''}`, {
          details: { peerReason: m.reason, peerCode: m.code, peerMessage: m.message },
        });
        break;
      }
      case 'error':
        err = f.error;
        break;
    }
    this.failure ??= err;
    return this.failure;
  }

  /**
   * After a failure, once the session wound down: what to clean up and journal. Our own abort
   * or expiry tells the receiver (expiry: deletes everything); a peer's abort leaves us the rest
   * of the queues. Only an end of the transfer itself is journaled (`aborted`); a login or i/o
   * failure can be retried by running the transfer again.
   */
  windDown(): SenderAction[] {
    const e = this.failure;
    if (!e) return [];
    const reason = this.ending ?? (e.code === 'XFER_EXPIRED' ? 'expired' : undefined);
    const peerAborted = e.details['peerReason'] !== undefined;
    const out: SenderAction[] = [];
    if (peerAborted) {
      out.push({ type: 'abort-cleanup', declare: false, queues: ['control', 'data'], exchange: true });
    } else if (reason === 'expired') {
      out.push({ type: 'abort-cleanup', declare: true, queues: ['data', 'control'], exchange: true });
    } else if (reason || e.code === 'XFER_ABORTED') {
      out.push({
        type: 'abort-cleanup',
        declare: true,
        tell: { type: 'abort', v: CONTROL_VERSION, transferId: this.manifest.transferId, reason: 'aborted', code: e.code },
        queues: ['control'],
        exchange: false,
      });
    }
    if (reason || peerAborted || e.code === 'XFER_DIGEST_MISMATCH') {
      this.phaseValue = 'aborted';
      out.push({ type: 'journal', record: { t: 'aborted', reason: reason ?? 'failed', code: e.code } });
    }
    return out;
  }

  /** The receiver's `committed` against `digest` (computed in this run, or journaled with `end`). */
  private commit(msg: ControlOf<'committed'>, digest: string): SenderAction[] {
    const ok = msg.digest === digest && msg.size === this.manifest.size;
    if (!ok) {
      return [{
        type: 'fail',
        error: this.fail({
          kind: 'error',
          error: xferError('XFER_DIGEST_MISMATCH', `receiver committed sha-256 '${msg.digest}' (${msg.size} bytes), source has '${digest}'`),
        }),
      }];
    }
    this.digestValue = digest;
    this.phaseValue = 'committed';
    return [
      { type: 'journal', record: { t: 'committed', digest } },
      { type: 'delete-topology', queues: ['control', 'data'], exchange: true },
      { type: 'finished' },
    ];
  }

  private publish(index: number, kind: FrameKind): SenderAction {
    const attempt = (this.attempts.get(index) ?? 0) + 1;
    this.attempts.set(index, attempt);
    return { type: 'publish', index, kind, attempt };
  }
}
