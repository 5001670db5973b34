/**
 * An in-memory {@link XmppConnection} for unit tests: connections on one {@link MemoryHub}
 * reach each other by full JID; presence without `to` is broadcast; iqs to the server (no `to`,
 * or a service JID) are answered by the hub's `server` function. Iq handlers run as the real
 * connection runs them; an `<error/>` answer becomes `XMPP_STANZA_ERROR` with the same details.
 */
import { EventEmitter } from 'node:events';
import { xml, type Element } from '@xmpp/client';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { parseStanzaError, xmppError, type IqRequestHandler, type XmppConnection } from '../../../protocols/xmpp/index.js';

/** Answers iqs sent to the server or a service; `undefined` → an empty result. */
export type ServerHandler = (iq: { type: 'get' | 'set'; to: string | undefined; from: string; child: Element }) => Element | undefined;

/** Connections that reach each other. */
export class MemoryHub {
  readonly connections = new Map<string, MemoryConnection>();
  /** Every iq request a connection sent to another, in order (tests replay them). */
  readonly sent: Array<{ from: string; to: string; child: Element }> = [];
  server: ServerHandler = () => undefined;

  connect(fullJid: string): MemoryConnection {
    return new MemoryConnection(this, fullJid);
  }

  /** Delivers an iq request to `to`'s handler as if `from` sent it (a replay, a forged sender). */
  async deliver(from: string, to: string, type: 'get' | 'set', child: Element): Promise<Element | Record<string, never>> {
    const target = this.connections.get(to);
    const handler = target?.handlerFor(type, child);
    if (!target || !handler) return xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }));
    return handler(child, from);
  }
}

/** One in-memory connection. */
export class MemoryConnection extends EventEmitter implements XmppConnection {
  online = false;
  status = 'offline';
  readonly streamManagement = false;
  readonly #handlers = new Map<string, IqRequestHandler>();

  constructor(private readonly hub: MemoryHub, readonly jid: string) {
    super();
  }

  handlerFor(type: 'get' | 'set', child: Element): IqRequestHandler | undefined {
    return this.#handlers.get(`${type} ${child.attrs['xmlns'] ?? ''} ${child.name}`);
  }

  async start(): Promise<void> {
    this.hub.connections.set(this.jid, this);
    this.online = true;
    this.status = 'online';
    this.emit('status', 'online');
  }

  async stop(): Promise<void> {
    this.#down();
    this.emit('status', 'offline');
  }

  kill(): void {
    this.#down();
    for (const other of this.hub.connections.values()) other.emit('stanza', xml('presence', { from: this.jid, type: 'unavailable' }));
  }

  #down(): void {
    this.hub.connections.delete(this.jid);
    this.online = false;
    this.status = 'offline';
    this.emit('disconnect');
  }

  async send(stanza: Element): Promise<void> {
    const to = stanza.attrs['to'];
    const out = xml(stanza.name, { ...stanza.attrs, from: this.jid }, ...stanza.children);
    if (to === undefined && stanza.is('presence')) {
      for (const [jid, other] of this.hub.connections) if (jid !== this.jid) other.emit('stanza', out);
      return;
    }
    this.hub.connections.get(to ?? '')?.emit('stanza', out);
  }

  async iq(type: 'get' | 'set', to: string | undefined, child: Element): Promise<Element> {
    if (!this.online) throw xmppError('XMPP_NOT_CONNECTED', 'not online');
    if (to === undefined || !to.includes('@')) {
      return xml('iq', { type: 'result', from: to, to: this.jid }, this.hub.server({ type, to, from: this.jid, child }));
    }
    this.hub.sent.push({ from: this.jid, to, child });
    const answer = await this.hub.deliver(this.jid, to, type, child);
    if (answer instanceof Object && 'name' in answer && (answer as Element).name === 'error') {
      const info = parseStanzaError(answer as Element);
      throw xmppError('XMPP_STANZA_ERROR', `'${to}' answered '${info.condition}'`, {
        retryable: info.type === 'wait', details: { condition: info.condition, type: info.type, text: info.text, application: info.application, to },
      });
    }
    return xml('iq', { type: 'result', from: to, to: this.jid }, 'name' in answer ? (answer as Element) : undefined);
  }

  handle(type: 'get' | 'set', ns: string, name: string, handler: IqRequestHandler): void {
    this.#handlers.set(`${type} ${ns} ${name}`, handler);
  }

  /** Unused here; declared so the warning listener type checks. */
  warn(err: IntercloudError): void {
    this.emit('warning', err);
  }
}
