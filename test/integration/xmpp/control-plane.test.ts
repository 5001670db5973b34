import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  capsVer, CAPS_NODE, createXmppClient, FEATURES, IDENTITIES, NS, type OfferRequest,
} from '../../../protocols/xmpp/index.js';
import { auditRecords, ensureCatalogNode, scramPassword, gatewayJid, ours, servicesUp, startGateway, testCloud, retractTestEntries, type TestGateway } from './gateways.js';

const env = servicesUp();
const A = testCloud('xa');
const B = testCloud('xb');
const vm: OfferRequest = {
  workload: {
    type: 'vm', name: 'web1', vcpus: 2, memoryMiB: 2048, firmware: 'bios',
    disks: [{ id: 'vda', sizeGiB: 10, format: 'qcow2' }], nics: [{ mac: '52:54:00:aa:bb:01' }],
  },
  constraints: { regions: ['eu-central'] },
  terms: { currency: 'EUR', maxPricePerVcpuHour: 0.1 },
};

describe('gateway sessions on the real Prosody', () => {
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    await ensureCatalogNode(env);
    a = await startGateway(env, A);
    b = await startGateway(env, B);
    await a.session.waitForPresence(`${B}@intercloud.test`);
    await b.session.waitForPresence(`${A}@intercloud.test`);
  });
  afterAll(async () => {
    await a?.session.stop();
    await b?.session.stop();
  });

  it('logs in over TLS verified against the Root with SASL EXTERNAL', () => {
    expect(a.session.online).toBe(true);
    expect(a.session.fullJid).toBe(`${A}@intercloud.test/gateway`);
  });

  it('refuses a server whose certificate does not chain to the trusted CA (XMPP_TLS)', async () => {
    const c = createXmppClient({
      service: `xmpp://${env.prosody.host}:${env.prosody.port}`, domain: env.prosody.domain, resource: 'x',
      // cloud-a's own certificate is not a CA: the server certificate cannot chain to it.
      tls: { ca: readFileSync(env.pki.clouds['cloud-a']!.cert, 'utf8') }, externalJid: 'cloud-a@intercloud.test', // TLS fails first
      streamTimeoutMs: 2_000,
    });
    c.reconnect.stop();
    const errors: unknown[] = [];
    c.on('error', (e: unknown) => errors.push(e));
    await expect(c.start()).rejects.toMatchObject({ code: 'XMPP_TLS' });
    await c.stop().catch((e: unknown) => errors.push(e));
  });

  it('logs in with SCRAM-SHA-1 where no certificate is presented', async () => {
    const c = createXmppClient({
      service: `xmpp://${env.prosody.host}:${env.prosody.port}`, domain: env.prosody.scram.domain, resource: 'x',
      tls: { ca: readFileSync(env.pki.root, 'utf8') }, scram: { username: env.prosody.scram.username, password: scramPassword(env) },
    });
    c.reconnect.stop();
    const jid = await c.start();
    expect(jid.toString()).toBe(`${env.prosody.scram.jid}/x`);
    await c.stop();
  });

  it('answers disco#info with the Intercloud Gateway identity and features matching its caps', async () => {
    const info = await a.session.peerInfo(gatewayJid(env, B));
    expect(info.identities).toContainEqual(IDENTITIES.GATEWAY);
    expect(info.features).toEqual(expect.arrayContaining([FEATURES.VM_HOSTING, FEATURES.NEGOTIATION, `${FEATURES.FORMAT_PREFIX}ovf`, `${FEATURES.HYPERVISOR_PREFIX}kvm`, NS.TIME]));
    const [peer] = ours(await a.session.discoverPeers({ capability: 'vm-hosting' }));
    expect(peer?.caps).toBe(capsVer(info));
  });

  it('answers disco#info on its caps node#ver and item-not-found on another node (XEP-0115 §6.2)', async () => {
    const [peer] = ours(await a.session.discoverPeers({ capability: 'vm-hosting' }));
    const viaNode = await a.session.peerInfo(gatewayJid(env, B), `${CAPS_NODE}#${peer?.caps ?? ''}`);
    expect(capsVer(viaNode)).toBe(peer?.caps);
    await expect(a.session.peerInfo(gatewayJid(env, B), `${CAPS_NODE}#stale`)).rejects.toMatchObject({
      code: 'XMPP_STANZA_ERROR', details: { condition: 'item-not-found' },
    });
  });

  it('discovers peers by capability, region, capacity and format, with round trip and clock offset', async () => {
    const found = await a.session.discoverPeers({ capability: 'vm-hosting', region: 'eu-central', minVcpus: 4, format: 'ovf' }, { refresh: true, measure: true });
    expect(ours(found).map((p) => p.entry.cloudId)).toEqual([B]);
    const [b1] = ours(found);
    expect(b1?.rttMs).toBeGreaterThan(0);
    expect(Math.abs(b1?.clockOffsetMs ?? 99)).toBeLessThan(50);
    expect(b1?.entry.certificateSha256).toBe(b.trust.certificateSha256);
    expect(ours(await a.session.discoverPeers({ region: 'us-east' }))).toEqual([]);
    expect(ours(await a.session.discoverPeers({ minVcpus: 1000 }))).toEqual([]);
  });

  it('negotiates an offer into a signed, verified accept with a reservation that holds capacity', async () => {
    const before = b.session.catalogEntry().capacity.vcpus;
    const out = await a.session.sendOffer(`${B}@intercloud.test`, vm);
    expect(out.type).toBe('accept');
    if (out.type !== 'accept') return;
    expect(out.signer.cloudId).toBe(B);
    expect(out.accept.transferQueue).toContain(out.accept.reservationId);
    expect(b.session.reservations.get(out.accept.reservationId, Date.now())?.senderCloud).toBe(A);
    expect(b.session.catalogEntry().capacity.vcpus).toBe(before - 2);
    // The cancel releases it.
    await a.session.sendCancel(`${B}@intercloud.test`, { reservationId: out.accept.reservationId, reason: 'test' });
    expect(b.session.reservations.get(out.accept.reservationId, Date.now())).toBeUndefined();
  });

  it('answers a re-sent offer (same id, fresh signature) with the reservation it already holds', async () => {
    if (vm.workload.type !== 'vm') throw new TypeError('vm offer expected');
    // 8 of B's 16 vcpus: counting the same offer twice would leave room for nothing else.
    const again: OfferRequest = { ...vm, offerId: `resent-${Date.now()}`, workload: { ...vm.workload, vcpus: 8, memoryMiB: 8192 } };
    const first = await a.session.sendOffer(`${B}@intercloud.test`, again);
    const second = await a.session.sendOffer(`${B}@intercloud.test`, again);
    expect(first.type).toBe('accept');
    expect(second.type).toBe('accept');
    if (first.type !== 'accept' || second.type !== 'accept') return;
    expect(second.accept.reservationId).toBe(first.accept.reservationId);
    expect(b.session.reservations.usage(A, Date.now()).reservations).toBe(1);
    await a.session.sendCancel(`${B}@intercloud.test`, { reservationId: first.accept.reservationId });
  });

  it('rejects with no-capacity once reservations hold the free capacity', async () => {
    if (vm.workload.type !== 'vm') throw new TypeError('vm offer expected');
    // B has 16 vcpus: two 8-vcpu reservations fill it, the third does not fit.
    const big: OfferRequest = { ...vm, workload: { ...vm.workload, vcpus: 8, memoryMiB: 8192 } };
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await a.session.sendOffer(`${B}@intercloud.test`, big));
    expect(outcomes.map((o) => o.type)).toEqual(['accept', 'accept', 'reject']);
    expect(outcomes[2]).toMatchObject({ type: 'reject', reason: 'no-capacity' });
    for (const o of outcomes) if (o.type === 'accept') await a.session.sendCancel(`${B}@intercloud.test`, { reservationId: o.accept.reservationId });
  });

  it('lets an unused reservation lapse: capacity comes back and the expiry is audited', async () => {
    const C = testCloud('xc');
    const c = await startGateway(env, C, { reservationTtlMs: 1_000 });
    try {
      const before = c.session.catalogEntry().capacity.vcpus;
      const out = await a.session.sendOffer(`${C}@intercloud.test`, vm);
      if (out.type !== 'accept') throw new Error(`expected an accept, got '${out.reason}'`);
      expect(c.session.catalogEntry().capacity.vcpus).toBe(before - 2);
      await new Promise((r) => setTimeout(r, 2_500));
      expect(c.session.reservations.get(out.accept.reservationId, Date.now())).toBeUndefined();
      expect(c.session.catalogEntry().capacity.vcpus).toBe(before);
      const events = auditRecords(c.auditPath).map((r) => r.event);
      expect(events).toContainEqual(expect.objectContaining({ type: 'xmpp.reservation-expired', details: expect.objectContaining({ reservationId: out.accept.reservationId }) }));
      expect(events).toContainEqual(expect.objectContaining({ type: 'xmpp.offer-accepted' }));
    } finally {
      await c.session.stop();
    }
  });

  it('reports progress and lets the peer follow it', async () => {
    const got = new Promise((resolve) => b.session.onProgress((p, from) => resolve({ p, from })));
    await a.session.sendProgress(gatewayJid(env, B), { reservationId: 'r-x', state: 'running', step: 'transfer', percent: 50 });
    expect(await got).toMatchObject({ p: { reservationId: 'r-x', state: 'running', percent: 50 }, from: gatewayJid(env, A) });
  });
});

afterAll(async () => {
  await retractTestEntries(env);
});
