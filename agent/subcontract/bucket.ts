/**
 * B's handling of the bucket it made for a subcontract (issue 14), over the narrow store port:
 * emptying and removing it at the end, and the listing A verifies. Idempotent.
 */
import type { RemoteListing, SubcontractStore } from './ports.js';

/** Deletes every object of `bucket`, page by page, then the bucket; an absent bucket is fine. */
export async function emptyAndDeleteBucket(store: SubcontractStore, bucket: string, signal: AbortSignal): Promise<{ deleted: number }> {
  if (!(await store.headBucket(bucket, { signal }))) return { deleted: 0 };
  let deleted = 0;
  // Always list from the start: what was deleted is gone, so the first page shrinks to nothing.
  for (;;) {
    const page = await store.listObjects(bucket, { signal, maxKeys: 1000 });
    if (page.objects.length === 0) break;
    for (const o of page.objects) {
      await store.deleteObject(bucket, o.key, { signal });
      deleted += 1;
    }
  }
  await store.deleteBucket(bucket, { signal });
  return { deleted };
}

/** What B reports of `bucket` to A: whether it exists and how many objects it holds. */
export async function listingOf(store: SubcontractStore, bucket: string, signal: AbortSignal): Promise<RemoteListing> {
  if (!(await store.headBucket(bucket, { signal }))) return { bucketExists: false, objects: 0 };
  let objects = 0;
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.listObjects(bucket, { signal, maxKeys: 1000, ...(startAfter === undefined ? {} : { startAfter }) });
    objects += page.objects.length;
    if (page.nextStartAfter === undefined) break;
    startAfter = page.nextStartAfter;
  }
  return { bucketExists: true, objects };
}
