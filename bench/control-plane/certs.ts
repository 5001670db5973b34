/**
 * Gateway certificates for the control-plane bench, issued under the real Intercloud Root
 * with the Root's own key (the state dir's `pki/root.key`) by the same code the CA tooling
 * runs (`issueGatewayCertificate`: CN, SAN URI, id-on-xmppAddr, serverAuth + clientAuth),
 * and cached under the state dir so a run issues only what is missing or about to expire.
 *
 * They are not written to the CA's ledger (`pki/ca.json`, shared by every test): the bench's
 * certificates live `CERT_DAYS` days and its own cache lists their serials.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certificateToPem, generateKeyPair, issueGatewayCertificate, parseCertificatePem, privateKeyFromPem, privateKeyToPem, writeFileAtomic,
} from '../../protocols/trust/index.js';

/** One gateway's identity as PEM text. */
export interface Identity {
  readonly cert: string;
  readonly key: string;
}

interface CacheFile {
  readonly rootSha256: string;
  readonly domain: string;
  readonly certs: Record<string, Identity & { readonly serial: string; readonly notAfter: string }>;
}

/** Lifetime of a bench certificate, days. */
export const CERT_DAYS = 30;
/** A cached certificate expiring sooner than this is issued again. */
const RENEW_BEFORE_MS = 2 * 86_400_000;

/** What {@link loadIdentities} did. */
export interface IssueReport {
  readonly identities: Map<string, Identity>;
  readonly issued: number;
  readonly fromCache: number;
  /** Wall time of issuing the missing ones (key pair + certificate + PEM), ms. */
  readonly issueMs: number;
}

/**
 * The identities of `cloudIds` on `domain` (JID `<id>@<domain>`), from the cache file
 * `<cacheDir>/<domain>.json` (0600) when the Root is the same and the certificate is not
 * about to expire, else issued now with the Root's key and cached.
 */
export function loadIdentities(opts: { rootPem: string; rootKeyPem: string; domain: string; cloudIds: readonly string[]; cacheDir: string }): IssueReport {
  const root = parseCertificatePem(opts.rootPem);
  mkdirSync(opts.cacheDir, { recursive: true, mode: 0o700 });
  chmodSync(opts.cacheDir, 0o700);
  const file = join(opts.cacheDir, `${opts.domain}.json`);
  let cache: CacheFile = { rootSha256: root.fingerprint256, domain: opts.domain, certs: {} };
  if (existsSync(file)) {
    const read = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
    if (read.rootSha256 === root.fingerprint256 && read.domain === opts.domain) cache = read;
  }
  const certs = { ...cache.certs };
  const now = Date.now();
  const missing = opts.cloudIds.filter((id) => {
    const c = certs[id];
    return c === undefined || Date.parse(c.notAfter) - now < RENEW_BEFORE_MS;
  });
  const t0 = performance.now();
  if (missing.length > 0) {
    const issuer = { certificate: root, privateKey: privateKeyFromPem(opts.rootKeyPem) };
    for (const id of missing) {
      const keys = generateKeyPair('ec');
      const cert = issueGatewayCertificate(issuer, { cloudId: id, jid: `${id}@${opts.domain}`, publicKey: keys.publicKey, now: new Date(), days: CERT_DAYS });
      certs[id] = { cert: certificateToPem(cert.der), key: privateKeyToPem(keys.privateKey), serial: cert.serial, notAfter: cert.notAfter.toISOString() };
    }
  }
  const issueMs = performance.now() - t0;
  if (missing.length > 0) writeFileAtomic(file, JSON.stringify({ ...cache, certs }), 0o600);
  const identities = new Map<string, Identity>();
  for (const id of opts.cloudIds) {
    const c = certs[id] as Identity;
    identities.set(id, { cert: c.cert, key: c.key });
  }
  return { identities, issued: missing.length, fromCache: opts.cloudIds.length - missing.length, issueMs };
}

/**
 * The cost of one `intercloud ca issue` (a CLI process per certificate, as an operator would
 * run it), measured on a throw-away CA in a temporary folder so the shared CA's ledger is left
 * alone: ms per certificate over `count` runs.
 */
export function timeCliIssue(intercloud: string, count = 3): number[] {
  const dir = mkdtempSync(join(tmpdir(), 'icbench-ca-'));
  try {
    execFileSync(intercloud, ['ca', 'init', '--dir', dir], { stdio: 'ignore' });
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      execFileSync(intercloud, ['ca', 'issue', '--dir', dir, '--cloud', `cli-${i}`, '--out', join(dir, `cli-${i}`)], { stdio: 'ignore' });
      out.push(performance.now() - t0);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
