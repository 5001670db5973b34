/**
 * The bucket a cloud makes at home for a peer's storage subcontract (issue 14). The accepting
 * cloud (B) chooses it, never the offering one (A): the name is derived from A's cloud id (as
 * A's verified certificate names it) and A's subcontract id, so no offer can make B use a bucket
 * of its own or of another cloud, and the same subcontract always maps to the same bucket (an
 * offer retried after a crash finds the bucket its first attempt made). Pure.
 */
import { createHash } from 'node:crypto';
import { validateBucketName } from '../../adapters/storage/index.js';

/** Every bucket made for a peer starts with this (and nothing of this cloud's own should). */
export const SUBCONTRACT_BUCKET_PREFIX = 'ic-';

/** Hex digits of the SHA-256 of `<cloud>\n<subcontract>` that a bucket name carries (80 bits). */
const HASH_DIGITS = 20;

/**
 * `ic-<cloud>-<20 hex digits of sha256(cloud \n subcontract)>`, with the cloud id cut so the
 * name fits S3's 63 characters; checked by `validateBucketName` (throws `STORE_NAME_INVALID`,
 * which a valid cloud id never causes).
 */
export function subcontractBucketName(senderCloud: string, subcontractId: string): string {
  const digest = createHash('sha256').update(`${senderCloud}\n${subcontractId}`, 'utf8').digest('hex').slice(0, HASH_DIGITS);
  const room = 63 - SUBCONTRACT_BUCKET_PREFIX.length - 1 - HASH_DIGITS;
  const cloud = senderCloud.toLowerCase().slice(0, room).replace(/-+$/, '');
  return validateBucketName(`${SUBCONTRACT_BUCKET_PREFIX}${cloud}-${digest}`);
}
