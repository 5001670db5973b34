import { describe, expect, it } from 'vitest';
import { xml, type Element } from '@xmpp/client';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { acceptPayload, buildAccept, buildOffer, offerPayload, parseAccept, parseOffer, type VmWorkload } from '../../../protocols/xmpp/negotiation.js';
import { canonicalJson } from '../../../protocols/trust/index.js';
import { sampleOffer } from './fixtures.js';

const HASH = 'a3'.repeat(32);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isIntercloudError(err) ? err.code : 'not-intercloud';
  }
  return undefined;
}

const withBase = (base: string | undefined) => {
  const o = sampleOffer();
  const w = o.workload as VmWorkload;
  return { ...o, workload: { ...w, disks: [{ ...w.disks[0]!, ...(base === undefined ? {} : { base }) }, { id: 'vdb', sizeGiB: 2, format: 'raw' }] } };
};

describe('the base a disk is an overlay on (issue 16)', () => {
  it('round-trips the base hash of an offered disk, and signs it', () => {
    const o = withBase(HASH);
    const el = buildOffer(o, 'E');
    expect((el.getChild('vm')!.getChildren('disk')[0] as Element).attrs['base']).toBe(HASH);
    expect(parseOffer(el).offer).toEqual(o);
    expect(offerPayload(o)).toMatchObject({ workload: { disks: [{ base: HASH }, { id: 'vdb' }] } });
  });

  it('signs an offer without bases exactly as before', () => {
    const o = withBase(undefined);
    expect((buildOffer(o, 'E').getChild('vm')!.getChildren('disk')[0] as Element).attrs['base']).toBeUndefined();
    expect(canonicalJson(offerPayload(parseOffer(buildOffer(o, 'E')).offer))).toBe(canonicalJson(offerPayload(o)));
    expect(canonicalJson(offerPayload(o))).not.toContain('base');
  });

  it('refuses a base that is not a sha-256 in lowercase hex: a peer names no path', () => {
    for (const bad of [HASH.toUpperCase(), HASH.slice(2), `${HASH}00`, '../../var/lib/libvirt/images/golden.raw', '/etc/passwd', `${HASH.slice(1)}g`, ' '.repeat(64)]) {
      const el = buildOffer(withBase(HASH), 'E');
      (el.getChild('vm')!.getChildren('disk')[0] as Element).attrs['base'] = bad;
      expect(codeOf(() => parseOffer(el)), bad).toBe('XMPP_MALFORMED');
    }
  });

  const accept = {
    offerId: 'offer-1', reservationId: 'r-1', by: 'cloud-b', transferUri: 'amqps://127.0.0.1:25671/intercloud',
    transferQueue: 'intercloud.r-1', expires: '2026-11-25T13:10:00.000Z',
  };

  it('round-trips the disks whose base the target holds, and signs them', () => {
    const a = { ...accept, bases: ['vda'] };
    const el = buildAccept(a, 'SIG');
    expect(el.getChildren('base').map((b) => b.attrs['disk'])).toEqual(['vda']);
    expect(parseAccept(el)).toEqual({ accept: a, signature: 'SIG' });
    expect(acceptPayload(a)).toMatchObject({ bases: ['vda'] });
  });

  it('signs an accept without held bases exactly as before (an empty list is no list)', () => {
    expect(canonicalJson(acceptPayload({ ...accept, bases: [] }))).toBe(canonicalJson(acceptPayload(accept)));
    expect(parseAccept(buildAccept({ ...accept, bases: [] }, 'S')).accept).toEqual(accept);
  });

  it('refuses a held base that names no disk token, one named twice, or too many', () => {
    const edit = (f: (el: Element) => void): Element => {
      const el = buildAccept(accept, 'SIG');
      f(el);
      return el;
    };
    expect(codeOf(() => parseAccept(edit((el) => el.children.unshift(xml('base', { disk: '../x' })))))).toBe('XMPP_MALFORMED');
    expect(codeOf(() => parseAccept(edit((el) => el.children.unshift(xml('base', {})))))).toBe('XMPP_MALFORMED');
    expect(codeOf(() => parseAccept(edit((el) => el.children.unshift(xml('base', { disk: 'vda' }), xml('base', { disk: 'vda' })))))).toBe('XMPP_MALFORMED');
    expect(codeOf(() => parseAccept(edit((el) => el.children.unshift(...Array.from({ length: 65 }, (_, i) => xml('base', { disk: `d${i}` }))))))).toBe('XMPP_OVERSIZED');
  });
});
