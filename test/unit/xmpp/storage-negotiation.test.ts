/**
 * Issue 14: the storage subcontract offer and its accept on the wire — round trips (also as
 * properties), what the signature covers, and every malformed or oversized field refused with
 * a coded error naming it.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xml, type Element } from '@xmpp/client';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import {
  acceptPayload, buildAccept, buildOffer, offerPayload, parseAccept, parseOffer, STORAGE_LIMITS, type Accept, type StorageWorkload,
} from '../../../protocols/xmpp/negotiation.js';
import { ICNS } from '../../../protocols/xmpp/namespaces.js';
import { canonicalJson } from '../../../protocols/trust/index.js';
import { sampleStorageOffer } from './fixtures.js';

function failure(fn: () => unknown): { code: string; path?: unknown } | undefined {
  try {
    fn();
  } catch (err) {
    return isIntercloudError(err) ? { code: err.code, path: err.details['path'] } : { code: 'not-intercloud' };
  }
  return undefined;
}

function edited(edit: (offer: Element, storage: Element) => void): Element {
  const el = buildOffer(sampleStorageOffer(), 'ENVELOPE');
  edit(el, el.getChild('storage') as Element);
  return el;
}

const storageOf = (w: unknown): StorageWorkload => w as StorageWorkload;

const accept: Accept = {
  offerId: 'offer-s1', reservationId: 'r-1', by: 'cloud-b', transferUri: 'amqps://127.0.0.1:25671/intercloud', transferQueue: 'intercloud.r-1',
  transferIdentity: 'broker.cloud-b.intercloud.test', expires: '2026-11-25T13:10:00.000Z',
  storage: { bucket: 'ic-cloud-a-0123456789abcdef0123', region: 'eu-west' },
};

describe('storage offer codec (issue 14)', () => {
  it('round-trips every field of a storage offer, and the xml carries them', () => {
    const o = sampleStorageOffer();
    const el = buildOffer(o, 'E');
    const st = el.getChild('storage') as Element;
    expect(st.attrs).toMatchObject({ subcontract: 'sc-1', replicas: '3', ack: 'quorum', 'capacity-gib': '100', 'max-objects': '100000', 'at-end': 'delete' });
    expect((st.getChild('source') as Element).attrs).toMatchObject({ bucket: 'photos', prefix: '2026/' });
    expect(parseOffer(el)).toEqual({ offer: o, signature: 'E' });
  });

  it('round-trips a whole-bucket offer (no prefix) for each ack mode and end action', () => {
    for (const ack of ['async', 'sync', 'quorum'] as const) {
      for (const atEnd of ['return', 'delete'] as const) {
        const base = storageOf(sampleStorageOffer().workload);
        const { sourcePrefix: _, ...whole } = base;
        const o = sampleStorageOffer({ workload: { ...whole, ack, atEnd } });
        expect(parseOffer(buildOffer(o, 'E')).offer).toEqual(o);
      }
    }
  });

  it('signs what the wire carries: the offer read back has the canonical payload that was signed', () => {
    const o = sampleStorageOffer({ terms: { currency: 'EUR', maxPricePerGbMonth: 0.1 + 0.2 } });
    const back = parseOffer(buildOffer(o, 'E')).offer;
    expect(canonicalJson(offerPayload(back))).toBe(canonicalJson(offerPayload(o)));
    expect(offerPayload(o)).toMatchObject({ type: 'offer', workload: { subcontractId: 'sc-1', replicas: 3, atEnd: 'delete' } });
  });

  it('property: any valid storage offer round-trips', () => {
    const token = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/);
    fc.assert(fc.property(
      token, fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,20}[a-z0-9]$/), fc.option(fc.stringMatching(/^[a-z0-9][a-z0-9/_.-]{0,30}$/), { nil: undefined }),
      fc.integer({ min: 1, max: STORAGE_LIMITS.replicas }), fc.constantFrom('async', 'sync', 'quorum'),
      fc.integer({ min: 1, max: STORAGE_LIMITS.capacityGiB }), fc.integer({ min: 1, max: 1e12 }), fc.constantFrom('return', 'delete'),
      fc.uniqueArray(token, { minLength: 1, maxLength: STORAGE_LIMITS.regions }), fc.integer({ min: 0, max: 1e6 }),
      (subcontractId, sourceBucket, sourcePrefix, replicas, ack, capacityGiB, maxObjects, atEnd, regions, price) => {
        const o = sampleStorageOffer({
          workload: {
            type: 'storage', subcontractId, sourceBucket, ...(sourcePrefix === undefined ? {} : { sourcePrefix }), replicas,
            ack: ack as StorageWorkload['ack'], capacityGiB, maxObjects, ends: '2027-01-01T00:00:00.000Z', atEnd: atEnd as StorageWorkload['atEnd'],
          },
          constraints: { regions },
          terms: { currency: 'EUR', maxPricePerGbMonth: price / 1000 },
        });
        const back = parseOffer(buildOffer(o, 'E')).offer;
        expect(back).toEqual(o);
        expect(canonicalJson(offerPayload(back))).toBe(canonicalJson(offerPayload(o)));
      },
    ));
  });

  it.each([
    ['no subcontract id', (_o: Element, s: Element) => { delete s.attrs['subcontract']; }, 'offer/storage@subcontract'],
    ['a subcontract id with a slash', (_o: Element, s: Element) => { s.attrs['subcontract'] = '../x'; }, 'offer/storage@subcontract'],
    ['zero replicas', (_o: Element, s: Element) => { s.attrs['replicas'] = '0'; }, 'offer/storage@replicas'],
    ['negative capacity', (_o: Element, s: Element) => { s.attrs['capacity-gib'] = '-5'; }, 'offer/storage@capacity-gib'],
    ['zero capacity', (_o: Element, s: Element) => { s.attrs['capacity-gib'] = '0'; }, 'offer/storage@capacity-gib'],
    ['a fractional object count', (_o: Element, s: Element) => { s.attrs['max-objects'] = '1.5'; }, 'offer/storage@max-objects'],
    ['the old ack mode "all"', (_o: Element, s: Element) => { s.attrs['ack'] = 'all'; }, 'offer/storage@ack'],
    ['an unknown end action', (_o: Element, s: Element) => { s.attrs['at-end'] = 'keep'; }, 'offer/storage@at-end'],
    ['a bad end time', (_o: Element, s: Element) => { s.attrs['ends'] = 'next year'; }, 'offer/storage@ends'],
    ['an end before it was issued', (_o: Element, s: Element) => { s.attrs['ends'] = '2026-11-25T12:00:00.000Z'; }, 'offer/storage@ends'],
    ['no source', (_o: Element, s: Element) => { s.remove(s.getChild('source') as Element); }, 'offer/storage/source'],
    ['two sources', (_o: Element, s: Element) => { s.append(xml('source', { bucket: 'other' })); }, 'offer/storage/source'],
    ['an invalid source bucket', (_o: Element, s: Element) => { (s.getChild('source') as Element).attrs['bucket'] = 'Photos_Bucket'; }, 'offer/storage/source@bucket'],
    ['a two-letter source bucket', (_o: Element, s: Element) => { (s.getChild('source') as Element).attrs['bucket'] = 'ab'; }, 'offer/storage/source@bucket'],
    ['a prefix with a control character', (_o: Element, s: Element) => { (s.getChild('source') as Element).attrs['prefix'] = 'a\u0001b'; }, 'offer/storage/source@prefix'],
    ['a prefix starting with /', (_o: Element, s: Element) => { (s.getChild('source') as Element).attrs['prefix'] = '/etc'; }, 'offer/storage/source@prefix'],
    ['no allowed region', (o: Element) => {
      const c = o.getChild('constraints') as Element;
      for (const r of c.getChildren('region')) c.remove(r);
    }, 'offer/constraints/region'],
    ['a region twice', (o: Element) => { (o.getChild('constraints') as Element).append(xml('region', {}, 'eu-west')); }, 'offer/constraints/region'],
    ['no price per gib-month', (o: Element) => { delete (o.getChild('terms') as Element).attrs['max-gb-month']; }, 'offer/terms@max-gb-month'],
  ])('refuses a storage offer with %s as XMPP_MALFORMED naming the field', (_name, edit, path) => {
    expect(failure(() => parseOffer(edited(edit)))).toEqual({ code: 'XMPP_MALFORMED', path });
  });

  it.each([
    ['too many replicas', (_o: Element, s: Element) => { s.attrs['replicas'] = String(STORAGE_LIMITS.replicas + 1); }, 'offer/storage@replicas'],
    ['too much capacity', (_o: Element, s: Element) => { s.attrs['capacity-gib'] = String(STORAGE_LIMITS.capacityGiB + 1); }, 'offer/storage@capacity-gib'],
    ['too many objects', (_o: Element, s: Element) => { s.attrs['max-objects'] = String(STORAGE_LIMITS.maxObjects + 1); }, 'offer/storage@max-objects'],
    ['a long prefix', (_o: Element, s: Element) => { (s.getChild('source') as Element).attrs['prefix'] = 'p'.repeat(STORAGE_LIMITS.prefixChars + 1); }, 'offer/storage/source@prefix'],
    ['too many regions', (o: Element) => {
      const c = o.getChild('constraints') as Element;
      for (let i = 0; i < STORAGE_LIMITS.regions; i++) c.append(xml('region', {}, `r${i}`));
    }, 'offer/constraints/region'],
  ])('refuses a storage offer with %s as XMPP_OVERSIZED naming the field', (_name, edit, path) => {
    expect(failure(() => parseOffer(edited(edit)))).toEqual({ code: 'XMPP_OVERSIZED', path });
  });
});

describe('storage accept codec (issue 14)', () => {
  it('round-trips the bucket and region B chose, beside the data endpoint', () => {
    const el = buildAccept(accept, 'SIG');
    expect((el.getChild('storage') as Element).attrs).toMatchObject({ bucket: accept.storage?.bucket, region: 'eu-west' });
    expect(parseAccept(el)).toEqual({ accept, signature: 'SIG' });
  });

  it('covers the bucket and region with the signature: a relay cannot swap them', () => {
    expect(acceptPayload(accept)).toMatchObject({ storage: { bucket: accept.storage?.bucket, region: 'eu-west' } });
    const swapped = { ...accept, storage: { bucket: 'other-bucket', region: 'eu-west' } };
    expect(canonicalJson(acceptPayload(swapped))).not.toBe(canonicalJson(acceptPayload(accept)));
  });

  it('reads a vm accept (no storage part) as before', () => {
    const { storage: _, ...vm } = accept;
    expect(parseAccept(buildAccept(vm, 'SIG')).accept).toEqual(vm);
  });

  it.each([
    ['an invalid bucket', (s: Element) => { s.attrs['bucket'] = 'UPPER_case'; }, 'accept/storage@bucket'],
    ['no bucket', (s: Element) => { delete s.attrs['bucket']; }, 'accept/storage@bucket'],
    ['a bad region', (s: Element) => { s.attrs['region'] = 'eu central'; }, 'accept/storage@region'],
    ['no region', (s: Element) => { delete s.attrs['region']; }, 'accept/storage@region'],
  ])('refuses an accept with %s as XMPP_MALFORMED', (_name, edit, path) => {
    const el = buildAccept(accept, 'SIG');
    edit(el.getChild('storage') as Element);
    expect(failure(() => parseAccept(el))).toEqual({ code: 'XMPP_MALFORMED', path });
  });

  it('refuses an accept with two storage parts', () => {
    const el = buildAccept(accept, 'SIG');
    el.append(xml('storage', { bucket: 'other-bucket', region: 'eu-central' }));
    expect(failure(() => parseAccept(el))).toEqual({ code: 'XMPP_MALFORMED', path: 'accept/storage' });
  });

  it('refuses an oversized accept as XMPP_OVERSIZED', () => {
    const el = buildAccept(accept, 'SIG');
    (el.getChild('storage') as Element).attrs['region'] = 'r'.repeat(2000);
    expect(failure(() => parseAccept(el))?.code).toBe('XMPP_OVERSIZED');
    const big = buildAccept(accept, 'SIG');
    (big.getChild('signature', ICNS.SIGNATURE) as Element).children = ['A'.repeat(70 * 1024)];
    expect(failure(() => parseAccept(big))?.code).toBe('XMPP_OVERSIZED');
  });
});
