/**
 * The storage subcontract's control plane on the XMPP session (issue 14): A's
 * {@link SubcontractControlPort} (peers from the signed directory, the signed storage offer, its
 * cancel, and the signed begin/end/listing requests of `urn:intercloud:subcontract:0`), and B's
 * side serving those requests from the session into the {@link SubcontractTargetService}.
 */
import type { Element } from '@xmpp/client';
import { IntercloudError, messageOf } from '../../protocols/errors/index.js';
import {
  NS_SUBCONTRACT, SUBCONTRACT_REQUESTS, buildBeganBucket, buildListing, buildMigrationFailure, buildSubcontractRequest, parseBeganBucket, parseListing,
  parseSubcontractRequest, subcontractRequestPayload, type GatewaySession, type SubcontractRequest,
} from '../../protocols/xmpp/index.js';
import type { SubcontractControlPort, SubcontractPeer, SubcontractTargetService } from '../subcontract/index.js';
import { fromPeer, sendUntilAnswered } from './control-ports.js';

/** How long A waits for each of B's answers (B's begin makes a bucket; its end deletes every object). */
export const SUBCONTRACT_REQUEST_TIMEOUTS_MS = { begin: 120_000, end: 600_000, listing: 60_000 } as const;

/** A's control port of storage subcontracts over `session`. */
export function subcontractControlPort(session: GatewaySession): SubcontractControlPort {
  // The reservation B gave each offer, for the cancel (in memory: after a restart B's reservation lapses on its own).
  const reservations = new Map<string, string>();
  const request = async (peer: SubcontractPeer, req: SubcontractRequest, signal: AbortSignal): Promise<Element> => {
    const send = async (timeoutMs: number): Promise<Element> => {
      // Signed afresh for each copy (new nonce): a resend is a new message, not a replay.
      const signature = await session.signRequest(subcontractRequestPayload(req, peer.cloudId));
      return session.request(peer.jid, buildSubcontractRequest(req, signature), timeoutMs);
    };
    try {
      // Every request is idempotent at B: sent again while unanswered.
      return await sendUntilAnswered(send, { deadlineMs: SUBCONTRACT_REQUEST_TIMEOUTS_MS[req.type], resendMs: 30_000, signal });
    } catch (err) {
      return fromPeer(err, `subcontract ${req.type}`, peer);
    }
  };
  return {
    async peers() {
      const peers = await session.discoverPeers({ capability: 'storage-federation', excludeCloud: session.cloudId }, { refresh: true });
      // Online only: an entry whose gateway is not available cannot answer an offer.
      return peers.filter((p) => p.resources.length > 0).map((p) => p.entry);
    },
    domainOf(peer) {
      return peer.jid.slice(peer.jid.indexOf('@') + 1);
    },
    async offer(peer, offer) {
      const out = await session.sendOffer(peer.jid, { offerId: offer.offerId, workload: offer.workload, constraints: offer.constraints, terms: offer.terms });
      if (out.type === 'accept') reservations.set(offer.offerId, out.accept.reservationId);
      return out;
    },
    async release(peer, offerId) {
      const reservationId = reservations.get(offerId);
      if (reservationId === undefined) return;
      await session.sendCancel(peer.jid, { reservationId, reason: 'subcontract abandoned' });
      reservations.delete(offerId);
    },
    async begin(peer, ref, signal) {
      const answer = await request(peer, { type: 'begin', ...ref }, signal);
      return { bucket: parseBeganBucket(answer).bucket };
    },
    async end(peer, ref, signal) {
      await request(peer, { type: 'end', ...ref }, signal);
    },
    async list(peer, ref, signal) {
      return parseListing(await request(peer, { type: 'listing', ...ref }, signal));
    },
  };
}

/**
 * Serves A's subcontract requests at B. A request is acted on only when signed by the
 * certificate naming the sending JID's cloud and that JID, for this cloud, fresh and not
 * replayed; the service then answers only about that cloud's own subcontracts.
 */
export function serveSubcontractRequests(session: GatewaySession, service: SubcontractTargetService): void {
  const handler = async (el: Element, from: string): Promise<Element> => {
    try {
      const req = parseSubcontractRequest(el);
      const signer = await session.verifyRequest(from, req.signature, subcontractRequestPayload(req, session.cloudId));
      const peer: SubcontractPeer = { cloudId: signer.cloudId, jid: signer.jid };
      const ref = { offerId: req.offerId, subcontractId: req.subcontractId };
      switch (req.type) {
        case 'begin': {
          const made = await service.handleBegin(peer, ref, AbortSignal.timeout(SUBCONTRACT_REQUEST_TIMEOUTS_MS.begin));
          return buildBeganBucket(made.bucket, made.region);
        }
        case 'end':
          await service.handleEnd(peer, ref, AbortSignal.timeout(SUBCONTRACT_REQUEST_TIMEOUTS_MS.end));
          return buildListing({ bucketExists: false, objects: 0 });
        case 'listing':
          return buildListing(await service.handleListing(peer, ref, AbortSignal.timeout(SUBCONTRACT_REQUEST_TIMEOUTS_MS.listing)));
      }
    } catch (err) {
      const e = err instanceof IntercloudError ? err : new IntercloudError('SUBCONTRACT_UNKNOWN', messageOf(err));
      return buildMigrationFailure(e.code, e.message, e.retryable);
    }
  };
  for (const name of SUBCONTRACT_REQUESTS) session.serveRequests(NS_SUBCONTRACT, name, handler);
}
