/**
 * The source's check of the data endpoint a peer's accept names (issue 13): the accept is the
 * one source of truth for where the disks go, so before this cloud presents its certificate
 * there it makes sure the endpoint is the peer's own broker — the identity is a name under the
 * peer's `<cloud>.<domain>` and the URI a plain amqps address (`checkTransferEndpoint`), and
 * the server at that address proves the identity in a TLS handshake without our certificate
 * (`probeBrokerIdentity`). Both steps that use the endpoint run it: `negotiate`, so a hostile
 * accept fails before the VM is stopped, and `transfer`, before each disk.
 */
import { checkTransferEndpoint, probeBrokerIdentity } from '../../protocols/amqp/index.js';
import type { DataEndpoint, PeerRef } from '../migration/index.js';

/** What the check needs. */
export interface EndpointCheckOptions {
  /** Our Intercloud domain: a peer's names are under `<cloud>.<its JID's domain>`, this one when its JID has none. */
  domain: string;
  /** PEM of the Intercloud Root. */
  ca: string;
  /** The Root's current CRL (PEM), if any. */
  crl?: () => string | undefined;
  /** Longest the TLS probe may take, ms. */
  timeoutMs?: number;
}

/** A check of `claim` (what `peer`'s accept named); resolves with the endpoint to use. */
export type EndpointCheck = (claim: { uri: string; identity?: string }, peer: PeerRef, signal?: AbortSignal) => Promise<Required<DataEndpoint>>;

/** Builds the check (throws `XFER_BROKER_IDENTITY`, or `XFER_BROKER` when unreachable). */
export function endpointCheck(o: EndpointCheckOptions): EndpointCheck {
  return async (claim, peer, signal) => {
    // The peer's names are under `<cloud>.<its Root's domain>`: the domain of its server-
    // authenticated JID (a cloud of another Root), else ours.
    const at = peer.jid.indexOf('@');
    const domain = at > 0 ? (peer.jid.slice(at + 1).split('/')[0] ?? o.domain) : o.domain;
    const e = checkTransferEndpoint(claim, peer.cloudId, domain);
    signal?.throwIfAborted();
    const crl = o.crl?.();
    await probeBrokerIdentity({ host: e.host, port: e.port, identity: e.identity, ca: o.ca, ...(crl ? { crl } : {}), timeoutMs: o.timeoutMs ?? 10_000 });
    return { uri: e.url, identity: e.identity };
  };
}
