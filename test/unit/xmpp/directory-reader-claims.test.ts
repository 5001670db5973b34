/**
 * The directory reader against a certified cloud that copies another cloud's public catalog
 * entry (issue 13 review). The Root lets a cloud publish only the item named after itself, but
 * the payload and signature inside are its choice:
 * - a copy of cloud-a's signed entry in cloud-x's own item is refused — and that refusal must not
 *   hide cloud-a's genuine item carrying the same signature (on the same Root or another);
 * - cloud-x's own entry carrying cloud-a's already-verified signature is a claim nobody signed:
 *   it must be verified on its own, and fail.
 * The trust port here verifies exactly cloud-a's payload, cloud id and JID under its signature.
 */
import { xml, type Element } from '@xmpp/client';
import { describe, expect, it } from 'vitest';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { canonicalJson } from '../../../protocols/trust/index.js';
import {
  buildCatalogEntry, catalogPayload, CATALOG_NODE, NS, type CatalogEntry, type GatewayTrust, type VerifyExpectation,
} from '../../../protocols/xmpp/index.js';
import { DirectoryReader } from '../../../protocols/xmpp/directory-reader.js';
import { emptyDirectory, findPeers, reduceDirectory, type DirectoryState } from '../../../protocols/xmpp/directory.js';
import { FINGERPRINT, sampleEntry } from './fixtures.js';

const ROOT1 = 'pubsub.intercloud.test';
const ROOT2 = 'pubsub.root2.test';
const victim: CatalogEntry = sampleEntry({ cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' });
const SIG = 'signature-of-cloud-a';

const trust: GatewayTrust = {
  certificateSha256: FINGERPRINT,
  sign: async () => 'unused',
  audit: async () => undefined,
  verify: async (sig: string, e: VerifyExpectation) => {
    if (sig === SIG && e.cloudId === 'cloud-a' && e.jid === victim.jid && canonicalJson(e.payload) === canonicalJson(catalogPayload(victim))) {
      return { cloudId: 'cloud-a', certificateSha256: FINGERPRINT };
    }
    throw new IntercloudError('TRUST_BAD_SIGNATURE', 'does not verify');
  },
} as unknown as GatewayTrust;

function itemsResult(items: Array<{ id: string; payload: Element }>): Element {
  return xml('iq', { type: 'result' }, xml('pubsub', { xmlns: NS.PUBSUB }, xml('items', { node: CATALOG_NODE },
    ...items.map((i) => xml('item', { id: i.id }, i.payload)))));
}

function reader(byService: Record<string, Element>): { r: DirectoryReader; state: () => DirectoryState; audited: string[] } {
  let state = reduceDirectory(emptyDirectory('cloud-b'), { type: 'presence', from: 'cloud-a@intercloud.test/gateway', available: true });
  state = reduceDirectory(state, { type: 'presence', from: 'cloud-x@intercloud.test/gateway', available: true });
  const audited: string[] = [];
  const r = new DirectoryReader({
    cloudId: 'cloud-b',
    domainOf: (s) => (s === ROOT2 ? 'root2.test' : 'intercloud.test'),
    trust,
    iq: async (_t, to) => byService[to]!,
    state: () => state,
    dispatch: (ev) => { state = reduceDirectory(state, ev); },
    found: () => undefined,
    warn: () => undefined,
    audit: async (rec) => { audited.push(String(rec.peer)); },
  });
  return { r, state: () => state, audited };
}

const genuine = (): Element => buildCatalogEntry(victim, SIG);
const online = (s: DirectoryState): string[] => findPeers(s).map((p) => p.entry.cloudId);

describe('directory reader: copied signatures', () => {
  it('finds cloud-a when nobody interferes', async () => {
    const { r, state } = reader({ [ROOT1]: itemsResult([{ id: 'cloud-a', payload: genuine() }]) });
    await r.refresh(ROOT1, { full: true });
    expect(online(state())).toEqual(['cloud-a']);
  });

  it('a copy of cloud-a\'s entry in cloud-x\'s item, listed first, is refused and does not hide cloud-a', async () => {
    const { r, state, audited } = reader({ [ROOT1]: itemsResult([{ id: 'cloud-x', payload: genuine() }, { id: 'cloud-a', payload: genuine() }]) });
    await r.refresh(ROOT1, { full: true });
    expect(online(state())).toEqual(['cloud-a']);
    expect(audited).toEqual(['cloud-x@intercloud.test']);
  });

  it('a copy on another Root\'s directory, read first, does not hide cloud-a on its own Root', async () => {
    const { r, state } = reader({ [ROOT2]: itemsResult([{ id: 'cloud-x', payload: genuine() }]), [ROOT1]: itemsResult([{ id: 'cloud-a', payload: genuine() }]) });
    await r.refresh(ROOT2, { full: true });
    await r.refresh(ROOT1, { full: true });
    expect(online(state())).toEqual(['cloud-a']);
  });

  it('cloud-x\'s own entry reusing cloud-a\'s verified signature is not taken', async () => {
    const forged = sampleEntry({ cloudId: 'cloud-x', jid: 'cloud-x@intercloud.test', terms: { currency: 'EUR', pricePerVcpuHour: 0.0001, pricePerGbMonth: 0 } });
    const { r, state, audited } = reader({ [ROOT1]: itemsResult([{ id: 'cloud-a', payload: genuine() }]) });
    await r.refresh(ROOT1, { full: true });
    expect(state().entries.has('cloud-a')).toBe(true);
    // later, cloud-x publishes its own item (the Root allows it) with cloud-a's signature
    r.notified(ROOT1, { node: CATALOG_NODE, items: [{ id: 'cloud-x', payload: buildCatalogEntry(forged, SIG) }], retracted: [] });
    await new Promise((done) => setTimeout(done, 20));
    expect(state().entries.has('cloud-x')).toBe(false);
    expect(audited).toContain('cloud-x@intercloud.test');
  });
});
