/**
 * The target's storage check at accept time (issue 12 finding 8): the offered disks must fit
 * in the hypervisor's free storage *now*, besides what live reservations already hold, or
 * the offer is refused before any byte moves. Through the adapter contract only
 * ({@link Hypervisor.hostCapacity}); no backend kind here.
 */
import type { Hypervisor } from '../../adapters/hypervisor/index.js';
import { IntercloudError } from '../../protocols/errors/index.js';
import { MIGRATION_ERRORS, type VmSummary } from '../migration/index.js';

/**
 * Throws `MIGRATE_NO_CAPACITY` (retryable: space may free up) when the disks of `offer` do not
 * fit in `hv`'s free storage once `reservedBytes` (disks of other live reservations) are set aside.
 */
export async function checkFreeStorage(
  hv: Pick<Hypervisor, 'hostCapacity'>,
  offer: { offerId: string; vm: Pick<VmSummary, 'disks'> },
  reservedBytes: number,
  signal?: AbortSignal,
): Promise<void> {
  const need = offer.vm.disks.reduce((n, d) => n + d.capacityBytes, 0);
  const { diskBytesFree } = await hv.hostCapacity(signal ? { signal } : {});
  if (need + reservedBytes > diskBytesFree) {
    throw new IntercloudError('MIGRATE_NO_CAPACITY', `offer '${offer.offerId}' needs ${need} bytes of storage; ${diskBytesFree} are free and ${reservedBytes} reserved`, {
      retryable: MIGRATION_ERRORS.MIGRATE_NO_CAPACITY.retryable,
      details: { needBytes: need, freeBytes: diskBytesFree, reservedBytes },
    });
  }
}
