/**
 * Stanzas of a storage subcontract after its offer was accepted (issue 14; pure codecs): A asks
 * B to `begin` (B makes the bucket it named in its accept), to `end` (B deletes every object of
 * the subcontract and the bucket, by the terms), and for the `listing` of the bucket (what A
 * verifies after the end). All are iq `set` requests in `urn:intercloud:subcontract:0`, signed
 * like migration requests ({@link subcontractRequestPayload}: the request, the offer, the
 * subcontract and the cloud it is for). A refusal is a stanza error with the migration
 * conversation's `<failure code retryable/>` (`buildMigrationFailure`).
 *
 *   <begin xmlns='urn:intercloud:subcontract:0' offer='…' subcontract='…'><signature/></begin>
 *     → <bucket xmlns='urn:intercloud:subcontract:0' name='ic-…' region='eu-west'/>
 *   <end …/>      → empty result
 *   <listing …/>  → <listing xmlns='urn:intercloud:subcontract:0' bucket-exists='false' objects='0'/>
 */
import { xml, type Element } from '@xmpp/client';
import { attr, malformed, numAttr, TOKEN_RE } from './fields.js';
import { buildSignature, readSignature } from './signature.js';

/** The namespace of the subcontract conversation. */
export const NS_SUBCONTRACT = 'urn:intercloud:subcontract:0';

/** The requests A sends B about an accepted subcontract. */
export const SUBCONTRACT_REQUESTS = ['begin', 'end', 'listing'] as const;

/** One request (without its signature). */
export interface SubcontractRequest {
  readonly type: (typeof SUBCONTRACT_REQUESTS)[number];
  readonly offerId: string;
  readonly subcontractId: string;
}

/** A request as read from the wire, with its signature envelope (opaque text). */
export type SubcontractRequestStanza = SubcontractRequest & { readonly signature: string };

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The value a request's signature covers; `target`: the cloud it is for (meaningless at another). */
export function subcontractRequestPayload(req: SubcontractRequest, target: string): Record<string, unknown> {
  return { request: `subcontract-${req.type}`, offerId: req.offerId, subcontractId: req.subcontractId, target };
}

/** Builds a request with its `<signature/>`. */
export function buildSubcontractRequest(req: SubcontractRequest, signature: string): Element {
  return xml(req.type, { xmlns: NS_SUBCONTRACT, offer: req.offerId, subcontract: req.subcontractId }, buildSignature(signature));
}

/** Reads a request; `XMPP_MALFORMED` (a missing signature too) / `XMPP_OVERSIZED` otherwise. */
export function parseSubcontractRequest(el: Element): SubcontractRequestStanza {
  if (el.getNS() !== NS_SUBCONTRACT) return malformed(el.name, `is not in '${NS_SUBCONTRACT}'`);
  if (!(SUBCONTRACT_REQUESTS as readonly string[]).includes(el.name)) return malformed(el.name, 'is not a subcontract request');
  return {
    type: el.name as SubcontractRequest['type'],
    offerId: attr(el, 'offer', el.name, TOKEN_RE),
    subcontractId: attr(el, 'subcontract', el.name, TOKEN_RE),
    signature: readSignature(el, el.name),
  };
}

/** The result of `begin`: the bucket B made and its region. */
export function buildBeganBucket(bucket: string, region: string): Element {
  return xml('bucket', { xmlns: NS_SUBCONTRACT, name: bucket, region });
}

/** Reads the result of `begin`. */
export function parseBeganBucket(result: Element | undefined): { bucket: string; region: string } {
  const el = result?.getChild('bucket', NS_SUBCONTRACT);
  if (!el) return malformed('bucket', 'is missing');
  return { bucket: attr(el, 'name', 'bucket', BUCKET_RE), region: attr(el, 'region', 'bucket', TOKEN_RE) };
}

/** The result of `listing`. */
export function buildListing(listing: { bucketExists: boolean; objects: number }): Element {
  return xml('listing', { xmlns: NS_SUBCONTRACT, 'bucket-exists': String(listing.bucketExists), objects: String(listing.objects) });
}

/** Reads the result of `listing`. */
export function parseListing(result: Element | undefined): { bucketExists: boolean; objects: number } {
  const el = result?.getChild('listing', NS_SUBCONTRACT);
  if (!el) return malformed('listing', 'is missing');
  const exists = attr(el, 'bucket-exists', 'listing', /^(true|false)$/);
  return { bucketExists: exists === 'true', objects: numAttr(el, 'objects', 'listing', { max: 1e12 }) };
}

