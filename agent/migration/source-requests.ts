/**
 * The mailbox between the control plane (which receives the source's instantiate and
 * commit requests) and the target job waiting for them. In memory on purpose: after a
 * restart the source repeats its request (its steps retry), so nothing here must survive.
 */
import type { InstantiateOrder, SourceRequestsPort } from './ports.js';

type Instantiate = InstantiateOrder;

interface Box {
  instantiate?: Instantiate;
  committed: boolean;
  waiters: Array<() => void>;
}

/** An in-memory {@link SourceRequestsPort} that the control plane delivers into. */
export class SourceRequestMailbox implements SourceRequestsPort {
  private readonly boxes = new Map<string, Box>();

  /** Delivers the source's instantiate request (a repeat replaces nothing). */
  deliverInstantiate(offerId: string, req: Instantiate): void {
    const b = this.box(offerId);
    b.instantiate ??= req;
    this.wake(b);
  }

  /** Delivers the source's commit request. */
  deliverCommit(offerId: string): void {
    const b = this.box(offerId);
    b.committed = true;
    this.wake(b);
  }

  /** Forgets an offer once its job has finished. */
  forget(offerId: string): void {
    this.boxes.delete(offerId);
  }

  instantiateRequest(offerId: string, signal: AbortSignal): Promise<Instantiate> {
    return this.until(offerId, signal, (b) => b.instantiate);
  }

  async commitRequest(offerId: string, signal: AbortSignal): Promise<void> {
    await this.until(offerId, signal, (b) => (b.committed ? true : undefined));
  }

  private until<T>(offerId: string, signal: AbortSignal, ready: (b: Box) => T | undefined): Promise<T> {
    const b = this.box(offerId);
    return new Promise<T>((resolve, reject) => {
      const check = (): boolean => {
        const v = ready(b);
        if (v === undefined) return false;
        resolve(v);
        return true;
      };
      if (signal.aborted) { reject(signal.reason); return; }
      if (check()) return;
      const waiter = (): void => { if (check()) cleanup(); else b.waiters.push(waiter); };
      const onAbort = (): void => { cleanup(); reject(signal.reason); };
      const cleanup = (): void => {
        signal.removeEventListener('abort', onAbort);
        b.waiters = b.waiters.filter((w) => w !== waiter);
      };
      b.waiters.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private box(offerId: string): Box {
    let b = this.boxes.get(offerId);
    if (!b) { b = { committed: false, waiters: [] }; this.boxes.set(offerId, b); }
    return b;
  }

  private wake(b: Box): void {
    const ws = b.waiters;
    b.waiters = [];
    for (const w of ws) w();
  }
}
