/**
 * Which VM names this project passes to a hypervisor: a name that came from a peer reaches
 * `virsh` as an argument, so it must not be readable as anything but a name.
 */

/** Longest VM name accepted (bytes of UTF-8). */
export const MAX_VM_NAME_BYTES = 200;

const UUID_LIKE = /^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;

/**
 * Why `name` cannot name a VM here, or `undefined` when it can. The rules are libvirt's (a
 * domain name is not empty and holds no `/` nor control characters: `virXMLCheckIllegalChars`
 * and the QEMU driver's file names), plus what keeps `virsh` from reading the name as
 * something else: no leading `-` (an option), not all digits (virsh looks a domain up by id
 * first) and not UUID-shaped (then by UUID), no leading or trailing space.
 */
export function vmNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_VM_NAME_BYTES) return `is longer than ${MAX_VM_NAME_BYTES} bytes`;
  if (name.startsWith('-')) return "starts with '-' (virsh would read it as an option)";
  if (name.includes('/')) return "holds a '/'";
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'holds a control character';
  if (/^\d+$/.test(name)) return 'is all digits (virsh would read it as a domain id)';
  if (UUID_LIKE.test(name)) return 'is shaped like a uuid (virsh would read it as a domain uuid)';
  if (name.trim() !== name) return 'starts or ends with white space';
  return undefined;
}
