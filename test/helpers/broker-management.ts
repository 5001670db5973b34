/**
 * A cloud's real broker's management API as its agent reaches it (services.json → `brokers`):
 * the tests that play a peer against a broker's grants and limits set up and check with it.
 */
import { readFileSync } from 'node:fs';
import { serviceEnv } from './services.js';

/** One call's answer: the HTTP status and the JSON body (null when empty). */
export interface ManagementAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** Calls of `cloud`'s broker management API, with its agent's credential. */
export function brokerManagement(cloud: string): (method: string, path: string, body?: unknown) => Promise<ManagementAnswer> {
  const broker = serviceEnv<Record<string, { management: { url: string; user: string; passwordFile: string } }>>('brokers')[cloud];
  if (!broker) throw new Error(`no broker '${cloud}' in services.json: run 'scripts/services up rabbitmq'`);
  const m = broker.management;
  return async (method, path, body) => {
    const password = readFileSync(m.passwordFile, 'utf8').trim();
    const res = await fetch(new URL(path, m.url), {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`${m.user}:${password}`).toString('base64')}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}
