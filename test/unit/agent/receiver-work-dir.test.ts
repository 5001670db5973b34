/**
 * B's folder for what a peer sends under a subcontract: a subcontract id is the peer's choice, so
 * two peers naming the same id must not share (and clear) each other's staging and journals.
 */
import { describe, expect, it } from 'vitest';
import { receiverWorkDir } from '../../../agent/daemon/storage-federation.js';

describe('receiverWorkDir', () => {
  it("gives each peer its own folder for the same subcontract id, under B's state folder", () => {
    const a = receiverWorkDir('/var/lib/intercloud', 'cloud-a', 'sc-1');
    const c = receiverWorkDir('/var/lib/intercloud', 'cloud-c', 'sc-1');
    expect(a).not.toBe(c);
    expect(a.startsWith('/var/lib/intercloud/replication-in/')).toBe(true);
    expect(c.startsWith(`${a}/`) || a.startsWith(`${c}/`)).toBe(false);
  });
});
