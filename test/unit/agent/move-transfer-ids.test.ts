/**
 * Transfer ids of a live move (issue 15): every image's id is a transfer id under its offer's
 * move prefix, so the one prefix grant of an offer lets its peer reach exactly that offer's
 * images and state — and no transfer of another offer, cold or live.
 */
import { describe, expect, it } from 'vitest';
import { grantPattern, isTransferId, isTransferPrefix, transferTopology } from '../../../protocols/amqp/index.js';
import { moveTransferId, moveTransferPrefix, transferIdFor } from '../../../agent/daemon/transfer-ids.js';

describe('live move transfer ids', () => {
  it('are transfer ids under the offer prefix; the grant of one offer reaches none of another', () => {
    const keys = ['0.0', '0.1', '1.0', '0.12', 'state'];
    const prefix = moveTransferPrefix('offer-1');
    expect(isTransferPrefix(prefix)).toBe(true);
    const ids = keys.map((k) => moveTransferId('offer-1', k));
    for (const id of ids) {
      expect(isTransferId(id)).toBe(true);
      expect(id.startsWith(`${prefix}-`)).toBe(true);
    }
    expect(new Set(ids).size).toBe(keys.length);
    const grant = new RegExp(grantPattern('cloud-a', 'cloud-b', [], [prefix]));
    const reach = (id: string): boolean => grant.test(transferTopology('cloud-a', 'cloud-b', id).exchange);
    expect(ids.every(reach)).toBe(true);
    expect(reach(moveTransferId('offer-2', '0.0'))).toBe(false);
    expect(reach(moveTransferId('offer-2', 'state'))).toBe(false);
    expect(reach(transferIdFor('offer-1', '0'))).toBe(false);
  });
});
