/**
 * Issue 12, finding 5: the directory on the real Prosody. A certified cloud (`cloud-c`, a plain
 * XMPP client) may publish and retract only its own catalog item; it cannot overwrite or retract
 * another cloud's, create nodes, or configure, purge or delete the catalog node. The victim is a
 * cloud of this test run (a real gateway session with its signed entry).
 */
import { xml, type Client, type Element } from '@xmpp/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCreateNode, buildItemsRequest, buildPublish, buildRetract, CATALOG_NODE, NS, parseItemsResult,
} from '../../../protocols/xmpp/index.js';
import { pkiIdentity, rawClient, servicesUp, startGateway, testCloud, type TestGateway } from './gateways.js';

const env = servicesUp();
const VICTIM = testCloud('victim');
const OWNER_NS = 'http://jabber.org/protocol/pubsub#owner';

/** The stanza error condition of a refused iq (undefined when it succeeded). */
async function refusal(c: Client, type: 'get' | 'set', child: Element): Promise<string | undefined> {
  try {
    await c.iqCaller.request(xml('iq', { type, to: env.prosody.pubsubJid }, child), 10_000);
    return undefined;
  } catch (err) {
    const condition = (err as { condition?: string }).condition;
    if (condition === undefined) throw err;
    return condition;
  }
}

describe('the directory: a cloud touches only its own catalog item (issue 12, finding 5)', () => {
  let victim: TestGateway;
  let attacker: Client;

  /** The victim's item as the directory holds it now (undefined when gone). */
  async function victimItem(): Promise<string | undefined> {
    try {
      const r = await attacker.iqCaller.request(xml('iq', { type: 'get', to: env.prosody.pubsubJid }, buildItemsRequest(CATALOG_NODE, { itemIds: [VICTIM] })), 10_000);
      return parseItemsResult(r.getChild('pubsub', NS.PUBSUB)).find((i) => i.id === VICTIM)?.payload?.toString();
    } catch (err) {
      if ((err as { condition?: string }).condition === 'item-not-found') return undefined;
      throw err;
    }
  }

  beforeAll(async () => {
    victim = await startGateway(env, VICTIM);
    await victim.session.publishCatalog();
    attacker = await rawClient(env, 'cloud-c', pkiIdentity(env.pki, 'cloud-c'), `directory-attack-${VICTIM}`);
  });
  afterAll(async () => {
    await attacker?.stop();
    await victim?.session.stop();
  });

  it('refuses cloud-c overwriting another cloud’s item; the item is unchanged', async () => {
    const before = await victimItem();
    expect(before).toContain(`cloud="${VICTIM}"`);
    const forged = xml('entry', { xmlns: 'urn:intercloud:catalog:0', cloud: VICTIM }, 'forged by cloud-c');
    expect(await refusal(attacker, 'set', buildPublish(CATALOG_NODE, VICTIM, forged))).toBe('forbidden');
    expect(await victimItem()).toBe(before);
  });

  it('refuses cloud-c retracting another cloud’s item; the item stays', async () => {
    expect(await refusal(attacker, 'set', buildRetract(CATALOG_NODE, VICTIM))).toBe('forbidden');
    expect(await victimItem()).toContain(`cloud="${VICTIM}"`);
  });

  it('refuses items under any id but the publisher’s own cloud id (no id, a made-up id)', async () => {
    const junk = xml('entry', { xmlns: 'urn:intercloud:catalog:0' }, 'junk');
    const noId = xml('pubsub', { xmlns: NS.PUBSUB }, xml('publish', { node: CATALOG_NODE }, xml('item', {}, junk)));
    expect(await refusal(attacker, 'set', noId)).toBe('forbidden');
    expect(await refusal(attacker, 'set', buildPublish(CATALOG_NODE, `not-cloud-c-${VICTIM}`, junk))).toBe('forbidden');
  });

  it('refuses cloud-c creating a node (gateways are not admins of the pubsub service)', async () => {
    expect(await refusal(attacker, 'set', buildCreateNode(`urn:intercloud:rogue:${VICTIM}`, { 'pubsub#publish_model': 'open' }))).toBe('forbidden');
  });

  it('refuses cloud-c configuring the catalog node or changing affiliations', async () => {
    const configure = xml('pubsub', { xmlns: OWNER_NS }, xml('configure', { node: CATALOG_NODE },
      xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#node_config')),
        xml('field', { var: 'pubsub#access_model' }, xml('value', {}, 'whitelist')))));
    expect(await refusal(attacker, 'set', configure)).toBe('forbidden');
    const affiliate = xml('pubsub', { xmlns: OWNER_NS }, xml('affiliations', { node: CATALOG_NODE },
      xml('affiliation', { jid: 'cloud-c@intercloud.test', affiliation: 'owner' })));
    expect(await refusal(attacker, 'set', affiliate)).toBe('forbidden');
  });

  it('refuses cloud-c purging or deleting the catalog node; the directory stays', async () => {
    expect(await refusal(attacker, 'set', xml('pubsub', { xmlns: OWNER_NS }, xml('purge', { node: CATALOG_NODE })))).toBe('forbidden');
    expect(await refusal(attacker, 'set', xml('pubsub', { xmlns: OWNER_NS }, xml('delete', { node: CATALOG_NODE })))).toBe('forbidden');
    expect(await victimItem()).toContain(`cloud="${VICTIM}"`);
  });

  it('lets a cloud retract its own item', async () => {
    await victim.session.retractCatalog();
    expect(await victimItem()).toBeUndefined();
  });
});
