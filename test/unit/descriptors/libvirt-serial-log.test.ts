import { describe, expect, it } from 'vitest';
import { readLibvirtDomain, writeLibvirtDomain } from '../../../protocols/libvirt-xml/index.js';
import type { VirtualMachine } from '../../../protocols/vm/index.js';

const vm: VirtualMachine = {
  name: 'web1', firmware: 'bios', cpu: { count: 1 }, memoryBytes: 128 * 2 ** 20, disks: [], cdroms: [], nics: [], serialPorts: 2,
};

describe('libvirt writer: serial console logs', () => {
  it('logs each serial console to a file under serialLogDir when asked', () => {
    const { value } = writeLibvirtDomain(vm, { domainType: 'qemu', serialLogDir: '/var/log/consoles/' });
    expect(value).toContain("<log file=\"/var/log/consoles/web1-serial0.log\" append=\"on\"/>");
    expect(value).toContain("<log file=\"/var/log/consoles/web1-serial1.log\" append=\"on\"/>");
    expect(readLibvirtDomain(value, { source: 'test' }).value.serialPorts).toBe(2);
  });

  it('writes no log without it', () => {
    expect(writeLibvirtDomain(vm, { domainType: 'qemu' }).value).not.toContain('<log ');
  });
});
