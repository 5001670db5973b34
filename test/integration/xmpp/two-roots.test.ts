/**
 * Issue 13, several Roots: gateways on two Intercloud Roots (the real Prosody servers Root 1,
 * intercloud.test, and Root 2, root2.test, federated over certificate-authenticated s2s). A cloud
 * reads the other Root's directory (`directories`, like root hints) across s2s, sees the other
 * cloud's presence, and negotiates with it. A certified cloud on Root 2 (a plain XMPP client with
 * its own certificate under the Intercloud Root) cannot pass for a cloud of Root 1.
 */
import { xml, type Client } from '@xmpp/client';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCatalogEntry, buildOffer, buildPublish, catalogPayload, CATALOG_NODE, createTrustBinding, MESSAGE_TYPES, normalizeCatalogEntry, offerPayload,
  type CatalogEntry, type TrustBinding,
} from '../../../protocols/xmpp/index.js';
import { service } from '../../helpers/services.js';
import {
  auditRecords, issueIdentity, offerAnswer, profile, rawClient, sampleVmOffer, retractTestEntries, servicesUp, startGateway, testCloud, type Identity, type RootEnv, type TestGateway,
} from './gateways.js';

const env = servicesUp();
const root2: RootEnv = service('prosody2');
const root1: RootEnv = env.prosody;
const toRoot2 = [{ domain: root2.domain, pubsubJid: root2.pubsubJid }];
const toRoot1 = [{ domain: root1.domain, pubsubJid: root1.pubsubJid }];

const A = testCloud('r1a'); // on Root 1, reads Root 2's directory too
const B = testCloud('r2b'); // on Root 2, reads Root 1's directory too
const L = testCloud('r1l'); // on Root 1, reads its own Root only
const EVIL = testCloud('r2evil'); // a certified cloud on Root 2, played by a raw client

function binding(id: Identity): TrustBinding {
  return createTrustBinding({ certificatePem: id.cert, privateKeyPem: id.key, rootsPem: readFileSync(env.pki.root, 'utf8') });
}


describe('two Roots: discovery and negotiation across s2s (issue 13)', () => {
  let a: TestGateway;
  let b: TestGateway;
  let l: TestGateway;
  let evil: Client;
  const evilId = issueIdentity(env.pki, EVIL, root2.domain);

  beforeAll(async () => {
    a = await startGateway(env, A, { root: root1, directories: toRoot2, profile: profile({ regions: ['eu-west'] }) });
    b = await startGateway(env, B, { root: root2, directories: toRoot1, profile: profile({ regions: ['us-east'] }) });
    l = await startGateway(env, L, { root: root1, acceptFrom: [B] });
    evil = await rawClient(env, EVIL, evilId, 'attack', root2);
  }, 60_000);
  afterAll(async () => {
    await evil?.stop();
    await Promise.all([a?.session.stop(), b?.session.stop(), l?.session.stop()]);
    await retractTestEntries(env);
    // this run's entries on Root 2: each cloud retracts its own
    const b2 = await startGateway(env, B, { root: root2, watchCatalog: false }).catch(() => undefined);
    await b2?.session.retractCatalog().catch(() => undefined);
    await b2?.session.stop();
  }, 60_000);

  it('a cloud on Root 1 finds a cloud on Root 2 in its Root\'s directory, online, over s2s — and the other way', async () => {
    await expect.poll(async () => (await a.session.discoverPeers({}, { refresh: true })).find((p) => p.entry.cloudId === B)?.entry.jid, { timeout: 20_000, interval: 250 })
      .toBe(`${B}@${root2.domain}`);
    await expect.poll(async () => (await b.session.discoverPeers({}, { refresh: true })).find((p) => p.entry.cloudId === A)?.entry.jid, { timeout: 20_000, interval: 250 })
      .toBe(`${A}@${root1.domain}`);
    const [measured] = (await a.session.discoverPeers({ region: 'us-east' }, { measure: true, samples: 2 })).filter((p) => p.entry.cloudId === B);
    expect(measured?.unreachable).toBeUndefined();
    expect(measured?.rttMs).toBeGreaterThan(0);
  }, 60_000);

  it('a cloud that reads its own Root only does not see Root 2\'s clouds', async () => {
    expect((await l.session.discoverPeers({}, { refresh: true })).map((p) => p.entry.cloudId)).not.toContain(B);
  });

  it('negotiates across the Roots: a signed offer from Root 1 gets a signed accept from Root 2', async () => {
    const out = await a.session.sendOffer(`${B}@${root2.domain}`, { workload: sampleVmOffer(A).workload, constraints: { regions: [] }, terms: { currency: 'EUR' } });
    expect(out.type).toBe('accept');
    if (out.type === 'accept') expect(out.signer.cloudId).toBe(B);
    expect(b.session.reservations.usage(A, Date.now()).reservations).toBe(1);
  }, 30_000);

  it('a gateway that does not federate with Root 2 refuses offers from it (untrusted), even from a cloud it accepts', async () => {
    const out = await b.session.sendOffer(`${L}@${root1.domain}`, { workload: sampleVmOffer(B).workload, constraints: { regions: [] }, terms: { currency: 'EUR' } });
    expect(out).toMatchObject({ type: 'reject', reason: 'untrusted' });
  }, 30_000);

  it('a certified cloud on Root 2 cannot offer as a cloud of Root 1 (its JID and certificate name another cloud)', async () => {
    const forged = sampleVmOffer(A); // A is a cloud of Root 1; EVIL signs with its own certificate
    const answer = await offerAnswer(evil, `${B}@${root2.domain}/gateway`, buildOffer(forged, await binding(evilId).sign(MESSAGE_TYPES.OFFER, offerPayload(forged), 60_000)));
    expect(answer).toBe('untrusted');
    const refused = auditRecords(b.auditPath).map((r) => r.event).filter((e) => e['type'] === 'xmpp.offer-refused' && e['peer'] === `${EVIL}@${root2.domain}/attack`);
    expect(refused.length).toBeGreaterThan(0);
    // its own offer, as itself, is taken: it is a peer like any other
    const own = sampleVmOffer(EVIL);
    expect(await offerAnswer(evil, `${B}@${root2.domain}/gateway`, buildOffer(own, await binding(evilId).sign(MESSAGE_TYPES.OFFER, offerPayload(own), 60_000)))).toBe('accept');
  }, 30_000);

  it('a Root\'s directory lists that Root\'s clouds only: an entry naming a JID on another Root is not taken from it', async () => {
    // EVIL also holds a Root 1 identity (the CA issued both); it publishes on Root 2 an entry,
    // signed with its Root 1 certificate, that names its Root 1 JID.
    const r1Id = issueIdentity(env.pki, EVIL, root1.domain);
    const entry: CatalogEntry = normalizeCatalogEntry({
      ...a.session.catalogEntry(), cloudId: EVIL, jid: `${EVIL}@${root1.domain}`,
      certificateSha256: binding(r1Id).certificateSha256, updated: new Date().toISOString(),
    });
    const signature = await binding(r1Id).sign(MESSAGE_TYPES.CATALOG, catalogPayload(entry), 3_600_000);
    await evil.iqCaller.request(xml('iq', { type: 'set', to: root2.pubsubJid }, buildPublish(CATALOG_NODE, EVIL, buildCatalogEntry(entry, signature))), 10_000);
    await a.session.refreshCatalog({ full: true });
    const ignored = () => auditRecords(a.auditPath).map((r) => r.event)
      .filter((e) => e['type'] === 'xmpp.catalog-entry-ignored' && e['peer'] === `${EVIL}@${root2.domain}` && e['reason'] === 'XMPP_UNTRUSTED');
    await expect.poll(() => ignored().length, { timeout: 10_000 }).toBeGreaterThan(0);
    const c1 = await rawClient(env, EVIL, r1Id, 'present', root1);
    try {
      await c1.send(xml('presence', {}));
      expect((await a.session.discoverPeers({}, { refresh: true })).map((p) => p.entry.cloudId)).not.toContain(EVIL);
    } finally {
      await c1.stop();
    }
    await evil.iqCaller.request(xml('iq', { type: 'set', to: root2.pubsubJid },
      xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('retract', { node: CATALOG_NODE }, xml('item', { id: EVIL })))), 10_000);
  }, 30_000);
});
