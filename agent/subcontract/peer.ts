/**
 * What A checks of a storage subcontractor (issue 14), pure:
 *
 * - {@link chooseStoragePeer}: only a cloud whose *signed* catalog entry (verified by the
 *   directory reader) lists storage federation, one of the allowed regions, enough free object
 *   storage and a price within the offer's — the cheapest such (`--auto`), or the named one
 *   checked the same way (`--to CLOUD`);
 * - {@link checkStorageAccept}: the accept is by that cloud (its verified signer too), for this
 *   offer, names a region of the allowed set, a valid bucket name, and a data endpoint under the
 *   peer's own `<cloud>.<domain>` (`checkTransferEndpoint`, issue 13).
 */
import { validateBucketName } from '../../adapters/storage/index.js';
import { checkTransferEndpoint, type TransferEndpoint } from '../../protocols/amqp/index.js';
import { isIntercloudError } from '../../protocols/errors/index.js';
import type { Accept, CatalogEntry, Offer, VerifiedSigner } from '../../protocols/xmpp/index.js';
import { subcontractError } from './errors.js';

/** What A wants of a subcontractor. */
export interface StoragePeerWant {
  /** `--to CLOUD`: only this cloud (checked the same way); absent: `--auto`. */
  readonly to?: string;
  /** The allowed regions (at least one). */
  readonly regions: readonly string[];
  /** Object GiB the peer must have free: capacity × replicas. */
  readonly needGiB: number;
  /** Most A pays per GiB-month, in `currency`. */
  readonly maxPricePerGbMonth: number;
  readonly currency: string;
  /** This cloud (never its own subcontractor). */
  readonly self: string;
}

/** Why `entry` cannot take the subcontract, or `undefined` when it can. */
export function storagePeerUnfit(entry: CatalogEntry, want: StoragePeerWant): string | undefined {
  if (entry.cloudId === want.self) return 'it is this cloud';
  if (!entry.capabilities.includes('storage-federation')) return 'its catalog entry lists no storage federation';
  if (!want.regions.some((r) => entry.regions.includes(r))) {
    return `its catalog entry lists none of the allowed regions (${want.regions.join(', ')}; it lists ${entry.regions.join(', ')})`;
  }
  if (entry.capacity.objectStorageGiB < want.needGiB) return `it has ${entry.capacity.objectStorageGiB} gib of object storage free, ${want.needGiB} are needed`;
  if (entry.terms.currency !== want.currency) return `it prices in ${entry.terms.currency}, the offer in ${want.currency}`;
  if (entry.terms.pricePerGbMonth > want.maxPricePerGbMonth) return `it asks ${entry.terms.pricePerGbMonth} per gib-month, at most ${want.maxPricePerGbMonth} is offered`;
  return undefined;
}

/**
 * The subcontractor among `entries` (verified catalog entries of online peers): the named one
 * if it fits (`SUBCONTRACT_PEER_UNFIT` otherwise), else the cheapest fitting one, the one with
 * most free object storage on a tie (`SUBCONTRACT_NO_PEER` when none fits).
 */
export function chooseStoragePeer(entries: readonly CatalogEntry[], want: StoragePeerWant): CatalogEntry {
  if (want.to !== undefined) {
    const named = entries.find((e) => e.cloudId === want.to);
    if (!named) throw subcontractError('SUBCONTRACT_NO_PEER', `cloud '${want.to}' is not online or its catalog entry did not verify`, { details: { cloud: want.to } });
    const why = storagePeerUnfit(named, want);
    if (why !== undefined) throw subcontractError('SUBCONTRACT_PEER_UNFIT', `cloud '${want.to}' cannot take the subcontract: ${why}`, { details: { cloud: want.to } });
    return named;
  }
  const fit = entries.filter((e) => storagePeerUnfit(e, want) === undefined);
  if (fit.length === 0) {
    throw subcontractError('SUBCONTRACT_NO_PEER', `no online cloud stores in ${want.regions.map((r) => `'${r}'`).join(', ')} with ${want.needGiB} gib free at ${want.maxPricePerGbMonth} ${want.currency} per gib-month`, {
      details: { regions: want.regions, needGiB: want.needGiB, seen: entries.map((e) => e.cloudId) },
    });
  }
  return [...fit].sort((a, b) => a.terms.pricePerGbMonth - b.terms.pricePerGbMonth || b.capacity.objectStorageGiB - a.capacity.objectStorageGiB || a.cloudId.localeCompare(b.cloudId))[0] as CatalogEntry;
}

/** A checked accept: what the subcontract's later steps use. */
export interface CheckedStorageAccept {
  readonly reservationId: string;
  /** The bucket B made for A. */
  readonly bucket: string;
  readonly region: string;
  /** B's broker (checked to be B's own). */
  readonly endpoint: TransferEndpoint;
  /** The queue (routing key) B named for this reservation's data. */
  readonly transferQueue: string;
  /** The reservation lapses then unless the subcontract begins (ISO). */
  readonly expiresAt: string;
}

/**
 * Checks B's accept of A's storage `offer` (A sent it to `peerCloud`; `signer` is who the trust
 * area verified signed the accept; `domain` the Intercloud domain of B's gateway). Throws
 * `SUBCONTRACT_BAD_ACCEPT` (not retryable) naming what is wrong.
 */
export function checkStorageAccept(
  accept: Accept, signer: VerifiedSigner, offer: Pick<Offer, 'offerId' | 'workload' | 'constraints'>, peerCloud: string, domain: string,
): CheckedStorageAccept {
  const bad = (why: string, cause?: unknown): never => {
    throw subcontractError('SUBCONTRACT_BAD_ACCEPT', `accept of storage offer '${offer.offerId}' from '${peerCloud}' refused: ${why}`, {
      ...(cause === undefined ? {} : { cause }), details: { peer: peerCloud, offerId: offer.offerId, by: accept.by, signer: signer.cloudId },
    });
  };
  if (offer.workload.type !== 'storage') return bad('the offer is not a storage offer');
  if (signer.cloudId !== peerCloud || accept.by !== peerCloud) {
    return bad(`it is by '${accept.by}' signed by '${signer.cloudId}', the offer went to '${peerCloud}'`);
  }
  if (accept.offerId !== offer.offerId) return bad(`it names offer '${accept.offerId}'`);
  const placement = accept.storage;
  if (!placement) return bad('it names no bucket and region');
  if (!offer.constraints.regions.includes(placement.region)) {
    return bad(`region '${placement.region}' is not one of the allowed ${offer.constraints.regions.map((r) => `'${r}'`).join(', ')}`);
  }
  try {
    validateBucketName(placement.bucket);
  } catch (err) {
    if (!isIntercloudError(err, 'STORE_NAME_INVALID')) throw err;
    return bad(`bucket ${JSON.stringify(placement.bucket)} is not a valid bucket name`, err);
  }
  let endpoint: TransferEndpoint;
  try {
    endpoint = checkTransferEndpoint({ uri: accept.transferUri, ...(accept.transferIdentity === undefined ? {} : { identity: accept.transferIdentity }) }, peerCloud, domain);
  } catch (err) {
    if (!isIntercloudError(err, 'XFER_BROKER_IDENTITY')) throw err;
    return bad('its data endpoint is not its own broker', err);
  }
  return {
    reservationId: accept.reservationId, bucket: placement.bucket, region: placement.region, endpoint, transferQueue: accept.transferQueue, expiresAt: accept.expires,
  };
}
