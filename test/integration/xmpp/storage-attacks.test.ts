/**
 * Issue 14, storage subcontract negotiation on the real Prosody with certificates from the real
 * Intercloud Root, attacked by cloud-c — a separate certified cloud driven by a raw XMPP client:
 *
 * - at B (a gateway with an object store in eu-west only, 1000 object GiB): an offer for a
 *   region B has not got; more than B's capacity; an invalid source bucket; a source bucket
 *   naming another cloud's bucket at B (B names its own); a replayed signed offer;
 * - at A (a gateway offering storage): an accept naming a region outside the allowed set, an
 *   invalid bucket, or claiming to be another cloud's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { type Client, type Element } from '@xmpp/client';
import { createDefaultPolicy } from '../../../agent/admission/index.js';
import { checkStorageAccept, subcontractBucketName } from '../../../agent/subcontract/index.js';
import {
  acceptPayload, buildAccept, buildOffer, createTrustBinding, ICNS, MESSAGE_TYPES, offerPayload, parseAccept, type Accept, type Offer,
  type StorageWorkload, type TrustBinding,
} from '../../../protocols/xmpp/index.js';
import {
  ensureCatalogNode, gatewayJid, issueIdentity, offerAnswer, profile, rawClient, retractTestEntries, servicesUp, startGateway, testCloud,
  type Identity, type TestGateway,
} from './gateways.js';
import { requestIq } from '../../helpers/xmpp-iq.js';

const env = servicesUp();
const A = testCloud('sa');
const B = testCloud('sb');
const C = testCloud('sc');

function binding(id: Identity): TrustBinding {
  return createTrustBinding({ certificatePem: id.cert, privateKeyPem: id.key, rootsPem: readFileSync(env.pki.root, 'utf8') });
}

function storageOffer(from: string, w: Partial<StorageWorkload> = {}, over: Partial<Offer> = {}): Offer {
  const now = Date.now();
  return {
    offerId: `s-${Math.random().toString(36).slice(2)}`,
    from,
    workload: {
      type: 'storage', subcontractId: `sc-${Math.random().toString(36).slice(2, 8)}`, sourceBucket: 'photos', replicas: 3, ack: 'sync',
      capacityGiB: 100, maxObjects: 10_000, ends: new Date(now + 86_400_000).toISOString(), atEnd: 'delete', ...w,
    },
    constraints: { regions: ['eu-west'] },
    terms: { currency: 'EUR', maxPricePerGbMonth: 0.05 },
    issued: new Date(now).toISOString(),
    expires: new Date(now + 60_000).toISOString(),
    ...over,
  };
}

async function signed(trust: TrustBinding, offer: Offer): Promise<Element> {
  return buildOffer(offer, await trust.sign(MESSAGE_TYPES.OFFER, offerPayload(offer), 60_000));
}

/** The accept element of a raw offer iq (throws on an error answer). */
async function acceptOf(c: Client, to: string, el: Element): Promise<Accept> {
  const r = await requestIq(c, 'set', to, el, 10_000);
  return parseAccept(r.getChild('accept', ICNS.NEGOTIATION)).accept;
}

describe('storage offers at B, from a hostile certified cloud (issue 14)', () => {
  let b: TestGateway;
  let c: Client;
  const cId = issueIdentity(env.pki, C);
  const bJid = gatewayJid(env, B);

  beforeAll(async () => {
    await ensureCatalogNode(env);
    b = await startGateway(env, B, {
      policy: createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384, storage: { regions: { 'eu-west': { maxReplicas: 3 } } } }),
      profile: profile({ regions: ['eu-west'], capabilities: ['storage-federation', 'transfer-amqp'], capacity: { vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: 1000 } }),
      transferEndpoint: () => ({ uri: 'amqps://127.0.0.1:25672/intercloud', identity: `broker.${B}.intercloud.test` }),
    });
    c = await rawClient(env, C, cId);
  });
  afterAll(async () => {
    await c?.stop();
    await b?.session.stop();
  });

  it('accepts a fitting offer with the region it stores in and a bucket it named itself', async () => {
    const offer = storageOffer(C, { subcontractId: 'sc-ok' });
    const accept = await acceptOf(c, bJid, await signed(binding(cId), offer));
    expect(accept.storage).toEqual({ region: 'eu-west', bucket: subcontractBucketName(C, 'sc-ok') });
    expect(accept.by).toBe(B);
    await b.session.releaseOffer(C, offer.offerId);
  });

  it('refuses an offer for a region it has no object store for: forbidden / policy', async () => {
    const offer = storageOffer(C, {}, { constraints: { regions: ['ap-south', 'us-east'] } });
    expect(await offerAnswer(c, bJid, await signed(binding(cId), offer))).toBe('policy');
  });

  it('refuses more than its free object storage: resource-constraint / no-capacity', async () => {
    // 400 GiB × 3 replicas > 1000 GiB.
    expect(await offerAnswer(c, bJid, await signed(binding(cId), storageOffer(C, { capacityGiB: 400 })))).toBe('no-capacity');
  });

  it('counts what it already reserved: a second offer that would exceed it is refused', async () => {
    const first = storageOffer(C, { capacityGiB: 300 });
    expect((await acceptOf(c, bJid, await signed(binding(cId), first))).storage?.region).toBe('eu-west');
    expect(await offerAnswer(c, bJid, await signed(binding(cId), storageOffer(C, { capacityGiB: 100 })))).toBe('no-capacity');
    await b.session.releaseOffer(C, first.offerId);
    expect(await offerAnswer(c, bJid, await signed(binding(cId), storageOffer(C, { capacityGiB: 100 })))).toBe('accept');
  });

  it('refuses more replicas than its store keeps: policy', async () => {
    expect(await offerAnswer(c, bJid, await signed(binding(cId), storageOffer(C, { replicas: 5 })))).toBe('policy');
  });

  it('refuses an invalid source bucket name as malformed', async () => {
    expect(await offerAnswer(c, bJid, await signed(binding(cId), storageOffer(C, { sourceBucket: 'Not_A_Bucket' })))).toBe('malformed');
  });

  it('never lets the offer name its bucket: a source bucket naming another cloud\'s bucket at B gets B\'s own name for C', async () => {
    const victim = subcontractBucketName(A, 'sc-victim');
    const offer = storageOffer(C, { subcontractId: 'sc-victim', sourceBucket: victim });
    const accept = await acceptOf(c, bJid, await signed(binding(cId), offer));
    expect(accept.storage?.bucket).toBe(subcontractBucketName(C, 'sc-victim'));
    expect(accept.storage?.bucket).not.toBe(victim);
    await b.session.releaseOffer(C, offer.offerId);
  });

  it('refuses a replayed signed storage offer: conflict / replayed', async () => {
    const el = await signed(binding(cId), storageOffer(C));
    expect(await offerAnswer(c, bJid, el)).toBe('accept');
    expect(await offerAnswer(c, bJid, el)).toBe('replayed');
  });

  it('refuses an oversized storage offer with policy-violation / malformed', async () => {
    const el = await signed(binding(cId), storageOffer(C));
    ((el.getChild('storage') as Element).getChild('source') as Element).attrs['prefix'] = 'p'.repeat(600);
    expect(await offerAnswer(c, bJid, el)).toBe('malformed');
  });
});

describe('storage accepts at A, from a hostile certified cloud (issue 14)', () => {
  let a: TestGateway;
  let c: Client;
  const cId = issueIdentity(env.pki, C);
  /** How cloud-c answers the next offer: it rewrites its own honest accept. */
  let lie: (accept: Accept) => Accept = (x) => x;

  beforeAll(async () => {
    a = await startGateway(env, A, { iqTimeoutMs: 5_000 });
    c = await rawClient(env, C, cId, 'gateway');
    const trust = binding(cId);
    c.iqCallee.set(ICNS.NEGOTIATION, 'offer', async (ctx: { element: Element }) => {
      const offerEl = ctx.element;
      const w = offerEl.getChild('storage') as Element;
      const honest: Accept = {
        offerId: offerEl.attrs['id'] as string, reservationId: 'r-1', by: C, transferUri: 'amqps://127.0.0.1:25673/intercloud', transferQueue: 'q-1',
        transferIdentity: `broker.${C}.intercloud.test`, expires: new Date(Date.now() + 60_000).toISOString(),
        storage: { bucket: subcontractBucketName(A, w.attrs['subcontract'] as string), region: 'eu-west' },
      };
      const accept = lie(honest);
      return buildAccept(accept, await trust.sign(MESSAGE_TYPES.ACCEPT, acceptPayload(accept), 60_000));
    });
  });
  afterAll(async () => {
    await c?.stop();
    await a?.session.stop();
  });

  /** A's session sends the offer to cloud-c; A's subcontract checks the accept as its negotiate step does. */
  async function offerToC(): Promise<unknown> {
    const offer = storageOffer(A);
    const out = await a.session.sendOffer(`${C}@intercloud.test`, { offerId: offer.offerId, workload: offer.workload, constraints: offer.constraints, terms: offer.terms });
    if (out.type !== 'accept') return out;
    return checkStorageAccept(out.accept, out.signer, offer, C, 'intercloud.test');
  }

  it('takes an honest accept', async () => {
    lie = (x) => x;
    await expect(offerToC()).resolves.toMatchObject({ region: 'eu-west', endpoint: { identity: `broker.${C}.intercloud.test` } });
  });

  it('refuses an accept naming a region outside the allowed set', async () => {
    lie = (x) => ({ ...x, storage: { bucket: x.storage?.bucket as string, region: 'us-east' } });
    await expect(offerToC()).rejects.toMatchObject({ code: 'SUBCONTRACT_BAD_ACCEPT' });
  });

  it('refuses an accept naming an invalid bucket (on the wire, and past the wire\'s shape check)', async () => {
    lie = (x) => ({ ...x, storage: { bucket: 'Bad_Bucket', region: 'eu-west' } });
    await expect(offerToC()).rejects.toMatchObject({ code: 'XMPP_MALFORMED' });
    lie = (x) => ({ ...x, storage: { bucket: '192.168.10.1', region: 'eu-west' } });
    await expect(offerToC()).rejects.toMatchObject({ code: 'SUBCONTRACT_BAD_ACCEPT' });
  });

  it('refuses an accept by cloud-c that claims to be cloud-b\'s (the subcontract was not offered to it)', async () => {
    lie = (x) => ({ ...x, by: B });
    await expect(offerToC()).rejects.toMatchObject({ code: 'XMPP_UNTRUSTED' });
  });

  it('refuses an accept whose data endpoint is another cloud\'s broker', async () => {
    lie = (x) => ({ ...x, transferIdentity: `broker.${B}.intercloud.test` });
    await expect(offerToC()).rejects.toMatchObject({ code: 'SUBCONTRACT_BAD_ACCEPT' });
  });
});

afterAll(async () => {
  await retractTestEntries(env);
});
