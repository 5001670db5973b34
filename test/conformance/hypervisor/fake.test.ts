/** The conformance suite against the in-memory fake (hermetic). */
import type { FakeHypervisor } from '../../../adapters/hypervisor/index.js';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { hypervisorConformance } from './suite.js';

let fake: FakeHypervisor | undefined;
let peer: FakeHypervisor | undefined;

hypervisorConformance({
  name: 'fake',
  async create() {
    const hv = createHypervisor('fake', { name: 'conformance', diskBytes: 512 * 1024 * 1024, guestsIgnoreShutdown: true });
    fake = hv as FakeHypervisor;
    return hv;
  },
  async diskExists(href) {
    return fake!.diskHrefs().includes(href);
  },
  format: 'raw',
  hasExtents: true,
  shutdownTimeoutMs: 50,
  liveMove: {
    async peer() {
      peer = createHypervisor('fake', { name: 'conformance-peer', diskBytes: 512 * 1024 * 1024, guestsIgnoreShutdown: true }) as FakeHypervisor;
      return peer;
    },
    async peerDiskExists(href) {
      return peer!.diskHrefs().includes(href);
    },
  },
});
