/**
 * A subcontractor that floods cloud-b's REAL broker (RabbitMQ, TLS, EXTERNAL login by each cloud's
 * certificate): cloud-a, granted a storage subcontract's transfer prefix (issue 14), may name as many
 * transfers under it as it likes, and declares queue after queue. cloud-b's `BrokerGrants`, through
 * the management API on a vhost of this test's own, holds the vhost to its `max-queues` limit, and its
 * sweep cuts cloud-a off: permission withdrawn for the agent's run, connection closed, queues
 * deleted. cloud-c's transfer into cloud-b on the same vhost is untouched.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerGrants } from '../../../agent/daemon/broker-grants.js';
import { transferIdFor } from '../../../agent/daemon/transfer-ids.js';
import { newTransferId, transferPrefix } from '../../../agent/replication/index.js';
import { transferTopology } from '../../../protocols/amqp/index.js';
import { assertTopology } from '../../../protocols/amqp/connection.js';
import { loadServicesFile } from '../../../scripts/local-federation.js';
import { brokerManagement } from '../../helpers/broker-management.js';
import { STATE_DIR } from '../../helpers/services.js';

const s = loadServicesFile(STATE_DIR);
const brokerB = s.brokers['cloud-b']!;
const VHOST = `it-queue-cap-${process.pid}`;
const SUB = `it-flood-${randomUUID()}`;
const C_OFFER = randomUUID();
const MAX_QUEUES = 16;
const MAX_PEER_QUEUES = 6;

/** A call to cloud-b's management API, as its agent makes it. */
const mgmt = brokerManagement('cloud-b');

/** Logs in to the test's vhost as `cloud` with its own certificate. */
function connectAs(cloud: string): Promise<amqp.ChannelModel> {
  const id = s.pki.clouds[cloud]!;
  const url = new URL(brokerB.url);
  url.pathname = `/${VHOST}`;
  return amqp.connect(url.toString(), {
    ca: [readFileSync(s.pki.root, 'utf8')], cert: readFileSync(id.cert), key: readFileSync(id.key), servername: brokerB.identity,
    credentials: amqp.credentials.external(),
  });
}

const queuesNow = async (): Promise<string[]> => ((await mgmt('GET', `/api/queues/${VHOST}?columns=name`)).body as Array<{ name: string }>).map((q) => q.name).sort();

let grants: BrokerGrants;
let owner: amqp.ChannelModel;

beforeAll(async () => {
  expect((await mgmt('PUT', `/api/vhosts/${VHOST}`, {})).status).toBeLessThan(300);
  const inbound = '^xfer\\.[a-z0-9-]+\\.cloud\\-b\\.[0-9a-f-]{36}(\\.(data|ctl))?$';
  expect((await mgmt('PUT', `/api/permissions/${VHOST}/cloud-b`, { configure: inbound, write: inbound, read: inbound })).status).toBeLessThan(300);
  grants = new BrokerGrants({
    url: brokerB.management.url, user: brokerB.management.user, password: readFileSync(brokerB.management.passwordFile, 'utf8').trim(),
    vhost: VHOST, cloudId: 'cloud-b', maxQueues: MAX_QUEUES, maxPeerQueues: MAX_PEER_QUEUES,
  });
  owner = await connectAs('cloud-b');
});

afterAll(async () => {
  await owner?.close().catch(() => undefined);
  expect((await mgmt('DELETE', `/api/vhosts/${VHOST}`)).status).toBeLessThan(300);
});

describe("a subcontractor declaring transfer after transfer under its prefix at cloud-b's broker", () => {
  it('is held to the vhost\'s queue limit, then cut off by the sweep; another peer\'s transfer stays', async () => {
    await grants.grant({ peer: 'cloud-a', offerId: `sub-${SUB}`, transferIds: [], transferPrefixes: [transferPrefix(SUB)] });
    await grants.grant({ peer: 'cloud-c', offerId: C_OFFER, transferIds: [transferIdFor(C_OFFER, '0')] });
    expect((await mgmt('GET', `/api/vhost-limits/${VHOST}`)).body).toEqual([expect.objectContaining({ value: { 'max-queues': MAX_QUEUES } })]);

    // cloud-c's honest transfer: two queues.
    const c = await connectAs('cloud-c');
    const theirs = transferTopology('cloud-c', 'cloud-b', transferIdFor(C_OFFER, '0'));
    await assertTopology(await c.createConfirmChannel(), theirs, false);
    await c.close();

    // cloud-a floods: every declaration is a new transfer of its subcontract, until the broker refuses.
    const a = await connectAs('cloud-a');
    const closed = new Promise<void>((r) => a.on('close', () => r()));
    a.on('error', () => undefined);
    let declared = 0;
    let refusal: { code?: unknown; message?: unknown } | undefined;
    const ch = await a.createChannel();
    ch.on('error', () => undefined);
    while (refusal === undefined && declared < 4 * MAX_QUEUES) {
      const t = transferTopology('cloud-a', 'cloud-b', newTransferId(SUB));
      try {
        await ch.assertQueue(t.dataQueue, { durable: false });
        declared++;
      } catch (err) {
        refusal = err as { code?: unknown; message?: unknown };
      }
    }
    console.info(`cloud-a declared ${declared} queues, then: ${String(refusal?.message)}`);
    expect(declared).toBe(MAX_QUEUES - 2);
    expect(refusal?.code).toBe(406);
    expect(String(refusal?.message)).toMatch(/queue limit/);

    // The sweep: cloud-a is over its cap; every one of its queues goes, and it with them.
    const deleteAsOwner = async (names: string[]): Promise<void> => {
      const och = await owner.createChannel();
      for (const n of names) await och.deleteQueue(n);
      await och.close();
    };
    expect(await grants.capPeerQueues(deleteAsOwner)).toEqual([{ peer: 'cloud-a', queues: MAX_QUEUES - 2 }]);
    await closed;
    expect(await queuesNow()).toEqual([theirs.controlQueue, theirs.dataQueue].sort());
    expect((await mgmt('GET', `/api/permissions/${VHOST}/cloud-a`)).status).toBe(404);
    await expect(connectAs('cloud-a')).rejects.toThrow(/ConnectionClose/);
    await expect(grants.grant({ peer: 'cloud-a', offerId: `sub-${SUB}-2`, transferIds: [], transferPrefixes: [transferPrefix(`${SUB}-2`)] }))
      .rejects.toMatchObject({ code: 'XFER_BROKER_AUTH' });
    // cloud-c goes on.
    const c2 = await connectAs('cloud-c');
    const cch = await c2.createChannel();
    expect((await cch.checkQueue(theirs.dataQueue)).queue).toBe(theirs.dataQueue);
    await c2.close();
  }, 60_000);
});
