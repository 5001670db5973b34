/**
 * Issue 12, findings 6 and 8, the session's part: a peer's `<cancel>` does not free the
 * reservation while the job it was made for still runs. The session asks its cancel handlers:
 * the agent holds the reservation (released when the job ends, `releaseOffer`) or refuses the
 * cancel (a committed job); only the full JID that made the offer may cancel it. No server:
 * the session is built but never started, and the reservation is put in its book directly.
 */
import { describe, expect, it } from 'vitest';
import { GatewaySession, type GatewayTrust } from '../../../protocols/xmpp/index.js';
import { createDefaultPolicy, createOfferAdmission } from '../../../agent/admission/index.js';
import { sampleEntry, sampleOffer } from './fixtures.js';

const A = 'cloud-a@intercloud.test/gateway';

function session(): GatewaySession {
  const trust: GatewayTrust = {
    certificateSha256: '0'.repeat(64),
    sign: async () => 'sig',
    verify: async () => { throw new Error('not used'); },
    audit: async () => undefined,
  };
  const e = sampleEntry();
  const s = new GatewaySession({
    cloudId: 'cloud-b', service: 'xmpp://127.0.0.1:1', domain: 'intercloud.test', pubsubJid: 'pubsub.intercloud.test',
    tls: { ca: '' }, trust,
    admission: createOfferAdmission({
      policy: createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 }), domain: 'intercloud.test', capacity: e.capacity,
    }),
    profile: { regions: e.regions, hypervisors: e.hypervisors, formats: e.formats, capabilities: e.capabilities, capacity: e.capacity, terms: e.terms, transferUri: e.transferUri },
  });
  s.reservations.add('r1', sampleOffer({ offerId: 'o1' }), { cloud: 'cloud-a', jid: A }, Date.now() + 60_000);
  s.reservations.markUsed('r1');
  return s;
}

describe('a peer cancels a reservation', () => {
  it('with no handler (no job was made for it): released at once', async () => {
    const s = session();
    await expect(s.cancelReservation({ reservationId: 'r1' }, A)).resolves.toEqual({ outcome: 'released' });
    expect(s.reservations.size(Date.now())).toBe(0);
  });

  it('whose job is being cancelled: held until the job ends', async () => {
    const s = session();
    const seen: string[] = [];
    s.onCancel((_c, from, r) => { seen.push(`${from} ${r.offer.offerId}`); return { action: 'hold' }; });
    await expect(s.cancelReservation({ reservationId: 'r1' }, A)).resolves.toEqual({ outcome: 'held' });
    expect(seen).toEqual([`${A} o1`]);
    expect(s.reservations.size(Date.now())).toBe(1);
    expect(s.reservations.usage('cloud-a', Date.now()).reservations).toBe(1);
    // The job ended: the daemon's jobEnded hook releases it.
    expect(s.releaseOffer('cloud-a', 'o1')).toBe(true);
    expect(s.reservations.size(Date.now())).toBe(0);
  });

  it('whose job is committed: refused, the reservation stays until the job ends', async () => {
    const s = session();
    s.onCancel(() => ({ action: 'refuse', text: 'committed' }));
    await expect(s.cancelReservation({ reservationId: 'r1' }, A)).resolves.toEqual({ outcome: 'refused', condition: 'not-allowed', text: 'committed' });
    expect(s.reservations.size(Date.now())).toBe(1);
  });

  it('from another resource or cloud than the one that made the offer: refused, the handlers are not asked', async () => {
    const s = session();
    let asked = 0;
    s.onCancel(() => { asked += 1; return undefined; });
    for (const from of ['cloud-a@intercloud.test/other', 'cloud-c@intercloud.test/gateway', 'cloud-a@elsewhere.example/gateway']) {
      await expect(s.cancelReservation({ reservationId: 'r1' }, from)).resolves.toMatchObject({ outcome: 'refused', condition: 'item-not-found' });
    }
    expect(asked).toBe(0);
    expect(s.reservations.size(Date.now())).toBe(1);
  });
});
