/**
 * Stanzas of the migration conversation after an offer was accepted (pure codecs):
 * the source asks the target to `instantiate` the received VM, to `commit` (the point of
 * no return: the target keeps the VM) or to `release` what it made. All are iq `set`
 * requests in `urn:intercloud:migration:0`; the result carries the VM's `state`. A refusal
 * is a stanza error with a `<failure code retryable/>` element so the caller gets the
 * target's coded error back.
 *
 * Every request carries a `<signature/>` (issue 12 finding 7): a signed payload
 * ({@link migrationRequestPayload}: the request, the offer, the target cloud, and for
 * `instantiate` the descriptor's SHA-256, the disk digests, the addresses and the hand-over's
 * SHA-256) with a nonce and
 * a short expiry, signed like an offer by the certificate naming the sending cloud and JID.
 *
 *   <instantiate xmlns='urn:intercloud:migration:0' offer='…'>
 *     <descriptor format='ovf'>…OVF text…</descriptor>
 *     <disk id='0' sha256='…'/>
 *     <address>10.1.0.5</address>
 *     <hand-over>{…the source's signed EID hand-over, JSON…}</hand-over>   (optional)
 *   </instantiate>
 *   <commit xmlns='urn:intercloud:migration:0' offer='…'/>
 *   <release xmlns='urn:intercloud:migration:0' offer='…'/>
 *   → <state xmlns='urn:intercloud:migration:0' value='running'/>
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { xml, type Element } from '@xmpp/client';
import { attr, checkSize, child, malformed, TOKEN_RE } from './fields.js';
import { buildSignature, readSignature } from './signature.js';
import { buildStanzaError } from './stanza-error.js';

/** The namespace of the migration conversation. */
export const NS_MIGRATION = 'urn:intercloud:migration:0';

/** Largest instantiate request (the OVF descriptor dominates). */
export const MAX_INSTANTIATE_BYTES = 256 * 1024;

const SHA256_RE = /^[0-9a-f]{64}$/;
const CODE_RE = /^[A-Z][A-Z0-9_]{1,63}$/;

/** The source's request to instantiate the VM it sent. */
export interface InstantiateRequest {
  readonly offerId: string;
  /** The VM's portable descriptor (OVF 1.x). */
  readonly descriptor: string;
  /** disk id → SHA-256 (hex) of the bytes the source sent. */
  readonly digests: Readonly<Record<string, string>>;
  /** The VM's addresses (EIDs) the target registers once the VM runs there. */
  readonly addresses: readonly string[];
  /** The source's hand-over of those addresses, signed under the Intercloud Root (JSON text, opaque here). */
  readonly handOver?: string;
}

/** The three requests, as a discriminated union on `type` (without their signature). */
export type MigrationRequest =
  | { readonly type: 'instantiate'; readonly request: InstantiateRequest }
  | { readonly type: 'commit'; readonly offerId: string }
  | { readonly type: 'release'; readonly offerId: string };

/** A request as read from the wire: the request and its signature envelope (opaque text). */
export type MigrationRequestStanza = MigrationRequest & { readonly signature: string };

/**
 * The value a migration request's signature covers (canonical JSON is taken by the trust
 * area). `target` is the cloud the request is for, so a request signed for one target means
 * nothing at another; the descriptor is covered by its SHA-256.
 */
export function migrationRequestPayload(req: MigrationRequest, target: string): Record<string, unknown> {
  if (req.type !== 'instantiate') return { request: req.type, offerId: req.offerId, target };
  const r = req.request;
  return {
    request: 'instantiate',
    offerId: r.offerId,
    target,
    descriptorSha256: createHash('sha256').update(r.descriptor, 'utf8').digest('hex'),
    digests: Object.fromEntries(Object.entries(r.digests).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    addresses: [...r.addresses],
    // The hand-over is signed by its own envelope; covering it here binds it to this request.
    ...(r.handOver === undefined ? {} : { handOverSha256: createHash('sha256').update(r.handOver, 'utf8').digest('hex') }),
  };
}

/** Builds `<instantiate/>` with its `<signature/>`. */
export function buildInstantiate(r: InstantiateRequest, signature: string): Element {
  const el = xml('instantiate', { xmlns: NS_MIGRATION, offer: r.offerId },
    xml('descriptor', { format: 'ovf' }, r.descriptor),
    ...Object.entries(r.digests).map(([id, sha256]) => xml('disk', { id, sha256 })),
    ...r.addresses.map((a) => xml('address', {}, a)),
    ...(r.handOver === undefined ? [] : [xml('hand-over', {}, r.handOver)]),
    buildSignature(signature));
  checkSize(el, 'instantiate', MAX_INSTANTIATE_BYTES);
  return el;
}

/** Builds `<commit/>` or `<release/>` with its `<signature/>`. */
export function buildOfferRequest(type: 'commit' | 'release', offerId: string, signature: string): Element {
  return xml(type, { xmlns: NS_MIGRATION, offer: offerId }, buildSignature(signature));
}

/** Parses any of the three requests; `XMPP_MALFORMED` (also for a missing signature) / `XMPP_OVERSIZED` otherwise. */
export function parseMigrationRequest(el: Element): MigrationRequestStanza {
  if (el.getNS() !== NS_MIGRATION) return malformed(el.name, `is not in '${NS_MIGRATION}'`);
  const offerId = attr(el, 'offer', el.name, TOKEN_RE);
  switch (el.name) {
    case 'commit':
    case 'release':
      return { type: el.name, offerId, signature: readSignature(el, el.name) };
    case 'instantiate': {
      checkSize(el, 'instantiate', MAX_INSTANTIATE_BYTES);
      const d = child(el, 'descriptor', 'instantiate');
      if (d.attrs['format'] !== 'ovf') return malformed('instantiate/descriptor@format', `is '${String(d.attrs['format'])}', not 'ovf'`);
      const descriptor = d.text();
      if (descriptor.length === 0) return malformed('instantiate/descriptor', 'is empty');
      const digests: Record<string, string> = {};
      for (const disk of el.getChildren('disk')) {
        const id = attr(disk, 'id', 'instantiate/disk', TOKEN_RE);
        if (id in digests) return malformed(`instantiate/disk[@id='${id}']`, 'appears more than once');
        digests[id] = attr(disk, 'sha256', 'instantiate/disk', SHA256_RE);
      }
      if (Object.keys(digests).length === 0) return malformed('instantiate/disk', 'is missing');
      const addresses = el.getChildren('address').map((a) => a.text().trim());
      for (const a of addresses) if (isIP(a) === 0) return malformed('instantiate/address', `'${a.slice(0, 64)}' is not an ip address`);
      const handOvers = el.getChildren('hand-over');
      if (handOvers.length > 1) return malformed('instantiate/hand-over', 'appears more than once');
      const handOver = handOvers[0]?.text();
      if (handOver !== undefined && handOver.length === 0) return malformed('instantiate/hand-over', 'is empty');
      return {
        type: 'instantiate',
        request: { offerId, descriptor, digests, addresses, ...(handOver === undefined ? {} : { handOver }) },
        signature: readSignature(el, 'instantiate'),
      };
    }
    default:
      return malformed(el.name, 'is not a migration request');
  }
}

/** Builds the result `<state value='running'/>`. */
export function buildMigrationState(value: 'running' | 'released'): Element {
  return xml('state', { xmlns: NS_MIGRATION, value });
}

/** Reads the result; `XMPP_MALFORMED` when it is not a state. */
export function parseMigrationState(result: Element | undefined): 'running' | 'released' {
  const el = result?.getChild('state', NS_MIGRATION);
  const v = el?.attrs['value'];
  if (v !== 'running' && v !== 'released') return malformed('state', `has value '${String(v)}'`);
  return v;
}

/** A refusal carrying the target's error code (RFC 6120 §8.3 with an application condition). */
export function buildMigrationFailure(code: string, message: string, retryable: boolean): Element {
  const safe = CODE_RE.test(code) ? code : 'MIGRATE_FAILED';
  return buildStanzaError(retryable ? 'wait' : 'cancel', retryable ? 'resource-constraint' : 'not-acceptable', message.slice(0, 1000),
    xml('failure', { xmlns: NS_MIGRATION, code: safe, retryable: String(retryable) }));
}

/** Reads the application condition of a refusal, when the target sent one. */
export function parseMigrationFailure(application: Element | undefined): { code: string; retryable: boolean } | undefined {
  if (!application?.is('failure', NS_MIGRATION)) return undefined;
  const code = application.attrs['code'];
  if (typeof code !== 'string' || !CODE_RE.test(code)) return undefined;
  return { code, retryable: application.attrs['retryable'] === 'true' };
}
