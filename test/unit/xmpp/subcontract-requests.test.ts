/**
 * Issue 14: the signed requests A sends B about an accepted subcontract (begin, end, listing)
 * and their results — round trips, what the signature covers, and coded refusals of bad input.
 */
import { describe, expect, it } from 'vitest';
import { xml, type Element } from '@xmpp/client';
import {
  buildBeganBucket, buildListing, buildSubcontractRequest, NS_SUBCONTRACT, parseBeganBucket, parseListing, parseSubcontractRequest,
  subcontractRequestPayload, type SubcontractRequest,
} from '../../../protocols/xmpp/subcontract.js';
import { ICNS } from '../../../protocols/xmpp/namespaces.js';

const code = (fn: () => unknown): string | undefined => {
  try { fn(); } catch (err) { return (err as { code?: string }).code; }
  return undefined;
};

describe('subcontract requests (issue 14)', () => {
  it.each(['begin', 'end', 'listing'] as const)('round-trips a %s request with its signature', (type) => {
    const req: SubcontractRequest = { type, offerId: 'o-1', subcontractId: 'sc-1' };
    expect(parseSubcontractRequest(buildSubcontractRequest(req, 'SIG'))).toEqual({ ...req, signature: 'SIG' });
  });

  it('signs the request, the offer, the subcontract and the cloud it is for', () => {
    const req: SubcontractRequest = { type: 'end', offerId: 'o-1', subcontractId: 'sc-1' };
    expect(subcontractRequestPayload(req, 'cloud-b')).toEqual({ request: 'subcontract-end', offerId: 'o-1', subcontractId: 'sc-1', target: 'cloud-b' });
    expect(subcontractRequestPayload(req, 'cloud-c')).not.toEqual(subcontractRequestPayload(req, 'cloud-b'));
    expect(subcontractRequestPayload({ ...req, type: 'begin' }, 'cloud-b')).not.toEqual(subcontractRequestPayload(req, 'cloud-b'));
  });

  it.each([
    ['no signature', (el: Element) => { el.remove(el.getChild('signature', ICNS.SIGNATURE) as Element); }],
    ['no subcontract', (el: Element) => { delete el.attrs['subcontract']; }],
    ['a bad offer id', (el: Element) => { el.attrs['offer'] = '../x'; }],
  ])('refuses a request with %s as XMPP_MALFORMED', (_n, edit) => {
    const el = buildSubcontractRequest({ type: 'begin', offerId: 'o-1', subcontractId: 'sc-1' }, 'SIG');
    edit(el);
    expect(code(() => parseSubcontractRequest(el))).toBe('XMPP_MALFORMED');
  });

  it('refuses another element or namespace', () => {
    expect(code(() => parseSubcontractRequest(xml('delete-everything', { xmlns: NS_SUBCONTRACT, offer: 'o', subcontract: 's' })))).toBe('XMPP_MALFORMED');
    expect(code(() => parseSubcontractRequest(xml('begin', { xmlns: 'urn:example:x', offer: 'o', subcontract: 's' })))).toBe('XMPP_MALFORMED');
  });

  it('round-trips the results, and refuses a bad bucket or count', () => {
    const began = xml('iq', {}, buildBeganBucket('ic-cloud-a-0011', 'eu-west'));
    expect(parseBeganBucket(began)).toEqual({ bucket: 'ic-cloud-a-0011', region: 'eu-west' });
    expect(parseListing(xml('iq', {}, buildListing({ bucketExists: false, objects: 0 })))).toEqual({ bucketExists: false, objects: 0 });
    expect(parseListing(xml('iq', {}, buildListing({ bucketExists: true, objects: 42 })))).toEqual({ bucketExists: true, objects: 42 });
    expect(code(() => parseBeganBucket(xml('iq', {}, buildBeganBucket('Bad_Name', 'eu-west'))))).toBe('XMPP_MALFORMED');
    expect(code(() => parseListing(xml('iq', {}, xml('listing', { xmlns: NS_SUBCONTRACT, 'bucket-exists': 'maybe', objects: '1' }))))).toBe('XMPP_MALFORMED');
    expect(code(() => parseListing(xml('iq', {}, xml('listing', { xmlns: NS_SUBCONTRACT, 'bucket-exists': 'true', objects: '-1' }))))).toBe('XMPP_MALFORMED');
    expect(code(() => parseListing(xml('iq')))).toBe('XMPP_MALFORMED');
  });
});
