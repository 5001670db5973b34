/**
 * Issue 16, the source's control port: an offered disk names its base's content hash; the
 * accept's held bases become the reservation's, and an accept that names a disk which offered no
 * base (or no disk of the offer) does not follow the protocol: nothing is sent to that target.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { vmWorkload } from '../../../agent/daemon/control-ports.js';
import { sourceControlPort, summaryFromWorkload } from '../../../agent/daemon/control-ports.js';
import type { VmSummary } from '../../../agent/migration/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import type { Accept, GatewaySession, Offer } from '../../../protocols/xmpp/index.js';

const PEER = { cloudId: 'cloud-b', jid: 'cloud-b@intercloud.test' };
const BASE = 'ab'.repeat(32);
const VM: VmSummary = {
  name: 'web1', vcpus: 1, memoryBytes: 128 * 1024 * 1024, macs: ['52:54:00:aa:bb:01'], addresses: [],
  disks: [{ id: '0', capacityBytes: 64 * 1024 * 1024, base: BASE }, { id: '1', capacityBytes: 1024 * 1024 }],
};

/** A session whose offers are accepted with `bases`; records what was offered. */
function acceptingSession(bases: string[] | undefined, sent: Offer[]): GatewaySession {
  const s = new EventEmitter() as GatewaySession & EventEmitter;
  Object.assign(s, {
    sendOffer: async (_to: string, o: Omit<Offer, 'from' | 'issued' | 'expires'>) => {
      sent.push(o as Offer);
      const accept: Accept = {
        offerId: o.offerId, by: 'cloud-b', reservationId: 'r1', transferUri: 'amqps://mq.cloud-b.intercloud.test:5671/', transferQueue: 'q',
        transferIdentity: 'mq.cloud-b.intercloud.test', issued: new Date().toISOString(), expires: new Date(Date.now() + 60_000).toISOString(),
        ...(bases === undefined ? {} : { bases }),
      } as Accept;
      return { type: 'accept', accept };
    },
  });
  return s;
}

const port = (bases: string[] | undefined, sent: Offer[] = []) => sourceControlPort(acceptingSession(bases, sent), {
  currency: 'EUR', checkEndpoint: async (e) => ({ uri: e.uri, identity: e.identity ?? '' }),
});

describe('offered bases and the accept that names them', () => {
  it('the offer names the base by hash, and the target reads it back onto its summary', async () => {
    const sent: Offer[] = [];
    await port(undefined, sent).offer(PEER, { offerId: 'o1', vm: VM }, new AbortController().signal);
    const w = sent[0]!.workload as ReturnType<typeof vmWorkload>;
    expect(w.disks.map((d) => d.base)).toEqual([BASE, undefined]);
    expect(summaryFromWorkload(w).disks.map((d) => d.base)).toEqual([BASE, undefined]);
  });

  it('the held bases of the accept are the reservation\'s; none named, none held', async () => {
    expect((await port(['0']).offer(PEER, { offerId: 'o1', vm: VM }, new AbortController().signal)).bases).toEqual(['0']);
    expect((await port(undefined).offer(PEER, { offerId: 'o1', vm: VM }, new AbortController().signal)).bases).toBeUndefined();
  });

  it('an accept naming a disk that offered no base, or no disk at all, is MIGRATE_BAD_ACCEPT', async () => {
    for (const bases of [['1'], ['0', '7']]) {
      let code: string | undefined;
      try {
        await port(bases).offer(PEER, { offerId: 'o1', vm: VM }, new AbortController().signal);
      } catch (err) {
        code = isIntercloudError(err) ? err.code : String(err);
      }
      expect(code, JSON.stringify(bases)).toBe('MIGRATE_BAD_ACCEPT');
    }
  });
});
