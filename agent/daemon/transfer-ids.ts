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
