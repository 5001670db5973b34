import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xml, type Element } from '@xmpp/client';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import {
  acceptPayload, buildAccept, buildCancel, buildOffer, buildProgress, buildRejectError, offerPayload, parseAccept, parseCancel, parseOffer,
  parseProgress, parseReject, REJECT_REASONS,
} from '../../../protocols/xmpp/negotiation.js';
import { parseStanzaError } from '../../../protocols/xmpp/stanza-error.js';
import { ICNS, NS } from '../../../protocols/xmpp/namespaces.js';
import { canonicalJson } from '../../../protocols/trust/index.js';
import { sampleOffer, sampleStorageOffer } from './fixtures.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isIntercloudError(err) ? err.code : 'not-intercloud';
  }
  return undefined;
}

/** Rebuilds an offer element with `edit` applied to a fresh copy. */
function edited(edit: (offer: Element) => void): Element {
  const el = buildOffer(sampleOffer(), 'ENVELOPE');
  edit(el);
  return el;
}

describe('offer codec', () => {
  it('round-trips a vm offer with its signature', () => {
    const { offer, signature } = parseOffer(buildOffer(sampleOffer(), 'ENVELOPE'));
    expect(offer).toEqual(sampleOffer());
    expect(signature).toBe('ENVELOPE');
  });

  it('round-trips a storage offer', () => {
    const o = sampleStorageOffer({ terms: { currency: 'USD', maxPricePerGbMonth: 0.5 } });
    expect(parseOffer(buildOffer(o, 'E')).offer).toEqual(o);
  });

  it('survives serialization to text and back through the xml parser', () => {
    const text = buildOffer(sampleOffer(), 'E').toString();
    const parser = new xml.Parser();
    let parsed: Element | undefined;
    parser.on('element', (el: Element) => { parsed = el; });
    parser.write(`<root>${text}`);
    expect(parseOffer(parsed).offer).toEqual(sampleOffer());
  });

  it('signs the same canonical bytes whatever the key order', () => {
    const o = sampleOffer();
    const { expires, ...rest } = o;
    const reordered = JSON.parse(JSON.stringify({ expires, ...rest }));
    expect(canonicalJson(offerPayload(reordered))).toBe(canonicalJson(offerPayload(o)));
  });

  it('signs max prices as the wire carries them', () => {
    const o = sampleOffer({ terms: { currency: 'EUR', maxPricePerVcpuHour: 0.1 + 0.2 } });
    const back = parseOffer(buildOffer(o, 'E')).offer;
    expect(canonicalJson(offerPayload(back))).toBe(canonicalJson(offerPayload(o)));
  });

  it('property: any valid vm shape round-trips', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 256 }), fc.integer({ min: 1, max: 1 << 20 }),
      fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.uint8Array({ minLength: 6, maxLength: 6 }), { maxLength: 4 }),
      (vcpus, memoryMiB, sizes, macs) => {
        const o = sampleOffer({
          workload: {
            type: 'vm', name: 'vm', vcpus, memoryMiB, firmware: 'uefi',
            disks: sizes.map((s, i) => ({ id: `d${i}`, sizeGiB: s, format: 'raw' })),
            nics: macs.map((m) => ({ mac: [...m].map((b) => b.toString(16).padStart(2, '0')).join(':') })),
          },
        });
        expect(parseOffer(buildOffer(o, 'E')).offer).toEqual(o);
      },
    ));
  });

  it('rejects an element in another namespace', () => {
    expect(codeOf(() => parseOffer(xml('offer', { xmlns: 'urn:example:other' })))).toBe('XMPP_MALFORMED');
  });

  it.each([
    ['missing id', (o: Element) => { delete o.attrs['id']; }],
    ['missing expires', (o: Element) => { delete o.attrs['expires']; }],
    ['bad expires', (o: Element) => { o.attrs['expires'] = 'tomorrow'; }],
    ['missing workload', (o: Element) => { o.remove(o.getChild('vm') as Element); }],
    ['two workloads', (o: Element) => { o.append(xml('storage', { 'size-gib': '1', replicas: '1', ack: 'all' })); }],
    ['vcpus not a number', (o: Element) => { (o.getChild('vm') as Element).attrs['vcpus'] = 'two'; }],
    ['zero vcpus', (o: Element) => { (o.getChild('vm') as Element).attrs['vcpus'] = '0'; }],
    ['bad mac', (o: Element) => { ((o.getChild('vm') as Element).getChild('nic') as Element).attrs['mac'] = 'zz:zz'; }],
    ['no disk', (o: Element) => { const vm = o.getChild('vm') as Element; vm.remove(vm.getChild('disk') as Element); }],
    ['missing terms', (o: Element) => { o.remove(o.getChild('terms') as Element); }],
    ['missing signature', (o: Element) => { o.remove(o.getChild('signature', ICNS.SIGNATURE) as Element); }],
    ['bad sender cloud id', (o: Element) => { o.attrs['from'] = 'Cloud A'; }],
  ])('refuses an offer with %s as XMPP_MALFORMED', (_name, edit) => {
    expect(codeOf(() => parseOffer(edited(edit)))).toBe('XMPP_MALFORMED');
  });

  it('refuses too many disks, a huge vm and an oversized payload as XMPP_OVERSIZED', () => {
    const many = edited((o) => {
      const vm = o.getChild('vm') as Element;
      for (let i = 0; i < 100; i++) vm.append(xml('disk', { id: `d${i}`, 'size-gib': '1', format: 'raw' }));
    });
    expect(codeOf(() => parseOffer(many))).toBe('XMPP_OVERSIZED');
    expect(codeOf(() => parseOffer(edited((o) => { (o.getChild('vm') as Element).attrs['vcpus'] = '100000'; })))).toBe('XMPP_OVERSIZED');
    const huge = edited((o) => { (o.getChild('signature', ICNS.SIGNATURE) as Element).children = ['A'.repeat(70 * 1024)]; });
    expect(codeOf(() => parseOffer(huge))).toBe('XMPP_OVERSIZED');
  });
});

describe('accept, reject, cancel, progress', () => {
  const accept = {
    offerId: 'offer-1', reservationId: 'r-1', by: 'cloud-b', transferUri: 'amqps://127.0.0.1:25671/intercloud',
    transferQueue: 'intercloud.r-1', expires: '2026-11-25T13:10:00.000Z',
  };

  it('round-trips an accept', () => {
    expect(parseAccept(buildAccept(accept, 'SIG'))).toEqual({ accept, signature: 'SIG' });
  });

  it('round-trips the identity the target broker\'s certificate must carry (issue 13)', () => {
    const withIdentity = { ...accept, transferIdentity: 'broker.cloud-b.intercloud.test' };
    const el = buildAccept(withIdentity, 'SIG');
    expect((el.getChild('transfer') as Element).attrs['identity']).toBe('broker.cloud-b.intercloud.test');
    expect(parseAccept(el)).toEqual({ accept: withIdentity, signature: 'SIG' });
    // What the signature covers names it too: a relay cannot swap the identity.
    expect(acceptPayload(withIdentity)).toMatchObject({ transferIdentity: 'broker.cloud-b.intercloud.test' });
  });

  it('refuses a broker identity that is not a dns name', () => {
    for (const bad of ['Broker.cloud-b', 'broker..cloud-b', '-x.cloud-b', 'a b', 'x'.repeat(300)]) {
      const el = buildAccept({ ...accept, transferIdentity: 'broker.cloud-b.intercloud.test' }, 'SIG');
      (el.getChild('transfer') as Element).attrs['identity'] = bad;
      expect(codeOf(() => parseAccept(el)), bad).toBe('XMPP_MALFORMED');
    }
  });

  it('refuses, as retryable wait, an offer when the data endpoint is unavailable', () => {
    const info = parseStanzaError(buildRejectError({ reason: 'unavailable' }));
    expect(info.type).toBe('wait');
    expect(parseReject(info.application)).toEqual({ reason: 'unavailable' });
  });

  it('maps each reject reason to an RFC 6120 condition and back', () => {
    for (const reason of REJECT_REASONS) {
      const info = parseStanzaError(buildRejectError({ reason, text: `because ${reason}` }));
      expect(info.condition).not.toBe('undefined-condition');
      expect(parseReject(info.application, info.text)).toEqual({ reason, text: `because ${reason}` });
    }
    const noCapacity = parseStanzaError(buildRejectError({ reason: 'no-capacity' }));
    expect([noCapacity.type, noCapacity.condition]).toEqual(['wait', 'resource-constraint']);
  });

  it('does not read a foreign application condition as a reject', () => {
    expect(parseReject(xml('reject', { xmlns: 'urn:example', reason: 'policy' }))).toBeUndefined();
    expect(parseReject(xml('reject', { xmlns: ICNS.NEGOTIATION, reason: 'because' }))).toBeUndefined();
  });

  it('round-trips cancel and progress', () => {
    expect(parseCancel(buildCancel({ reservationId: 'r-1', reason: 'operator' }))).toEqual({ reservationId: 'r-1', reason: 'operator' });
    const p = { reservationId: 'r-1', state: 'running' as const, step: 'transfer', percent: 42.5, text: 'disk vda' };
    expect(parseProgress(buildProgress(p))).toEqual(p);
    expect(codeOf(() => parseProgress(xml('progress', { xmlns: ICNS.NEGOTIATION, reservation: 'r', state: 'sleeping', step: 's' })))).toBe('XMPP_MALFORMED');
  });

  it('reads stanza errors without our condition as plain conditions', () => {
    const err = xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: NS.STANZAS }));
    expect(parseStanzaError(err)).toEqual({ type: 'cancel', condition: 'service-unavailable' });
  });
});
