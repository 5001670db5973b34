/**
 * Migration modes on the wire (issue 15): the catalog's advert, the offer's mode and state
 * needs, the accept's agreed mode, the `unsupported-mode` reject. Absent means cold; a cold
 * payload signs exactly what it signed before modes existed; stripping or changing a mode
 * changes what the signature must cover.
 */
import { describe, expect, it } from 'vitest';
import { xml, type Element } from '@xmpp/client';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { buildCatalogEntry, catalogPayload, parseCatalogEntry } from '../../../protocols/xmpp/catalog.js';
import {
  acceptPayload, buildAccept, buildOffer, buildRejectError, offerPayload, parseAccept, parseOffer, parseReject, type Accept, type Offer,
} from '../../../protocols/xmpp/negotiation.js';
import { acceptFor } from '../../../protocols/xmpp/offer-responder.js';
import { parseStanzaError } from '../../../protocols/xmpp/stanza-error.js';
import { ICNS } from '../../../protocols/xmpp/namespaces.js';
import { canonicalJson } from '../../../protocols/trust/index.js';
import { sampleEntry, sampleOffer, sampleStorageOffer } from './fixtures.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isIntercloudError(err) ? err.code : 'not-intercloud';
  }
  return undefined;
}

const NEEDS = { hypervisor: 'qemu', arch: 'x86_64', machine: 'pc-i440fx-7.2' };
const liveOffer = (over: Partial<Offer> = {}): Offer => sampleOffer({ mode: 'live', state: NEEDS, ...over });
const ADVERT = {
  modes: ['cold', 'warm', 'live'] as const,
  restore: { hypervisor: 'qemu', version: '7.2.19', machines: [{ arch: 'x86_64', machine: 'pc-i440fx-7.2', alias: 'pc' }, { arch: 'x86_64', machine: 'pc-q35-7.2' }] },
};
const accept: Accept = {
  offerId: 'offer-1', reservationId: 'r-1', by: 'cloud-b', transferUri: 'amqps://127.0.0.1:25671/intercloud',
  transferQueue: 'intercloud.r-1', expires: '2026-11-25T13:10:00.000Z',
};

/** What the verifier compares: the payload read back from the (possibly tampered) XML. */
const signedOf = (o: Offer) => canonicalJson(offerPayload(o));
const readBack = (el: Element) => canonicalJson(offerPayload(parseOffer(el).offer));

describe('offer mode', () => {
  it('round-trips a live offer with its state needs and a warm one without', () => {
    expect(parseOffer(buildOffer(liveOffer(), 'E')).offer).toEqual(liveOffer());
    const warm = sampleOffer({ mode: 'warm' });
    expect(parseOffer(buildOffer(warm, 'E')).offer).toEqual(warm);
  });

  it('writes no mode for cold, so a cold offer is byte for byte and payload for payload what it was before modes', () => {
    const el = buildOffer(sampleOffer({ mode: 'cold' }), 'E');
    expect(el.getChild('migration')).toBeUndefined();
    expect(el.toString()).toBe(buildOffer(sampleOffer(), 'E').toString());
    expect(signedOf(sampleOffer({ mode: 'cold' }))).toBe(signedOf(sampleOffer()));
    expect(parseOffer(el).offer.mode).toBeUndefined();
  });

  it('signs the mode and the state needs: a peer that strips or changes them no longer matches the signature', () => {
    const signed = signedOf(liveOffer());
    expect(offerPayload(liveOffer())).toMatchObject({ mode: 'live', state: NEEDS });
    const stripped = buildOffer(liveOffer(), 'E');
    stripped.remove(stripped.getChild('migration') as Element);
    expect(readBack(stripped)).not.toBe(signed);
    const toWarm = buildOffer(liveOffer(), 'E');
    const m = toWarm.getChild('migration') as Element;
    m.attrs['mode'] = 'warm';
    m.remove(m.getChild('state') as Element);
    expect(readBack(toWarm)).not.toBe(signed);
    const otherMachine = buildOffer(liveOffer(), 'E');
    ((otherMachine.getChild('migration') as Element).getChild('state') as Element).attrs['machine'] = 'pc-q35-7.2';
    expect(readBack(otherMachine)).not.toBe(signed);
    expect(readBack(buildOffer(liveOffer(), 'E'))).toBe(signed);
  });

  it.each([
    ['an unknown mode', (o: Element) => { (o.getChild('migration') as Element).attrs['mode'] = 'hot'; }],
    ['no mode attribute', (o: Element) => { delete (o.getChild('migration') as Element).attrs['mode']; }],
    ['live without state', (o: Element) => { const m = o.getChild('migration') as Element; m.remove(m.getChild('state') as Element); }],
    ['warm with state', (o: Element) => { (o.getChild('migration') as Element).attrs['mode'] = 'warm'; }],
    ['two state elements', (o: Element) => { (o.getChild('migration') as Element).append(xml('state', NEEDS)); }],
    ['two migration elements', (o: Element) => { o.append(xml('migration', { mode: 'warm' })); }],
    ['a state without machine', (o: Element) => { delete ((o.getChild('migration') as Element).getChild('state') as Element).attrs['machine']; }],
    ['a machine with spaces', (o: Element) => { ((o.getChild('migration') as Element).getChild('state') as Element).attrs['machine'] = 'pc i440fx'; }],
  ])('refuses an offer with %s as XMPP_MALFORMED', (_name, edit) => {
    const el = buildOffer(liveOffer(), 'E');
    edit(el);
    expect(codeOf(() => parseOffer(el))).toBe('XMPP_MALFORMED');
  });

  it('refuses a warm or live storage offer (only a vm moves warm or live)', () => {
    const el = buildOffer(sampleStorageOffer(), 'E');
    el.append(xml('migration', { mode: 'warm' }));
    expect(codeOf(() => parseOffer(el))).toBe('XMPP_MALFORMED');
  });

  it('refuses an oversized machine name as XMPP_OVERSIZED', () => {
    const el = buildOffer(liveOffer(), 'E');
    ((el.getChild('migration') as Element).getChild('state') as Element).attrs['machine'] = 'm'.repeat(2000);
    expect(codeOf(() => parseOffer(el))).toBe('XMPP_OVERSIZED');
  });
});

describe('accept mode', () => {
  it('round-trips the agreed mode and signs it; cold is not written', () => {
    const live = { ...accept, mode: 'live' as const };
    expect(parseAccept(buildAccept(live, 'S'))).toEqual({ accept: live, signature: 'S' });
    expect(acceptPayload(live)).toMatchObject({ mode: 'live' });
    const cold = buildAccept({ ...accept, mode: 'cold' }, 'S');
    expect(cold.attrs['mode']).toBeUndefined();
    expect(canonicalJson(acceptPayload({ ...accept, mode: 'cold' }))).toBe(canonicalJson(acceptPayload(accept)));
  });

  it('a relay that strips or lowers the agreed mode no longer matches the signature', () => {
    const signed = canonicalJson(acceptPayload({ ...accept, mode: 'live' }));
    for (const edit of [(a: Element) => { delete a.attrs['mode']; }, (a: Element) => { a.attrs['mode'] = 'warm'; }]) {
      const el = buildAccept({ ...accept, mode: 'live' }, 'S');
      edit(el);
      expect(canonicalJson(acceptPayload(parseAccept(el).accept))).not.toBe(signed);
    }
  });

  it('the target agrees to the offered mode: acceptFor carries it, and nothing for a cold offer', () => {
    const reservation = (offer: Offer) => ({
      reservationId: 'r-1', offer, senderCloud: 'cloud-a', senderJid: 'cloud-a@intercloud.test/gateway',
      demand: { vcpus: 2, memoryMiB: 2048, diskGiB: 10, objectStorageGiB: 0 }, expiresAt: Date.parse('2026-11-25T13:10:00.000Z'), used: false,
    });
    const endpoint = { transferUri: accept.transferUri, transferQueue: accept.transferQueue };
    expect(acceptFor(reservation(liveOffer()), 'cloud-b', endpoint)).toEqual({ ...accept, mode: 'live' });
    expect(acceptFor(reservation(sampleOffer({ mode: 'warm' })), 'cloud-b', endpoint).mode).toBe('warm');
    expect(acceptFor(reservation(sampleOffer()), 'cloud-b', endpoint)).toEqual(accept);
  });

  it('refuses an unknown mode as XMPP_MALFORMED', () => {
    const el = buildAccept(accept, 'S');
    el.attrs['mode'] = 'LIVE';
    expect(codeOf(() => parseAccept(el))).toBe('XMPP_MALFORMED');
  });
});

describe('unsupported-mode reject', () => {
  it('maps to feature-not-implemented (cancel) and reads back with its reason', () => {
    const info = parseStanzaError(buildRejectError({ reason: 'unsupported-mode', text: "cannot restore machine type 'pc-q35-9.0'" }));
    expect(info).toMatchObject({ type: 'cancel', condition: 'feature-not-implemented' });
    expect(parseReject(info.application, info.text)).toEqual({ reason: 'unsupported-mode', text: "cannot restore machine type 'pc-q35-9.0'" });
  });
});

describe('catalog migration advert', () => {
  it('round-trips modes and the restore target, and signs them', () => {
    const e = sampleEntry({ migration: ADVERT });
    const back = parseCatalogEntry(buildCatalogEntry(e, 'S')).entry;
    expect(back).toEqual(e);
    expect(catalogPayload(e)).toMatchObject({ migration: ADVERT });
  });

  it('writes nothing for cold only, so such an entry signs what it signed before modes', () => {
    const e = sampleEntry({ migration: { modes: ['cold'] } });
    expect(buildCatalogEntry(e, 'S').getChild('migration')).toBeUndefined();
    expect(canonicalJson(catalogPayload(e))).toBe(canonicalJson(catalogPayload(sampleEntry())));
    expect(parseCatalogEntry(buildCatalogEntry(e, 'S')).entry.migration).toBeUndefined();
  });

  it('a reader that strips the advert or drops a machine type no longer matches the signature', () => {
    const e = sampleEntry({ migration: ADVERT });
    const signed = canonicalJson(catalogPayload(e));
    const stripped = buildCatalogEntry(e, 'S');
    stripped.remove(stripped.getChild('migration') as Element);
    expect(canonicalJson(catalogPayload(parseCatalogEntry(stripped).entry))).not.toBe(signed);
    const fewer = buildCatalogEntry(e, 'S');
    const restore = (fewer.getChild('migration') as Element).getChild('restore') as Element;
    restore.remove(restore.getChildren('machine')[1] as Element);
    expect(canonicalJson(catalogPayload(parseCatalogEntry(fewer).entry))).not.toBe(signed);
  });

  it.each([
    ['no mode', (m: Element) => { for (const c of m.getChildren('mode')) m.remove(c); }],
    ['a mode twice', (m: Element) => { m.append(xml('mode', {}, 'warm')); }],
    ['an unknown mode', (m: Element) => { (m.getChildren('mode')[0] as Element).children = ['hot']; }],
    ['live without restore', (m: Element) => { m.remove(m.getChild('restore') as Element); }],
    ['restore without machines', (m: Element) => { const r = m.getChild('restore') as Element; for (const c of r.getChildren('machine')) r.remove(c); }],
    ['a machine without arch', (m: Element) => { delete ((m.getChild('restore') as Element).getChildren('machine')[0] as Element).attrs['arch']; }],
    ['two restore elements', (m: Element) => { m.append(xml('restore', { hypervisor: 'qemu' }, xml('machine', { arch: 'x86_64', name: 'pc' }))); }],
  ])('refuses an entry whose advert has %s as XMPP_MALFORMED', (_name, edit) => {
    const el = buildCatalogEntry(sampleEntry({ migration: ADVERT }), 'S');
    edit(el.getChild('migration') as Element);
    expect(codeOf(() => parseCatalogEntry(el))).toBe('XMPP_MALFORMED');
  });

  it('refuses an advert with more machine types than the limit as XMPP_OVERSIZED', () => {
    const machines = Array.from({ length: 300 }, (_, i) => ({ arch: 'x86_64', machine: `m${i}` }));
    const el = buildCatalogEntry(sampleEntry({ migration: { modes: ['live'], restore: { hypervisor: 'qemu', machines } } }), 'S');
    expect(codeOf(() => parseCatalogEntry(el))).toBe('XMPP_OVERSIZED');
  });

  it('ignores nothing: a second advert is malformed', () => {
    const el = buildCatalogEntry(sampleEntry({ migration: ADVERT }), 'S');
    el.append(xml('migration', {}, xml('mode', {}, 'cold')));
    expect(codeOf(() => parseCatalogEntry(el))).toBe('XMPP_MALFORMED');
    expect(el.getChildren('migration', ICNS.CATALOG).length).toBe(2);
  });
});
