/**
 * The target's answer to "which of the offered disks' bases do you hold?" (issue 16), on the
 * store of its operator's base image directories: a disk's id when a file there has the
 * content hash the disk named. A lookup that fails is logged and answered "not held" (the
 * source then sends the flattened image, as without a store).
 */
import type { BaseImageStore } from '../base-images/index.js';
import type { Logger } from '../log.js';

/** The session's `heldBases` on `store`. */
export function heldBasesOf(store: BaseImageStore, log: Pick<Logger, 'warn'>): (disks: ReadonlyArray<{ readonly id: string; readonly base: string }>) => Promise<string[]> {
  return async (disks) => {
    const held: string[] = [];
    for (const d of disks) {
      try {
        if ((await store.resolve(d.base)) !== undefined) held.push(d.id);
      } catch (err) {
        log.warn({ err, disk: d.id }, 'base image lookup failed: the disk is taken flattened');
      }
    }
    return held;
  };
}
