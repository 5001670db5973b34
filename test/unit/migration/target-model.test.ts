/**
 * The target builds a peer's VM from what it received and the descriptor's hardware only
 * (issue 12, findings 1 and 2): pure decisions of `localVmModel`, `parseImageInfo` and the
 * VM-name rule.
 */
import { describe, expect, it } from 'vitest';
import { legacyDomainUuid, localVmModel, parseImageInfo, type ImageInfo, type VmSummary } from '../../../agent/migration/index.js';
import { vmNameProblem, type VirtualMachine } from '../../../protocols/vm/index.js';

const MiB = 1024 * 1024;
const UUID = '6f1c2b9e-2f4a-4c1e-9d7a-0b1c2d3e4f50';
const offer: VmSummary = { name: 'web1', vcpus: 2, memoryBytes: 256 * MiB, macs: ['52:54:00:00:00:01'], disks: [{ id: '0', capacityBytes: 1024 * MiB }], addresses: [] };
const described: VirtualMachine = {
  name: 'web1', uuid: '11111111-2222-4333-8444-555555555555', firmware: 'bios', cpu: { count: 2 }, memoryBytes: 256 * MiB,
  disks: [{ capacityBytes: 8 * MiB, format: 'qcow2', bus: 'virtio', file: { href: 'web1-disk0.img' }, source: 'block:/dev/sda', bootOrder: 1 }],
  cdroms: [{ bus: 'ide', file: { href: '/etc/shadow' }, targetDev: 'hdc' }],
  nics: [{ mac: '52:54:00:00:00:01', model: 'virtio', network: 'VM Network', attachment: 'direct' }],
  serialPorts: 1,
};
const raw: ImageInfo = { format: 'raw', virtualSizeBytes: 4 * MiB };
const file = (image: ImageInfo = raw, path = '/pool/intercloud-in-x-disk0.img') => [{ path, image }];
const build = (over: Partial<Parameters<typeof localVmModel>[0]> = {}) =>
  localVmModel({ described, offer, uuid: UUID, files: file(), networks: { map: {} }, ...over });

describe('localVmModel', () => {
  it('defines the received file in the format read from it, under our uuid and the offer name', () => {
    const { vm, losses } = build();
    expect(vm.name).toBe('web1');
    expect(vm.uuid).toBe(UUID);
    expect(vm.disks).toEqual([{ capacityBytes: 4 * MiB, format: 'raw', file: { href: '/pool/intercloud-in-x-disk0.img' }, bus: 'virtio', bootOrder: 1 }]);
    expect(losses).toEqual(expect.arrayContaining([
      expect.objectContaining({ severity: 'note', path: 'disks[0].format', value: 'qcow2' }),
      expect.objectContaining({ severity: 'note', path: 'uuid' }),
    ]));
  });

  it('drops host paths and host attachments named by the peer, and reports each as a loss', () => {
    const { vm, losses } = build();
    expect(vm.cdroms).toEqual([{ bus: 'ide', targetDev: 'hdc' }]);
    expect(vm.disks[0]!.source).toBeUndefined();
    expect(vm.nics).toEqual([{ mac: '52:54:00:00:00:01', model: 'virtio' }]);
    expect(losses.filter((l) => l.severity === 'loss').map((l) => l.path).sort()).toEqual(
      ['cdroms[0].file', 'disks[0].source', 'nics[0].attachment', 'nics[0].network']);
    expect(JSON.stringify(vm)).not.toContain('/etc/shadow');
    expect(JSON.stringify(vm)).not.toContain('/dev/sda');
  });

  it('maps networks by local policy only', () => {
    expect(build({ networks: { map: { 'VM Network': 'tenant-a' } } }).vm.nics[0]).toMatchObject({ network: 'tenant-a', attachment: 'network' });
    expect(build({ networks: { map: {}, default: 'guests' } }).vm.nics[0]).toMatchObject({ network: 'guests', attachment: 'network' });
    // a network named after an object's own properties is no entry of the policy
    for (const network of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const peer = { ...described, nics: [{ ...described.nics[0]!, network }] };
      expect(build({ described: peer, networks: { map: { 'VM Network': 'tenant-a' }, default: 'guests' } }).vm.nics[0], network).toMatchObject({ network: 'guests', attachment: 'network' });
      expect(build({ described: peer }).vm.nics[0]!.network, network).toBeUndefined();
    }
  });

  it('refuses a descriptor that is not the offer\'s vm', () => {
    for (const d of [
      { ...described, name: 'other' },
      { ...described, cpu: { count: 8 } },
      { ...described, memoryBytes: 4096 * MiB },
      { ...described, disks: [...described.disks, ...described.disks] },
    ]) {
      expect(() => build({ described: d }), d.name).toThrow(expect.objectContaining({ code: 'MIGRATE_BAD_DESCRIPTOR' }));
    }
  });

  it('refuses a backing or data file that is not a received disk of the offer, takes one that is', () => {
    for (const image of [
      { format: 'qcow2', virtualSizeBytes: MiB, backingFile: '/var/lib/libvirt/images/victim.img' },
      { format: 'qcow2', virtualSizeBytes: MiB, backingFile: '../../etc/passwd' },
      { format: 'qcow2', virtualSizeBytes: MiB, backingFile: 'json:{"file.filename":"/etc/passwd"}' },
      { format: 'qcow2', virtualSizeBytes: MiB, dataFile: '/dev/sda' },
    ]) {
      expect(() => build({ files: file(image) }), JSON.stringify(image)).toThrow(expect.objectContaining({ code: 'MIGRATE_BAD_DISK' }));
    }
    const two: VmSummary = { ...offer, disks: [{ id: '0', capacityBytes: MiB }, { id: '1', capacityBytes: MiB }] };
    const { vm } = build({
      offer: two, described: { ...described, disks: [described.disks[0]!, described.disks[0]!] },
      files: [
        { path: '/pool/a-disk0.img', image: { format: 'qcow2', virtualSizeBytes: MiB, backingFile: 'a-disk1.img', backingFormat: 'raw' } },
        { path: '/pool/a-disk1.img', image: { format: 'raw', virtualSizeBytes: MiB } },
      ],
    });
    expect(vm.disks.map((d) => d.format)).toEqual(['qcow2', 'raw']);
  });

  it('refuses a received backing file read in another format than it has, or probed', () => {
    const two: VmSummary = { ...offer, disks: [{ id: '0', capacityBytes: MiB }, { id: '1', capacityBytes: MiB }] };
    const chain = (backingFormat?: string) => build({
      offer: two, described: { ...described, disks: [described.disks[0]!, described.disks[0]!] },
      files: [
        { path: '/pool/a-disk0.img', image: { format: 'qcow2', virtualSizeBytes: MiB, backingFile: 'a-disk1.img', ...(backingFormat ? { backingFormat } : {}) } },
        // what qemu-img reports for a vmdk descriptor it does not recognise: raw
        { path: '/pool/a-disk1.img', image: { format: 'raw', virtualSizeBytes: MiB } },
      ],
    });
    expect(() => chain('vmdk')).toThrow(expect.objectContaining({ code: 'MIGRATE_BAD_DISK', message: expect.stringContaining('"vmdk"') }));
    expect(() => chain(undefined)).toThrow(expect.objectContaining({ code: 'MIGRATE_BAD_DISK', message: expect.stringContaining('"probed"') }));
  });

  it('refuses an image that declares a larger disk than the offer', () => {
    expect(() => build({ files: file({ format: 'qcow2', virtualSizeBytes: 100 * 1024 * 1024 * MiB }) }))
      .toThrow(expect.objectContaining({ code: 'MIGRATE_BAD_DISK', details: expect.objectContaining({ offeredBytes: offer.disks[0]!.capacityBytes }) }));
  });

  it('refuses image formats that can name other files (vmdk extents, …)', () => {
    expect(() => build({ files: file({ format: 'vmdk', virtualSizeBytes: MiB }) })).toThrow(expect.objectContaining({ code: 'MIGRATE_BAD_DISK' }));
  });
});

describe('parseImageInfo', () => {
  it('reads format, virtual size, backing and data files of qemu-img info --output=json', () => {
    const text = JSON.stringify({
      'virtual-size': 16777216, filename: '/x.qcow2', format: 'qcow2', 'backing-filename': 'base.img', 'full-backing-filename': '/p/base.img', 'backing-filename-format': 'raw',
      'format-specific': { type: 'qcow2', data: { compat: '1.1', 'data-file': '/dev/sdb' } },
    });
    expect(parseImageInfo(text, '/x.qcow2')).toEqual({ format: 'qcow2', virtualSizeBytes: 16777216, backingFile: '/p/base.img', backingFormat: 'raw', dataFile: '/dev/sdb' });
    expect(parseImageInfo('{"virtual-size": 4096, "format": "raw"}', '/y')).toEqual({ format: 'raw', virtualSizeBytes: 4096 });
    expect(() => parseImageInfo('not json', '/z')).toThrow(expect.objectContaining({ code: 'MIGRATE_BAD_DISK' }));
  });
});

describe('vm names', () => {
  it('takes ordinary names', () => {
    for (const n of ['web1', 'demo-vm', 'itmig-15', 'a.b_c:d', 'My VM', 'vm-é']) expect(vmNameProblem(n), n).toBeUndefined();
  });
  it("refuses names virsh would read as an option, an id or a uuid, and libvirt's illegal ones", () => {
    for (const n of ['', '-x', '--help', '7', '6f1c2b9e-2f4a-4c1e-9d7a-0b1c2d3e4f50', 'a/b', 'a\nb', ' web', 'x'.repeat(201)]) {
      expect(vmNameProblem(n), JSON.stringify(n)).toBeDefined();
    }
  });
});

describe('legacyDomainUuid', () => {
  it('is a stable uuid per offer (old journals that recorded none)', () => {
    expect(legacyDomainUuid('o1')).toBe(legacyDomainUuid('o1'));
    expect(legacyDomainUuid('o1')).not.toBe(legacyDomainUuid('o2'));
    expect(legacyDomainUuid('o1')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
