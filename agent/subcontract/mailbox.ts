/**
 * Between the control plane and the subcontract jobs (issue 14), in memory on purpose: after a
 * restart A repeats its requests (its steps retry), so nothing here must survive. The daemon
 * delivers A's begin and end requests (B) or the operator's end (A) here; the jobs wait on it
 * through {@link SubcontractRequestsPort} and {@link SubcontractClockPort}.
 */
import type { SubcontractClockPort, SubcontractRef, SubcontractRequestsPort } from './ports.js';

/** A box's key: the offer id, and at B the peer's cloud id before it (cloud ids hold no newline). */
const keyOf = (offerId: string, peer: string | undefined): string => (peer === undefined ? offerId : `${peer}\n${offerId}`);

interface Box {
  begun: boolean;
  ended: boolean;
  waiters: Array<() => void>;
}

/**
 * The begin and end requests of each subcontract, and its end time. Keyed by its offer id and, at
 * B, by the peer whose offer it is: a peer's requests never reach another peer's job.
 */
export class SubcontractMailbox implements SubcontractRequestsPort, SubcontractClockPort {
  readonly #boxes = new Map<string, Box>();

  /** A (`peer`, at B) asked to begin `offerId`. */
  deliverBegin(offerId: string, peer?: string): void {
    const b = this.#box(keyOf(offerId, peer));
    b.begun = true;
    this.#wake(b);
  }

  /** The subcontract of `offerId` is to end now (A's end request at B; the operator's at A). */
  deliverEnd(offerId: string, peer?: string): void {
    const b = this.#box(keyOf(offerId, peer));
    b.ended = true;
    this.#wake(b);
  }

  /** Forgets an offer once its job has finished. */
  forget(offerId: string, peer?: string): void {
    this.#boxes.delete(keyOf(offerId, peer));
  }

  async beginRequest(ref: SubcontractRef, signal: AbortSignal): Promise<void> {
    await this.#until(keyOf(ref.offerId, ref.peer), signal, (b) => b.begun);
  }

  /** Resolves at `ends` (`expired`) or when an end was delivered (`ended`), whichever first. */
  async untilEnd(ref: SubcontractRef, ends: string, signal: AbortSignal): Promise<{ reason: 'expired' | 'ended' }> {
    const timer = new AbortController();
    const left = Date.parse(ends) - Date.now();
    if (left <= 0) return { reason: 'expired' };
    // setTimeout holds at most 2^31-1 ms (24.8 days): a longer wait re-arms.
    const handle = setTimeout(() => timer.abort(), Math.min(left, 2 ** 31 - 1));
    try {
      await this.#until(keyOf(ref.offerId, ref.peer), AbortSignal.any([signal, timer.signal]), (b) => b.ended);
      return { reason: 'ended' };
    } catch (err) {
      if (!timer.signal.aborted || signal.aborted) throw err;
      return Date.parse(ends) <= Date.now() ? { reason: 'expired' } : this.untilEnd(ref, ends, signal);
    } finally {
      clearTimeout(handle);
    }
  }

  #until(key: string, signal: AbortSignal, ready: (b: Box) => boolean): Promise<void> {
    const b = this.#box(key);
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) { reject(signal.reason); return; }
      if (ready(b)) { resolve(); return; }
      const waiter = (): void => {
        if (!ready(b)) { b.waiters.push(waiter); return; }
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        b.waiters = b.waiters.filter((w) => w !== waiter);
        reject(signal.reason);
      };
      b.waiters.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #box(key: string): Box {
    let b = this.#boxes.get(key);
    if (!b) { b = { begun: false, ended: false, waiters: [] }; this.#boxes.set(key, b); }
    return b;
  }

  #wake(b: Box): void {
    const ws = b.waiters;
    b.waiters = [];
    for (const w of ws) w();
  }
}
