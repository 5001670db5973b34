/**
 * Stanza errors (RFC 6120 §8.3): building the `<error/>` child of an error reply and
 * reading one back, with our application-specific condition (RFC 6120 §8.3.4).
 */
import { xml, type Element } from '@xmpp/client';
import { NS } from './namespaces.js';

/** RFC 6120 §8.3.2 error types. */
export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3 defined conditions that this area sends or inspects. */
export type StanzaErrorCondition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'internal-server-error'
  | 'item-not-found'
  | 'not-acceptable'
  | 'not-allowed'
  | 'not-authorized'
  | 'policy-violation'
  | 'recipient-unavailable'
  | 'remote-server-timeout'
  | 'resource-constraint'
  | 'service-unavailable'
  | 'undefined-condition'
  | 'unexpected-request';

/** A stanza error as read from the wire. */
export interface StanzaErrorInfo {
  readonly type: string;
  readonly condition: string;
  readonly text?: string;
  /** The application-specific condition element, when present. */
  readonly application?: Element;
}

/** Builds `<error type><condition/><text/>app</error>` (RFC 6120 §8.3.2). */
export function buildStanzaError(
  type: StanzaErrorType,
  condition: StanzaErrorCondition,
  text?: string,
  application?: Element,
): Element {
  return xml(
    'error',
    { type },
    xml(condition, { xmlns: NS.STANZAS }),
    text === undefined ? undefined : xml('text', { xmlns: NS.STANZAS, 'xml:lang': 'en' }, text),
    application,
  );
}

/** Reads an `<error/>` element; unknown shapes become `undefined-condition` (RFC 6120 §8.3.2). */
export function parseStanzaError(error: Element | undefined): StanzaErrorInfo {
  if (!error) return { type: 'cancel', condition: 'undefined-condition' };
  let condition = 'undefined-condition';
  let text: string | undefined;
  let application: Element | undefined;
  for (const child of error.getChildElements()) {
    if (child.getNS() === NS.STANZAS) {
      if (child.name === 'text') text = child.text();
      else condition = child.name;
    } else {
      application = child;
    }
  }
  return {
    type: error.attrs['type'] ?? 'cancel',
    condition,
    ...(text === undefined ? {} : { text }),
    ...(application === undefined ? {} : { application }),
  };
}

/** Builds the error reply to an iq (RFC 6120 §8.3.1: to/from swapped, same id). */
export function buildIqErrorReply(request: Element, error: Element): Element {
  return xml('iq', { type: 'error', to: request.attrs['from'], from: request.attrs['to'], id: request.attrs['id'] }, error);
}
