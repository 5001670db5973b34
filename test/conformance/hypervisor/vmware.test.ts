/** The conformance suite against vcsim (VMware's vCenter simulator), over pinned TLS. */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { vcsim, vmwareConfig } from '../../integration/hypervisor/env.js';
import { hypervisorConformance } from './suite.js';

/** Whether `[ds] path.vmdk`'s data extent exists, asked over vcsim's datastore HTTP with Basic auth (not the adapter). */
function datastoreFileExists(href: string): Promise<boolean> {
  const v = vcsim();
  const m = /^\[([^\]]+)\]\s*(.+)$/.exec(href);
  if (!m) throw new Error(`not a datastore path: ${href}`);
  const url = new URL(v.url);
  const path = `/folder/${m[2]!.replace(/(-flat)?\.vmdk$/, '-flat.vmdk')}?dcPath=${encodeURIComponent(v.datacenter)}&dsName=${encodeURIComponent(m[1]!)}`;
  return new Promise((resolve, reject) => {
    const req = https.request({ hostname: url.hostname, port: url.port, path, method: 'HEAD', ca: readFileSync(v.caFile), auth: `${v.user}:${v.password}` }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', reject);
    req.end();
  });
}

hypervisorConformance({
  name: 'vmware (vcsim)',
  async create() {
    return createHypervisor('vmware', vmwareConfig());
  },
  diskExists: datastoreFileExists,
  format: 'vmdk',
  hasExtents: false,
  shutdownTimeoutMs: 500,
  // Takes `warm` with a boot (issue 15): no change tracking, no state capture or restore.
  liveMove: false,
});
