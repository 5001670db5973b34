/**
 * Transfer ids both clouds derive from the offer, so neither has to tell the other: a
 * lowercase UUID (version 8, RFC 9562 §5.8) from SHA-256 of the offer id and disk id.
 */
import { createHash } from 'node:crypto';

/** The transfer id of disk `diskId` of offer `offerId`. */
export function transferIdFor(offerId: string, diskId: string): string {
  const h = createHash('sha256').update(`intercloud-transfer\0${offerId}\0${diskId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80; // version 8
  h[8] = (h[8]! & 0x3f) | 0x80; // variant 10
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/**
 * The transfer prefix of a live move's images (issue 15): the peer is granted every transfer
 * whose id starts with it, for as many chain images as its pre-copy takes — its own offer's
 * only (`xxxxxxxx-xxxx-xxxx`, from SHA-256 of the offer id; `grantPattern`'s prefix form).
 */
export function moveTransferPrefix(offerId: string): string {
  const h = createHash('sha256').update(`intercloud-move\0${offerId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}`;
}

/** The transfer id of image `key` (`DISK.DEPTH` or `state`) of offer `offerId`'s live move: its prefix, then 64 bits of SHA-256. */
export function moveTransferId(offerId: string, key: string): string {
  const h = createHash('sha256').update(`intercloud-move-image\0${offerId}\0${key}`).digest('hex');
  return `${moveTransferPrefix(offerId)}-${h.slice(0, 4)}-${h.slice(4, 16)}`;
}
