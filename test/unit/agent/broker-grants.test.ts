/**
 * The target's per-offer grants at its own broker (issue 13), against a stand-in of the
 * management API that records the calls (the real broker is exercised by
 * test/integration/migration/broker-per-cloud.test.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerGrants, MAX_VHOST_QUEUES } from '../../../agent/daemon/broker-grants.js';
import { TRANSFER_QUEUE_POLICY, transferTopology } from '../../../protocols/amqp/index.js';
import { channelTransferId, newTransferId, transferPrefix } from '../../../agent/replication/index.js';

const ID1 = '11111111-1111-5111-8111-111111111111';
const ID2 = '22222222-2222-5222-8222-222222222222';
const ID3 = '33333333-3333-5333-8333-333333333333';

interface Call { method: string; path: string; body?: Record<string, string> }

const POLICY_PATH = '/api/policies/transfers/intercloud-transfer-queues';

let server: Server | undefined;
afterEach(() => { server?.close(); server = undefined; });

/** A management API holding users and permissions; `down` makes it answer 503, `policyDown` only to the policy. */
async function fakeBroker(initial: {
  users?: string[]; permissions?: string[]; queues?: Array<{ name: string; type: string }>; maxQueues?: number;
  connections?: Array<{ name: string; user: string; vhost: string }>; maxPeerQueues?: number; maxNewPeerQueues?: number;
} = {}) {
  const calls: Call[] = [];
  const users = new Set(initial.users ?? []);
  const perms = new Map<string, string>((initial.permissions ?? []).map((u) => [u, 'x']));
  const state: { down: boolean; policyDown: boolean; maxQueues: number | undefined } = { down: false, policyDown: false, maxQueues: initial.maxQueues };
  const queues: Array<{ name: string; type: string }> = [...(initial.queues ?? [])];
  const connections = [...(initial.connections ?? [])];
  server = createServer((req, res) => {
    let data = '';
    req.on('data', (d) => { data += String(d); }).on('end', () => {
      const path = decodeURIComponent(req.url ?? '');
      const call: Call = { method: req.method ?? '', path, ...(data ? { body: JSON.parse(data) as Record<string, string> } : {}) };
      calls.push(call);
      if (req.headers.authorization !== `Basic ${Buffer.from('_agent:pw').toString('base64')}`) { res.writeHead(401).end(); return; }
      if (state.down) { res.writeHead(503).end('down'); return; }
      const m = /^\/api\/(users|permissions\/transfers)\/([^/]+)$/.exec(path);
      if (path === '/api/queues/transfers?columns=name,type' && call.method === 'GET') {
        res.writeHead(200).end(JSON.stringify(queues));
      } else if (path === '/api/vhost-limits/transfers' && call.method === 'GET') {
        res.writeHead(200).end(JSON.stringify(state.maxQueues === undefined ? [] : [{ vhost: 'transfers', value: { 'max-queues': state.maxQueues } }]));
      } else if (path === '/api/vhost-limits/transfers/max-queues' && call.method === 'PUT') {
        state.maxQueues = Number(call.body!['value']);
        res.writeHead(204).end();
      } else if (path === '/api/connections?columns=name,user,vhost' && call.method === 'GET') {
        res.writeHead(200).end(JSON.stringify(connections));
      } else if (path.startsWith('/api/connections/') && call.method === 'DELETE') {
        const i = connections.findIndex((c) => c.name === path.slice('/api/connections/'.length));
        if (i >= 0) connections.splice(i, 1);
        res.writeHead(i >= 0 ? 204 : 404).end();
      } else if (path === POLICY_PATH && call.method === 'PUT') {
        res.writeHead(state.policyDown ? 503 : 201).end();
      } else if (path === '/api/vhosts/transfers/permissions') {
        res.writeHead(200).end(JSON.stringify([...perms.keys()].map((user) => ({ user, vhost: 'transfers' }))));
      } else if (m?.[1] === 'users') {
        if (call.method === 'PUT') { users.add(m[2]!); res.writeHead(201).end(); } else if (users.has(m[2]!)) res.writeHead(200).end('{}'); else res.writeHead(404).end();
      } else if (m) {
        if (call.method === 'PUT') { perms.set(m[2]!, call.body!['read']!); res.writeHead(201).end(); } else if (call.method === 'DELETE') {
          res.writeHead(perms.delete(m[2]!) ? 204 : 404).end();
        } else res.writeHead(405).end();
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  const grants = new BrokerGrants({
    url, user: '_agent', password: 'pw', vhost: 'transfers', cloudId: 'cloud-b', ...(initial.maxPeerQueues === undefined ? {} : { maxPeerQueues: initial.maxPeerQueues }),
    ...(initial.maxNewPeerQueues === undefined ? {} : { maxNewPeerQueues: initial.maxNewPeerQueues }),
  });
  return { calls, users, perms, state, grants, queues, connections };
}

const matches = (re: string | undefined, name: string): boolean => re !== undefined && new RegExp(re).test(name);

describe('BrokerGrants', () => {
  it('puts the transfer-queue policy on the vhost before the first permission it gives, once per run', async () => {
    const b = await fakeBroker();
    await b.grants.grant({ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] });
    await b.grants.grant({ peer: 'cloud-c', offerId: 'o2', transferIds: [ID2] });
    const policy = b.calls.findIndex((c) => c.path === POLICY_PATH);
    const firstPermission = b.calls.findIndex((c) => c.method === 'PUT' && c.path.startsWith('/api/permissions/'));
    expect(policy).toBeGreaterThanOrEqual(0);
    expect(policy).toBeLessThan(firstPermission);
    expect(b.calls.filter((c) => c.path === POLICY_PATH)).toHaveLength(1);
    expect(b.calls[policy]!.body).toEqual(TRANSFER_QUEUE_POLICY.body);
    expect(new RegExp(TRANSFER_QUEUE_POLICY.body.pattern).test(transferTopology('cloud-a', 'cloud-b', ID1).dataQueue)).toBe(true);
  });

  it("deletes the transfer queues that are not classic (a peer's stream or quorum queue) and nothing else", async () => {
    const data = transferTopology('cloud-a', 'cloud-b', ID1).dataQueue;
    const ctl = transferTopology('cloud-a', 'cloud-b', ID2).controlQueue;
    const quorum = transferTopology('cloud-c', 'cloud-b', ID3).dataQueue;
    const b = await fakeBroker({ queues: [{ name: data, type: 'stream' }, { name: ctl, type: 'classic' }, { name: quorum, type: 'quorum' }, { name: 'operator.own', type: 'stream' }] });
    const deleteQueues = async (names: string[]) => {
      for (const n of names) b.queues.splice(b.queues.findIndex((q) => q.name === n), 1);
    };
    expect((await b.grants.sweepForeignQueues(deleteQueues)).sort()).toEqual([data, quorum].sort());
    expect(b.queues.map((q) => q.name).sort()).toEqual([ctl, 'operator.own'].sort());
    expect(await b.grants.sweepForeignQueues(async () => { throw new Error('nothing to delete'); })).toEqual([]);
  });

  it("limits the vhost's queues with the policy (MAX_VHOST_QUEUES), keeping an operator's lower limit", async () => {
    const b = await fakeBroker();
    await b.grants.grant({ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] });
    expect(b.state.maxQueues).toBe(MAX_VHOST_QUEUES);
    const firstPermission = b.calls.findIndex((c) => c.method === 'PUT' && c.path.startsWith('/api/permissions/'));
    expect(b.calls.findIndex((c) => c.path === '/api/vhost-limits/transfers/max-queues')).toBeLessThan(firstPermission);
    for (const [operators, kept] of [[100, 100], [-1, MAX_VHOST_QUEUES], [1_000_000, MAX_VHOST_QUEUES]] as const) {
      const o = await fakeBroker({ maxQueues: operators });
      await o.grants.grant({ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] });
      expect(o.state.maxQueues, `operator's limit ${operators}`).toBe(kept);
    }
  });

  it('cuts off a peer whose transfers hold more queues than the cap: permission gone for good, connections closed, all its queues deleted; nobody else touched', async () => {
    const floods = Array.from({ length: 3 }, (_, i) => transferTopology('cloud-a', 'cloud-b', newTransferId(`sc-${i}`)));
    const honest = transferTopology('cloud-c', 'cloud-b', ID3);
    const b = await fakeBroker({
      maxPeerQueues: 4,
      queues: [...floods.flatMap((t) => [t.dataQueue, t.controlQueue]), honest.dataQueue, honest.controlQueue, 'operator.own'].map((name) => ({ name, type: 'classic' })),
      connections: [
        { name: '127.0.0.1:5 -> 127.0.0.1:5671', user: 'cloud-a', vhost: 'transfers' }, { name: '127.0.0.1:6 -> 127.0.0.1:5671', user: 'cloud-c', vhost: 'transfers' },
        { name: '127.0.0.1:7 -> 127.0.0.1:5671', user: 'cloud-a', vhost: 'elsewhere' },
      ],
    });
    await b.grants.grant({ peer: 'cloud-a', offerId: 'sub', transferIds: [], transferPrefixes: [transferPrefix('sc-0')] });
    await b.grants.grant({ peer: 'cloud-c', offerId: 'o3', transferIds: [ID3] });
    const deleteQueues = async (names: string[]) => {
      for (const n of names) b.queues.splice(b.queues.findIndex((q) => q.name === n), 1);
    };
    expect(await b.grants.capPeerQueues(deleteQueues)).toEqual([{ peer: 'cloud-a', queues: 6 }]);
    expect(b.perms.has('cloud-a')).toBe(false);
    expect(b.connections.map((c) => `${c.user}@${c.vhost}`)).toEqual(['cloud-c@transfers', 'cloud-a@elsewhere']);
    expect(b.queues.map((q) => q.name).sort()).toEqual([honest.dataQueue, honest.controlQueue, 'operator.own'].sort());
    expect(b.perms.has('cloud-c')).toBe(true);
    expect(b.grants.cutOff()).toEqual(['cloud-a']);
    // No new grant, and none put back at start, for the rest of this run.
    await expect(b.grants.grant({ peer: 'cloud-a', offerId: 'o9', transferIds: [ID1] })).rejects.toMatchObject({ code: 'XFER_BROKER_AUTH' });
    await b.grants.reconcile([{ peer: 'cloud-a', offerId: 'sub', transferIds: [], transferPrefixes: [transferPrefix('sc-0')] }]);
    expect(b.perms.has('cloud-a')).toBe(false);
    // At the cap, a peer is left alone.
    expect(await b.grants.capPeerQueues(deleteQueues)).toEqual([]);
  });

  it("cuts off a peer making more queues between two sweeps than the cap of new ones, however few it had; a dead transfers' queues it holds do not count as new", async () => {
    const topo = (sc: string) => transferTopology('cloud-a', 'cloud-b', newTransferId(sc));
    const leftovers = Array.from({ length: 5 }, (_, i) => topo(`dead-${i}`));
    const b = await fakeBroker({
      maxPeerQueues: 100, maxNewPeerQueues: 4,
      queues: leftovers.flatMap((t) => [t.dataQueue, t.controlQueue]).map((name) => ({ name, type: 'classic' })),
    });
    await b.grants.grant({ peer: 'cloud-a', offerId: 'sub', transferIds: [], transferPrefixes: [transferPrefix('sc-0')] });
    const deleteQueues = async (names: string[]) => {
      for (const n of names) b.queues.splice(b.queues.findIndex((q) => q.name === n), 1);
    };
    // The first sweep counts what is there (10 queues of dead transfers: more than 4, none new).
    expect(await b.grants.capPeerQueues(deleteQueues)).toEqual([]);
    // Two honest transfers since: 4 new queues, at the cap.
    for (const t of [topo('sc-0'), topo('sc-0')]) b.queues.push({ name: t.dataQueue, type: 'classic' }, { name: t.controlQueue, type: 'classic' });
    expect(await b.grants.capPeerQueues(deleteQueues)).toEqual([]);
    expect(b.perms.has('cloud-a')).toBe(true);
    // A flood: 6 new ones in one sweep.
    for (let i = 0; i < 3; i++) {
      const t = topo('sc-0');
      b.queues.push({ name: t.dataQueue, type: 'classic' }, { name: t.controlQueue, type: 'classic' });
    }
    expect(await b.grants.capPeerQueues(deleteQueues)).toEqual([{ peer: 'cloud-a', queues: 20 }]);
    expect(b.perms.has('cloud-a')).toBe(false);
    expect(b.queues).toEqual([]);
  });

  it('sweeps with one listing: the foreign queues deleted, then the peers counted without them', async () => {
    const stream = transferTopology('cloud-a', 'cloud-b', ID1).dataQueue;
    const floods = Array.from({ length: 3 }, (_, i) => transferTopology('cloud-c', 'cloud-b', newTransferId(`f-${i}`)).dataQueue);
    const b = await fakeBroker({ maxPeerQueues: 2, queues: [{ name: stream, type: 'stream' }, ...floods.map((name) => ({ name, type: 'classic' }))] });
    const deleteQueues = async (names: string[]) => {
      for (const n of names) b.queues.splice(b.queues.findIndex((q) => q.name === n), 1);
    };
    expect(await b.grants.sweep(deleteQueues)).toEqual({ foreign: [stream], cut: [{ peer: 'cloud-c', queues: 3 }] });
    expect(b.calls.filter((c) => c.path.startsWith('/api/queues/'))).toHaveLength(1);
    expect(b.queues).toEqual([]);
  });

  it('gives no permission when the policy cannot be put', async () => {
    const b = await fakeBroker();
    b.state.policyDown = true;
    await expect(b.grants.grant({ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] })).rejects.toMatchObject({ code: 'XFER_BROKER' });
    expect(b.calls.filter((c) => c.path.startsWith('/api/permissions/'))).toEqual([]);
    b.state.policyDown = false;
    await b.grants.grant({ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] });
    expect(b.perms.has('cloud-a')).toBe(true);
  });

  it('creates the peer as a password-less user and grants exactly its offers\' transfers, the union while several run', async () => {
    const b = await fakeBroker();
    await b.grants.grant({ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] });
    expect(b.calls).toContainEqual({ method: 'PUT', path: '/api/users/cloud-a', body: { password_hash: '', tags: '' } });
    await b.grants.grant({ peer: 'cloud-a', offerId: 'o2', transferIds: [ID2] });
    const re = b.perms.get('cloud-a');
    expect(matches(re, transferTopology('cloud-a', 'cloud-b', ID1).dataQueue)).toBe(true);
    expect(matches(re, transferTopology('cloud-a', 'cloud-b', ID2).controlQueue)).toBe(true);
    expect(matches(re, transferTopology('cloud-a', 'cloud-b', ID3).dataQueue)).toBe(false);
    // Withdrawing one offer keeps the other; the last one removes the permission altogether.
    await b.grants.withdraw('cloud-a', 'o1');
    expect(matches(b.perms.get('cloud-a'), transferTopology('cloud-a', 'cloud-b', ID1).dataQueue)).toBe(false);
    expect(matches(b.perms.get('cloud-a'), transferTopology('cloud-a', 'cloud-b', ID2).dataQueue)).toBe(true);
    await b.grants.withdraw('cloud-a', 'o2');
    expect(b.perms.has('cloud-a')).toBe(false);
    // Idempotent.
    await b.grants.withdraw('cloud-a', 'o2');
  });

  it('fails with the retryable XFER_BROKER when the broker does not answer, and grants nothing', async () => {
    const b = await fakeBroker();
    b.state.down = true;
    await expect(b.grants.grant({ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] })).rejects.toMatchObject({ code: 'XFER_BROKER', retryable: true });
    expect(b.grants.granted('cloud-a')).toEqual([]);
    server!.close();
    await expect(b.grants.grant({ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] })).rejects.toMatchObject({ code: 'XFER_BROKER', retryable: true });
  });

  it('at start, withdraws what no running job needs and keeps the owner\'s own permission', async () => {
    const b = await fakeBroker({ users: ['cloud-a', 'cloud-c', 'cloud-b'], permissions: ['cloud-a', 'cloud-c', 'cloud-b'] });
    await b.grants.reconcile([{ peer: 'cloud-a', offerId: 'o1', transferIds: [ID1] }]);
    expect(b.perms.has('cloud-c')).toBe(false);
    expect(b.perms.get('cloud-b')).toBe('x');
    expect(matches(b.perms.get('cloud-a'), transferTopology('cloud-a', 'cloud-b', ID1).dataQueue)).toBe(true);
  });

  describe('storage subcontracts (a transfer prefix per accepted subcontract offer)', () => {
    const SC1 = 'sc-1';
    const SC2 = 'sc-2';
    const q = (id: string, from = 'cloud-a'): string => transferTopology(from, 'cloud-b', id).dataQueue;

    it("grants every transfer of the subcontract beside the peer's VM offer in one regex, and withdraws it when the subcontract ends", async () => {
      const b = await fakeBroker();
      await b.grants.grant({ peer: 'cloud-a', offerId: 'vm1', transferIds: [ID1] });
      await b.grants.grant({ peer: 'cloud-a', offerId: 'sc1', transferIds: [], transferPrefixes: [transferPrefix(SC1)] });
      expect(b.grants.grantedPrefixes('cloud-a')).toEqual([transferPrefix(SC1)]);
      let re = b.perms.get('cloud-a');
      for (const id of [ID1, channelTransferId(SC1), newTransferId(SC1), newTransferId(SC1)]) expect(matches(re, q(id)), id).toBe(true);
      for (const id of [ID2, channelTransferId(SC2), newTransferId(SC2)]) expect(matches(re, q(id)), id).toBe(false);
      expect(matches(re, q(newTransferId(SC1), 'cloud-c'))).toBe(false);
      // The subcontract ends: its transfers go, the VM offer stays.
      await b.grants.withdraw('cloud-a', 'sc1');
      re = b.perms.get('cloud-a');
      expect(matches(re, q(ID1))).toBe(true);
      expect(matches(re, q(newTransferId(SC1)))).toBe(false);
      expect(matches(re, q(channelTransferId(SC1)))).toBe(false);
      expect(b.grants.grantedPrefixes('cloud-a')).toEqual([]);
      await b.grants.withdraw('cloud-a', 'vm1');
      expect(b.perms.has('cloud-a')).toBe(false);
    });

    it('refuses a prefix that is not the form transferPrefix makes with XFER_CONFIG, before any call, and keeps the grants as they were', async () => {
      const b = await fakeBroker();
      await b.grants.grant({ peer: 'cloud-a', offerId: 'vm1', transferIds: [ID1] });
      const before = b.calls.length;
      for (const p of ['.*', `${transferPrefix(SC1)}|.*`, 'sc-1']) {
        await expect(b.grants.grant({ peer: 'cloud-a', offerId: 'sc1', transferIds: [], transferPrefixes: [p] })).rejects.toMatchObject({ code: 'XFER_CONFIG' });
        await expect(b.grants.grant({ peer: 'cloud-c', offerId: 'sc1', transferIds: [], transferPrefixes: [p] })).rejects.toMatchObject({ code: 'XFER_CONFIG' });
      }
      expect(b.calls.length).toBe(before);
      expect(b.grants.grantedPrefixes('cloud-a')).toEqual([]);
      expect(b.grants.granted('cloud-a')).toEqual([ID1]);
      expect(b.users.has('cloud-c')).toBe(false);
    });

    it("at start, keeps the grant of a live subcontract beside a VM offer's, and nothing of a subcontract that is not live", async () => {
      const b = await fakeBroker({ users: ['cloud-a', 'cloud-c'], permissions: ['cloud-a', 'cloud-c'] });
      await b.grants.reconcile([
        { peer: 'cloud-a', offerId: 'sc1', transferIds: [], transferPrefixes: [transferPrefix(SC1)] },
        { peer: 'cloud-a', offerId: 'vm1', transferIds: [ID1] },
      ]);
      const re = b.perms.get('cloud-a');
      expect(matches(re, q(newTransferId(SC1)))).toBe(true);
      expect(matches(re, q(ID1))).toBe(true);
      expect(matches(re, q(newTransferId(SC2)))).toBe(false);
      expect(b.perms.has('cloud-c')).toBe(false);
    });
  });
});
