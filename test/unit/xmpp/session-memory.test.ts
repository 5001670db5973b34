/**
 * GatewaySession over an in-memory connection (issue 13): the negotiation end to end with the
 * real trust binding (certificates under a test Root, signatures, per-peer replay stores) and
 * the agent's admission, but no server.
 */
import { describe, expect, it } from 'vitest';
import { certificateToPem, generateKeyPair, issueGatewayCertificate, privateKeyToPem } from '../../../protocols/trust/index.js';
import { xml, type Element } from '@xmpp/client';
import {
  CATALOG_NODE, GatewaySession, ICNS, MESSAGE_TYPES, acceptPayload, buildAccept, buildCatalogEntry, buildPublish, createTrustBinding, parseOffer,
  parseReject, parseStanzaError, type Accept, type GatewaySessionOptions, type MigrationAdvert,
} from '../../../protocols/xmpp/index.js';
import { createDefaultPolicy, createOfferAdmission } from '../../../agent/admission/index.js';
import { DAY, NOW, makeGateway, makeRoot } from '../trust/fixtures.js';
import { sampleEntry, sampleOffer } from './fixtures.js';
import { MemoryHub, pubsubService } from './memory-connection.js';

const root = makeRoot();
const rootPem = certificateToPem(root.certificate.der);
const ids = Object.fromEntries(['cloud-a', 'cloud-b', 'cloud-c'].map((c) => [c, makeGateway(root, c)]));
const DOMAIN = 'intercloud.test';

function gateway(
  hub: MemoryHub, cloud: string,
  opts: { now?: () => number; trustNow?: () => number; acceptFrom?: string[]; watch?: boolean; regions?: string[]; migration?: MigrationAdvert } = {},
): GatewaySession {
  const g = ids[cloud]!;
  const now = opts.now ?? (() => NOW.getTime());
  const e = sampleEntry({ cloudId: cloud, jid: `${cloud}@${DOMAIN}`, ...(opts.regions ? { regions: opts.regions } : {}) });
  const options: GatewaySessionOptions = {
    cloudId: cloud, service: 'xmpp://memory', domain: DOMAIN, pubsubJid: `pubsub.${DOMAIN}`, tls: { ca: rootPem },
    trust: createTrustBinding({ certificatePem: certificateToPem(g.certificate.der), privateKeyPem: privateKeyToPem(g.privateKey), rootsPem: rootPem, now: opts.trustNow ?? now }),
    admission: createOfferAdmission({
      policy: createDefaultPolicy({ acceptFrom: opts.acceptFrom ?? ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 }), domain: DOMAIN, capacity: e.capacity,
      ...(opts.migration === undefined ? {} : { migration: opts.migration }),
    }),
    profile: {
      regions: e.regions, hypervisors: e.hypervisors, formats: e.formats, capabilities: e.capabilities, capacity: e.capacity, terms: e.terms, transferUri: e.transferUri,
      ...(opts.migration === undefined ? {} : { migration: opts.migration }),
    },
    watchCatalog: opts.watch ?? false, now, connection: hub.connect(`${cloud}@${DOMAIN}/gateway`),
  };
  return new GatewaySession(options);
}

/** The reject reason of an iq handler's `<error/>` answer. */
function reasonOf(answer: Element | Record<string, never>): string | undefined {
  const info = parseStanzaError('name' in answer ? (answer as Element) : xml('error'));
  return parseReject(info.application, info.text)?.reason;
}

const request = () => {
  const o = sampleOffer();
  return { workload: o.workload, constraints: o.constraints, terms: o.terms };
};

describe('a session over an in-memory connection', () => {
  it('offers, and the target accepts with the reservation its admission made, recorded in its book', async () => {
    const hub = new MemoryHub();
    const a = gateway(hub, 'cloud-a');
    const b = gateway(hub, 'cloud-b');
    const seen: string[] = [];
    b.onOffer((incoming) => { seen.push(incoming.reservation.reservationId); return undefined; });
    await a.start();
    await b.start();
    const out = await a.sendOffer(`cloud-b@${DOMAIN}`, request());
    expect(out.type).toBe('accept');
    if (out.type !== 'accept') return;
    expect(out.signer.cloudId).toBe('cloud-b');
    expect(seen).toEqual([out.accept.reservationId]);
    const r = b.reservations.get(out.accept.reservationId, NOW.getTime());
    expect(r).toMatchObject({ senderCloud: 'cloud-a', senderJid: `cloud-a@${DOMAIN}/gateway` });
    expect(new Date(r!.expiresAt).toISOString()).toBe(out.accept.expires);
    await a.stop();
    await b.stop();
  });

  it('refuses a cloud the allow-list does not name, with reason policy', async () => {
    const hub = new MemoryHub();
    const a = gateway(hub, 'cloud-a');
    const b = gateway(hub, 'cloud-b', { acceptFrom: ['cloud-z'] });
    await a.start();
    await b.start();
    await expect(a.sendOffer(`cloud-b@${DOMAIN}`, request())).resolves.toMatchObject({ type: 'reject', reason: 'policy' });
    expect(b.reservations.size(NOW.getTime())).toBe(0);
  });

  it('refuses an offer whose signature expired, with reason expired, though the offer itself is current', async () => {
    const hub = new MemoryHub();
    // cloud-a signs with a clock 10 minutes behind: its 60 s envelope is long expired at cloud-b.
    const a = gateway(hub, 'cloud-a', { trustNow: () => NOW.getTime() - 600_000 });
    const b = gateway(hub, 'cloud-b');
    await a.start();
    await b.start();
    await expect(a.sendOffer(`cloud-b@${DOMAIN}`, request())).resolves.toMatchObject({ type: 'reject', reason: 'expired' });
  });

  it('refuses a replayed offer stanza with reason replayed, and the retried offer id gets the same reservation', async () => {
    const hub = new MemoryHub();
    const a = gateway(hub, 'cloud-a');
    const b = gateway(hub, 'cloud-b');
    await a.start();
    await b.start();
    const first = await a.sendOffer(`cloud-b@${DOMAIN}`, { ...request(), offerId: 'o-1' });
    const sent = hub.sent.at(-1)!;
    const replay = await hub.deliver(sent.from, sent.to, 'set', sent.child);
    expect(reasonOf(replay)).toBe('replayed');
    // The same offer id again, freshly signed (a retry): the reservation it holds.
    const again = await a.sendOffer(`cloud-b@${DOMAIN}`, { ...request(), offerId: 'o-1' });
    expect(first.type === 'accept' && again.type === 'accept' && again.accept.reservationId === first.accept.reservationId).toBe(true);
    expect(b.reservations.size(NOW.getTime())).toBe(1);
  });

  it('refuses an offer that claims another cloud than its sender: untrusted', async () => {
    const hub = new MemoryHub();
    const a = gateway(hub, 'cloud-a');
    const b = gateway(hub, 'cloud-b');
    await a.start();
    await b.start();
    await a.sendOffer(`cloud-b@${DOMAIN}`, request());
    const sent = hub.sent.at(-1)!;
    const forged = await hub.deliver(`cloud-c@${DOMAIN}/gateway`, sent.to, 'set', sent.child);
    expect(reasonOf(forged)).toBe('untrusted');
  });
});

describe('migration modes over an in-memory connection (issue 15)', () => {
  const NEEDS = { hypervisor: 'qemu', arch: 'x86_64', machine: 'pc-i440fx-7.2' };
  const LIVE: MigrationAdvert = { modes: ['cold', 'warm', 'live'], restore: { hypervisor: 'qemu', version: '7.2.19', machines: [{ arch: 'x86_64', machine: 'pc-i440fx-7.2' }] } };

  it('a gateway publishes the modes it takes in its signed catalog entry; one without takes cold only and says nothing', () => {
    const hub = new MemoryHub();
    expect(gateway(hub, 'cloud-b', { migration: LIVE }).catalogEntry().migration).toEqual(LIVE);
    expect(gateway(hub, 'cloud-c').catalogEntry().migration).toBeUndefined();
  });

  it('a live offer the target can restore is accepted with the mode agreed, signed and verified', async () => {
    const hub = new MemoryHub();
    const a = gateway(hub, 'cloud-a');
    const b = gateway(hub, 'cloud-b', { migration: LIVE });
    await a.start();
    await b.start();
    const out = await a.sendOffer(`cloud-b@${DOMAIN}`, { ...request(), mode: 'live', state: NEEDS });
    expect(out).toMatchObject({ type: 'accept', accept: { mode: 'live' } });
    const warm = await a.sendOffer(`cloud-b@${DOMAIN}`, { ...request(), mode: 'warm' });
    expect(warm).toMatchObject({ type: 'accept', accept: { mode: 'warm' } });
    const cold = await a.sendOffer(`cloud-b@${DOMAIN}`, request());
    expect(cold.type).toBe('accept');
    expect(cold.type === 'accept' && 'mode' in cold.accept).toBe(false);
  });

  it('a target that cannot restore the state, or takes cold only, rejects unsupported-mode and reserves nothing', async () => {
    const hub = new MemoryHub();
    const a = gateway(hub, 'cloud-a');
    const b = gateway(hub, 'cloud-b', { migration: LIVE });
    const c = gateway(hub, 'cloud-c');
    await a.start();
    await b.start();
    await c.start();
    await expect(a.sendOffer(`cloud-b@${DOMAIN}`, { ...request(), mode: 'live', state: { ...NEEDS, machine: 'pc-q35-9.0' } }))
      .resolves.toMatchObject({ type: 'reject', reason: 'unsupported-mode', text: expect.stringContaining("machine type 'pc-q35-9.0'") });
    await expect(a.sendOffer(`cloud-c@${DOMAIN}`, { ...request(), mode: 'warm' })).resolves.toMatchObject({ type: 'reject', reason: 'unsupported-mode' });
    expect(b.reservations.size(NOW.getTime()) + c.reservations.size(NOW.getTime())).toBe(0);
  });

  it('a source refuses an accept, however well signed, that agrees to another mode than it offered', async () => {
    const hub = new MemoryHub();
    const a = gateway(hub, 'cloud-a');
    await a.start();
    // cloud-b answers a live offer with an accept for warm, signed with its own certificate.
    const g = ids['cloud-b']!;
    const trustB = createTrustBinding({ certificatePem: certificateToPem(g.certificate.der), privateKeyPem: privateKeyToPem(g.privateKey), rootsPem: rootPem, now: () => NOW.getTime() });
    const connB = hub.connect(`cloud-b@${DOMAIN}/gateway`);
    await connB.start();
    connB.handle('set', ICNS.NEGOTIATION, 'offer', async (child) => {
      const { offer } = parseOffer(child);
      const accept: Accept = {
        offerId: offer.offerId, reservationId: 'r-1', by: 'cloud-b', transferUri: 'amqps://127.0.0.1:25671/intercloud', transferQueue: 'q',
        expires: new Date(NOW.getTime() + 60_000).toISOString(), mode: 'warm',
      };
      return buildAccept(accept, await trustB.sign(MESSAGE_TYPES.ACCEPT, acceptPayload(accept), 60_000));
    });
    await expect(a.sendOffer(`cloud-b@${DOMAIN}`, { ...request(), mode: 'live', state: NEEDS })).rejects.toMatchObject({ code: 'XMPP_MALFORMED' });
    // The same accept for the mode offered is taken: it is the mode that is refused.
    await expect(a.sendOffer(`cloud-b@${DOMAIN}`, { ...request(), mode: 'warm' })).resolves.toMatchObject({ type: 'accept', accept: { mode: 'warm' } });
  });

  it('a relay that strips or lowers the signed mode makes the offer fail verification: untrusted', async () => {
    const hub = new MemoryHub();
    const a = gateway(hub, 'cloud-a');
    const b = gateway(hub, 'cloud-b', { migration: LIVE });
    const c = gateway(hub, 'cloud-c', { migration: LIVE });
    await a.start();
    await b.start();
    await c.start();
    // Signed live offers, taken by cloud-c; a copy of each is replayed to cloud-b (another replay
    // store) with its mode edited. Each edit needs its own offer: a receiver remembers the nonce.
    const signedCopy = async (): Promise<{ from: string; el: Element }> => {
      await expect(a.sendOffer(`cloud-c@${DOMAIN}`, { ...request(), mode: 'live', state: NEEDS })).resolves.toMatchObject({ type: 'accept' });
      const sent = hub.sent.at(-1)!;
      let parsed: Element | undefined;
      const parser = new xml.Parser();
      parser.on('element', (el: Element) => { parsed = el; });
      parser.write(`<root>${sent.child.toString()}`);
      return { from: sent.from, el: parsed! };
    };
    const stripped = await signedCopy();
    stripped.el.remove(stripped.el.getChild('migration') as Element);
    expect(reasonOf(await hub.deliver(stripped.from, `cloud-b@${DOMAIN}/gateway`, 'set', stripped.el))).toBe('untrusted');
    const lowered = await signedCopy();
    const m = lowered.el.getChild('migration') as Element;
    m.attrs['mode'] = 'warm';
    m.remove(m.getChild('state') as Element);
    expect(reasonOf(await hub.deliver(lowered.from, `cloud-b@${DOMAIN}/gateway`, 'set', lowered.el))).toBe('untrusted');
    // The same copy unedited is taken: it is the edit that fails, not the relaying.
    const intact = await signedCopy();
    expect(reasonOf(await hub.deliver(intact.from, `cloud-b@${DOMAIN}/gateway`, 'set', intact.el))).toBeUndefined();
    expect(b.reservations.size(NOW.getTime())).toBe(1);
  });
});

describe('the directory over an in-memory connection and PubSub service', () => {
  function observer(hub: MemoryHub): GatewaySession {
    const g = ids['cloud-a']!;
    // What the CLI's `peers` makes: no profile, no policy, no admission.
    return new GatewaySession({
      cloudId: 'cloud-a', service: 'xmpp://memory', domain: DOMAIN, pubsubJid: `pubsub.${DOMAIN}`, tls: { ca: rootPem },
      trust: createTrustBinding({ certificatePem: certificateToPem(g.certificate.der), privateKeyPem: privateKeyToPem(g.privateKey), rootsPem: rootPem, now: () => NOW.getTime() }),
      observer: true, resource: 'cli-1', now: () => NOW.getTime(), connection: hub.connect(`cloud-a@${DOMAIN}/cli-1`),
    });
  }

  it('an observer with no profile or policy finds the online clouds, filters them, and sees one leave', async () => {
    const hub = new MemoryHub();
    hub.server = pubsubService(hub, `pubsub.${DOMAIN}`);
    const b = gateway(hub, 'cloud-b', { watch: true });
    const c = gateway(hub, 'cloud-c', { watch: true, regions: ['us-east'] });
    await b.start();
    await c.start();
    const a = observer(hub);
    await a.start();
    expect((await a.discoverPeers({}, { refresh: true })).map((p) => p.entry.cloudId)).toEqual(['cloud-b', 'cloud-c']);
    expect((await a.discoverPeers({ region: 'us-east' })).map((p) => p.entry.cloudId)).toEqual(['cloud-c']);
    // The observer published nothing and takes no offers.
    expect(() => a.reservations).toThrow(expect.objectContaining({ code: 'XMPP_CONFIG' }));
    await c.retractCatalog();
    expect((await a.discoverPeers({}, { refresh: true })).map((p) => p.entry.cloudId)).toEqual(['cloud-b']);
    b.kill();
    expect(await a.discoverPeers({}, { refresh: true })).toEqual([]);
  });

  it('reads and verifies a published migration advert, so a source can choose a mode from it (issue 15)', async () => {
    const hub = new MemoryHub();
    hub.server = pubsubService(hub, `pubsub.${DOMAIN}`);
    const advert: MigrationAdvert = { modes: ['cold', 'warm', 'live'], restore: { hypervisor: 'qemu', version: '7.2.19', machines: [{ arch: 'x86_64', machine: 'pc-i440fx-7.2', alias: 'pc' }] } };
    const b = gateway(hub, 'cloud-b', { watch: true, migration: advert });
    const c = gateway(hub, 'cloud-c', { watch: true });
    await b.start();
    await c.start();
    const a = observer(hub);
    await a.start();
    const peers = await a.discoverPeers({}, { refresh: true });
    expect(peers.map((p) => [p.entry.cloudId, p.entry.migration])).toEqual([['cloud-b', advert], ['cloud-c', undefined]]);
  });

  it('a watching gateway follows notifications: a changed entry, and a bad one is skipped with a coded warning', async () => {
    const hub = new MemoryHub();
    const pubsub = pubsubService(hub, `pubsub.${DOMAIN}`);
    hub.server = pubsub;
    const b = gateway(hub, 'cloud-b', { watch: true });
    const c = gateway(hub, 'cloud-c', { watch: true });
    const warnings: string[] = [];
    b.on('warning', (w: { code: string }) => warnings.push(w.code));
    await b.start();
    await c.start();
    const [first] = await b.discoverPeers();
    expect(first?.entry.capacity.vcpus).toBe(32);
    await c.publishCatalog({ capacity: { ...first!.entry.capacity, vcpus: 3 } });
    await new Promise((r) => setTimeout(r, 20));
    expect((await b.discoverPeers())[0]?.entry.capacity.vcpus).toBe(3);
    // Someone publishes cloud-c's item with a changed price but cloud-c's old signature.
    const good = c.catalogEntry();
    const forged = buildCatalogEntry({ ...good, terms: { ...good.terms, pricePerVcpuHour: 0.001 } }, 'not-a-signature');
    pubsub({ type: 'set', to: `pubsub.${DOMAIN}`, from: 'x', child: buildPublish(CATALOG_NODE, 'cloud-c', forged) });
    await new Promise((r) => setTimeout(r, 20));
    expect(await b.discoverPeers()).toEqual([]);
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.every((w) => /^(XMPP|TRUST)_[A-Z_]+$/.test(w))).toBe(true);
  });
});

describe('catalogs from several PubSub services (federated Roots)', () => {
  it('reads each service, keeps where each entry came from, and a retraction on one leaves the other', async () => {
    const ROOT2 = 'root2.test';
    const hub = new MemoryHub();
    hub.server = pubsubService(hub, `pubsub.${DOMAIN}`);
    hub.server = pubsubService(hub, `pubsub.${ROOT2}`);
    const b = gateway(hub, 'cloud-b', { watch: true });
    await b.start();
    // cloud-d belongs to the second Root: its certificate names cloud-d@root2.test, and it
    // publishes on that Root's service.
    const keys = generateKeyPair('ec');
    const dCert = issueGatewayCertificate(root, { cloudId: 'cloud-d', jid: `cloud-d@${ROOT2}`, publicKey: keys.publicKey, now: new Date(NOW.getTime() - DAY), days: 90 });
    const e = sampleEntry({ cloudId: 'cloud-d', jid: `cloud-d@${ROOT2}` });
    const d = new GatewaySession({
      cloudId: 'cloud-d', service: 'xmpp://memory', domain: ROOT2, pubsubJid: `pubsub.${ROOT2}`, tls: { ca: rootPem },
      trust: createTrustBinding({ certificatePem: certificateToPem(dCert.der), privateKeyPem: privateKeyToPem(keys.privateKey), rootsPem: rootPem, now: () => NOW.getTime() }),
      admission: createOfferAdmission({ policy: createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 }), domain: ROOT2, capacity: e.capacity }),
      profile: { regions: e.regions, hypervisors: e.hypervisors, formats: e.formats, capabilities: e.capabilities, capacity: e.capacity, terms: e.terms, transferUri: e.transferUri },
      watchCatalog: false, now: () => NOW.getTime(), connection: hub.connect(`cloud-d@${ROOT2}/gateway`),
    });
    await d.start();
    const g = ids['cloud-a']!;
    let readers = 0;
    const reader = (services?: Array<{ service: string; domain: string }>): GatewaySession => new GatewaySession({
      cloudId: 'cloud-a', service: 'xmpp://memory', domain: DOMAIN, pubsubJid: `pubsub.${DOMAIN}`, tls: { ca: rootPem },
      trust: createTrustBinding({ certificatePem: certificateToPem(g.certificate.der), privateKeyPem: privateKeyToPem(g.privateKey), rootsPem: rootPem, now: () => NOW.getTime() }),
      observer: true, now: () => NOW.getTime(), connection: hub.connect(`cloud-a@${DOMAIN}/cli-${++readers}`),
      ...(services ? { catalogServices: services } : {}),
    });
    // By default only our own Root's catalog is read.
    const one = reader();
    await one.start();
    expect((await one.discoverPeers({}, { refresh: true })).map((p) => p.entry.cloudId)).toEqual(['cloud-b']);
    const both = reader([{ service: `pubsub.${DOMAIN}`, domain: DOMAIN }, { service: `pubsub.${ROOT2}`, domain: ROOT2 }]);
    await both.start();
    expect((await both.discoverPeers({}, { refresh: true })).map((p) => p.entry.jid)).toEqual(['cloud-b@intercloud.test', `cloud-d@${ROOT2}`]);
    await b.retractCatalog();
    expect((await both.discoverPeers({}, { refresh: true })).map((p) => p.entry.cloudId)).toEqual(['cloud-d']);
    // A service's entries must name JIDs of its own domain: read as our Root's, cloud-d's entry is refused.
    const wrong = reader([{ service: `pubsub.${ROOT2}`, domain: DOMAIN }]);
    const warned: string[] = [];
    wrong.on('warning', (w: { code: string }) => warned.push(w.code));
    await wrong.start();
    expect(await wrong.discoverPeers({}, { refresh: true })).toEqual([]);
    expect(warned).toContain('XMPP_UNTRUSTED');
  });
});
