/** Registration, config validation and the documentation of every hypervisor error code. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createHypervisor, HvErrors, HYPERVISORS, hypervisorConfigPaths, LibvirtErrors, parseHypervisorSettings, resolveHypervisorPaths, VmwareErrors,
} from '../../../adapters/hypervisor/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('hypervisor registry', () => {
  it('registers libvirt, vmware and fake explicitly', () => {
    expect(Object.keys(HYPERVISORS).sort()).toEqual(['fake', 'libvirt', 'vmware']);
  });

  it('refuses unknown keys, a missing host key pin and an unknown kind, naming the fix', () => {
    const e1 = thrown(() => createHypervisor('fake', { name: 'x', colour: 'red' }));
    expect(isIntercloudError(e1, 'HV_CONFIG_INVALID')).toBe(true);
    expect((e1 as Error).message).toContain('colour');
    const e2 = thrown(() => createHypervisor('libvirt', { name: 'a', uri: 'qemu:///system', ssh: { host: 'h', username: 'u', privateKeyFile: '/k' } }));
    expect((e2 as Error).message).toContain('pin the host key');
    const e3 = thrown(() => createHypervisor('libvirt', { name: 'a', uri: 'qemu:///system', ssh: { host: 'h', username: 'u', privateKeyFile: '/k', hostKeyFingerprint: 'md5:aa' } }));
    expect((e3 as Error).message).toContain('SHA256:');
    expect(isIntercloudError(thrown(() => createHypervisor('xen', {})), 'HV_UNKNOWN_BACKEND')).toBe(true);
  });

  it('reports a key file it cannot read as HV_CONFIG_INVALID before connecting', () => {
    const e = thrown(() => createHypervisor('libvirt', { name: 'a', uri: 'qemu:///system', ssh: { host: 'h', username: 'u', privateKeyFile: '/nonexistent/key', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` } }));
    expect(isIntercloudError(e, 'HV_CONFIG_INVALID')).toBe(true);
    expect(isIntercloudError(e) && e.details['path']).toBe('/nonexistent/key');
  });

  it('documents every error code in the README', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../../adapters/hypervisor/README.md'), 'utf8');
    for (const [code, info] of Object.entries({ ...HvErrors, ...LibvirtErrors, ...VmwareErrors })) {
      expect(readme).toContain(`| \`${code}\` | ${info.retryable ? 'yes' : 'no'} | ${info.doc} |`);
    }
  });
});

describe('hypervisor config paths', () => {
  it('each adapter schema marks the fields that name files on this machine', () => {
    expect(hypervisorConfigPaths('libvirt')).toEqual([['ssh', 'privateKeyFile'], ['ssh', 'knownHostsFile']]);
    expect(hypervisorConfigPaths('vmware')).toEqual([['caFile']]);
    expect(hypervisorConfigPaths('fake')).toEqual([]);
  });

  it('resolves the marked relative paths against a folder and leaves the rest alone', () => {
    const settings = parseHypervisorSettings('libvirt', {
      name: 'a', uri: 'qemu:///system', virsh: 'bin/virsh',
      ssh: { host: 'h', username: 'u', privateKeyFile: 'id_ed25519', knownHostsFile: '/etc/ssh/known_hosts' },
    });
    const resolved = resolveHypervisorPaths(settings, '/etc/intercloud');
    expect(resolved.config).toMatchObject({
      virsh: 'bin/virsh',
      ssh: { privateKeyFile: '/etc/intercloud/id_ed25519', knownHostsFile: '/etc/ssh/known_hosts' },
    });
    expect(settings.config).toMatchObject({ ssh: { privateKeyFile: 'id_ed25519' } });
  });

  it('creates an adapter from parsed settings without parsing again', async () => {
    const hv = createHypervisor(parseHypervisorSettings('fake', { name: 'x', vcpus: 3 }));
    expect(hv.kind).toBe('fake');
    expect((await hv.hostCapacity()).vcpusTotal).toBe(3);
  });
});
