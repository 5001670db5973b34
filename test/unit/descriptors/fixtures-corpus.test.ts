/**
 * Every real-world descriptor in ../shared/fixtures: the well-formed ones are read, the broken
 * ones rejected with a coded error naming the file and the line or element.
 */
import { describe, expect, it } from 'vitest';
import { readDescriptor } from '../../../protocols/convert/index.js';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { decodeDescriptor } from '../../../protocols/xml/index.js';
import { allFixtures, fixtureBytes } from './fixtures.js';

/** The broken fixtures (see ../shared/fixtures/README.md and SOURCES.tsv) and the code each must get. */
const BROKEN: Record<string, string> = {
  'archlinux__arch-boxes__box.ovf': 'OVF_BAD_VALUE', // DISK_CAPACITY placeholder
  'cot__COT__tests__invalid.ovf': 'OVF_BAD_REFERENCE', // disk fileRef to a missing File
  'ganeti__test__data__ovfdata__empty.ovf': 'OVF_MISSING', // VirtualSystem without ovf:id
  'ganeti__test__data__ovfdata__no_disk_in_ref.ovf': 'OVF_BAD_REFERENCE',
  'govmomi__ovf__fixtures__empty.ovf': 'OVF_NO_CONTENT',
  'govmomi__ovf__fixtures__external__ImportOvf2014__invalid.ovf': 'OVF_MISSING',
  'govmomi__ovf__fixtures__external__OVFToolTemplates__OVF__xmltestfiles__Envelope__Neg__invalid_namespace.ovf': 'OVF_NAMESPACE',
  'govmomi__ovf__fixtures__external__ovftoolresources__item_msgid.ovf': 'OVF_XML_UNBOUND_PREFIX',
  'vagrant-libvirt__spec__unit__templates__domain_all_settings.xml': 'OVF_LIBVIRT_INVALID', // empty <name>/<memory> template
  'virt-manager__tests__data__cli__compare__virt-install-bhyve-uefi.xml': 'OVF_XML_MALFORMED',
  'virt-manager__tests__data__cli__compare__virt-install-memory-hotplug.xml': 'OVF_XML_MALFORMED',
  'virt-manager__tests__data__cli__compare__virt-install-remote-storage.xml': 'OVF_XML_MALFORMED',
  'virt-manager__tests__data__cli__compare__virt-install-xen-pv.xml': 'OVF_XML_MALFORMED',
  'virt-manager__tests__virtconv-files__libvirt_output__ovf2libvirt_ovf_directory.libvirt': 'OVF_XML_MALFORMED',
  'virt-manager__tests__virtconv-files__libvirt_output__ovf2libvirt_test2.libvirt': 'OVF_XML_MALFORMED',
  'virt-manager__tests__virtconv-files__libvirt_output__ovf2libvirt_test_gzip.libvirt': 'OVF_XML_MALFORMED',
};

const read = (dir: string, name: string) =>
  readDescriptor(decodeDescriptor(fixtureBytes(dir, name), name), {
    source: name,
    format: dir === 'ovf' ? 'ovf' : dir === 'libvirt' ? 'libvirt' : 'virt-image',
    name: 'foobar',
  });

describe('fixtures corpus', () => {
  const files = allFixtures();

  it('holds the 107 descriptors the README describes', () => {
    expect(files.length).toBe(107);
    for (const name of Object.keys(BROKEN)) expect(files.some((f) => f.name === name)).toBe(true);
  });

  for (const f of files.filter((x) => BROKEN[x.name] === undefined)) {
    it(`reads ${f.dir}/${f.name}`, () => {
      const r = read(f.dir, f.name);
      // nostalgia-vapp is a VirtualSystemCollection holding only storage-policy sections.
      expect(r.value.vms.length).toBe(f.name.endsWith('policy__nostalgia-vapp.ovf') ? 0 : r.value.vms.length || 1);
      for (const vm of r.value.vms) {
        expect(vm.name.length).toBeGreaterThan(0);
        expect(vm.memoryBytes).toBeGreaterThan(0);
        expect(vm.cpu.count).toBeGreaterThan(0);
        for (const n of vm.nics) if (n.mac) expect(n.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      }
    });
  }

  for (const f of files.filter((x) => BROKEN[x.name] !== undefined)) {
    it(`rejects ${f.dir}/${f.name} with ${BROKEN[f.name]}`, () => {
      let err: unknown;
      try {
        read(f.dir, f.name);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IntercloudError);
      const e = err as IntercloudError;
      expect(e.code).toBe(BROKEN[f.name]);
      expect(e.details['source']).toBe(f.name);
      expect(e.message).toContain(f.name);
      expect(e.details['line'] !== undefined || e.details['element'] !== undefined).toBe(true);
      expect(String(e.details['problem']).length).toBeGreaterThan(5);
    });
  }

  it('names the line SOURCES.tsv gives for the unbound prefix and the concatenated documents', () => {
    const lineOf = (dir: string, name: string) => {
      try {
        read(dir, name);
      } catch (e) {
        return (e as IntercloudError).details['line'];
      }
      return undefined;
    };
    expect(lineOf('ovf', 'govmomi__ovf__fixtures__external__ovftoolresources__item_msgid.ovf')).toBe(41);
    expect(lineOf('libvirt', 'virt-manager__tests__data__cli__compare__virt-install-bhyve-uefi.xml')).toBe(31);
    expect(lineOf('libvirt', 'virt-manager__tests__virtconv-files__libvirt_output__ovf2libvirt_test2.libvirt')).toBe(67);
  });

  it('reads OVF quirks: 0.9 sections, BOM, CRLF, gzip references, deployment options, collections', () => {
    const v09 = read('ovf', 'govmomi__ovf__fixtures__external__OVFFeatureSupportTestdata__VMware_Studio_ovf__VM_OVF09.ovf');
    expect(v09.value.ovf?.version).toBe('0.9');
    expect(v09.value.vms[0]?.disks.length).toBe(2);
    const bom = read('ovf', 'govmomi__ovf__fixtures__external__2011OVFs__sunVHW-DiskTypes__sunVHW-DiskTypes_invalidUTF.ovf');
    const plain = read('ovf', 'govmomi__ovf__fixtures__external__2011OVFs__sunVHW-DiskTypes__sunVHW-DiskTypes.ovf');
    expect(bom.value.vms).toEqual(plain.value.vms);
    const gz = read('ovf', 'ganeti__test__data__ovfdata__gzip_disk.ovf');
    expect(gz.value.vms[0]?.disks[0]?.file?.compression).toBe('gzip');
    const dep = read('ovf', 'govmomi__ovf__fixtures__deployment-configs.ovf');
    expect(dep.value.ovf?.deploymentOptions.length).toBeGreaterThan(1);
    expect(dep.report.entries.some((e) => e.path === 'DeploymentOptionSection')).toBe(true);
    const nested = read('ovf', 'govmomi__ovf__fixtures__external__ovf_extra_config__Nested-ESXi-3-Node-VSAN-Template.ovf');
    expect(nested.value.vms.length).toBe(3);
    expect(nested.value.vms[0]?.disks[0]?.capacityBytes).toBe(2 * 2 ** 30); // ${esxi1-OSDiskSize} = 2 GiB
    const crlf = read('ovf', 'virt-manager__tests__virtconv-files__ovf_input__test2.ovf');
    expect(crlf.value.vms[0]?.memoryBytes).toBe(1024 * 2 ** 20);
  });
});
