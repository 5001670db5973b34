/**
 * A request whose stanza is lost without a bounce (an s2s link reset between two Roots drops
 * what was written into it) must not cost the whole request timeout: the source sends the
 * idempotent request again every `resendMs` until one copy is answered or the deadline passes.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { xml } from '@xmpp/client';
import type { Element } from '@xmpp/client';
import { REQUEST_RESEND_MS, sendUntilAnswered, sourceControlPort } from '../../../agent/daemon/control-ports.js';
import { IntercloudError } from '../../../protocols/errors/index.js';
import { buildMigrationState, type GatewaySession } from '../../../protocols/xmpp/index.js';

const timeout = (): IntercloudError => new IntercloudError('XMPP_TIMEOUT', 'no answer', { retryable: true });

/** A peer that loses the first `lost` copies (they time out at their deadline) and answers the next after `answerMs`. */
function peer(lost: number, answerMs: number) {
  const sent: Array<{ at: number; timeoutMs: number }> = [];
  const send = (timeoutMs: number): Promise<string> => {
    const n = sent.push({ at: Date.now(), timeoutMs });
    return new Promise((resolve, reject) => {
      if (n <= lost) setTimeout(() => reject(timeout()), timeoutMs);
      else setTimeout(() => resolve(`answer to copy ${n}`), answerMs);
    });
  };
  return { sent, send };
}

beforeEach(() => { vi.useFakeTimers(); vi.setSystemTime(0); });
afterEach(() => { vi.useRealTimers(); });

describe('sendUntilAnswered', () => {
  it('sends again after resendMs when a copy is lost, and takes the first answer long before the deadline', async () => {
    const p = peer(1, 2_000);
    const out = sendUntilAnswered(p.send, { deadlineMs: 300_000, resendMs: 30_000 });
    await vi.advanceTimersByTimeAsync(33_000);
    await expect(out).resolves.toBe('answer to copy 2');
    expect(p.sent.map((s) => s.at)).toEqual([0, 30_000]);
    // each copy waits only until the overall deadline
    expect(p.sent.map((s) => s.timeoutMs)).toEqual([300_000, 270_000]);
  });

  it('sends once when the answer comes in time', async () => {
    const p = peer(0, 10_000);
    const out = sendUntilAnswered(p.send, { deadlineMs: 300_000, resendMs: 30_000 });
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(out).resolves.toBe('answer to copy 1');
    expect(p.sent).toHaveLength(1);
  });

  it('rejects with the timeout at the deadline when no copy is answered, having sent one copy per resendMs', async () => {
    const p = peer(Infinity, 0);
    const out = sendUntilAnswered(p.send, { deadlineMs: 100_000, resendMs: 30_000 });
    const seen = out.catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(100_000);
    expect(await seen).toMatchObject({ code: 'XMPP_TIMEOUT' });
    expect(p.sent.map((s) => s.at)).toEqual([0, 30_000, 60_000, 90_000]);
  });

  it('stops sending copies once its signal aborts (the step ended or the peer left)', async () => {
    const p = peer(Infinity, 0);
    const stop = new AbortController();
    const seen = sendUntilAnswered(p.send, { deadlineMs: 300_000, resendMs: 30_000, signal: stop.signal }).catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(10_000);
    stop.abort(new Error('step cancelled'));
    expect(await seen).toMatchObject({ message: 'step cancelled' });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(p.sent).toHaveLength(1);
  });

  it('passes a refusal on at once and sends no more copies', async () => {
    const sent: number[] = [];
    const send = (): Promise<string> => {
      sent.push(Date.now());
      return Promise.reject(new IntercloudError('MIGRATE_REJECTED', 'no', { retryable: false }));
    };
    const seen = sendUntilAnswered(send, { deadlineMs: 300_000, resendMs: 30_000 }).catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await seen).toMatchObject({ code: 'MIGRATE_REJECTED' });
    expect(sent).toEqual([0]);
  });
});

describe('the source control port\'s resend interval (migration.requestResendMs)', () => {
  /** A session whose peer loses the first `lost` requests; the rest are answered `running` at once. */
  function session(lost: number) {
    const sent: number[] = [];
    const s = {
      signRequest: () => Promise.resolve('signature'),
      request: (_jid: string, _child: Element, timeoutMs: number): Promise<Element> => {
        const n = sent.push(Date.now());
        if (n <= lost) return new Promise((_resolve, reject) => { setTimeout(() => reject(timeout()), timeoutMs); });
        return Promise.resolve(xml('iq', { type: 'result' }, buildMigrationState('running')));
      },
      on: () => undefined,
      off: () => undefined,
    } as unknown as GatewaySession;
    return { s, sent };
  }
  const peerRef = { cloudId: 'cloud-b', jid: 'cloud-b@intercloud.test' };
  const noEndpoint = (): never => { throw new Error('not used'); };

  it('sends a lost commit again after the configured interval', async () => {
    const { s, sent } = session(2);
    const control = sourceControlPort(s, { currency: 'EUR', checkEndpoint: noEndpoint, resendMs: 5_000 });
    const out = control.commit(peerRef, 'offer-1', new AbortController().signal);
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(out).resolves.toEqual({ state: 'running' });
    expect(sent).toEqual([0, 5_000, 10_000]);
  });

  it('sends again every REQUEST_RESEND_MS (30 s) when the config gives none', async () => {
    const { s, sent } = session(1);
    const control = sourceControlPort(s, { currency: 'EUR', checkEndpoint: noEndpoint });
    const out = control.commit(peerRef, 'offer-1', new AbortController().signal);
    await vi.advanceTimersByTimeAsync(REQUEST_RESEND_MS - 1);
    expect(sent).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    await expect(out).resolves.toEqual({ state: 'running' });
    expect(sent).toEqual([0, REQUEST_RESEND_MS]);
  });
});
