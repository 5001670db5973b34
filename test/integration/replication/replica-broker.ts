/**
 * A vhost of its own on cloud-b's real broker (RabbitMQ, TLS, EXTERNAL login by each cloud's own
 * certificate) for one replication test file, with the grants a subcontract needs: B every transfer
 * into cloud-b (as on `transfers`), A the subcontract's one regex (`subcontractGrantPattern`). The
 * grants live migrations hold on `transfers` are never touched.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { BrokerOptions } from '../../../protocols/amqp/index.js';
import { subcontractGrantPattern, type Subcontract } from '../../../agent/replication/index.js';
import { loadServices } from '../../helpers/services.js';

interface BrokerEnv { url: string; vhost: string; identity: string; tls: { ca: string }; management: { url: string; user: string; passwordFile: string } }

/** A test vhost on cloud-b's broker. */
export interface ReplicaVhost {
  /** Broker options logging in to the vhost as `cloud` (its certificate under the Intercloud Root). */
  loginAs(cloud: string): BrokerOptions;
  /** Deletes the vhost. */
  close(): Promise<void>;
}

/** Creates vhost `name` on cloud-b's broker and grants cloud-b and cloud-a what `sub` needs. */
export async function replicaVhost(name: string, sub: Subcontract): Promise<ReplicaVhost> {
  const services = loadServices() as { brokers: Record<string, BrokerEnv>; pki: { root: string; clouds: Record<string, { cert: string; key: string }> } };
  const brokerB = services.brokers['cloud-b']!;
  const mgmt = async (method: string, path: string, body?: unknown): Promise<number> => {
    const password = readFileSync(brokerB.management.passwordFile, 'utf8').trim();
    const res = await fetch(new URL(path, brokerB.management.url), {
      method,
      headers: { authorization: `Basic ${Buffer.from(`${brokerB.management.user}:${password}`).toString('base64')}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await res.text();
    return res.status;
  };
  expect(await mgmt('PUT', `/api/vhosts/${name}`, {})).toBeLessThan(300);
  // cloud-a's user on cloud-b's broker is made by cloud-b's agent at its first grant (broker-grants.ts,
  // certificate login, no password): on a broker no agent has granted anything yet it is not there
  if ((await mgmt('GET', '/api/users/cloud-a')) === 404) expect(await mgmt('PUT', '/api/users/cloud-a', { password_hash: '', tags: '' })).toBeLessThan(300);
  const re = (p: string) => ({ configure: p, write: p, read: p });
  expect(await mgmt('PUT', `/api/permissions/${name}/cloud-b`, re('^xfer\\.[a-z0-9-]+\\.cloud\\-b\\.[0-9a-f-]{36}(\\.(data|ctl))?$'))).toBeLessThan(300);
  expect(await mgmt('PUT', `/api/permissions/${name}/cloud-a`, re(subcontractGrantPattern(sub.from, sub.to, sub.id)))).toBeLessThan(300);
  return {
    loginAs(cloud) {
      const id = services.pki.clouds[cloud]!;
      const url = new URL(brokerB.url);
      url.pathname = `/${encodeURIComponent(name)}`;
      return { url: url.toString(), ca: services.pki.root, cert: id.cert, key: id.key, servername: brokerB.identity, heartbeatSeconds: 5 };
    },
    async close() {
      expect(await mgmt('DELETE', `/api/vhosts/${name}`)).toBeLessThan(300);
    },
  };
}
