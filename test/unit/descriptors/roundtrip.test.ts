/**
 * Property-based round trips: model -> OVF -> model and model -> libvirt -> model keep every field
 * the target format expresses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readLibvirtDomain, writeLibvirtDomain } from '../../../protocols/libvirt-xml/index.js';
import { readOvf, writeOvf } from '../../../protocols/ovf/index.js';
import { assertValidVm, type VirtualMachine } from '../../../protocols/vm/index.js';

const word = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
const text = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 .,<>&'"-]{0,30}[A-Za-z0-9.]$/);
const mac = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }).map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
const uuid = fc.uuid().map((u) => u.toLowerCase());
const mib = fc.integer({ min: 1, max: 1 << 20 }).map((n) => n * 2 ** 20);
const opt = <T>(key: string, arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined }).map((v) => (v === undefined ? {} : { [key]: v }));

const cpu = fc.oneof(
  fc.integer({ min: 1, max: 64 }).map((count) => ({ count })),
  fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 16 })).map(([sockets, cores]) => ({ count: sockets * cores, topology: { sockets, cores, threads: 1 } })),
);

/** Models whose every field OVF 1.x expresses (no boot order, device names or read-only disks). */
const ovfModel: fc.Arbitrary<VirtualMachine> = fc
  .record({
    name: word,
    uuid: opt('uuid', uuid),
    description: opt('description', text),
    cim: fc.integer({ min: 1, max: 110 }),
    firmware: fc.constantFrom('bios' as const, 'uefi' as const),
    secure: fc.boolean(),
    cpu,
    memoryBytes: mib,
    scsiModel: fc.constantFrom('lsilogic', 'pvscsi', 'lsilogicsas', 'buslogic'),
    disks: fc.array(fc.record({ cap: fc.integer({ min: 1, max: 1 << 16 }), format: fc.constantFrom('vmdk-stream' as const, 'vmdk' as const, 'qcow2' as const, 'raw' as const), bus: fc.constantFrom('ide' as const, 'scsi' as const, 'sata' as const), size: opt('sizeBytes', fc.integer({ min: 1, max: 2 ** 40 })), gz: fc.boolean() }), { maxLength: 6 }),
    cdroms: fc.array(fc.boolean(), { maxLength: 2 }),
    nics: fc.array(fc.record({ mac: opt('mac', mac), model: opt('model', fc.constantFrom('e1000', 'e1000e', 'vmxnet3', 'pcnet', 'virtio')), network: word }), { maxLength: 8 }),
    serialPorts: opt('serialPorts', fc.integer({ min: 1, max: 4 })),
    tpm: opt('tpm', fc.constant(true)),
    vga: fc.boolean(),
    properties: fc.array(fc.record({ key: word, type: fc.constantFrom('string', 'boolean', 'int'), userConfigurable: fc.boolean(), value: opt('value', word), label: opt('label', text) }), { maxLength: 4 }),
  })
  .map((g) => ({
    name: g.name,
    ...g.uuid,
    ...g.description,
    os: { cimId: g.cim },
    firmware: g.firmware,
    ...(g.firmware === 'uefi' && g.secure ? { secureBoot: true } : {}),
    cpu: g.cpu,
    memoryBytes: g.memoryBytes,
    disks: g.disks.map((d, i) => ({
      capacityBytes: d.cap * 2 ** 20,
      format: d.format,
      file: { href: `disk${i}.img${d.gz ? '.gz' : ''}`, ...d.size, ...(d.gz ? { compression: 'gzip' as const } : {}) },
      bus: d.bus,
      ...(d.bus === 'scsi' ? { controllerModel: g.scsiModel } : d.bus === 'sata' ? { controllerModel: 'ahci' } : {}),
    })),
    cdroms: g.cdroms.map((has, i) => ({ bus: 'ide' as const, ...(has ? { file: { href: `cd${i}.iso` } } : {}) })),
    nics: g.nics.map((n) => ({ attachment: 'network' as const, ...n.mac, ...n.model, network: n.network })),
    ...(g.vga ? { graphics: [{ type: 'vga' }] } : {}),
    ...g.serialPorts,
    ...g.tpm,
    ...(g.properties.length ? { properties: uniqueBy(g.properties, (p) => p.key).map((p) => ({ key: p.key, type: p.type, userConfigurable: p.userConfigurable, ...p.value, ...p.label })) } : {}),
  }));

function uniqueBy<T>(xs: T[], key: (x: T) => string): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => (seen.has(key(x)) ? false : (seen.add(key(x)), true)));
}

/** Models whose every field libvirt (plus our metadata) expresses. */
const libvirtModel: fc.Arbitrary<VirtualMachine> = fc
  .record({
    name: word,
    uuid: opt('uuid', uuid),
    description: opt('description', text),
    os: opt('os', fc.record({ cimId: fc.integer({ min: 1, max: 110 }), name: word })),
    firmware: fc.constantFrom('bios' as const, 'uefi' as const),
    secure: fc.boolean(),
    cpu: fc.oneof(cpu, fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 2 })).map(([sockets, cores, threads]) => ({ count: sockets * cores * threads, topology: { sockets, cores, threads } }))),
    kib: fc.integer({ min: 1024, max: 2 ** 30 }),
    boot: fc.boolean(),
    disks: fc.array(fc.record({ cap: fc.nat({ max: 2 ** 45 }), format: fc.constantFrom('raw' as const, 'qcow2' as const, 'vmdk' as const, 'vmdk-stream' as const, 'vdi' as const, 'vhdx' as const), bus: fc.constantFrom('ide' as const, 'sata' as const, 'scsi' as const, 'virtio' as const), readonly: fc.boolean() }), { maxLength: 4 }),
    nics: fc.array(fc.record({ mac: opt('mac', mac), model: opt('model', fc.constantFrom('e1000', 'virtio', 'rtl8139', 'vmxnet3')), network: word, attachment: fc.constantFrom('network' as const, 'bridge' as const) }), { maxLength: 6 }),
    cdroms: fc.array(fc.boolean(), { maxLength: 2 }),
    graphics: fc.array(fc.constantFrom('vnc', 'spice'), { maxLength: 2 }),
    serialPorts: opt('serialPorts', fc.integer({ min: 1, max: 4 })),
    tpm: opt('tpm', fc.constant(true)),
  })
  .map((g) => ({
    name: g.name,
    ...g.uuid,
    ...g.description,
    ...g.os,
    arch: 'x86_64',
    firmware: g.firmware,
    ...(g.firmware === 'uefi' && g.secure ? { secureBoot: true } : {}),
    cpu: g.cpu,
    memoryBytes: g.kib * 1024,
    disks: g.disks.map((d, i) => ({
      capacityBytes: d.cap,
      format: d.format,
      file: { href: `/var/lib/libvirt/images/d${i}` },
      bus: d.bus,
      ...(d.readonly ? { readonly: true } : {}),
      ...(g.boot ? { bootOrder: i + 1 } : {}),
    })),
    cdroms: g.cdroms.map((has, i) => ({ bus: 'sata' as const, ...(has ? { file: { href: `/isos/cd${i}.iso` } } : {}) })),
    nics: g.nics.map((n) => ({ attachment: n.attachment, ...n.mac, ...n.model, network: n.network })),
    ...(g.graphics.length ? { graphics: g.graphics.map((type) => ({ type })) } : {}),
    ...g.serialPorts,
    ...g.tpm,
  }));

/** Drops the provenance and names the writer derives (targetDev) before comparing. */
function comparable(vm: VirtualMachine): unknown {
  const { origin: _o, ...rest } = vm;
  return {
    ...rest,
    disks: vm.disks.map(({ targetDev: _t, ...d }) => d),
    cdroms: vm.cdroms.map(({ targetDev: _t, ...c }) => c),
  };
}

describe('round trips', () => {
  it('model -> OVF 1.x -> model keeps every field OVF expresses', () => {
    fc.assert(
      fc.property(ovfModel, (vm) => {
        assertValidVm(vm);
        const back = readOvf(writeOvf([vm]).value, { source: 'rt.ovf' }).value.systems[0] as VirtualMachine;
        expect(comparable(back)).toEqual(comparable(vm));
      }),
      { numRuns: 200 },
    );
  });

  it('model -> OVF 2.0 -> model keeps every field OVF expresses', () => {
    fc.assert(
      fc.property(ovfModel, (vm) => {
        const back = readOvf(writeOvf([vm], { version: '2.0' }).value, { source: 'rt2.ovf' }).value.systems[0] as VirtualMachine;
        expect(comparable(back)).toEqual(comparable(vm));
      }),
      { numRuns: 100 },
    );
  });

  it('model -> libvirt -> model keeps every field libvirt expresses', () => {
    fc.assert(
      fc.property(libvirtModel, (vm) => {
        assertValidVm(vm);
        const back = readLibvirtDomain(writeLibvirtDomain(vm).value, { source: 'rt.xml' }).value;
        expect(comparable(back)).toEqual(comparable(vm));
      }),
      { numRuns: 200 },
    );
  });

  it('reports what libvirt cannot express instead of dropping it silently', () => {
    const vm: VirtualMachine = { name: 'p', firmware: 'bios', cpu: { count: 1 }, memoryBytes: 2 ** 30, disks: [{ capacityBytes: 2 ** 30, bus: 'scsi', populatedBytes: 5 }], cdroms: [], nics: [], properties: [{ key: 'k', type: 'string', userConfigurable: true, value: 'v' }] };
    const { report } = writeLibvirtDomain(vm);
    expect(report.entries.filter((e) => e.severity === 'loss').map((e) => e.path)).toEqual(['disks[0].populatedBytes', 'properties[0]']);
  });
});
