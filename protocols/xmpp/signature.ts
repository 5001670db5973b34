/**
 * The signature element our signed payloads carry (catalog entries, offers, accepts).
 *
 * The element's text is the trust area's signed-message envelope (JSON), opaque to this
 * codec: it carries the payload's typed value (the same fields the XML carries), the
 * signer's certificate, a nonce and an expiry. The verifier checks that the envelope's
 * payload equals the value read from the XML, so XML whitespace or attribute order
 * never matter.
 */
import { xml, type Element } from '@xmpp/client';
import { checkSize, LIMITS, malformed } from './fields.js';
import { ICNS } from './namespaces.js';

/** `<signature xmlns='urn:intercloud:signature:0'>envelope</signature>`. */
export function buildSignature(envelope: string): Element {
  return xml('signature', { xmlns: ICNS.SIGNATURE }, envelope);
}

/** The envelope text of the payload's `<signature/>` child; throws `XMPP_MALFORMED` when absent. */
export function readSignature(payload: Element, path: string): string {
  const sigs = payload.getChildren('signature', ICNS.SIGNATURE);
  if (sigs.length !== 1) return malformed(`${path}/signature`, sigs.length === 0 ? 'is missing' : 'appears more than once');
  const sig = sigs[0] as Element;
  checkSize(sig, `${path}/signature`, LIMITS.signatureBytes);
  const text = sig.text().trim();
  if (text === '') return malformed(`${path}/signature`, 'is empty');
  return text;
}
