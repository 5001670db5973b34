/**
 * XEP-0060 Publish-Subscribe: publishing an item, requesting items, reading items and
 * event notifications, creating a node with a configuration form, subscribing.
 */
import { xml, type Element } from '@xmpp/client';
import { NS } from './namespaces.js';

/** One published item: its id and its payload element. */
export interface PubsubItem {
  readonly id: string;
  readonly payload: Element | undefined;
}

/** What a pubsub event notification (XEP-0060 §7.1.2.1, §7.2.2.1) carried. */
export interface PubsubEvent {
  readonly node: string;
  readonly items: readonly PubsubItem[];
  readonly retracted: readonly string[];
}

function configForm(formType: string, fields: Readonly<Record<string, string>>): Element {
  return xml(
    'x',
    { xmlns: NS.DATA_FORMS, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, formType)),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))),
  );
}

/** `<pubsub><create node/><configure>form</configure></pubsub>` (XEP-0060 §8.1.3). */
export function buildCreateNode(node: string, config: Readonly<Record<string, string>> = {}): Element {
  return xml(
    'pubsub',
    { xmlns: NS.PUBSUB },
    xml('create', { node }),
    Object.keys(config).length > 0 ? xml('configure', {}, configForm(`${NS.PUBSUB}#node_config`, config)) : undefined,
  );
}

/**
 * `<pubsub><publish node><item id>payload</item></publish>[<publish-options/>]</pubsub>`
 * (XEP-0060 §7.1.1, §7.1.5 publish options). Publishing an existing id replaces the item.
 */
export function buildPublish(node: string, itemId: string, payload: Element, options: Readonly<Record<string, string>> = {}): Element {
  return xml(
    'pubsub',
    { xmlns: NS.PUBSUB },
    xml('publish', { node }, xml('item', { id: itemId }, payload)),
    Object.keys(options).length > 0 ? xml('publish-options', {}, configForm(`${NS.PUBSUB}#publish-options`, options)) : undefined,
  );
}

/** `<pubsub><retract node notify='true'><item id/></retract></pubsub>` (XEP-0060 §7.2.1). */
export function buildRetract(node: string, itemId: string): Element {
  return xml('pubsub', { xmlns: NS.PUBSUB }, xml('retract', { node, notify: 'true' }, xml('item', { id: itemId })));
}

/** `<pubsub><items node [max_items]/>[ or <item id/>]</pubsub>` (XEP-0060 §6.5.2, §6.5.7, §6.5.8). */
export function buildItemsRequest(node: string, options: { maxItems?: number; itemIds?: readonly string[] } = {}): Element {
  return xml(
    'pubsub',
    { xmlns: NS.PUBSUB },
    xml(
      'items',
      { node, max_items: options.maxItems === undefined ? undefined : String(options.maxItems) },
      ...(options.itemIds ?? []).map((id) => xml('item', { id })),
    ),
  );
}

/** `<pubsub><subscribe node jid/></pubsub>` (XEP-0060 §6.1.1). */
export function buildSubscribe(node: string, jid: string): Element {
  return xml('pubsub', { xmlns: NS.PUBSUB }, xml('subscribe', { node, jid }));
}

/** Reads the items of a `<pubsub><items/></pubsub>` result (XEP-0060 §6.5.2). */
export function parseItemsResult(pubsub: Element | undefined): PubsubItem[] {
  const items = pubsub?.getChild('items');
  if (!pubsub || !pubsub.is('pubsub', NS.PUBSUB) || !items) return [];
  return items.getChildren('item').map((i) => ({ id: i.attrs['id'] ?? '', payload: i.getChildElements()[0] }));
}

/** Reads an event notification from a message, or `undefined` when it carries none. */
export function parseEvent(message: Element): PubsubEvent | undefined {
  const items = message.getChild('event', NS.PUBSUB_EVENT)?.getChild('items');
  if (!items) return undefined;
  return {
    node: items.attrs['node'] ?? '',
    items: items.getChildren('item').map((i) => ({ id: i.attrs['id'] ?? '', payload: i.getChildElements()[0] })),
    retracted: items.getChildren('retract').map((r) => r.attrs['id'] ?? ''),
  };
}
