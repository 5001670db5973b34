/**
 * The whole-file digest of a transfer (pure): SHA-256 over the ordered list of chunk SHA-256s,
 * bound to the size and chunk size —
 *
 * ```
 * digest = SHA-256( "ICXD" ‖ u8 version=1 ‖ u64 size ‖ u32 chunkSize ‖ sha256(chunk 0) ‖ … ‖ sha256(chunk n-1) )
 * ```
 *
 * (FIPS 180-4 SHA-256; integers big-endian). A hash list rather than SHA-256 of the raw bytes so
 * that neither side hashes the zeros of holes: an all-zero chunk's SHA-256 is a constant per
 * length. Any byte that differs anywhere changes its chunk's hash and so the digest.
 */
import { createHash, type Hash } from 'node:crypto';
import { xferError } from './errors.js';

const zeroHashes = new Map<number, Buffer>();

/** SHA-256 of `length` zero bytes (cached per length). */
export function zeroChunkSha256(length: number): Buffer {
  let h = zeroHashes.get(length);
  if (!h) {
    h = createHash('sha256').update(Buffer.alloc(length)).digest();
    zeroHashes.set(length, h);
  }
  return h;
}

/** Accumulates chunk hashes, in index order, into the transfer's whole digest. */
export class WholeDigest {
  private readonly hash: Hash;
  private next = 0;
  private readonly count: number;

  constructor(readonly size: number, readonly chunkSize: number) {
    const head = Buffer.alloc(17);
    head.write('ICXD', 0, 'latin1');
    head.writeUInt8(1, 4);
    head.writeBigUInt64BE(BigInt(size), 5);
    head.writeUInt32BE(chunkSize, 13);
    this.hash = createHash('sha256').update(head);
    this.count = Math.ceil(size / chunkSize);
  }

  /** Adds chunk `index`'s SHA-256; indices must come in order 0, 1, 2 … */
  add(index: number, chunkSha256: Buffer): void {
    if (index !== this.next) throw xferError('XFER_CONFIG', `chunk hash '${index}' added out of order (expected '${this.next}')`);
    this.hash.update(chunkSha256);
    this.next++;
  }

  /** The digest (hex) once every chunk was added. */
  hex(): string {
    if (this.next !== this.count) throw xferError('XFER_CONFIG', `digest has '${this.next}' of '${this.count}' chunk hashes`);
    return this.hash.digest('hex');
  }
}
