/**
 * The parts of `@xmpp/client` 0.14 (xmpp.js, which ships no type declarations) that this
 * area uses. Kept to what we call; shapes follow the xmpp.js sources.
 */
declare module '@xmpp/client' {
  import type { EventEmitter } from 'node:events';

  /** An XML element (ltx). */
  export class Element {
    constructor(name: string, attrs?: Record<string, string | number | undefined>);
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<Element | string>;
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getNS(): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getChildByAttr(attr: string, value: string, xmlns?: string, recursive?: boolean): Element | undefined;
    text(): string;
    append(...children: Array<Element | string>): Element;
    remove(child: Element | string): Element;
    toString(): string;
  }

  type ElementClass = typeof Element;

  /** A child given to {@link xml}: elements, text, or nothing (skipped). */
  export type XmlChild = Element | string | number | null | undefined | false | XmlChild[];

  /** Builds an element: `xml('iq', { type: 'get' }, xml('ping', { xmlns }))`. */
  export function xml(name: string, attrs?: Record<string, string | number | undefined> | null, ...children: XmlChild[]): Element;
  export namespace xml {
    const Element: ElementClass;
    class Parser extends EventEmitter {
      write(data: string): void;
      end(data?: string): void;
    }
  }

  /** An XMPP address (RFC 7622). */
  export interface JID {
    local: string;
    domain: string;
    resource: string;
    bare(): JID;
    toString(): string;
    equals(other: JID): boolean;
  }
  export function jid(address: string): JID;
  export function jid(local: string | null, domain: string, resource?: string): JID;

  /** Context handed to an iq-callee handler. */
  export interface IqContext {
    stanza: Element;
    element: Element;
    from: JID | null;
    to: JID | null;
    id: string;
  }
  export type IqHandler = (ctx: IqContext, next: () => Promise<unknown>) => Element | Record<string, never> | undefined | Promise<Element | Record<string, never> | undefined>;

  /** A SASL mechanism class for the saslmechanisms factory. */
  export interface SaslMechanismClass {
    new (): { name: string; clientFirst: boolean; response(cred: Record<string, unknown>): string; challenge(chal: string): unknown };
    prototype: { name: string; clientFirst: boolean };
  }

  export interface StreamFeatureContext {
    entity: Client;
    stanza: Element;
  }

  /** A transport (connection class) the client may pick by service URI. */
  export interface TransportClass {
    prototype: { socketParameters(service: string): unknown; Socket: unknown };
  }

  export interface Client extends EventEmitter {
    status: string;
    jid: JID | null;
    socket: { secure?: boolean } | null;
    options: { service: string; domain: string; lang?: string };
    transports: TransportClass[];
    start(): Promise<JID>;
    stop(): Promise<void>;
    disconnect(timeout?: number): Promise<void>;
    send(element: Element): Promise<void>;
    sendReceive(element: Element, timeout?: number): Promise<Element>;
    restart(): Promise<void>;
    isSecure(): boolean;
    _attachSocket(socket: unknown): void;
    iqCaller: {
      request(element: Element, timeout?: number): Promise<Element>;
      /** Pending requests by stanza id (internal to @xmpp/iq; see GatewaySession's #iq). */
      handlers: Map<string, { promise: Promise<unknown> }>;
    };
    iqCallee: { get(xmlns: string, name: string, handler: IqHandler): void; set(xmlns: string, name: string, handler: IqHandler): void };
    saslFactory: { use(mech: SaslMechanismClass): void };
    streamFeatures: { use(name: string, xmlns: string, handler: (ctx: StreamFeatureContext, next: () => Promise<unknown>, feature: Element) => unknown): void };
    reconnect: EventEmitter & { delay: number; stop(): void; start(): void };
    streamManagement: EventEmitter & { enabled: boolean; id: string; allowResume?: boolean };
  }

  export interface ClientOptions {
    service: string;
    domain: string;
    resource?: string;
    lang?: string;
    username?: string;
    password?: string;
    credentials?: (
      authenticate: (credentials: Record<string, unknown>, mechanism: string) => Promise<void>,
      mechanisms: string[],
    ) => Promise<void>;
  }
  export function client(options: ClientOptions): Client;
}
