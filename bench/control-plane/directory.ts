/**
 * The bench's housekeeping on a Root's directory, over plain XMPP clients (no GatewaySession:
 * nothing is published): list the catalog's item ids, and retract the bench's own items that
 * a failed run left behind — each retracted by its own cloud, since the Root's directory lets
 * a cloud retract only its own item (mod_intercloud_directory).
 */
import { xml, type Client } from '@xmpp/client';
import {
  buildDiscoItemsQuery, buildRetract, CATALOG_NODE, createXmppClient, NS, parseDiscoItems,
} from '../../protocols/xmpp/index.js';
import type { Identity } from './certs.js';
import type { RootServer } from './roots.js';

/** Where a client dials a Root (directly, or through the bench's link). */
export interface Dial {
  readonly host: string;
  readonly port: number;
}

/** Logs in as `cloudId` on `root` with a resource of its own (never the gateway's). */
export async function rawClient(root: RootServer, dial: Dial, rootPem: string, cloudId: string, id: Identity, resource: string): Promise<Client> {
  const c = createXmppClient({
    service: `xmpp://${dial.host}:${dial.port}`,
    domain: root.domain,
    resource,
    tls: { ca: rootPem, cert: id.cert, key: id.key, servername: root.servername },
    externalJid: `${cloudId}@${root.domain}`,
  });
  c.reconnect.stop();
  c.on('error', (err: unknown) => process.stderr.write(`warning: ${cloudId} (${resource}): ${(err as Error).message}\n`));
  await c.start();
  return c;
}

/** The item ids on the Root's catalog node (XEP-0060 §5.5, disco#items on the node). */
export async function catalogIds(client: Client, root: RootServer): Promise<string[]> {
  const result = await client.iqCaller.request(xml('iq', { type: 'get', to: root.pubsubJid }, buildDiscoItemsQuery(CATALOG_NODE)), 30_000);
  return parseDiscoItems(result.getChild('query', NS.DISCO_ITEMS)).map((i) => i.name ?? '').filter((n) => n !== '');
}

/**
 * Retracts every catalog item whose id starts with `prefix` (the bench's own clouds), each
 * as its own cloud; `identity(id)` gives the certificate. Returns the ids retracted.
 */
export async function sweep(
  root: RootServer, dial: Dial, rootPem: string, reader: { cloudId: string; id: Identity }, prefix: string,
  identity: (cloudId: string) => Identity, concurrency = 20,
): Promise<string[]> {
  const c = await rawClient(root, dial, rootPem, reader.cloudId, reader.id, 'bench-sweep');
  let left: string[];
  try {
    left = (await catalogIds(c, root)).filter((id) => id.startsWith(prefix));
  } finally {
    await c.stop();
  }
  for (let i = 0; i < left.length; i += concurrency) {
    await Promise.all(left.slice(i, i + concurrency).map(async (id) => {
      const owner = await rawClient(root, dial, rootPem, id, identity(id), 'bench-sweep');
      try {
        await owner.iqCaller.request(xml('iq', { type: 'set', to: root.pubsubJid }, buildRetract(CATALOG_NODE, id)), 30_000);
      } finally {
        await owner.stop();
      }
    }));
  }
  return left;
}
