/**
 * Bad input to a gateway on the real Prosody: each case gets a proper stanza error (with
 * our reject reason where it is a negotiation), is audited where it is a refusal, and
 * the gateway keeps answering afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xml, type Client, type Element } from '@xmpp/client';
import {
  buildOffer, createTrustBinding, ICNS, MESSAGE_TYPES, offerPayload, parseReject, parseStanzaError, type Offer, type TrustBinding,
} from '../../../protocols/xmpp/index.js';
import { readFileSync } from 'node:fs';
import {
  auditRecords, crlRevoking, ensureCatalogNode, foreignIdentity, gatewayJid, issueIdentity, rawClient, servicesUp, startGateway, testCloud,
  retractTestEntries, sampleVmOffer, type Identity, type TestGateway,
} from './gateways.js';
import { requestIq } from '../../helpers/xmpp-iq.js';

const env = servicesUp();
const A = testCloud('ba');
const B = testCloud('bb');
const C = testCloud('bc');
const R = testCloud('br');

/** What the gateway answered a raw iq with. */
interface Answer {
  type: 'result' | 'error';
  condition?: string;
  errorType?: string;
  reason?: string;
  child?: Element;
}

async function ask(c: Client, to: string, child: Element): Promise<Answer> {
  try {
    const r = await requestIq(c, 'set', to, child, 5_000);
    return { type: 'result', ...(r.getChildElements()[0] ? { child: r.getChildElements()[0] } : {}) };
  } catch (err) {
    const el = (err as { element?: Element }).element;
    if (!el) throw err;
    const info = parseStanzaError(el);
    const reject = parseReject(info.application, info.text);
    return { type: 'error', condition: info.condition, errorType: info.type, ...(reject ? { reason: reject.reason } : {}) };
  }
}


function binding(id: Identity, now?: () => number): TrustBinding {
  return createTrustBinding({ certificatePem: id.cert, privateKeyPem: id.key, rootsPem: readFileSync(env.pki.root, 'utf8'), ...(now ? { now } : {}) });
}

async function signed(trust: TrustBinding, offer: Offer): Promise<Element> {
  return buildOffer(offer, await trust.sign(MESSAGE_TYPES.OFFER, offerPayload(offer), 60_000));
}

describe('a gateway under bad input', () => {
  let b: TestGateway;
  let c: Client;
  let revokedClient: Client;
  const cId = issueIdentity(env.pki, C);
  const revoked = issueIdentity(env.pki, R);
  const bJid = gatewayJid(env, B);

  beforeAll(async () => {
    await ensureCatalogNode(env);
    b = await startGateway(env, B, { crlPem: crlRevoking(env.pki, [revoked.serial as string]), iqTimeoutMs: 2_000 });
    c = await rawClient(env, C, cId);
    revokedClient = await rawClient(env, R, revoked);
  });
  afterAll(async () => {
    await c?.stop();
    await revokedClient?.stop();
    await b?.session.stop();
  });

  /** After each case the gateway still negotiates with a well-formed offer. */
  async function stillWorks(): Promise<void> {
    const ok = await ask(c, bJid, await signed(binding(cId), sampleVmOffer(C)));
    expect(ok.type).toBe('result');
    expect(ok.child?.is('accept', ICNS.NEGOTIATION)).toBe(true);
  }

  it('answers an offer missing its workload with bad-request / malformed', async () => {
    const el = await signed(binding(cId), sampleVmOffer(C));
    el.remove(el.getChild('vm') as Element);
    expect(await ask(c, bJid, el)).toMatchObject({ type: 'error', condition: 'bad-request', errorType: 'modify', reason: 'malformed' });
    await stillWorks();
  });

  it('answers an offer without a signature with bad-request / malformed', async () => {
    const el = await signed(binding(cId), sampleVmOffer(C));
    el.remove(el.getChild('signature', ICNS.SIGNATURE) as Element);
    expect(await ask(c, bJid, el)).toMatchObject({ type: 'error', condition: 'bad-request', reason: 'malformed' });
  });

  it('answers a malformed stanza (garbage attributes, wrong types) with bad-request', async () => {
    const garbage = xml('offer', { xmlns: ICNS.NEGOTIATION, id: '../../etc/passwd', from: C, issued: 'now', expires: 'later' },
      xml('vm', { vcpus: '-1', 'memory-mib': 'lots' }), xml('signature', { xmlns: ICNS.SIGNATURE }, '{not json'));
    expect(await ask(c, bJid, garbage)).toMatchObject({ type: 'error', condition: 'bad-request', reason: 'malformed' });
    await stillWorks();
  });

  it('answers an oversized offer with policy-violation', async () => {
    const el = await signed(binding(cId), sampleVmOffer(C));
    (el.getChild('constraints') as Element).append(xml('region', {}, 'x'.repeat(100 * 1024)));
    expect(await ask(c, bJid, el)).toMatchObject({ type: 'error', condition: 'policy-violation', reason: 'malformed' });
    await stillWorks();
  });

  it('answers an unknown namespace with service-unavailable', async () => {
    expect(await ask(c, bJid, xml('query', { xmlns: 'urn:example:unknown:0' }))).toMatchObject({ type: 'error', condition: 'service-unavailable' });
    expect(await ask(c, bJid, xml('offer', { xmlns: 'urn:intercloud:negotiation:99' }))).toMatchObject({ type: 'error', condition: 'service-unavailable' });
    await stillWorks();
  });

  it('refuses an expired offer with not-acceptable / expired', async () => {
    const past = Date.now() - 120_000;
    const offer = sampleVmOffer(C, { issued: new Date(past).toISOString(), expires: new Date(past + 60_000).toISOString() });
    expect(await ask(c, bJid, await signed(binding(cId, () => past), offer))).toMatchObject({ type: 'error', condition: 'not-acceptable', reason: 'expired' });
  });

  it('refuses an offer issued in its future with clock-skew', async () => {
    const ahead = Date.now() + 120_000;
    const offer = sampleVmOffer(C, { issued: new Date(ahead).toISOString(), expires: new Date(ahead + 60_000).toISOString() });
    expect(await ask(c, bJid, await signed(binding(cId, () => ahead), offer))).toMatchObject({ type: 'error', reason: 'clock-skew' });
  });

  it('refuses a replayed offer (same signed stanza twice) with conflict / replayed', async () => {
    const el = await signed(binding(cId), sampleVmOffer(C));
    expect((await ask(c, bJid, el)).type).toBe('result');
    expect(await ask(c, bJid, el)).toMatchObject({ type: 'error', condition: 'conflict', reason: 'replayed' });
  });

  it('refuses an offer signed under an unknown root with not-authorized / untrusted', async () => {
    const rogue = binding(foreignIdentity(C));
    expect(await ask(c, bJid, await signed(rogue, sampleVmOffer(C)))).toMatchObject({ type: 'error', condition: 'not-authorized', reason: 'untrusted' });
  });

  it('refuses an offer from a revoked cloud with untrusted (the server still let it log in)', async () => {
    expect(await ask(revokedClient, bJid, await signed(binding(revoked), sampleVmOffer(R)))).toMatchObject({ type: 'error', reason: 'untrusted' });
  });

  it('refuses an offer whose claimed cloud does not match the sending jid', async () => {
    const aId = issueIdentity(env.pki, A);
    // Sent by C, claiming and signed as A.
    expect(await ask(c, bJid, await signed(binding(aId), sampleVmOffer(A)))).toMatchObject({ type: 'error', reason: 'untrusted' });
    // Sent by C as C, but signed with A's certificate.
    expect(await ask(c, bJid, await signed(binding(aId), sampleVmOffer(C)))).toMatchObject({ type: 'error', reason: 'untrusted' });
    await stillWorks();
  });

  it('audits every refusal with its reason', () => {
    const refused = auditRecords(b.auditPath).map((r) => r.event).filter((e) => e['type'] === 'xmpp.offer-refused');
    const reasons = new Set(refused.map((e) => e['reason']));
    for (const r of ['malformed', 'expired', 'clock-skew', 'replayed', 'untrusted']) expect(reasons).toContain(r);
    const codes = new Set(refused.map((e) => (e['details'] as { code?: string } | undefined)?.code));
    for (const code of ['TRUST_REVOKED', 'TRUST_UNKNOWN_SIGNER', 'TRUST_IDENTITY_MISMATCH', 'XMPP_OVERSIZED', 'XMPP_MALFORMED']) expect(codes).toContain(code);
    expect(refused.every((e) => typeof e['peer'] === 'string' && (e['peer'] as string).includes('@intercloud.test'))).toBe(true);
  });
});

describe('a peer that vanishes mid-negotiation', () => {
  let a: TestGateway;
  let b: TestGateway;
  let c: TestGateway;
  beforeAll(async () => {
    a = await startGateway(env, A, { iqTimeoutMs: 1_500 });
    b = await startGateway(env, B);
    c = await startGateway(env, C);
  });
  afterAll(async () => {
    await a?.session.stop();
    await b?.session.stop();
    await c?.session.stop();
  });

  it('times out the offer, keeps the sender running, and the next peer still answers', async () => {
    // B drops its connection while it holds the offer, and never answers.
    b.session.onOffer(() => {
      b.session.kill();
      return new Promise(() => undefined);
    });
    const vm = sampleVmOffer(A);
    const request = { workload: vm.workload, constraints: vm.constraints, terms: vm.terms };
    await expect(a.session.sendOffer(`${B}@intercloud.test`, request)).rejects.toMatchObject({ code: 'XMPP_TIMEOUT', retryable: true });
    expect(a.session.online).toBe(true);
    // Once the server saw it go, the peer is answered for by the server.
    await expect(a.session.sendOffer(`${B}@intercloud.test`, request)).rejects.toMatchObject({ code: 'XMPP_PEER_UNAVAILABLE' });
    const out = await a.session.sendOffer(`${C}@intercloud.test`, request);
    expect(out.type).toBe('accept');
  });
});

afterAll(async () => {
  await retractTestEntries(env);
});
