/** The conformance suite against the real libvirtd `cloud-b` in local mode (the same commands, no SSH). */
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { libvirt, libvirtSshConfig, refreshPool, virsh } from '../../integration/hypervisor/env.js';
import { hypervisorConformance } from './suite.js';

hypervisorConformance({
  name: 'libvirt (local, cloud-b)',
  async create() {
    const { ssh: _ssh, ...local } = libvirtSshConfig('cloud-b');
    return createHypervisor('libvirt', local);
  },
  async diskExists(href) {
    const { uri, pool } = libvirt('cloud-b');
    refreshPool(uri, pool);
    return virsh(uri, 'vol-list', '--pool', pool).split('\n').some((l) => l.trim().split(/\s+/)[1] === href);
  },
  format: 'raw',
  hasExtents: true,
  // A guest without an OS ignores ACPI: every shutdown is forced off after this wait.
  shutdownTimeoutMs: 500,
  // The move between the two hosts runs in libvirt.test.ts (cloud-a → cloud-b); here the one-host cases.
  liveMove: {},
});
