/**
 * What a disk image's own first bytes make a reader open besides the image (pure). QEMU opens
 * those files as soon as anything looks at the image (`qemu-img info`), before anyone can read
 * the answer, so an image a peer wrote is checked here first, from its bytes:
 * - qcow2 (QEMU's docs/interop/qcow2.txt): an external data file (incompatible feature bit 2,
 *   and the header extension `0x44415441` naming it);
 * - a VMDK descriptor file (text), whose extent lines name other files.
 * A backing file reference is not refused here: the receiver replaces it (metadata only) or
 * refuses it, and `qemu-img info` does not open backing files.
 */

const QCOW2_MAGIC = 0x514649fb;
/** Incompatible feature bit 2: the image's data lives in an external data file. */
const EXTERNAL_DATA_FILE_BIT = 2n;
/** Header extension naming the external data file ("DATA"). */
const EXT_DATA_FILE = 0x44415441;
/** The header and its extensions fit in the first cluster, at most 2 MiB (cluster_bits ≤ 21). */
export const QCOW2_HEADER_READ_BYTES = 2 * 1024 * 1024;

/**
 * Why a qcow2 image whose first bytes are `head` must not be opened by QEMU on this host, or
 * `undefined` when nothing in its header names another file. `head` holds the file's first
 * {@link QCOW2_HEADER_READ_BYTES} bytes (or the whole file when it is shorter).
 */
export function qcow2HeaderProblem(head: Buffer): string | undefined {
  if (head.length < 72 || head.readUInt32BE(0) !== QCOW2_MAGIC) return 'it is not a qcow2 image (no qcow2 magic)';
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) return `it is qcow2 version ${version}, not 2 or 3`;
  let extensionsAt = 72;
  if (version === 3) {
    if (head.length < 104) return 'its qcow2 header is cut short';
    if ((head.readBigUInt64BE(72) >> EXTERNAL_DATA_FILE_BIT) & 1n) return 'it keeps its data in an external data file';
    extensionsAt = head.readUInt32BE(100);
    if (extensionsAt < 104 || extensionsAt % 8 !== 0) return `its qcow2 header length ${extensionsAt} is not valid`;
  }
  const clusterBits = head.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) return `its cluster size 2^${clusterBits} is not one qcow2 allows`;
  // The extensions end with type 0 within the first cluster.
  const end = Math.min(head.length, 2 ** clusterBits);
  for (let at = extensionsAt; ; ) {
    if (at + 8 > end) return 'its qcow2 header extensions run past the first cluster';
    const type = head.readUInt32BE(at);
    const length = head.readUInt32BE(at + 4);
    if (type === 0) return undefined;
    if (type === EXT_DATA_FILE) return 'its header names an external data file';
    at += 8 + Math.ceil(length / 8) * 8;
  }
}

/** A VMDK descriptor file (text) begins so; its extent lines name the files that hold the data. */
const VMDK_DESCRIPTOR = Buffer.from('# Disk DescriptorFile');

/**
 * Why a received disk whose first bytes are `head` must not be opened by QEMU on this host, in
 * whatever format it turns out to be (a cold move's disk is probed), or `undefined`: a qcow2
 * image is checked by {@link qcow2HeaderProblem}, a VMDK descriptor is refused, anything else
 * (raw, a VMDK or other image holding its own data) passes.
 */
export function receivedDiskProblem(head: Buffer): string | undefined {
  if (head.length >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC) return qcow2HeaderProblem(head);
  if (head.subarray(0, VMDK_DESCRIPTOR.length).equals(VMDK_DESCRIPTOR)) return 'it is a VMDK descriptor, whose extents name other files';
  return undefined;
}
