/**
 * I/O: the {@link XmppConnection} on `@xmpp/client` (`transport.ts`: STARTTLS with the Root
 * CA, SASL EXTERNAL or SCRAM): reconnect with exponential backoff and jitter, iqs with our own
 * timeout, and failures told apart by {@link classifyConnectError}.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { xml, type Client, type Element } from '@xmpp/client';
import { IntercloudError, messageOf } from '../errors/index.js';
import { classifyConnectError, parseStreamError, type ConnectObservation, type IqRequestHandler, type StreamErrorInfo, type XmppConnection } from './connection.js';
import { xmppError } from './errors.js';
import { parseStanzaError } from './stanza-error.js';
import { createXmppClient, type XmppConnectOptions } from './transport.js';

/** Options of {@link XmppJsConnection}. */
export interface XmppJsConnectionOptions extends XmppConnectOptions {
  /** Reconnect backoff: first delay, doubled up to the maximum (defaults 250 ms, 30 s). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** Deadline for connect and login in `start` (default 15 s): then `XMPP_CONNECT_TIMEOUT`. */
  readonly connectTimeoutMs?: number;
}

/** How long past our timeout a late iq answer is still collected (then xmpp.js drops it). */
const LATE_ANSWER_MS = 60_000;

const DEFAULTS = { initialDelayMs: 250, maxDelayMs: 30_000, connectTimeoutMs: 15_000 };

/** The connection on xmpp.js. Create, then `start()`. */
export class XmppJsConnection extends EventEmitter implements XmppConnection {
  readonly #x: Client;
  readonly #service: string;
  readonly #connectTimeoutMs: number;
  readonly #initialDelay: number;
  readonly #maxDelay: number;
  #delay: number;
  #stopped = false;
  #reconnectOff = false;
  #seen: { tcpConnected: boolean; streamError?: StreamErrorInfo } = { tcpConnected: false };

  constructor(options: XmppJsConnectionOptions) {
    super();
    this.#service = options.service;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    this.#initialDelay = options.reconnect?.initialDelayMs ?? DEFAULTS.initialDelayMs;
    this.#maxDelay = options.reconnect?.maxDelayMs ?? DEFAULTS.maxDelayMs;
    this.#delay = this.#initialDelay;
    // xmpp.js's own waits (each stream open) end after ours, so a server that stops answering
    // is reported by our deadline as a timeout, whichever step it stopped at.
    this.#x = createXmppClient({ ...options, streamTimeoutMs: options.streamTimeoutMs ?? this.#connectTimeoutMs + 5_000 });
    this.#wire();
  }

  get online(): boolean {
    return this.#x.status === 'online';
  }

  get status(): string {
    return this.#x.status;
  }

  get streamManagement(): boolean {
    return this.#x.streamManagement.enabled;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#seen = { tcpConnected: false };
    if (this.#reconnectOff) {
      this.#x.reconnect.start();
      this.#reconnectOff = false;
    }
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(xmppError('XMPP_CONNECT_TIMEOUT', `xmpp server '${this.#service}' did not complete connect and login within ${this.#connectTimeoutMs} ms`, {
          details: { tcpConnected: this.#seen.tcpConnected, timeoutMs: this.#connectTimeoutMs },
        }));
      }, this.#connectTimeoutMs);
    });
    const starting = this.#x.start();
    try {
      await Promise.race([starting, deadline]);
    } catch (err) {
      // A failed first login is reported, not retried in the background; the caller may start again.
      starting.catch(() => undefined);
      this.#x.reconnect.stop();
      this.#reconnectOff = true;
      const seen: ConnectObservation = { ...this.#seen, timedOut };
      const error = timedOut ? (err as IntercloudError) : classifyConnectError(err, seen, this.#service);
      if (timedOut) this.#destroySocket();
      await this.#x.stop().catch((e: unknown) => this.#warn(this.#lost(e, 'closing after a failed login failed')));
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#x.reconnect.stop();
    this.#reconnectOff = true;
    await this.#x.stop();
  }

  kill(): void {
    this.#stopped = true;
    this.#x.reconnect.stop();
    this.#reconnectOff = true;
    this.#destroySocket();
  }

  async send(stanza: Element): Promise<void> {
    await this.#x.send(stanza);
  }

  handle(type: 'get' | 'set', ns: string, name: string, handler: IqRequestHandler): void {
    this.#x.iqCallee[type](ns, name, (ctx) => handler(ctx.element, ctx.stanza.attrs['from'] ?? ''));
  }

  async iq(type: 'get' | 'set', to: string | undefined, child: Element, timeoutMs: number): Promise<Element> {
    if (!this.online) throw xmppError('XMPP_NOT_CONNECTED', `not online (status '${this.#x.status}')`);
    const id = randomUUID();
    // Our own timer, not xmpp.js's: when its timeout and a late answer race, xmpp.js can
    // reject a promise nobody awaits any more. The request stays registered a while longer,
    // so a late answer is consumed here and reported as a warning.
    const pending = this.#x.iqCaller.request(xml('iq', { type, to, id }, child), timeoutMs + LATE_ANSWER_MS);
    // @xmpp/iq 0.14 registers the request's promise, then awaits the socket write before it
    // listens to that promise: an error answer arriving in between (a server answering
    // service-unavailable at once) rejects it with no listener — an unhandled rejection,
    // although `pending` below still carries the error to us. Listen from the start.
    this.#x.iqCaller.handlers.get(id)?.promise.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        pending.catch((late: unknown) => this.#warn(this.#iqError(late, to, `late answer from '${to ?? 'server'}'`)));
        reject(xmppError('XMPP_TIMEOUT', `no answer from '${to ?? 'server'}' within ${timeoutMs} ms`, { details: { to, timeoutMs } }));
      }, timeoutMs);
    });
    try {
      return await Promise.race([pending, timedOut]);
    } catch (err) {
      throw this.#iqError(err, to, `iq to '${to ?? 'server'}' failed`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A stanza error answer (xmpp.js's error carries the `<error/>` element) → `XMPP_STANZA_ERROR`. */
  #iqError(err: unknown, to: string | undefined, what: string): IntercloudError {
    if (err instanceof IntercloudError) return err;
    const e = err as { element?: Element; condition?: string };
    if (e.element !== undefined && e.condition !== undefined) {
      const info = parseStanzaError(e.element);
      return xmppError('XMPP_STANZA_ERROR', `'${to ?? 'server'}' answered '${info.condition}'${info.text ? `: ${info.text}` : ''}`, {
        cause: err,
        retryable: info.type === 'wait',
        details: { condition: info.condition, type: info.type, text: info.text, application: info.application, to },
      });
    }
    return this.#lost(err, what);
  }

  /** Anything else failing on an established connection: it was lost. */
  #lost(err: unknown, what: string): IntercloudError {
    if (err instanceof IntercloudError) return err;
    return xmppError('XMPP_CONNECT', `${what}: ${messageOf(err)}`, { cause: err });
  }

  #destroySocket(): void {
    const socket = this.#x.socket as { destroy?: () => void } | null;
    socket?.destroy?.();
  }

  #warn(err: IntercloudError): void {
    this.emit('warning', err);
  }

  #wire(): void {
    const x = this.#x;
    x.reconnect.delay = this.#delay;
    x.on('connect', () => {
      this.#seen.tcpConnected = true;
    });
    // Seen before xmpp.js turns it into an error event (RFC 6120 §4.9).
    x.prependListener('element', (el: Element) => {
      const streamError = parseStreamError(el);
      if (streamError) this.#seen.streamError = streamError;
    });
    x.on('error', (err: unknown) => {
      this.#warn(classifyConnectError(err, this.#seen, this.#service));
    });
    x.on('offline', () => this.emit('status', 'offline'));
    x.on('disconnect', () => {
      this.emit('disconnect');
      if (this.#stopped) return;
      // Exponential backoff with jitter between attempts (xmpp.js reads `delay` each time).
      x.reconnect.delay = Math.round(this.#delay * (0.75 + Math.random() / 2));
      this.#delay = Math.min(this.#maxDelay, this.#delay * 2);
      this.#seen = { tcpConnected: false };
      this.emit('status', 'reconnecting');
    });
    x.on('online', () => {
      this.#delay = this.#initialDelay;
      this.emit('status', 'online');
    });
    x.streamManagement.on('resumed', () => {
      this.#delay = this.#initialDelay;
      this.emit('status', 'resumed');
    });
    x.on('stanza', (stanza: Element) => {
      if (stanza.is('presence') || stanza.is('message')) this.emit('stanza', stanza);
    });
  }
}
