/**
 * Progress of a transfer for a progress bar (pure: the caller passes the clock). Bytes done
 * never go backwards, even when chunks are re-sent; the rate is an exponentially weighted
 * moving average; the ETA follows from both.
 */

/** One progress report. */
export interface ProgressEvent {
  readonly transferId: string;
  /** Bytes of the file accounted for (sent, skipped as zero, or found at the target). Monotonic. */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Bytes actually put on the wire (frames' payloads), including re-sends. */
  readonly bytesSent: number;
  /** Bytes per second, smoothed. */
  readonly rate: number;
  /** Seconds to go at the current rate; `undefined` until a rate is known. */
  readonly etaSeconds: number | undefined;
  readonly elapsedMs: number;
}

/** Accumulates progress and produces monotonic {@link ProgressEvent}s. */
export class ProgressMeter {
  private done = 0;
  private sent = 0;
  private rate = 0;
  private lastAt: number;
  private lastDone = 0;

  /** `startedAt`: ms timestamp; `halfLifeMs`: how fast the rate forgets. */
  constructor(
    readonly transferId: string,
    readonly bytesTotal: number,
    private readonly startedAt: number,
    private readonly halfLifeMs = 2000,
  ) {
    this.lastAt = startedAt;
  }

  /** Records that `bytes` more of the file are accounted for (and `wire` more were sent). */
  advance(bytes: number, wire = 0): void {
    this.done = Math.min(this.bytesTotal, this.done + Math.max(0, bytes));
    this.sent += Math.max(0, wire);
  }

  /** Records a re-send: wire bytes only, `bytesDone` unchanged. */
  resent(wire: number): void {
    this.sent += Math.max(0, wire);
  }

  /** Raises `bytesDone` to at least `bytes` (e.g. what a restarted receiver already holds). */
  atLeast(bytes: number): void {
    this.done = Math.min(this.bytesTotal, Math.max(this.done, bytes));
  }

  /** The report at time `now` (ms). */
  report(now: number): ProgressEvent {
    const dt = now - this.lastAt;
    if (dt > 0) {
      const instant = ((this.done - this.lastDone) * 1000) / dt;
      const alpha = 1 - Math.pow(0.5, dt / this.halfLifeMs);
      this.rate = this.rate === 0 ? instant : this.rate + alpha * (instant - this.rate);
      this.lastAt = now;
      this.lastDone = this.done;
    }
    const left = this.bytesTotal - this.done;
    return {
      transferId: this.transferId,
      bytesDone: this.done,
      bytesTotal: this.bytesTotal,
      bytesSent: this.sent,
      rate: this.rate,
      etaSeconds: left === 0 ? 0 : this.rate > 0 ? left / this.rate : undefined,
      elapsedMs: now - this.startedAt,
    };
  }
}
