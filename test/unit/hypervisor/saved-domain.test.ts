/**
 * The pure side of a live move on libvirt (adapters/hypervisor/libvirt/saved-domain.ts and the
 * new virsh-output readers), on libvirt 9's own output: a saved domain description from
 * `virsh save-image-dumpxml` and `virsh capabilities` (fixtures/, captured on this machine's
 * libvirtd). The saved description comes from a peer, so most cases are refusals.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRestore } from '../../../adapters/hypervisor/index.js';
import {
  parseCapabilityMachines, parseDomainDisks, parseRemovableTargets, parseStateRequirements, rewriteSavedDomain,
} from '../../../adapters/hypervisor/libvirt/saved-domain.js';
import type { SavedDomainPlan } from '../../../adapters/hypervisor/libvirt/saved-domain.js';
import { parseHypervisorVersion, parseImageReferences, parseQemuImgChain } from '../../../adapters/hypervisor/libvirt/virsh-output.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

const fixture = (f: string): string => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8');
const SAVED = fixture('saved-domain.xml');
const SRC = '/var/lib/intercloud-dev/libvirt/cloud-a/images';
const DST = '/srv/pool-b';

const plan: SavedDomainPlan = {
  name: 'lcx1',
  disks: [[{ path: `${DST}/lcx1-disk0.img`, format: 'raw' }, { path: `${DST}/lcx1-disk0.ovl1.qcow2`, format: 'qcow2' }, { path: `${DST}/lcx1-disk0.ovl2.qcow2`, format: 'qcow2' }]],
  consoleLogDir: '/var/log/b-consoles',
};

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return isIntercloudError(err) ? err.code : String(err);
  }
}

describe('libvirt saved domain: reading', () => {
  it('reads each guest disk chain, top first, from a description with backingStore', () => {
    expect(parseDomainDisks(SAVED)).toEqual([{
      target: 'vda', type: 'file',
      chain: [
        { path: `${SRC}/lcx1-ovl2.qcow2`, format: 'qcow2' },
        { path: `${SRC}/lcx1-ovl1.qcow2`, format: 'qcow2' },
        { path: `${SRC}/lcx1-disk0.img`, format: 'raw' },
      ],
    }]);
    expect(parseRemovableTargets(SAVED)).toEqual([]);
  });

  it('reads the machine a saved state needs, and the machines virsh capabilities offers', () => {
    const needs = parseStateRequirements(SAVED);
    expect(needs).toEqual({ hypervisor: 'qemu', arch: 'x86_64', machine: 'pc-i440fx-7.2' });
    const machines = parseCapabilityMachines(fixture('capabilities.xml'), 'qemu');
    expect(machines).toContainEqual({ arch: 'x86_64', machine: 'pc-i440fx-7.2', alias: 'pc' });
    expect(machines.filter((m) => m.arch === 'x86_64').length).toBeGreaterThan(10);
    expect(canRestore({ hypervisor: 'qemu', machines }, needs)).toBe(true);
    expect(canRestore({ hypervisor: 'qemu', machines: machines.filter((m) => m.machine !== 'pc-i440fx-7.2') }, needs)).toBe(false);
    expect(parseCapabilityMachines(fixture('capabilities.xml'), 'xen')).toEqual([]);
  });

  it('reads qemu-img chains, references and virsh version', () => {
    expect(parseQemuImgChain('[{"filename":"/a/t.qcow2","format":"qcow2","virtual-size":10},{"filename":"/a/b.img","format":"raw","virtual-size":10}]'))
      .toEqual([{ filename: '/a/t.qcow2', format: 'qcow2', virtualSizeBytes: 10 }, { filename: '/a/b.img', format: 'raw', virtualSizeBytes: 10 }]);
    expect(parseImageReferences('{"virtual-size":1048576,"format":"qcow2","backing-filename":"/etc/shadow","format-specific":{"type":"qcow2","data":{"data-file":"/tmp/df.raw"}}}'))
      .toEqual({ format: 'qcow2', virtualSizeBytes: 1048576, backingFile: '/etc/shadow', dataFile: '/tmp/df.raw' });
    expect(parseImageReferences('{"virtual-size":1048576,"format":"qcow2","backing-filename":"/pool/d0-0.img","backing-filename-format":"raw"}'))
      .toEqual({ format: 'qcow2', virtualSizeBytes: 1048576, backingFile: '/pool/d0-0.img', backingFormat: 'raw' });
    expect(parseHypervisorVersion('Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\nUsing API: QEMU 9.0.0\nRunning hypervisor: QEMU 7.2.22\n')).toBe('7.2.22');
    expect(code(() => parseQemuImgChain('{}'))).toBe('LIBVIRT_OUTPUT_INVALID');
  });
});

describe('libvirt saved domain: the rewrite for the restoring host', () => {
  it('puts this host\'s chain, console log and no emulator into the description, and nothing of the source host stays', () => {
    const xml = rewriteSavedDomain(SAVED, plan);
    expect(parseDomainDisks(xml)).toEqual([{
      target: 'vda', type: 'file',
      chain: [...plan.disks[0]!].reverse().map((p) => ({ path: p.path, format: p.format })),
    }]);
    expect(xml).not.toContain(SRC);
    expect(xml).not.toContain('/var/log/intercloud');
    expect(xml).not.toContain('<emulator');
    expect(xml.match(/file="\/var\/log\/b-consoles\/lcx1-serial0\.log"/g)).toHaveLength(2);
    // What the ABI check compares is kept as it was.
    expect(xml).toContain('machine="pc-i440fx-7.2"');
    expect(xml).toContain('<uuid>28cbadc3-4d61-4b1c-af96-20006b4a0f5a</uuid>');
    expect(xml).toContain('slot="0x02"');
    expect(parseStateRequirements(xml)).toEqual(parseStateRequirements(SAVED));
  });

  it('drops console logs when this host keeps none, and follows the host\'s nic target', () => {
    const withNic = SAVED.replace('<input type=\'mouse\'', "<interface type='bridge'><mac address='52:54:00:1c:bb:01'/><source bridge='br-source'/><target dev='vnet7'/><model type='virtio'/></interface>\n    <input type='mouse'");
    const { consoleLogDir: _c, ...noLogs } = plan;
    const xml = rewriteSavedDomain(withNic, { ...noLogs, nicTarget: { type: 'network', name: 'default' } });
    expect(xml).not.toContain('<log');
    expect(xml).toContain('<interface type="network">');
    expect(xml).toContain('<source network="default"/>');
    expect(xml).toContain('<mac address="52:54:00:1c:bb:01"/>');
    expect(xml).not.toContain('br-source');
    expect(xml).not.toContain('vnet7');
  });

  it("listens for graphics where this host says, on a port it picks, and drops the source's tap names, nic backends and cgroup", () => {
    const xml = rewriteSavedDomain(SAVED
      .replace('<memballoon', "<graphics type='vnc' port='5901' autoport='no' listen='0.0.0.0'><listen type='address' address='0.0.0.0'/></graphics>\n    <interface type='user'><target dev='vnet9'/><backend tap='/dev/net/tun'/><model type='virtio'/></interface>\n    <memballoon")
      .replace('<memory', '<resource><partition>/machine/other</partition></resource>\n  <memory'), plan);
    expect(xml).toMatch(/<graphics type="vnc" autoport="yes"\s*\/>/);
    expect(xml).not.toContain('0.0.0.0');
    expect(xml).not.toContain('5901');
    expect(xml).not.toContain('vnet9');
    expect(xml).not.toContain('/dev/net/tun');
    expect(xml).not.toContain('partition');
    expect(xml).toContain('<model type="virtio"');
  });

  it('keeps namespaced metadata', () => {
    const withMeta = SAVED.replace('<memory', '<metadata><ic:vm xmlns:ic="urn:intercloud:vm"><ic:capacity>7</ic:capacity></ic:vm></metadata>\n  <memory');
    const xml = rewriteSavedDomain(withMeta, plan);
    expect(xml).toContain('<ic:vm xmlns:ic="urn:intercloud:vm">');
    expect(xml).toContain('<ic:capacity>7</ic:capacity>');
  });

  const refusals: Array<[string, string, Partial<SavedDomainPlan>?]> = [
    ['another vm name', SAVED.replace('<name>lcx1</name>', '<name>other</name>')],
    ['a kernel of the source host', SAVED.replace("<boot dev='hd'/>", "<boot dev='hd'/><kernel>/boot/vmlinuz</kernel>")],
    ['a firmware loader', SAVED.replace("<boot dev='hd'/>", "<boot dev='hd'/><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>")],
    ['a cd-rom with media', SAVED.replace('<controller type=\'usb\'', "<disk type='file' device='cdrom'><source file='/etc/shadow'/><target dev='hdc' bus='ide'/></disk>\n    <controller type='usb'")],
    ['a second disk that was not sent', SAVED.replace('<controller type=\'usb\'', "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/dev/sda'/><target dev='vdb' bus='virtio'/></disk>\n    <controller type='usb'")],
    ['a block device disk', SAVED.replace("<disk type='file' device='disk'>", "<disk type='block' device='disk'>")],
    ['fewer disks than were sent', SAVED, { disks: [...plan.disks, plan.disks[0]!] }],
    ['a host directory shared into the guest', SAVED.replace('<memballoon', "<filesystem type='mount'><source dir='/root'/><target dir='r'/></filesystem>\n    <memballoon")],
    ['a host pci device', SAVED.replace('<memballoon', "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0' slot='3' function='0'/></source></hostdev>\n    <memballoon")],
    ['a serial port to a host socket', SAVED.replace('<memballoon', "<serial type='unix'><source mode='connect' path='/run/evil.sock'/><target port='1'/></serial>\n    <memballoon").replace(/type='unix'><source mode='connect'/, "type='tcp'><source mode='connect' host='10.0.0.1' service='22'/><x path='/run/evil.sock'")],
    ['a serial log to a file when this host keeps none', SAVED.replace("<serial type='pty'>", "<serial type='file'><source path='/etc/cron.d/x'/>"), { consoleLogDir: undefined }],
    ['a tpm emulator state file', SAVED.replace('<memballoon', "<tpm model='tpm-crb'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>\n    <memballoon")],
    ['qemu command-line passthrough', SAVED.replace('<domain type=\'qemu\'>', "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>").replace('</devices>', "</devices>\n  <qemu:commandline><qemu:arg value='-drive'/><qemu:arg value='file=/etc/shadow'/><qemu:env name='LD_PRELOAD' value='/srv/pool-b/x.so'/></qemu:commandline>")],
    ['a namespaced element inside a device', SAVED.replace('<memballoon', "<x:dev xmlns:x='urn:x'/>\n    <memballoon")],
    ['a bootloader of the host', SAVED.replace('<memory', '<bootloader>/usr/bin/pygrub</bootloader>\n  <memory')],
    ['block i/o tuning of a host disk', SAVED.replace('<memory', '<blkiotune><device><path>/dev/sda</path><weight>500</weight></device></blkiotune>\n  <memory')],
    ['a host input device passed through', SAVED.replace('<memballoon', "<input type='passthrough' bus='virtio'><source evdev='/dev/input/event0'/></input>\n    <memballoon")],
    ['a nic on a host interface', SAVED.replace('<memballoon', "<interface type='direct'><source dev='eth0' mode='passthrough'/></interface>\n    <memballoon")],
    ['a nic that is a udp socket to anywhere', SAVED.replace('<memballoon', "<interface type='udp'><source address='192.0.2.1' port='5555'/></interface>\n    <memballoon")],
    ['an nvdimm backed by a host file', SAVED.replace('<memballoon', "<memory model='nvdimm'><source><path>/etc/shadow</path></source><target><size unit='KiB'>524288</size></target></memory>\n    <memballoon")],
    ['an rng fed from another host file', SAVED.replace('<memballoon', "<rng model='virtio'><backend model='random'>/etc/shadow</backend></rng>\n    <memballoon")],
    ['an rng fed from a socket', SAVED.replace('<memballoon', "<rng model='virtio'><backend model='egd' type='tcp'><source mode='connect' host='192.0.2.1' service='1'/></backend></rng>\n    <memballoon")],
    ['host audio', SAVED.replace("<audio id='1' type='none'/>", "<audio id='1' type='oss'><input dev='/dev/dsp'/></audio>")],
    ['a gpu render node of the host', SAVED.replace('<memballoon', "<graphics type='egl-headless'><gl rendernode='/dev/dri/renderD128'/></graphics>\n    <memballoon")],
    ['a render node on an allowed display', SAVED.replace('<memballoon', "<graphics type='spice'><gl enable='yes' rendernode='/dev/dri/renderD128'/></graphics>\n    <memballoon")],
    ['a lease on a host lockspace', SAVED.replace('<memballoon', "<lease><lockspace>s</lockspace><key>k</key><target path='/var/lib/x'/></lease>\n    <memballoon")],
    ['a serial port that is not a number (a path into the log folder)', SAVED.replace("<target type='isa-serial' port='0'>", "<target type='isa-serial' port='../../etc/x'>")],
    ['not a domain', '<network><name>lcx1</name></network>'],
    ['unreadable xml', '<domain><name>lcx1</name>'],
  ];
  for (const [what, xml, over] of refusals) {
    it(`refuses ${what} (HV_STATE_INVALID)`, () => {
      const p: SavedDomainPlan = { ...plan, ...over } as SavedDomainPlan;
      if (over && 'consoleLogDir' in over && over.consoleLogDir === undefined) delete (p as { consoleLogDir?: string }).consoleLogDir;
      expect(code(() => rewriteSavedDomain(xml, p))).toBe('HV_STATE_INVALID');
    });
  }
});
