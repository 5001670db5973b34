/** The conformance suite against the real libvirtd `cloud-a`, driven over the real sshd. */
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { libvirt, libvirtSshConfig, refreshPool, virsh } from '../../integration/hypervisor/env.js';
import { hypervisorConformance } from './suite.js';

hypervisorConformance({
  name: 'libvirt (ssh, cloud-a)',
  async create() {
    return createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
  },
  async diskExists(href) {
    const { uri, pool } = libvirt('cloud-a');
    refreshPool(uri, pool);
    return virsh(uri, 'vol-list', '--pool', pool).split('\n').some((l) => l.trim().split(/\s+/)[1] === href);
  },
  format: 'raw',
  hasExtents: true,
  // A guest without an OS ignores ACPI: every shutdown is forced off after this wait.
  shutdownTimeoutMs: 500,
  liveMove: {
    // The peer: libvirt cloud-b in local mode.
    async peer() {
      const { ssh: _ssh, ...local } = libvirtSshConfig('cloud-b');
      return createHypervisor('libvirt', local);
    },
    async peerDiskExists(href) {
      const { uri, pool } = libvirt('cloud-b');
      refreshPool(uri, pool);
      return virsh(uri, 'vol-list', '--pool', pool).split('\n').some((l) => l.trim().split(/\s+/)[1] === href);
    },
  },
});
