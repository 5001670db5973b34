/**
 * B's mailbox of storage subcontract requests: offer ids are each peer's own choice, so a peer
 * naming another peer's offer id must neither begin nor end that peer's subcontract, nor make
 * B forget its requests.
 */
import { describe, expect, it } from 'vitest';
import { SubcontractMailbox } from '../../../agent/subcontract/mailbox.js';

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(() => { done = true; }, () => { done = true; });
  await new Promise((r) => setTimeout(r, 10));
  return done;
};

describe('SubcontractMailbox at B, two peers with the same offer id', () => {
  it("delivers a peer's begin and end to its own job only", async () => {
    const box = new SubcontractMailbox();
    const signal = new AbortController().signal;
    const y = { offerId: 'so-1', subcontractId: 'sc-y', peer: 'cloud-y' };
    const begun = box.beginRequest(y, signal);
    const ended = box.untilEnd(y, new Date(Date.now() + 60_000).toISOString(), signal);
    box.deliverBegin('so-1', 'cloud-x');
    box.deliverEnd('so-1', 'cloud-x');
    box.forget('so-1', 'cloud-x');
    expect(await settled(begun)).toBe(false);
    expect(await settled(ended)).toBe(false);
    box.deliverBegin('so-1', 'cloud-y');
    expect(await settled(begun)).toBe(true);
    box.deliverEnd('so-1', 'cloud-y');
    expect(await ended).toEqual({ reason: 'ended' });
  });

  it("keys A's own offers (no peer) by the offer id alone", async () => {
    const box = new SubcontractMailbox();
    const ended = box.untilEnd({ offerId: 'so-2', subcontractId: 'sc' }, new Date(Date.now() + 60_000).toISOString(), new AbortController().signal);
    box.deliverEnd('so-2');
    expect(await ended).toEqual({ reason: 'ended' });
  });
});
