/**
 * The pure part of a warm or live move's pre-copy (issue 15): which images of the running VM's
 * disk chains are to be sent now, and whether another round is worth it. The hypervisor keeps
 * the rounds (each disk's chain: the base, then one overlay per round), the step's journal
 * keeps what was sent (checkpoints): together they say where a restarted step goes on.
 *
 * Each round freezes every disk's newest image by stacking a new overlay on it; the frozen
 * images (everything below the newest) can be sent while the guest writes to the overlay.
 * The rounds end when the newest overlays hold little (the cut-over has little left to send)
 * or after `maxRounds`.
 */
import { IntercloudError } from '../../protocols/errors/index.js';
import type { ChainImageInfo, MoveImage } from './ports.js';

/** The key of an image in digests and transfer ids: `DISK.DEPTH` (`0.2`), or `state`. */
export function imageKey(image: MoveImage): string {
  return image === 'state' ? 'state' : `${image.diskId}.${image.depth}`;
}

/** Reads an image key back; `undefined` when it is not one ({@link imageKey}). */
export function parseImageKey(key: string): MoveImage | undefined {
  if (key === 'state') return 'state';
  const m = /^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$/.exec(key);
  return m ? { diskId: m[1]!, depth: Number(m[2]) } : undefined;
}

/** One round's checkpoint in the pre-copy step's journal. */
export interface PrecopyCheckpoint {
  /** The round whose frozen images were sent (1 = the bases). */
  round: number;
  /** image key → SHA-256 of what the target committed. */
  sent: Record<string, string>;
  bytesSent: number;
}

/** What the pre-copy step journals when it ends. */
export interface PrecopyResult {
  rounds: number;
  /** image key → SHA-256, of every image sent during the pre-copy. */
  digests: Record<string, string>;
  bytesSent: number;
}

/** What to do next. */
export interface PrecopyPlan {
  /** The current round (overlays on each disk; 0 before the first). */
  round: number;
  /** The frozen images not sent yet, disk by disk within each depth, bases first. */
  send: MoveImage[];
  /** Bytes the newest overlays hold now (what a cut-over now would leave). */
  topBytes: number;
  /** No further round: the newest overlays are small enough, or the rounds are used up. */
  done: boolean;
}

/**
 * Plans the next move from each disk's chain (base first) and the images already sent. With
 * `final` (the VM is stopped or saved), the newest images are to be sent too. Throws
 * `MIGRATE_BAD_IMAGES` when the chains are not one per disk with the same number of images.
 */
export function planPrecopy(
  chain: readonly (readonly ChainImageInfo[])[],
  sent: Readonly<Record<string, string>>,
  limits: { maxRounds: number; smallBytes: number },
  final = false,
): PrecopyPlan {
  const depth = chain[0]?.length ?? 0;
  if (depth === 0 || chain.some((c) => c.length !== depth)) {
    throw new IntercloudError('MIGRATE_BAD_IMAGES', `disk chains of unequal or no length (${chain.map((c) => c.length).join(', ')}): every round freezes every disk`, { retryable: false });
  }
  const round = depth - 1;
  const send: MoveImage[] = [];
  for (let d = 0; d < (final ? depth : round); d++) {
    for (const c of chain) {
      const image = { diskId: c[d]!.diskId, depth: c[d]!.depth };
      if (sent[imageKey(image)] === undefined) send.push(image);
    }
  }
  const topBytes = chain.reduce((n, c) => n + c[round]!.sizeBytes, 0);
  const done = !final && round >= 1 && (topBytes <= limits.smallBytes || round >= limits.maxRounds);
  return { round, send, topBytes, done };
}
