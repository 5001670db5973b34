/**
 * Reads catalogs: fetches, lists and follows the catalog node of a PubSub service (XEP-0060
 * §5.5 disco#items, §6.5 items, §8 notifications), verifies each entry once per signature
 * (chain to the Root, CRL, certificate names the cloud and JID, payload = XML, fingerprint =
 * signer) and reports what it read to the directory reducer (`directory.ts`). Bad entries are
 * skipped, audited and warned about. Every call names the service, so catalogs may come from
 * several (one per federated Root).
 */
import type { Element } from '@xmpp/client';
import { isIntercloudError, messageOf, type IntercloudError } from '../errors/index.js';
import { canonicalJson } from '../trust/index.js';
import { catalogPayload, parseCatalogEntry, type CatalogEntry } from './catalog.js';
import { unknownItems, type DirectoryEvent, type DirectoryState } from './directory.js';
import { buildDiscoItemsQuery, parseDiscoItems } from './disco.js';
import { xmppError } from './errors.js';
import { CATALOG_NODE, ICNS, NS } from './namespaces.js';
import type { VerifiedSigner } from './offer-admission.js';
import { buildItemsRequest, parseItemsResult, type PubsubEvent } from './pubsub.js';
import { MESSAGE_TYPES, type ControlPlaneAuditRecord, type GatewayTrust } from './trust-port.js';

/** What a {@link DirectoryReader} works with. */
export interface DirectoryReaderOptions {
  /** Our cloud id: our own item is not read back. */
  readonly cloudId: string;
  /**
   * The XMPP domain whose gateways may publish on `service` (an entry's JID must be
   * `<cloud>@<domain>`): a Root's PubSub service lists the clouds of that Root.
   */
  readonly domainOf: (service: string) => string;
  readonly trust: GatewayTrust;
  /** Sends an iq and returns the result (the session's, with its timeout and error codes). */
  readonly iq: (type: 'get' | 'set', to: string, child: Element) => Promise<Element>;
  readonly state: () => DirectoryState;
  readonly dispatch: (event: DirectoryEvent) => void;
  /** An entry verified (the session subscribes to the presence of its JID). */
  readonly found: (entry: CatalogEntry) => void;
  readonly warn: (error: IntercloudError) => void;
  readonly audit: (record: ControlPlaneAuditRecord) => Promise<void>;
}

/** How long one verification of a catalog entry is reused before it is verified again (60 s). */
export const VERIFIED_REUSE_MS = 60_000;

function refusedKey(service: string, itemId: string, signature: string): string {
  return `${service}\n${itemId}\n${signature}`;
}

/** Reads and follows catalogs into the directory. */
export class DirectoryReader {
  readonly #o: DirectoryReaderOptions;
  /**
   * What was verified → its signer and when: keyed by the whole claim (service, item, JID,
   * canonical payload, signature), never by the signature alone — another cloud's item reusing
   * a verified signature is a different claim and is verified (and fails) on its own. A
   * verification is reused for {@link VERIFIED_REUSE_MS} only, so an expired signature or a
   * revocation in a re-read CRL is seen again.
   */
  readonly #verified = new Map<string, { signer: VerifiedSigner; at: number }>();
  /**
   * Items refused, keyed by service, item id and signature: what one item did never counts
   * against another cloud's item carrying the same (copied) signature.
   */
  readonly #refused = new Set<string>();

  constructor(options: DirectoryReaderOptions) {
    this.#o = options;
  }

  /** Takes a PubSub notification of `service` (XEP-0060 §7.1.2.1, §7.2.2.1): retracted items go, published ones are verified. */
  notified(service: string, ev: PubsubEvent): void {
    if (ev.node !== CATALOG_NODE) return;
    if (ev.retracted.length > 0) this.#o.dispatch({ type: 'retracted', service, itemIds: ev.retracted });
    for (const item of ev.items) {
      if (item.id === this.#o.cloudId) continue;
      void this.#accept(service, item.id, item.payload);
    }
  }

  /**
   * Brings the directory up to date with `service`. `full` fetches every entry (done at each
   * login); otherwise only the item ids are listed (disco#items on the node), entries gone from
   * the service are dropped and only ids not held are fetched — changed entries arrive as
   * notifications while we are online.
   */
  async refresh(service: string, options: { full?: boolean } = {}): Promise<void> {
    if (!options.full && this.#o.state().loaded.has(service)) {
      let ids: string[];
      try {
        const result = await this.#o.iq('get', service, buildDiscoItemsQuery(CATALOG_NODE));
        ids = parseDiscoItems(result.getChild('query', NS.DISCO_ITEMS)).map((i) => i.name ?? '').filter((n) => n !== '');
      } catch (err) {
        if (isIntercloudError(err, 'XMPP_STANZA_ERROR') && err.details['condition'] === 'item-not-found') return;
        throw err;
      }
      this.#o.dispatch({ type: 'listed', service, itemIds: ids, complete: false });
      const unknown = unknownItems(this.#o.state(), service, ids);
      if (unknown.length === 0) return;
      const result = await this.#o.iq('get', service, buildItemsRequest(CATALOG_NODE, { itemIds: unknown }));
      await Promise.all(parseItemsResult(result.getChild('pubsub', NS.PUBSUB)).map((item) => this.#accept(service, item.id, item.payload)));
      return;
    }
    let items;
    try {
      const result = await this.#o.iq('get', service, buildItemsRequest(CATALOG_NODE));
      items = parseItemsResult(result.getChild('pubsub', NS.PUBSUB));
    } catch (err) {
      if (isIntercloudError(err, 'XMPP_STANZA_ERROR') && err.details['condition'] === 'item-not-found') return;
      throw err;
    }
    this.#o.dispatch({ type: 'reload', service });
    const seen: string[] = [];
    await Promise.all(items.map(async (item) => {
      const cached = await this.#accept(service, item.id, item.payload);
      if (cached) seen.push(cached.entry.cloudId);
    }));
    this.#o.dispatch({ type: 'listed', service, itemIds: seen, complete: true });
  }

  /** Parses and verifies one catalog item; bad ones are audited, warned about and skipped. */
  async #accept(service: string, itemId: string, payload: Element | undefined): Promise<{ entry: CatalogEntry; signature: string } | undefined> {
    try {
      const { entry, signature } = parseCatalogEntry(payload);
      if (entry.cloudId !== itemId) throw xmppError('XMPP_MALFORMED', `catalog item '${itemId}' carries the entry of '${entry.cloudId}'`);
      if (entry.jid !== `${entry.cloudId}@${this.#o.domainOf(service)}`) {
        throw xmppError('XMPP_UNTRUSTED', `catalog entry of '${entry.cloudId}' names jid '${entry.jid}'`);
      }
      const cached = this.#o.state().entries.get(entry.cloudId);
      if (cached?.signature === signature && cached.service === service) return cached;
      // An item already found bad is skipped quietly (it was audited the first time).
      if (this.#refused.has(refusedKey(service, itemId, signature))) return undefined;
      const signed = catalogPayload(entry);
      const claim = [service, itemId, entry.jid, signature, canonicalJson(signed)].join('\n');
      const now = Date.now();
      let seen = this.#verified.get(claim);
      if (!seen || now - seen.at > VERIFIED_REUSE_MS) {
        const signer = await this.#o.trust.verify(signature, { type: MESSAGE_TYPES.CATALOG, payload: signed, cloudId: entry.cloudId, jid: entry.jid, replay: false });
        if (this.#verified.size > 10_000) this.#verified.clear();
        seen = { signer, at: now };
        this.#verified.set(claim, seen);
      }
      const signer = seen.signer;
      if (signer.cloudId !== entry.cloudId || signer.certificateSha256 !== entry.certificateSha256) {
        throw xmppError('XMPP_UNTRUSTED', `catalog entry of '${entry.cloudId}' names a certificate it was not signed with`);
      }
      this.#o.dispatch({ type: 'published', service, entry, signature });
      this.#o.found(entry);
      return { entry, signature };
    } catch (err) {
      this.#o.dispatch({ type: 'refused', service, itemId });
      const sig = payload?.getChild('signature', ICNS.SIGNATURE)?.text().trim();
      if (sig !== undefined && sig !== '') {
        if (this.#refused.size > 10_000) this.#refused.clear();
        this.#refused.add(refusedKey(service, itemId, sig));
      }
      const error = isIntercloudError(err) ? err : xmppError('XMPP_MALFORMED', `catalog item '${itemId}': ${messageOf(err)}`, { cause: err });
      this.#o.warn(error);
      await this.#o.audit({ action: 'catalog-entry-ignored', peer: `${itemId}@${this.#o.domainOf(service)}`, reason: error.code, details: { message: error.message } });
      return undefined;
    }
  }
}
