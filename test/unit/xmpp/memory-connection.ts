/**
 * An in-memory {@link XmppConnection} for unit tests: connections on one {@link MemoryHub}
 * reach each other by full JID; presence without `to` is broadcast; iqs to the server (no `to`,
 * or a service JID) are answered by the hub's `server` function. Iq handlers run as the real
 * connection runs them; an `<error/>` answer becomes `XMPP_STANZA_ERROR` with the same details.
 */
import { EventEmitter } from 'node:events';
import { xml, type Element } from '@xmpp/client';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import { NS, parseStanzaError, xmppError, type IqRequestHandler, type XmppConnection } from '../../../protocols/xmpp/index.js';

/** Answers iqs sent to the server or a service; `undefined` → an empty result. */
export type ServerHandler = (iq: { type: 'get' | 'set'; to: string | undefined; from: string; child: Element }) => Element | undefined;

/** Connections that reach each other. */
export class MemoryHub {
  readonly connections = new Map<string, MemoryConnection>();
  /** Every iq request a connection sent to another, in order (tests replay them). */
  readonly sent: Array<{ from: string; to: string; child: Element }> = [];
  server: ServerHandler = () => undefined;
  /** The last available presence each connection broadcast (a newcomer is sent them, as a server's probes would). */
  readonly presence = new Map<string, Element>();

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
    for (const [jid, p] of this.hub.presence) if (jid !== this.jid) this.emit('stanza', p);
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
    this.hub.presence.delete(this.jid);
    this.online = false;
    this.status = 'offline';
    this.emit('disconnect');
  }

  async send(stanza: Element): Promise<void> {
    const to = stanza.attrs['to'];
    const out = xml(stanza.name, { ...stanza.attrs, from: this.jid }, ...stanza.children);
    if (to === undefined && stanza.is('presence')) {
      if (stanza.attrs['type'] === undefined) this.hub.presence.set(this.jid, out);
      else this.hub.presence.delete(this.jid);
      for (const [jid, other] of this.hub.connections) if (jid !== this.jid) other.emit('stanza', out);
      return;
    }
    // A bare JID reaches each of its resources.
    for (const [jid, other] of this.hub.connections) if (jid === to || jid.split('/')[0] === to) other.emit('stanza', out);
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

/**
 * A PubSub service for the hub (XEP-0060, only what the session uses): publish, retract,
 * items (all or by id), subscribe, disco#items of a node; subscribers get notifications.
 */
export function pubsubService(hub: MemoryHub, serviceJid: string): ServerHandler {
  const nodes = new Map<string, Map<string, Element>>();
  const subscribers = new Map<string, Set<string>>();
  const notify = (node: string, child: Element): void => {
    for (const bare of subscribers.get(node) ?? []) {
      for (const [jid, c] of hub.connections) {
        if (jid.split('/')[0] === bare) c.emit('stanza', xml('message', { from: serviceJid, to: jid }, xml('event', { xmlns: NS.PUBSUB_EVENT }, xml('items', { node }, child))));
      }
    }
  };
  const previous = hub.server;
  return (iq) => {
    if (iq.to !== serviceJid) return previous(iq);
    const items = (node: string): Map<string, Element> => {
      let m = nodes.get(node);
      if (!m) nodes.set(node, (m = new Map()));
      return m;
    };
    if (iq.child.is('query', NS.DISCO_ITEMS)) {
      const node = iq.child.attrs['node'] ?? '';
      return xml('query', { xmlns: NS.DISCO_ITEMS, node }, ...[...items(node).keys()].map((id) => xml('item', { jid: serviceJid, name: id })));
    }
    const op = iq.child.getChildElements()[0];
    const node = op?.attrs['node'] ?? '';
    if (op?.name === 'publish') {
      const item = op.getChild('item')!;
      items(node).set(item.attrs['id'] ?? '', item);
      notify(node, item);
      return undefined;
    }
    if (op?.name === 'retract') {
      const id = op.getChild('item')?.attrs['id'] ?? '';
      items(node).delete(id);
      notify(node, xml('retract', { id }));
      return undefined;
    }
    if (op?.name === 'subscribe') {
      let s = subscribers.get(node);
      if (!s) subscribers.set(node, (s = new Set()));
      s.add(op.attrs['jid'] ?? iq.from.split('/')[0]!);
      return undefined;
    }
    if (op?.name === 'items') {
      const wanted = op.getChildren('item').map((i) => i.attrs['id'] ?? '');
      const all = [...items(node).entries()].filter(([id]) => wanted.length === 0 || wanted.includes(id)).map(([, i]) => i);
      return xml('pubsub', { xmlns: NS.PUBSUB }, xml('items', { node }, ...all));
    }
    return undefined;
  };
}
