/**
 * Waiting out libvirtd's absence (killed, restarting). A command whose connection dropped
 * mid-call (`LIBVIRT_DAEMON_LOST`) may or may not have taken effect; a caller that must know
 * before it goes on (its next step depends on it, or a retry would no longer see what to clean
 * up) asks the host again once libvirtd answers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { abortedError } from '../errors.js';

/** How long a caller waits for libvirtd to answer again. */
export const DAEMON_BACK_MS = 30_000;

/** True for a libvirtd that is away (`LIBVIRT_DAEMON_UNAVAILABLE`) or was lost mid-command (`LIBVIRT_DAEMON_LOST`). */
export function isLibvirtdAway(err: unknown): boolean {
  return isIntercloudError(err, 'LIBVIRT_DAEMON_UNAVAILABLE') || isIntercloudError(err, 'LIBVIRT_DAEMON_LOST');
}

/** Where {@link onceLibvirtdAnswers} runs: the adapter's poll interval, its prefix and the caller's operation. */
export interface DaemonBackOptions {
  readonly pollMs: number;
  readonly prefix: string;
  readonly op: string;
  readonly signal?: AbortSignal;
}

/** `ask()`, asked again every `pollMs` while libvirtd is away, for up to {@link DAEMON_BACK_MS}; then its error. */
export async function onceLibvirtdAnswers<T>(ask: () => Promise<T>, o: DaemonBackOptions): Promise<T> {
  const deadline = Date.now() + DAEMON_BACK_MS;
  for (;;) {
    try {
      return await ask();
    } catch (err) {
      if (!isLibvirtdAway(err) || Date.now() >= deadline) throw err;
      await sleep(o.pollMs, undefined, o.signal ? { signal: o.signal } : {}).catch(() => {
        throw abortedError(o.prefix, o.op, o.signal);
      });
    }
  }
}
