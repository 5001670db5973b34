/**
 * Each cloud runs its own broker, and the accept is the one source of truth for where the
 * data goes (issue 13). Against the real servers: cloud-b's agent (a child process) with only
 * its own broker in its config; cloud-a and the attacker cloud-c played by plain gateway
 * sessions, the agent's own source control port, and plain amqplib clients with their own
 * certificates. Checked from outside the agents: the brokers' management API and logs.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointCheck } from '../../../agent/daemon/broker-endpoint.js';
import { sourceControlPort } from '../../../agent/daemon/control-ports.js';
import { transferIdFor } from '../../../agent/daemon/transfer-ids.js';
import type { ControlPort, PeerRef, Reservation, VmSummary } from '../../../agent/migration/index.js';
import { transferTopology } from '../../../protocols/amqp/index.js';
import { assertTopology } from '../../../protocols/amqp/connection.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { lockFederation } from '../../../scripts/federation-lock.js';
import { AgentProcess, loadServicesFile, writeAgentConfig } from '../../../scripts/local-federation.js';
import { STATE_DIR } from '../../helpers/services.js';
import { servicesUp, startGateway, type TestGateway } from '../xmpp/gateways.js';
import { killService, serviceUp } from './federation-fixture.js';

const s = loadServicesFile(STATE_DIR);
const env = servicesUp();
const ROOT = readFileSync(s.pki.root, 'utf8');
const MiB = 1024 * 1024;
const brokerA = s.brokers['cloud-a']!;
const brokerB = s.brokers['cloud-b']!;
const B: PeerRef = { cloudId: 'cloud-b', jid: `cloud-b@${s.prosody.domain}` };
const check = endpointCheck({ domain: s.prosody.domain, ca: ROOT });

/** A call to a broker's management API, as its own agent makes it. */
async function mgmt(broker: typeof brokerA, path: string): Promise<{ status: number; body: unknown }> {
  const password = (await fs.readFile(broker.management.passwordFile, 'utf8')).trim();
  const res = await fetch(new URL(path, broker.management.url), {
    headers: { authorization: `Basic ${Buffer.from(`${broker.management.user}:${password}`).toString('base64')}` },
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function queueNames(broker: typeof brokerA): Promise<string[]> {
  const r = await mgmt(broker, '/api/queues/transfers?columns=name');
  expect(r.status).toBe(200);
  return (r.body as Array<{ name: string }>).map((q) => q.name);
}

function summary(name: string): VmSummary {
  return { name, vcpus: 1, memoryBytes: 128 * MiB, macs: ['52:54:00:7e:0d:01'], disks: [{ id: '0', capacityBytes: 64 * MiB }], addresses: [] };
}

/** Logs in to `url` as `cloud` with its own certificate (EXTERNAL). */
function connectAs(cloud: string, url: string, identity: string): Promise<amqp.ChannelModel> {
  const id = s.pki.clouds[cloud]!;
  return amqp.connect(url, {
    ca: [ROOT], cert: readFileSync(id.cert), key: readFileSync(id.key), servername: identity, credentials: amqp.credentials.external(),
  });
}

/** The AMQP reply code an operation failed with (403 access refused), or 'ok'. */
async function replyOf(conn: amqp.ChannelModel, op: (ch: amqp.Channel) => Promise<unknown>): Promise<number | 'ok'> {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  try {
    await op(ch);
    await ch.close();
    return 'ok';
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

/** The code a login ends with: 'ok', or the AMQP reply code / error code. */
async function loginOf(cloud: string, url: string, identity: string): Promise<string | number> {
  try {
    const conn = await connectAs(cloud, url, identity);
    await conn.close();
    return 'ok';
  } catch (err) {
    const e = err as { code?: number | string };
    return e.code ?? String(err);
  }
}

let unlock: (() => Promise<void>) | undefined;
let dir = '';
let b: AgentProcess;
let a: TestGateway;
let control: ControlPort;

beforeAll(async () => {
  unlock = await lockFederation();
}, 660_000);

beforeAll(async () => {
  dir = join(STATE_DIR, 'test-migration', `brokers-${process.pid}`);
  await fs.rm(dir, { recursive: true, force: true });
  b = new AgentProcess('cloud-b', join(dir, 'cloud-b'));
  await writeAgentConfig(s, 'cloud-b', b.dir, { region: 'eu-central', reservationSeconds: 60 });
  await b.start();
  // cloud-a's own certificate, under a resource of this file's own (the agents use `gateway`).
  a = await startGateway(env, 'cloud-a', { resource: `brokers-${process.pid}` });
  control = sourceControlPort(a.session, { currency: 'EUR', checkEndpoint: check });
}, 300_000);

afterAll(async () => {
  await a?.session.stop();
  await b?.stop('SIGTERM');
  await unlock?.();
}, 120_000);

/** Offers a VM to cloud-b as cloud-a; a `no-capacity` answer (an earlier reservation) is waited out. */
async function offerToB(name: string): Promise<{ offerId: string; reservation: Reservation }> {
  const t0 = Date.now();
  for (;;) {
    const offerId = randomUUID();
    try {
      return { offerId, reservation: await control.offer(B, { offerId, vm: summary(name) }, AbortSignal.timeout(30_000)) };
    } catch (err) {
      const busy = (isIntercloudError(err, 'MIGRATE_REJECTED') && err.details['reason'] === 'no-capacity') || isIntercloudError(err, 'XMPP_PEER_UNAVAILABLE');
      if (!busy || Date.now() - t0 > 90_000) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

describe("cloud-b's agent config and accept name cloud-b's broker only", () => {
  it('writes no other cloud\'s broker into an agent config', async () => {
    const yaml = await fs.readFile(join(b.dir, 'agent.yaml'), 'utf8');
    expect(yaml).toContain(brokerB.url);
    expect(yaml).toContain(brokerB.identity);
    expect(yaml).not.toContain(`:${new URL(brokerA.url).port}/`);
    expect(yaml).not.toContain(brokerA.identity);
  });

  it("accepts with cloud-b's broker and identity; the grant covers exactly the offer's transfers, and ends with the job", async () => {
    const { offerId, reservation } = await offerToB(`brk-own-${process.pid}`);
    expect(reservation.transfer).toEqual({ uri: brokerB.url, identity: brokerB.identity });
    const mine = transferTopology('cloud-a', 'cloud-b', transferIdFor(offerId, '0'));
    const otherOffer = transferTopology('cloud-a', 'cloud-b', transferIdFor(randomUUID(), '0'));
    const otherPeer = transferTopology('cloud-c', 'cloud-b', transferIdFor(offerId, '0'));
    const reverse = transferTopology('cloud-b', 'cloud-a', transferIdFor(offerId, '0'));

    const conn = await connectAs('cloud-a', reservation.transfer.uri, reservation.transfer.identity!);
    try {
      // Its own offer's exchange and queues: declared (as the sender does; idempotent beside the
      // receiver at cloud-b), and there.
      expect(await replyOf(conn, (ch) => assertTopology(ch, mine, false))).toBe('ok');
      expect(await replyOf(conn, (ch) => ch.checkQueue(mine.dataQueue))).toBe('ok');
      // Anything else: refused by the broker (403 ACCESS_REFUSED).
      expect(await replyOf(conn, (ch) => ch.assertQueue(otherOffer.dataQueue))).toBe(403);
      expect(await replyOf(conn, (ch) => ch.assertExchange(otherPeer.exchange, 'direct'))).toBe(403);
      expect(await replyOf(conn, (ch) => ch.assertQueue(reverse.controlQueue))).toBe(403);
      expect(await replyOf(conn, async (ch) => { ch.sendToQueue(mine.dataQueue, Buffer.from('x')); await ch.checkQueue(mine.dataQueue); })).toBe(403);
    } finally {
      await conn.close().catch(() => undefined);
    }
    // The attacker cloud, with its own valid certificate: not even the vhost.
    expect(await loginOf('cloud-c', reservation.transfer.uri, reservation.transfer.identity!)).not.toBe('ok');
    // Nothing of the transfer is at cloud-a's broker.
    expect((await queueNames(brokerA)).filter((q) => q.startsWith(mine.exchange))).toEqual([]);
    expect((await queueNames(brokerB))).toContain(mine.dataQueue);

    // The offer ends (released): cloud-a's permission at cloud-b's broker goes with it.
    await control.release(B, offerId, AbortSignal.timeout(120_000));
    const t0 = Date.now();
    while ((await mgmt(brokerB, '/api/permissions/transfers/cloud-a')).status !== 404) {
      if (Date.now() - t0 > 30_000) throw new Error("cloud-a's permission at cloud-b's broker was not withdrawn");
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await loginOf('cloud-a', reservation.transfer.uri, reservation.transfer.identity!)).not.toBe('ok');
  }, 180_000);
});

describe('a hostile target cannot point the source at another broker', () => {
  let hostile: TestGateway;
  let endpoint = { uri: brokerA.url, identity: brokerA.identity };
  const C: PeerRef = { cloudId: 'cloud-c', jid: `cloud-c@${s.prosody.domain}/hostile-${process.pid}` };

  beforeAll(async () => {
    // cloud-c as a target that signs accepts naming whatever endpoint this test sets.
    hostile = await startGateway(env, 'cloud-c', { resource: `hostile-${process.pid}`, transferEndpoint: () => endpoint });
  }, 60_000);
  afterAll(async () => { await hostile?.session.stop(); });

  async function refusal(e: { uri: string; identity: string }): Promise<string> {
    endpoint = e;
    try {
      await control.offer(C, { offerId: randomUUID(), vm: summary(`brk-hostile-${process.pid}`) }, AbortSignal.timeout(30_000));
      return 'accepted';
    } catch (err) {
      return isIntercloudError(err) ? err.code : String(err);
    }
  }

  /** Lines of cloud-a's broker log naming a login by `cloud-a` to the agents' vhost (AMQP, after TLS). */
  async function loginsAtA(): Promise<number> {
    const files = (await fs.readdir(brokerA.log)).filter((f) => f.endsWith('.log'));
    let n = 0;
    for (const f of files) n += ((await fs.readFile(join(brokerA.log, f), 'utf8')).match(/user 'cloud-a' authenticated and granted access to vhost 'transfers'/g) ?? []).length;
    return n;
  }

  it("refuses cloud-a's own broker named as the target's (a third party's identity), before any byte", async () => {
    const before = await loginsAtA();
    expect(await refusal({ uri: brokerA.url, identity: brokerA.identity })).toBe('XFER_BROKER_IDENTITY');
    expect(await loginsAtA()).toBe(before);
  });

  it("refuses a name under the target's cloud that the server there cannot prove (cloud-a's broker behind it)", async () => {
    const before = await loginsAtA();
    expect(await refusal({ uri: brokerA.url, identity: `broker.cloud-c.${s.prosody.domain}` })).toBe('XFER_BROKER_IDENTITY');
    expect(await loginsAtA()).toBe(before);
  });

  it('refuses an arbitrary host:port (the xmpp server), an accept without identity, and a credentialed uri', async () => {
    expect(await refusal({ uri: `amqps://${s.prosody.host}:${s.prosody.port}/transfers`, identity: `broker.cloud-c.${s.prosody.domain}` })).toBe('XFER_BROKER_IDENTITY');
    expect(await refusal({ uri: `amqps://cloud-a:x@127.0.0.1:${new URL(brokerB.url).port}/transfers`, identity: `broker.cloud-c.${s.prosody.domain}` })).toBe('XFER_BROKER_IDENTITY');
    // No identity at all: the session's own default (no transferEndpoint option).
    const plain = await startGateway(env, 'cloud-c', { resource: `plain-${process.pid}` });
    try {
      const code = await control.offer({ cloudId: 'cloud-c', jid: `cloud-c@${s.prosody.domain}/plain-${process.pid}` },
        { offerId: randomUUID(), vm: summary(`brk-plain-${process.pid}`) }, AbortSignal.timeout(30_000)).then(() => 'accepted', (err: unknown) => (isIntercloudError(err) ? err.code : String(err)));
      expect(code).toBe('XFER_BROKER_IDENTITY');
    } finally {
      await plain.session.stop();
    }
  });
});

describe("a cloud whose broker is down", () => {
  it("refuses offers with the retryable reason 'unavailable', and takes them again once it is back", async () => {
    let revive = true;
    try {
      await killService(brokerB.pidFile);
      const err = await control.offer(B, { offerId: randomUUID(), vm: summary(`brk-down-${process.pid}`) }, AbortSignal.timeout(60_000)).then(
        () => undefined, (e: unknown) => e,
      );
      expect(isIntercloudError(err, 'MIGRATE_REJECTED')).toBe(true);
      expect(err).toMatchObject({ retryable: true, details: { reason: 'unavailable' } });
      await serviceUp('rabbitmq');
      revive = false;
      const { offerId } = await offerToB(`brk-back-${process.pid}`);
      await control.release(B, offerId, AbortSignal.timeout(120_000));
    } finally {
      if (revive) await serviceUp('rabbitmq');
    }
  }, 240_000);
});
