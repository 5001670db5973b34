/**
 * The source's requests to a peer (instantiate, commit, release) end as soon as the peer's
 * gateway goes offline, instead of waiting out their long timeouts: found by the end-to-end
 * test that kills the target agent at instantiate (test/integration/migration/agent-crash.test.ts),
 * where the restarted target waited for a request the source kept waiting on for 300 s.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sourceControlPort } from '../../../agent/daemon/control-ports.js';
import { IntercloudError } from '../../../protocols/errors/index.js';
import type { GatewaySession } from '../../../protocols/xmpp/index.js';

const PEER = { cloudId: 'cloud-b', jid: 'cloud-b@intercloud.test' };
const ORDER = { offerId: 'o1', descriptor: '<Envelope/>', digests: { 0: 'aa' }, addresses: [] };
const signal = new AbortController().signal;

/** A session whose requests never get an answer. */
function silentSession(): GatewaySession & EventEmitter {
  const s = new EventEmitter() as GatewaySession & EventEmitter;
  Object.assign(s, { request: () => new Promise(() => undefined), signRequest: async () => 'signed' });
  return s;
}

/** These requests never read an accept's endpoint. */
const unusedCheck = (): never => { throw new Error('no endpoint is checked here'); };

describe('a request to a peer that goes offline', () => {
  it('fails with the retryable XMPP_PEER_UNAVAILABLE when the peer sends unavailable presence', async () => {
    const session = silentSession();
    const pending = sourceControlPort(session, { currency: 'EUR', checkEndpoint: unusedCheck }).instantiate(PEER, ORDER, signal);
    session.emit('presence', { from: 'cloud-b@intercloud.test/gateway', type: 'unavailable' });
    await expect(pending).rejects.toMatchObject({ code: 'XMPP_PEER_UNAVAILABLE', retryable: true });
    expect(session.listenerCount('presence')).toBe(0);
  });

  it('keeps waiting when another cloud, or the peer coming online, is seen', async () => {
    const session = silentSession();
    let settled = false;
    void sourceControlPort(session, { currency: 'EUR', checkEndpoint: unusedCheck }).commit(PEER, 'o1', signal).finally(() => { settled = true; });
    session.emit('presence', { from: 'cloud-c@intercloud.test/gateway', type: 'unavailable' });
    session.emit('presence', { from: 'cloud-b@intercloud.test/gateway', type: 'available' });
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    expect(session.listenerCount('presence')).toBe(1);
  });

  it('stops watching presence once the request settled', async () => {
    const session = new EventEmitter() as GatewaySession & EventEmitter;
    Object.assign(session, { signRequest: async () => 'signed', request: () => Promise.reject(new IntercloudError('XMPP_TIMEOUT', "no answer from 'cloud-b@intercloud.test/gateway' within 5 ms", { retryable: true })) });
    await expect(sourceControlPort(session, { currency: 'EUR', checkEndpoint: unusedCheck }).release(PEER, 'o1', signal)).rejects.toMatchObject({ code: 'XMPP_TIMEOUT' });
    expect(session.listenerCount('presence')).toBe(0);
  });
});
