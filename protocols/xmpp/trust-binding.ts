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
import type { ControlPlaneAuditRecord, GatewayTrust, VerifiedSigner, VerifyExpectation } from './session.js';
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
}

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
  const replayCache = new ReplayCache();
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
        ...(expected.replay ? { replayCache } : {}),
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
