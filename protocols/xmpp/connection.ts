/**
 * A gateway's connection to its XMPP server, behind a small interface: connect and log in,
 * send, request/answer iqs, reconnect, events. {@link GatewaySession} uses only this, so a test
 * can drive a session over an in-memory connection; `xmpp-connection.ts` is the implementation
 * on `@xmpp/client` (I/O). Also here, pure: how a failed connect or login is told apart.
 */
import type { Element } from '@xmpp/client';
import { IntercloudError } from '../errors/index.js';
import { xmppError } from './errors.js';

/**
 * `online`: a fresh login (whatever the session announced is gone and must be sent again);
 * `resumed`: XEP-0198 resumption (nothing lost); `reconnecting`: the stream dropped, a new
 * attempt is scheduled; `offline`: the stream is closed.
 */
export type ConnectionStatus = 'online' | 'resumed' | 'offline' | 'reconnecting';

/**
 * Answers an iq request: the result's child, an `<error/>` element (RFC 6120 §8.3) to refuse,
 * or `{}` for an empty result. `from` is the full JID the server authenticated.
 */
export type IqRequestHandler = (child: Element, from: string) => Promise<Element | Record<string, never>> | Element | Record<string, never>;

/**
 * The connection as a session uses it. Contract:
 * - `start` connects and logs in; it rejects with a coded error saying what failed
 *   ({@link classifyConnectError}) and is not retried in the background after such a failure;
 *   once up, a dropped stream is reconnected with backoff (`status` events) until `stop`/`kill`.
 * - `iq` resolves with the result stanza; rejects `XMPP_NOT_CONNECTED` when not online,
 *   `XMPP_STANZA_ERROR` (condition, type, text, application in `details`) on an error answer,
 *   `XMPP_TIMEOUT` after `timeoutMs`.
 * - `stop` closes the stream cleanly (idempotent); `kill` drops the transport without closing
 *   (a vanishing peer). Neither reconnects.
 * - Events: `status` ({@link ConnectionStatus}), `disconnect` (presence is unknown until the
 *   next login), `stanza` (presence and message stanzas; iq requests go to `handle`d handlers),
 *   `warning` (a coded error nobody awaits: a lost connection, a late iq answer).
 */
export interface XmppConnection {
  readonly online: boolean;
  /** A short word for messages (`online`, `connecting`, `offline` …). */
  readonly status: string;
  /** Whether XEP-0198 stream management is enabled on the current stream. */
  readonly streamManagement: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  kill(): void;
  send(stanza: Element): Promise<void>;
  iq(type: 'get' | 'set', to: string | undefined, child: Element, timeoutMs: number): Promise<Element>;
  /** Serves iq requests of `type` whose child is `<name xmlns=ns/>`; others get `service-unavailable`. */
  handle(type: 'get' | 'set', ns: string, name: string, handler: IqRequestHandler): void;
  on(event: 'status', listener: (status: ConnectionStatus) => void): this;
  on(event: 'disconnect', listener: () => void): this;
  on(event: 'stanza', listener: (stanza: Element) => void): this;
  on(event: 'warning', listener: (error: IntercloudError) => void): this;
}

/** A stream error the server sent (RFC 6120 §4.9). */
export interface StreamErrorInfo {
  readonly condition: string;
  readonly text?: string;
}

/** What the connection saw before a connect or login failed. */
export interface ConnectObservation {
  /** The TCP connection was established. */
  readonly tcpConnected: boolean;
  /** The server sent `<stream:error/>`. */
  readonly streamError?: StreamErrorInfo;
  /** Our own deadline for connect and login passed. */
  readonly timedOut?: boolean;
}

/** RFC 6120 §4.2 stream namespace and §4.9.2 stream error conditions. */
const NS_STREAMS = 'http://etherx.jabber.org/streams';
const NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams';

/** RFC 6120 §4.9.3 conditions after which trying again later may work. */
const RETRYABLE_STREAM_CONDITIONS = new Set([
  'connection-timeout', 'internal-server-error', 'remote-connection-failed', 'reset', 'resource-constraint', 'system-shutdown', 'see-other-host',
]);

/** Reads `<stream:error><condition/><text/></stream:error>` (RFC 6120 §4.9.2); undefined for anything else. */
export function parseStreamError(el: Element): StreamErrorInfo | undefined {
  if (!el.is('error', NS_STREAMS)) return undefined;
  const children = el.getChildElements().filter((c) => c.getNS() === NS_STREAM_ERRORS);
  const condition = children.find((c) => c.name !== 'text')?.name ?? 'undefined-condition';
  const text = children.find((c) => c.name === 'text')?.text();
  return { condition, ...(text ? { text } : {}) };
}

/**
 * Says what a failed connect or login was, from what the connection observed and the error's
 * structured fields (never its name or message): an already coded error is kept
 * (`XMPP_TLS`, `XMPP_AUTH` from `transport.ts`); then `XMPP_STREAM_ERROR` (the server's
 * condition), `XMPP_CONNECT_TIMEOUT`, `XMPP_UNREACHABLE` (no TCP connection: refused, no
 * route, name not found; the errno code in details), else `XMPP_CONNECT` (the connection
 * closed before login finished).
 */
export function classifyConnectError(err: unknown, seen: ConnectObservation, service: string): IntercloudError {
  if (err instanceof IntercloudError) return err;
  const errno = typeof (err as { code?: unknown } | undefined)?.code === 'string' ? (err as { code: string }).code : undefined;
  if (seen.streamError) {
    const { condition, text } = seen.streamError;
    return xmppError('XMPP_STREAM_ERROR', `xmpp server '${service}' closed the stream: '${condition}'${text ? `: ${text}` : ''}`, {
      cause: err, retryable: RETRYABLE_STREAM_CONDITIONS.has(condition), details: { condition, ...(text ? { text } : {}) },
    });
  }
  if (seen.timedOut) {
    return xmppError('XMPP_CONNECT_TIMEOUT', `xmpp server '${service}' did not complete connect and login in time`, {
      cause: err, details: { tcpConnected: seen.tcpConnected },
    });
  }
  if (!seen.tcpConnected) {
    return xmppError('XMPP_UNREACHABLE', `xmpp server '${service}' cannot be reached${errno ? ` (${errno})` : ''}`, {
      cause: err, details: { ...(errno ? { errno } : {}) },
    });
  }
  return xmppError('XMPP_CONNECT', `xmpp server '${service}' closed the connection before login finished${errno ? ` (${errno})` : ''}`, {
    cause: err, details: { ...(errno ? { errno } : {}) },
  });
}
