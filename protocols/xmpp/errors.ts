/**
 * Error codes of the XMPP control plane (`XMPP_…`). Stanza errors keep the XMPP
 * condition, type, text and our application condition in `details`.
 */
import { defineErrorCodes, IntercloudError, type IntercloudErrorOptions } from '../errors/index.js';

/** Every code this area raises, with its one-line description. */
export const XMPP_ERRORS = defineErrorCodes('xmpp', {
  XMPP_CONNECT: { doc: 'the connection to the xmpp server closed before login finished, or was lost', retryable: true },
  XMPP_UNREACHABLE: { doc: 'no tcp connection to the xmpp server (refused, no route, name not found; errno in details)', retryable: true },
  XMPP_CONNECT_TIMEOUT: { doc: 'the xmpp server did not complete connect and login in time', retryable: true },
  XMPP_STREAM_ERROR: { doc: 'the xmpp server closed the stream with a stream error (condition in details)', retryable: true },
  XMPP_TLS: { doc: 'tls to the xmpp server failed (certificate not issued by the intercloud root, wrong name)', retryable: false },
  XMPP_AUTH: { doc: 'the server refused our sasl login (condition in details), or offered no mechanism we use', retryable: false },
  XMPP_NOT_CONNECTED: { doc: 'the session is not online (not started, stopped or reconnecting)', retryable: true },
  XMPP_TIMEOUT: { doc: 'a peer or the server did not answer an iq in time', retryable: true },
  XMPP_STANZA_ERROR: { doc: 'a peer or the server answered with a stanza error (condition in details)', retryable: false },
  XMPP_PEER_UNAVAILABLE: { doc: 'the peer gateway is not online (no presence, or it vanished mid-negotiation)', retryable: true },
  XMPP_MALFORMED: { doc: 'a payload lacks a required field, has a wrong type, or is not in our namespace', retryable: false },
  XMPP_OVERSIZED: { doc: 'a payload exceeds the size limits (bytes, disks, nics, list lengths)', retryable: false },
  XMPP_UNTRUSTED: { doc: 'a signed payload failed verification (chain, revocation, signature, jid mismatch, replay)', retryable: false },
  XMPP_CONFIG: { doc: 'session options are invalid (jid, service uri, certificate files)', retryable: false },
});

/** An XMPP area error code. */
export type XmppCode = keyof typeof XMPP_ERRORS;

/** Builds an XMPP area error. */
export function xmppError(code: XmppCode, message: string, options: IntercloudErrorOptions = {}): IntercloudError<XmppCode> {
  return new IntercloudError(code, message, options);
}
