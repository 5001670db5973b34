/**
 * Binds the session's {@link GatewayTrust} port to `protocols/trust`: envelopes are the
 * trust area's signed payloads (JSON in the `<signature/>` element), verified against
 * the Intercloud Root and CRLs with a replay cache, and decisions go to its audit log.
 * Takes PEM text and an open audit log: reading files is the daemon's job.
 */
import { createPrivateKey } from 'node:crypto';
import type {
  AuditLog} from '../trust/index.js';
import { canonicalJson, crlIssuer, parseCertificatePem, parseCertificatesPem, parseCrlsPem, ReplayCache, signPayload, verifySignedPayload,
  type Crl, type Certificate,
} from '../trust/index.js';
import { messageOf } from '../errors/index.js';
import { xmppError } from './errors.js';
import type { VerifiedSigner } from './offer-admission.js';
import { SIGNED_MESSAGE_MAX_LIFETIME_MS, type ControlPlaneAuditRecord, type GatewayTrust, type VerifyExpectation } from './trust-port.js';
import { IntercloudError } from '../errors/index.js';

/** What {@link createTrustBinding} needs. */
export interface TrustBindingOptions {
  /** This gateway's certificate and key (PEM). */
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** The Intercloud Root certificate(s) (PEM). */
  readonly rootsPem: string;
  /** The Root's CRL (PEM); revoked signers are refused. */
  readonly crlPem?: string;
  /** Where refusals and acceptances are recorded (omit only in tests that do not audit). */
  readonly auditLog?: Pick<AuditLog, 'append'>;
  /** Allowed clock disagreement for message times (default: the trust area's). */
  readonly clockSkewMs?: number;
  /** The clock (ms since the epoch). */
  readonly now?: () => number;
  /** Most nonces remembered per peer cloud at once (default {@link REPLAY_ENTRIES_PER_PEER}). */
  readonly replayEntriesPerPeer?: number;
  /** Most peer clouds with a replay store at once (default {@link REPLAY_PEERS}). */
  readonly replayPeers?: number;
}

/**
 * Nonces remembered per peer cloud. Each peer has its own bounded store (issue 12 finding 6):
 * a peer that floods signed messages fills only its own store and is refused
 * (`TRUST_REPLAY_CACHE_FULL`) while every other peer goes on. With messages living at most
 * {@link SIGNED_MESSAGE_MAX_LIFETIME_MS}, 4096 nonces are over four messages a second, sustained.
 */
export const REPLAY_ENTRIES_PER_PEER = 4096;
/** Peer clouds with a replay store at once; stores holding no live nonce are dropped first. */
export const REPLAY_PEERS = 1024;

/** A {@link GatewayTrust} that can also take a new CRL. */
export interface TrustBinding extends GatewayTrust {
  /** Replaces the CRLs used from now on (e.g. after `intercloud ca crl`); throws `TRUST_CRL_INVALID`
   * (keeping the current ones) when a root did not sign one of them. */
  setCrl(crlPem: string): void;
  /** This gateway's certificate. */
  readonly certificate: Certificate;
}

/** Creates the binding. Throws `XMPP_CONFIG` when a PEM cannot be read. */
export function createTrustBinding(options: TrustBindingOptions): TrustBinding {
  let certificate: Certificate;
  let roots: Certificate[];
  let crls: Crl[];
  try {
    certificate = parseCertificatePem(options.certificatePem);
    roots = parseCertificatesPem(options.rootsPem);
    crls = options.crlPem === undefined ? [] : parseCrlsPem(options.crlPem);
  } catch (err) {
    throw xmppError('XMPP_CONFIG', `cannot read the gateway's certificate, root or crl: ${messageOf(err)}`, { cause: err });
  }
  const privateKey = createPrivateKey(options.privateKeyPem);
  const now = options.now ?? Date.now;
  const perPeer = options.replayEntriesPerPeer ?? REPLAY_ENTRIES_PER_PEER;
  const maxPeers = options.replayPeers ?? REPLAY_PEERS;
  const replayStores = new Map<string, ReplayCache>();
  /** The replay store of one peer cloud; TRUST_REPLAY_CACHE_FULL when too many peers hold live nonces. */
  const replayStoreOf = (cloudId: string): ReplayCache => {
    let store = replayStores.get(cloudId);
    if (store) return store;
    if (replayStores.size >= maxPeers) {
      const t = now();
      for (const [id, c] of replayStores) if (c.sweep(t) === 0) replayStores.delete(id);
      if (replayStores.size >= maxPeers) {
        throw new IntercloudError('TRUST_REPLAY_CACHE_FULL', `replay stores of ${replayStores.size} peer clouds hold live nonces`, { details: { maxPeers } });
      }
    }
    store = new ReplayCache(perPeer);
    replayStores.set(cloudId, store);
    return store;
  };
  return {
    certificate,
    certificateSha256: certificate.fingerprint256,
    setCrl(crlPem: string): void {
      const next = parseCrlsPem(crlPem);
      // A CRL that no root signed is refused whole (the one in force stays): it would make every
      // verification fail, or silently revoke nothing.
      for (const crl of next) crlIssuer(crl, roots);
      crls = next;
    },
    async sign(type: string, payload: Record<string, unknown>, ttlMs: number): Promise<string> {
      const env = signPayload(payload, { certificate, privateKey }, { now: new Date(now()), type, ttlMs: Math.max(1, Math.round(ttlMs)) });
      return JSON.stringify(env);
    },
    async verify(envelope: string, expected: VerifyExpectation): Promise<VerifiedSigner> {
      let parsed: unknown;
      try {
        parsed = JSON.parse(envelope);
      } catch (err) {
        throw new IntercloudError('TRUST_MESSAGE_MALFORMED', `signature of '${expected.type}' from '${expected.jid}' is not json`, { cause: err });
      }
      const verified = verifySignedPayload(parsed, {
        roots,
        crls,
        now: new Date(now()),
        expectCloudId: expected.cloudId,
        expectType: expected.type,
        ...(expected.replay ? { replayCache: replayStoreOf(expected.cloudId) } : {}),
        // Remembered nonces live minutes; catalog entries (not remembered) may live hours.
        ...(expected.maxLifetimeMs !== undefined ? { maxLifetimeMs: expected.maxLifetimeMs }
          : expected.replay ? { maxLifetimeMs: SIGNED_MESSAGE_MAX_LIFETIME_MS } : {}),
        ...(options.clockSkewMs === undefined ? {} : { clockSkewMs: options.clockSkewMs }),
      });
      // The certificate must name the JID that sent or published it (XEP-0178 id-on-xmppAddr).
      if (verified.signer.jid !== expected.jid) {
        throw new IntercloudError('TRUST_IDENTITY_MISMATCH', `signer certificate names jid '${verified.signer.jid ?? ''}', not '${expected.jid}'`, {
          details: { certificateJid: verified.signer.jid, jid: expected.jid },
        });
      }
      if (canonicalJson(verified.payload) !== canonicalJson(expected.payload)) {
        throw new IntercloudError('TRUST_MESSAGE_TAMPERED', `the xml of '${expected.type}' from '${expected.jid}' differs from what was signed`);
      }
      return { cloudId: verified.signer.cloudId ?? expected.cloudId, certificateSha256: verified.signer.fingerprint256 };
    },
    async audit(record: ControlPlaneAuditRecord): Promise<void> {
      await options.auditLog?.append({ type: `xmpp.${record.action}`, ...record });
    },
  };
}
