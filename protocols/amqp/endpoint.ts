/**
 * Whose broker (pure; issue 13). Each cloud runs its own broker and names it in its signed
 * accept: an `amqps://` URI and the identity — a DNS name — its certificate must carry. The
 * sender presents its own Intercloud certificate there, so before it connects it checks that
 * the endpoint is the accepting cloud's: the identity must be a name under that cloud's own
 * `<cloud>.<domain>` (the Root issues names there to that cloud's operator only, as it issues
 * the gateway certificate `<cloud>.<domain>` itself), and the URI a plain TLS broker address
 * (no credentials, no query, one vhost). The TLS handshake then proves the broker holds a
 * certificate for that identity (`probeBrokerIdentity`, `connectBroker` with `servername`).
 */
import { xferError } from './errors.js';

/** An endpoint as an accept names it. */
export interface TransferEndpointClaim {
  readonly uri: string;
  readonly identity?: string;
}

/** A checked endpoint. */
export interface TransferEndpoint {
  /** `amqps://host:port/vhost` (as given). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly vhost: string;
  /** The DNS name the broker's certificate must carry (verified as the TLS server name). */
  readonly identity: string;
}

/** RFC 5672 §4.7 / AMQP 0-9-1 URI spec: the IANA port of amqps. */
export const AMQPS_DEFAULT_PORT = 5671;

const DNS_NAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const VHOST_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Checks the endpoint `claim` that cloud `cloudId` (under the Intercloud domain `domain`)
 * named in its accept; throws `XFER_BROKER_IDENTITY` (not retryable) when it is not that
 * cloud's broker address.
 */
export function checkTransferEndpoint(claim: TransferEndpointClaim, cloudId: string, domain: string): TransferEndpoint {
  const refuse = (why: string): never => {
    throw xferError('XFER_BROKER_IDENTITY', `cloud '${cloudId}' named a data endpoint that is not its broker: ${why}`, {
      details: { uri: claim.uri, identity: claim.identity, cloud: cloudId },
    });
  };
  const identity = claim.identity;
  if (identity === undefined) return refuse('the accept names no broker identity');
  const home = `.${cloudId}.${domain}`.toLowerCase();
  if (!DNS_NAME_RE.test(identity) || !identity.endsWith(home) || identity.length === home.length) {
    return refuse(`identity '${identity}' is not a name under '${home.slice(1)}'`);
  }
  let u: URL;
  try {
    u = new URL(claim.uri);
  } catch (err) {
    return refuse(`'${claim.uri}' is not a uri (${err instanceof Error ? err.name : 'invalid'})`);
  }
  if (u.protocol !== 'amqps:') return refuse(`'${claim.uri}' is not amqps: (tls)`);
  if (u.username !== '' || u.password !== '') return refuse('the uri carries credentials');
  if (u.search !== '' || u.hash !== '') return refuse('the uri carries a query or fragment');
  const vhost = decodeURIComponent(u.pathname.slice(1));
  if (!VHOST_RE.test(vhost)) return refuse(`'${u.pathname}' does not name one vhost`);
  const port = u.port === '' ? AMQPS_DEFAULT_PORT : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return refuse(`port '${u.port}' is not valid`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (host === '') return refuse('the uri names no host');
  return { url: claim.uri, host, port, vhost, identity };
}
