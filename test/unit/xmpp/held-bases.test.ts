/**
 * Issue 16, the responder's part: an offer whose disks name the content hash of their base gets
 * an accept naming the disks whose base this cloud holds — asked once, kept on the reservation
 * (a repeated offer gets the same answer), only for disks that named a base, signed. No server:
 * the responder is driven with offer elements and a trust port that accepts every signature.
 */
import { describe, expect, it } from 'vitest';
import type { Element } from '@xmpp/client';
import { createDefaultPolicy, createOfferAdmission } from '../../../agent/admission/index.js';
import { acceptPayload, buildOffer, parseAccept, type Offer, type VmWorkload } from '../../../protocols/xmpp/negotiation.js';
import { OfferResponder, type OfferResponderOptions } from '../../../protocols/xmpp/offer-responder.js';
import type { GatewayTrust } from '../../../protocols/xmpp/index.js';
import { sampleEntry, sampleOffer } from './fixtures.js';

const A = 'cloud-a@intercloud.test/gateway';
const HELD = '11'.repeat(32);
const OTHER = '22'.repeat(32);
const NOW = Date.parse('2026-11-25T13:00:01.000Z');

function responder(heldBases?: OfferResponderOptions['heldBases']): { r: OfferResponder; signed: Array<Record<string, unknown>> } {
  const signed: Array<Record<string, unknown>> = [];
  const trust: GatewayTrust = {
    certificateSha256: '0'.repeat(64),
    sign: async (_type, payload) => { signed.push(payload); return 'sig'; },
    verify: async () => ({ cloudId: 'cloud-a', certificateSha256: '1'.repeat(64) }),
    audit: async () => undefined,
  };
  const e = sampleEntry();
  const r = new OfferResponder({
    cloudId: 'cloud-b', trust, now: () => NOW,
    admission: createOfferAdmission({ policy: createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 }), domain: 'intercloud.test', capacity: e.capacity }),
    endpoint: () => ({ transferUri: 'amqps://127.0.0.1:25671/intercloud', transferQueue: 'q', transferIdentity: 'broker.cloud-b.intercloud.test' }),
    audit: async () => undefined, reserved: () => undefined, capacityChanged: () => undefined, cancelled: () => undefined,
    ...(heldBases === undefined ? {} : { heldBases }),
  });
  return { r, signed };
}

function offerWith(disks: VmWorkload['disks'], offerId = 'o1'): Offer {
  const o = sampleOffer({ offerId });
  return { ...o, workload: { ...(o.workload as VmWorkload), disks } };
}

async function acceptOf(r: OfferResponder, offer: Offer): Promise<ReturnType<typeof parseAccept>['accept']> {
  const answer: Element = await r.handleOffer(buildOffer(offer, 'sig'), A);
  return parseAccept(answer).accept;
}

describe('the accept names the disks whose base the target holds (issue 16)', () => {
  const disks = [
    { id: 'vda', sizeGiB: 10, format: 'qcow2', base: HELD },
    { id: 'vdb', sizeGiB: 10, format: 'qcow2', base: OTHER },
    { id: 'vdc', sizeGiB: 2, format: 'raw' },
  ];

  it('asks with the disks that named a base, answers with those held, and signs them', async () => {
    const asked: unknown[] = [];
    const { r, signed } = responder(async (d) => { asked.push(d); return d.filter((x) => x.base === HELD).map((x) => x.id); });
    const accept = await acceptOf(r, offerWith(disks));
    expect(asked).toEqual([[{ id: 'vda', base: HELD }, { id: 'vdb', base: OTHER }]]);
    expect(accept.bases).toEqual(['vda']);
    expect(signed.at(-1)).toEqual(acceptPayload(accept));
  });

  it('holds none: the accept names no base', async () => {
    const { r } = responder(async () => []);
    expect((await acceptOf(r, offerWith(disks))).bases).toBeUndefined();
  });

  it('never names a disk that named no base, nor one the offer does not have, nor one twice', async () => {
    const { r } = responder(async () => ['vdc', 'vdz', 'vda', 'vda']);
    expect((await acceptOf(r, offerWith(disks))).bases).toEqual(['vda']);
  });

  it('asks once per offer: a repeated offer gets the answer kept on its reservation', async () => {
    let asked = 0;
    let held = ['vda'];
    const { r } = responder(async () => { asked += 1; return held; });
    expect((await acceptOf(r, offerWith(disks))).bases).toEqual(['vda']);
    held = ['vda', 'vdb'];
    expect((await acceptOf(r, offerWith(disks))).bases).toEqual(['vda']);
    expect(asked).toBe(1);
  });

  it('does not ask for an offer whose disks name no base, nor without a store', async () => {
    let asked = 0;
    const { r } = responder(async () => { asked += 1; return ['vda']; });
    expect((await acceptOf(r, offerWith([{ id: 'vda', sizeGiB: 10, format: 'raw' }]))).bases).toBeUndefined();
    expect(asked).toBe(0);
    expect((await acceptOf(responder().r, offerWith(disks, 'o2'))).bases).toBeUndefined();
  });
});
