/**
 * I/O: an `@xmpp/client` entity that negotiates STARTTLS with *our* TLS options
 * (the Intercloud Root as the only CA, the gateway's client certificate) and logs in
 * with SASL EXTERNAL (XEP-0178), else SCRAM-SHA-1.
 *
 * xmpp.js 0.14's STARTTLS step passes only `{ host }` to `tls.connect`, so it cannot
 * verify against a private root or present a client certificate. Instead of patching
 * `tls.connect` globally, this file registers its own transport, whose socket wrapper
 * upgrades itself in place with full TLS options, and its own `starttls` stream
 * feature (RFC 6120 §5.4). xmpp.js's built-in STARTTLS step skips sockets that are not
 * plain `net.Socket`s, so ours is the one that runs.
 */
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { client, xml, type Client, type Element, type SaslMechanismClass, type TransportClass } from '@xmpp/client';
import { IntercloudError, messageOf } from '../errors/index.js';
import { xmppError } from './errors.js';

const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_STREAMS = 'http://etherx.jabber.org/streams';
const NS_SM = 'urn:xmpp:sm:3';

/** TLS material: the Root CA to verify the server, and our certificate for EXTERNAL. */
export interface TlsMaterial {
  /** PEM of the Intercloud Root CA (the only trusted issuer). */
  readonly ca: string | Buffer;
  /** PEM of this gateway's certificate (with id-on-xmppAddr); omit for SCRAM-only. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Name to verify in the server certificate (defaults to the XMPP domain). */
  readonly servername?: string;
}

/** Password login for servers that do not accept our certificate (SCRAM-SHA-1, RFC 5802). */
export interface ScramCredentials {
  readonly username: string;
  readonly password: string;
}

/** How to reach and log in to the XMPP server. */
export interface XmppConnectOptions {
  /** `xmpp://HOST:PORT` (STARTTLS is required; no plaintext login happens). */
  readonly service: string;
  readonly domain: string;
  readonly resource: string;
  readonly tls: TlsMaterial;
  /** The JID our certificate names, sent as the EXTERNAL authorization identity. */
  readonly externalJid?: string;
  readonly scram?: ScramCredentials;
  /** How long to wait for the server to open or close a stream (default 10 s). */
  readonly streamTimeoutMs?: number;
  /** Use XEP-0198 stream management when the server offers it (default true). */
  readonly streamManagement?: boolean;
}

/**
 * A socket wrapper xmpp.js drives like its own: plain TCP first, then upgraded in
 * place to TLS by {@link StartTlsSocket.upgrade} (same object, so xmpp.js keeps its
 * listeners).
 */
export class StartTlsSocket extends EventEmitter {
  /** Read by xmpp.js `isSecure()`. */
  secure = false;
  #socket: net.Socket | undefined;
  #detach: (() => void) | undefined;

  connect(params: { port: number | null; host: string }): void {
    // Small request/response stanzas: no Nagle delay (it costs ~40 ms against delayed acks).
    const socket = net.connect({ port: params.port ?? 5222, host: params.host, noDelay: true });
    this.#attach(socket);
    socket.once('connect', () => this.emit('connect'));
  }

  #attach(socket: net.Socket): void {
    this.#detach?.();
    const onData = (d: Buffer): boolean => this.emit('data', d);
    const onClose = (): boolean => this.emit('close');
    const onError = (e: Error): boolean => this.emit('error', e);
    socket.on('data', onData).on('close', onClose).on('error', onError);
    this.#socket = socket;
    this.#detach = () => {
      socket.off('data', onData).off('close', onClose).off('error', onError);
    };
  }

  /** RFC 6120 §5.4.3.3: TLS negotiation over the same TCP connection. */
  async upgrade(options: tls.ConnectionOptions): Promise<void> {
    const raw = this.#socket;
    if (!raw) throw xmppError('XMPP_NOT_CONNECTED', 'cannot start tls: the socket is not connected');
    this.#detach?.();
    const secure = tls.connect({ ...options, socket: raw });
    try {
      await once(secure, 'secureConnect');
    } catch (err) {
      secure.destroy();
      throw xmppError('XMPP_TLS', `tls with the xmpp server failed: ${messageOf(err)}`, {
        cause: err,
        details: { code: (err as NodeJS.ErrnoException).code },
      });
    }
    this.#attach(secure);
    this.secure = true;
  }

  write(data: string, cb?: (err?: Error | null) => void): void {
    if (!this.#socket) {
      cb?.(xmppError('XMPP_NOT_CONNECTED', 'cannot write: the socket is closed'));
      return;
    }
    this.#socket.write(data, cb);
  }

  end(): void {
    this.#socket?.end();
  }

  /** Drops the connection at once (tests use it to make a peer vanish). */
  destroy(): void {
    this.#socket?.destroy();
  }
}

/** SASL EXTERNAL (RFC 4422 App. A) with a non-empty authzid, as Prosody requires. */
function externalMechanism(): SaslMechanismClass {
  class External {
    name = 'EXTERNAL';
    clientFirst = true;
    // XEP-0178 §3: the initial response is the authorization identity (our bare JID).
    response(cred: Record<string, unknown>): string {
      return typeof cred['authzid'] === 'string' && cred['authzid'] !== '' ? cred['authzid'] : '=';
    }
    challenge(): this {
      return this;
    }
  }
  Object.assign(External.prototype, { name: 'EXTERNAL', clientFirst: true });
  return External as unknown as SaslMechanismClass;
}

/**
 * Creates (does not start) an xmpp.js client wired with our transport, STARTTLS with
 * the Root CA, SASL EXTERNAL and SCRAM fallback. Reconnection is left to the caller.
 */
export function createXmppClient(options: XmppConnectOptions): Client {
  if (options.externalJid === undefined && options.scram === undefined) {
    throw xmppError('XMPP_CONFIG', 'no login method: give a certificate jid (sasl external) or scram credentials');
  }
  const ref: { entity?: Client } = {};
  const xmpp = client({
    service: options.service,
    domain: options.domain,
    resource: options.resource,
    credentials: async (authenticate, mechanisms) => {
      // Never authenticate over a plaintext stream, whatever the server offers.
      if (!ref.entity?.isSecure()) throw xmppError('XMPP_TLS', 'refusing to authenticate before tls is established');
      // A <failure/> answer (RFC 6120 §6.5) makes `authenticate` throw: it is a refused login.
      const login = async (creds: Record<string, unknown>, mechanism: string): Promise<void> => {
        try {
          await authenticate(creds, mechanism);
        } catch (err) {
          if (err instanceof IntercloudError) throw err;
          const condition = (err as { condition?: unknown }).condition;
          throw xmppError('XMPP_AUTH', `the server refused sasl ${mechanism.toLowerCase()} login${typeof condition === 'string' ? ` ('${condition}')` : ''}`, {
            cause: err, details: { mechanism, ...(typeof condition === 'string' ? { condition } : {}) },
          });
        }
      };
      if (options.externalJid !== undefined && options.tls.cert !== undefined && mechanisms.includes('EXTERNAL')) {
        await login({ authzid: options.externalJid }, 'EXTERNAL');
        return;
      }
      if (options.scram !== undefined && mechanisms.includes('SCRAM-SHA-1')) {
        await login({ username: options.scram.username, password: options.scram.password }, 'SCRAM-SHA-1');
        return;
      }
      throw xmppError('XMPP_AUTH', `no usable sasl mechanism among '${mechanisms.join(' ')}'`, { details: { mechanisms } });
    },
  });
  ref.entity = xmpp;
  // xmpp.js waits 2 s for stream opens and closes; a loaded server needs longer.
  (xmpp as unknown as { timeout: number }).timeout = options.streamTimeoutMs ?? 10_000;
  xmpp.saslFactory.use(externalMechanism());

  // Our transport: xmpp.js's TCP connection class with our upgradable socket.
  const Tcp = xmpp.transports.find((T) => {
    try {
      return T.prototype.socketParameters('xmpp://127.0.0.1:1') !== undefined && T.prototype.Socket !== undefined;
    } catch (err) {
      return err === undefined;
    }
  });
  if (!Tcp) throw xmppError('XMPP_CONFIG', 'xmpp.js has no tcp transport to build on');
  const Base = Tcp as unknown as new (...args: unknown[]) => object;
  class StartTlsTransport extends Base {}
  (StartTlsTransport.prototype as { Socket: unknown }).Socket = StartTlsSocket;
  xmpp.transports.unshift(StartTlsTransport as unknown as TransportClass);

  // RFC 6120 §5.4.2: <starttls/> → <proceed/>, then TLS, then a new stream.
  xmpp.streamFeatures.use('starttls', NS_TLS, async ({ entity: e }, next) => {
    const socket = e.socket;
    if (!(socket instanceof StartTlsSocket) || socket.secure) return next();
    const answer = await e.sendReceive(xml('starttls', { xmlns: NS_TLS }));
    if (!answer.is('proceed', NS_TLS)) throw xmppError('XMPP_TLS', 'the server refused starttls', { details: { answer: answer.name } });
    await socket.upgrade({
      ca: options.tls.ca,
      cert: options.tls.cert,
      key: options.tls.key,
      servername: options.tls.servername ?? options.domain,
      host: options.tls.servername ?? options.domain,
      minVersion: 'TLSv1.2',
    });
    await e.restart();
  });
  if (options.streamManagement === false) {
    // Hide <sm xmlns='urn:xmpp:sm:3'/> from xmpp.js's stream-management step (XEP-0198 §3).
    xmpp.prependListener('element', (el: Element) => {
      if (el.is('features', NS_STREAMS)) {
        for (const sm of el.getChildren('sm', NS_SM)) el.remove(sm);
      }
    });
  }
  return xmpp;
}
