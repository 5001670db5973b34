import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xml } from '@xmpp/client';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { buildCatalogEntry, catalogPayload, matchesFilter, parseCatalogEntry } from '../../../protocols/xmpp/catalog.js';
import { canonicalJson } from '../../../protocols/trust/index.js';
import { buildItemsRequest, buildPublish, parseEvent, parseItemsResult } from '../../../protocols/xmpp/pubsub.js';
import { bestEstimate, buildTimeResult, estimateClock, parseTimeResult } from '../../../protocols/xmpp/time.js';
import { createDefaultPolicy, ReservationBook } from '../../../agent/admission/index.js';
import { CATALOG_NODE, NS } from '../../../protocols/xmpp/namespaces.js';
import { sampleEntry, sampleOffer } from './fixtures.js';

describe('catalog entries', () => {
  it('round-trip with their signature', () => {
    expect(parseCatalogEntry(buildCatalogEntry(sampleEntry(), 'SIG'))).toEqual({ entry: sampleEntry(), signature: 'SIG' });
  });

  it('property: capacity and prices round-trip exactly', () => {
    fc.assert(fc.property(
      fc.nat({ max: 1e6 }), fc.nat({ max: 1e9 }), fc.integer({ min: 0, max: 100_000 }),
      (vcpus, mem, cents) => {
        const e = sampleEntry({
          capacity: { vcpus, memoryMiB: mem, diskGiB: vcpus, objectStorageGiB: mem },
          terms: { currency: 'EUR', pricePerVcpuHour: cents / 1000, pricePerGbMonth: cents / 100 },
        });
        expect(parseCatalogEntry(buildCatalogEntry(e, 'S')).entry).toEqual(e);
      },
    ));
  });

  it('signs prices as the wire carries them, so a float like 0.01 + 0.06 verifies after the round trip', () => {
    const e = sampleEntry({ terms: { currency: 'EUR', pricePerVcpuHour: 0.01 + 0.06, pricePerGbMonth: 1 / 3 } });
    const back = parseCatalogEntry(buildCatalogEntry(e, 'S')).entry;
    expect(canonicalJson(catalogPayload(back))).toBe(canonicalJson(catalogPayload(e)));
    expect(back.terms.pricePerGbMonth).toBe(0.333333333);
  });

  it('refuses an entry without regions, with a bad fingerprint or an unknown capability', () => {
    const bad = [
      sampleEntry({ regions: [] }),
      sampleEntry({ certificateSha256: 'abc' }),
      sampleEntry({ capabilities: ['teleport' as never] }),
    ];
    for (const e of bad) {
      let code: string | undefined;
      try {
        parseCatalogEntry(buildCatalogEntry(e, 'S'));
      } catch (err) {
        code = isIntercloudError(err) ? err.code : 'other';
      }
      expect(code).toBe('XMPP_MALFORMED');
    }
  });

  it('filters by capability, region, format and capacity', () => {
    const e = sampleEntry();
    expect(matchesFilter(e, { capability: 'vm-hosting', region: 'eu-west', format: 'ovf', minVcpus: 32 })).toBe(true);
    expect(matchesFilter(e, { minVcpus: 33 })).toBe(false);
    expect(matchesFilter(e, { region: 'us-east' })).toBe(false);
    expect(matchesFilter(e, { capability: 'storage-federation' })).toBe(false);
    expect(matchesFilter(e, { format: 'vmdk' })).toBe(false);
    expect(matchesFilter(e, { excludeCloud: 'cloud-b' })).toBe(false);
  });

  it('travel in pubsub publish, items results and event notifications (XEP-0060)', () => {
    const entry = buildCatalogEntry(sampleEntry(), 'SIG');
    const publish = buildPublish(CATALOG_NODE, 'cloud-b', entry);
    expect(publish.getChild('publish')?.attrs['node']).toBe(CATALOG_NODE);
    const result = xml('pubsub', { xmlns: NS.PUBSUB }, xml('items', { node: CATALOG_NODE }, xml('item', { id: 'cloud-b' }, entry)));
    const [item] = parseItemsResult(result);
    expect(item?.id).toBe('cloud-b');
    expect(parseCatalogEntry(item?.payload).entry.cloudId).toBe('cloud-b');
    const message = xml('message', {}, xml('event', { xmlns: NS.PUBSUB_EVENT },
      xml('items', { node: CATALOG_NODE }, xml('item', { id: 'cloud-b' }, entry), xml('retract', { id: 'cloud-c' }))));
    const ev = parseEvent(message);
    expect(ev?.items.map((i) => i.id)).toEqual(['cloud-b']);
    expect(ev?.retracted).toEqual(['cloud-c']);
    expect(buildItemsRequest(CATALOG_NODE, { maxItems: 5 }).getChild('items')?.attrs['max_items']).toBe('5');
  });
});

describe('entity time and the four-timestamp estimate', () => {
  it('answers with millisecond UTC and reads it back', () => {
    const now = new Date('2026-11-25T13:00:00.123Z');
    const el = buildTimeResult(now, 60);
    expect(el.getChildText('tzo')).toBe('+01:00');
    expect(parseTimeResult(el)?.getTime()).toBe(now.getTime());
    expect(parseTimeResult(xml('time', { xmlns: NS.TIME }, xml('utc', {}, 'yesterday')))).toBeUndefined();
  });

  it('computes offset and round trip per RFC 5905 §8', () => {
    // Peer 500 ms ahead, 20 ms each way, 2 ms processing.
    expect(estimateClock({ t0: 1000, t1: 1520, t2: 1522, t3: 1042 })).toEqual({ offsetMs: 500, rttMs: 40 });
    // Entity time has one peer stamp: t1 = t2.
    expect(estimateClock({ t0: 0, t1: 10, t2: 10, t3: 20 })).toEqual({ offsetMs: 0, rttMs: 20 });
    expect(bestEstimate([{ offsetMs: 5, rttMs: 9 }, { offsetMs: 1, rttMs: 2 }])).toEqual({ offsetMs: 1, rttMs: 2 });
  });
});

describe('default policy and reservations', () => {
  const policy = createDefaultPolicy({ acceptFrom: ['cloud-a'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384, quotaVcpusPerCloud: 6 });
  const book = new ReservationBook({ vcpus: 4, memoryMiB: 8192, diskGiB: 100, objectStorageGiB: 0 });
  const ctx = (offer = sampleOffer(), sender = 'cloud-a', now = 0) => ({
    offer, senderCloud: sender, free: book.free(now), senderUsage: book.usage(sender, now),
  });

  it('refuses clouds not on the allow-list with reason policy', () => {
    expect(policy.evaluate(ctx(sampleOffer(), 'cloud-c'))).toMatchObject({ accept: false, reason: 'policy' });
  });

  it('refuses a vm over the per-vm limits with reason policy', () => {
    const vm = sampleOffer().workload;
    if (vm.type !== 'vm') throw new TypeError('sample offer is a vm');
    const big = sampleOffer({ workload: { ...vm, vcpus: 9 } });
    expect(policy.evaluate(ctx(big))).toMatchObject({ accept: false, reason: 'policy' });
  });

  it('holds capacity while reserved, frees it on expiry, and says no-capacity meanwhile', () => {
    expect(policy.evaluate(ctx())).toEqual({ accept: true });
    book.add('r1', sampleOffer(), { cloud: 'cloud-a', jid: 'cloud-a@intercloud.test' }, 1000);
    book.add('r2', sampleOffer({ offerId: 'o2' }), { cloud: 'cloud-a', jid: 'cloud-a@intercloud.test' }, 1000);
    expect(book.free(500).vcpus).toBe(0);
    expect(policy.evaluate(ctx(sampleOffer({ offerId: 'o3' }), 'cloud-a', 500))).toMatchObject({ accept: false });
    expect(book.byOffer('cloud-a', 'o2', 500)?.reservationId).toBe('r2');
    book.markUsed('r2');
    expect(book.expire(1000).map((r) => r.reservationId)).toEqual(['r1']);
    expect(book.get('r2', 5000)?.used).toBe(true);
    expect(book.release('r2')?.reservationId).toBe('r2');
    expect(book.size(5000)).toBe(0);
    expect(policy.evaluate(ctx(sampleOffer(), 'cloud-a', 5000))).toEqual({ accept: true });
  });

  it('enforces the per-cloud vcpu quota with reason policy', () => {
    const b = new ReservationBook({ vcpus: 100, memoryMiB: 1 << 20, diskGiB: 1000, objectStorageGiB: 0 });
    b.add('q1', sampleOffer(), { cloud: 'cloud-a', jid: 'x' }, 10_000);
    b.add('q2', sampleOffer(), { cloud: 'cloud-a', jid: 'x' }, 10_000);
    b.add('q3', sampleOffer(), { cloud: 'cloud-a', jid: 'x' }, 10_000);
    const decision = policy.evaluate({ offer: sampleOffer(), senderCloud: 'cloud-a', free: b.free(0), senderUsage: b.usage('cloud-a', 0) });
    expect(decision).toMatchObject({ accept: false, reason: 'policy' });
  });
});
