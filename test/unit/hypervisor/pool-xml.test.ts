/** Reading a libvirt pool's directory from `virsh pool-dumpxml` (the adapter's local-storage probe). */
import { describe, expect, it } from 'vitest';
import { parseDirPoolPath } from '../../../adapters/hypervisor/libvirt/virsh-output.js';

const pool = (type: string, path: string): string => `<pool type='${type}'>
  <name>default</name>
  <uuid>6d1f3a4e-9a51-4a4a-8a57-0b5c8c7c1d11</uuid>
  <capacity unit='bytes'>270475862016</capacity>
  <source>
  </source>
  <target>
    <path>${path}</path>
    <permissions><mode>0711</mode><owner>0</owner><group>0</group></permissions>
  </target>
</pool>
`;

describe('parseDirPoolPath', () => {
  it('answers the target path of a dir pool', () => {
    expect(parseDirPoolPath(pool('dir', '/var/lib/libvirt/images'))).toBe('/var/lib/libvirt/images');
  });

  it('answers undefined for other pool types, whose target is not a directory of files', () => {
    expect(parseDirPoolPath(pool('logical', '/dev/vg0'))).toBeUndefined();
    expect(parseDirPoolPath(pool('netfs', '/mnt/nfs'))).toBeUndefined();
  });

  it('answers undefined for a relative or missing path', () => {
    expect(parseDirPoolPath(pool('dir', 'images'))).toBeUndefined();
    expect(parseDirPoolPath("<pool type='dir'><name>p</name></pool>")).toBeUndefined();
  });

  it('rejects output that is not pool XML with LIBVIRT_OUTPUT_INVALID', () => {
    expect(() => parseDirPoolPath('error: failed to get pool')).toThrow(expect.objectContaining({ code: 'LIBVIRT_OUTPUT_INVALID' }));
    expect(() => parseDirPoolPath("<domain type='kvm'/>")).toThrow(expect.objectContaining({ code: 'LIBVIRT_OUTPUT_INVALID' }));
  });
});
