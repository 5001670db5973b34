/**
 * cloud-b's real broker as the storage benchmarks use it (services.json → `brokers['cloud-b']`,
 * `pki`): its management API (a vhost of the bench's own, the grants) and logins to that vhost
 * by each cloud's own certificate.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrokerOptions } from '../../protocols/amqp/index.js';

interface BrokerEnv { url: string; identity: string; management: { url: string; user: string; passwordFile: string } }
const stateDir = process.env['INTERCLOUD_STATE_DIR'] ?? '/var/lib/intercloud-dev';
const services = JSON.parse(readFileSync(join(stateDir, 'services.json'), 'utf8')) as {
  brokers: Record<string, BrokerEnv>; pki: { root: string; clouds: Record<string, { cert: string; key: string }> };
};
const brokerB = services.brokers['cloud-b']!;

/** One call of cloud-b's broker management API; throws on an HTTP error. */
export async function mgmt(method: string, path: string, body?: unknown): Promise<void> {
  const password = readFileSync(brokerB.management.passwordFile, 'utf8').trim();
  const res = await fetch(new URL(path, brokerB.management.url), {
    method,
    headers: { authorization: `Basic ${Buffer.from(`${brokerB.management.user}:${password}`).toString('base64')}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`broker management ${method} ${path}: HTTP ${res.status} ${text}`);
}

/**
 * Makes `cloud`'s user on cloud-b's broker (certificate login, no password) if it is not there:
 * cloud-b's agent makes it at its first grant (agent/daemon/broker-grants.ts), so a broker no agent
 * has granted anything yet does not have it.
 */
export async function ensureCertUser(cloud: string): Promise<void> {
  const password = readFileSync(brokerB.management.passwordFile, 'utf8').trim();
  const res = await fetch(new URL(`/api/users/${encodeURIComponent(cloud)}`, brokerB.management.url), {
    headers: { authorization: `Basic ${Buffer.from(`${brokerB.management.user}:${password}`).toString('base64')}` },
  });
  await res.text();
  if (res.status === 404) await mgmt('PUT', `/api/users/${encodeURIComponent(cloud)}`, { password_hash: '', tags: '' });
}

/** Broker options logging in to `vhost` of cloud-b's broker as `cloud` (its certificate). */
export function loginAs(vhost: string, cloud: string): BrokerOptions {
  const id = services.pki.clouds[cloud]!;
  const url = new URL(brokerB.url);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return { url: url.toString(), ca: services.pki.root, cert: id.cert, key: id.key, servername: brokerB.identity, heartbeatSeconds: 5 };
}
