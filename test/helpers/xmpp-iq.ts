/**
 * An iq request from a plain xmpp.js client, as the tests' attackers send them. @xmpp/iq
 * registers the request's promise, then awaits the socket write before it listens to that
 * promise: an error answer arriving in between (a gateway refusing at once, under a flood) would
 * reject it with no listener — an unhandled rejection, though the request still rejects with
 * the error. Listened to from the start here, as protocols/xmpp/xmpp-connection.ts does.
 */
import { randomUUID } from 'node:crypto';
import { xml, type Client, type Element } from '@xmpp/client';

/** Sends `<iq type to>child</iq>` and resolves with the answer (rejects with xmpp.js's error). */
export function requestIq(c: Client, type: 'get' | 'set', to: string, child: Element, timeoutMs: number): Promise<Element> {
  const id = randomUUID();
  const pending = c.iqCaller.request(xml('iq', { type, to, id }, child), timeoutMs);
  c.iqCaller.handlers.get(id)?.promise.catch(() => undefined);
  return pending;
}
