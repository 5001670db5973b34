/**
 * The CA's directory (I/O): `root.pem`, `root.key` (mode 0600) and `ca.json`, the state
 * of what was issued and revoked. Every change of `ca.json` happens under an exclusive
 * lock file and is written to a temporary file, fsynced and renamed over the old one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isIntercloudError, messageOf } from '../errors/index.js';
import { certificateToPem, parseCertificatePem, type Certificate } from './certificate.js';
import { trustError } from './errors.js';
import { createRootCertificate, type Issuer } from './issue.js';
import { generateKeyPair, privateKeyFromPem, privateKeyToPem, signBytes, verifyBytes, type KeyType } from './keys.js';

/** One certificate the CA issued. */
export interface IssuedRecord {
  serial: string;
  kind: 'gateway' | 'server';
  /** Cloud id (gateway) or first DNS name (server). */
  name: string;
  fingerprint256: string;
  notAfter: string;
  issuedAt: string;
  /** The gateway's JID (`<cloud>@<its Root's domain>`); records written before issue 13 have none. */
  jid?: string;
}

/** One revocation. */
export interface RevokedRecord {
  serial: string;
  revokedAt: string;
}

/** The content of `ca.json`. */
export interface CaState {
  version: 1;
  keyType: KeyType;
  rootFingerprint256: string;
  /** The number the next CRL gets (RFC 5280 §5.2.3: monotonically increasing). */
  nextCrlNumber: number;
  issued: IssuedRecord[];
  revoked: RevokedRecord[];
}

/** File names inside a CA directory. */
export const CA_FILES = { root: 'root.pem', key: 'root.key', state: 'ca.json', lock: 'ca.lock' } as const;

/** Writes `data` to `path` atomically: temp file (mode `mode`), fsync, rename, fsync of the directory. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch (err) {
    rmSync(tmp, { force: true });
    throw trustError('TRUST_WRITE_FAILED', `cannot write '${path}'`, { cause: err, details: { errno: (err as NodeJS.ErrnoException).code } });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` holding `DIR/ca.lock` (O_EXCL); a lock left by a dead process is taken over. */
export async function withCaLock<T>(dir: string, fn: () => T | Promise<T>, timeoutMs = 10_000): Promise<T> {
  const lock = join(dir, CA_FILES.lock);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw trustError('TRUST_CA_STATE', `cannot create lock '${lock}'`, { cause: err });
      }
      const holder = Number(readFileSync(lock, 'utf8').trim() || 'NaN');
      if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw trustError('TRUST_CA_LOCKED', `ca directory '${dir}' is locked by pid '${holder}'`);
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** An opened CA directory. */
export interface CaDirectory {
  dir: string;
  issuer: Issuer;
  state: CaState;
}

/**
 * `intercloud ca init`: creates DIR with a new root key (mode 0600), the self-signed root
 * certificate and an empty state. Refuses (TRUST_CA_EXISTS) when DIR already has a root.
 */
export async function initCaDirectory(dir: string, options: { keyType?: KeyType; now: Date; days?: number; commonName?: string }): Promise<CaDirectory> {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw trustError('TRUST_WRITE_FAILED', `cannot create ca directory '${dir}'`, { cause: err });
  }
  return withCaLock(dir, () => {
    if (existsSync(join(dir, CA_FILES.root)) || existsSync(join(dir, CA_FILES.key))) {
      throw trustError('TRUST_CA_EXISTS', `ca directory '${dir}' already holds a root; use another --dir or remove it`);
    }
    const keyType = options.keyType ?? 'ec';
    const keys = generateKeyPair(keyType);
    const certificate = createRootCertificate({ ...keys, now: options.now, days: options.days, commonName: options.commonName });
    const state: CaState = { version: 1, keyType, rootFingerprint256: certificate.fingerprint256, nextCrlNumber: 1, issued: [], revoked: [] };
    writeFileAtomic(join(dir, CA_FILES.key), privateKeyToPem(keys.privateKey), 0o600);
    writeFileAtomic(join(dir, CA_FILES.root), certificateToPem(certificate.der));
    writeFileAtomic(join(dir, CA_FILES.state), JSON.stringify(state, null, 2) + '\n', 0o600);
    return { dir, issuer: { certificate, privateKey: keys.privateKey }, state };
  });
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw trustError('TRUST_CA_STATE', `cannot read '${path}': run 'intercloud ca init --dir DIR' first`, { cause: err });
  }
}

/** Reads a CA directory (root, key, state) and checks that they belong together. */
export function readCaDirectory(dir: string): CaDirectory {
  let certificate: Certificate;
  let state: CaState;
  try {
    certificate = parseCertificatePem(readText(join(dir, CA_FILES.root)));
    state = JSON.parse(readText(join(dir, CA_FILES.state))) as CaState;
  } catch (err) {
    if (isIntercloudError(err, 'TRUST_CA_STATE')) throw err;
    throw trustError('TRUST_CA_STATE', `ca directory '${dir}' is unreadable: ${messageOf(err)}`, { cause: err });
  }
  const privateKey = privateKeyFromPem(readText(join(dir, CA_FILES.key)));
  if (state.version !== 1 || state.rootFingerprint256 !== certificate.fingerprint256 || !Array.isArray(state.issued) || !Array.isArray(state.revoked)) {
    throw trustError('TRUST_CA_STATE', `'${join(dir, CA_FILES.state)}' does not describe root '${certificate.fingerprint256}'`);
  }
  const probe = Buffer.from(`intercloud ca key check ${certificate.fingerprint256}`);
  if (!verifyBytes(probe, signBytes(probe, privateKey), certificate.publicKey)) throw trustError('TRUST_CA_STATE', `'${CA_FILES.key}' does not match '${CA_FILES.root}' in '${dir}'`);
  return { dir, issuer: { certificate, privateKey }, state };
}

/** Reads the CA, lets `change` mutate its state, and writes the state back atomically under the lock. */
export async function updateCaState<T>(dir: string, change: (ca: CaDirectory) => T): Promise<T> {
  return withCaLock(dir, () => {
    const ca = readCaDirectory(dir);
    const result = change(ca);
    writeFileAtomic(join(dir, CA_FILES.state), JSON.stringify(ca.state, null, 2) + '\n', 0o600);
    return result;
  });
}

/**
 * Refuses to issue `cloudId` on `jid` while a live (unexpired, unrevoked) certificate of the
 * same cloud id names another JID: a cloud id is one cloud on one Root, so a second operator
 * cannot get `cloud-a@<another root>` and shadow cloud-a in directories, allow-lists and broker
 * grants, which all go by cloud id (issue 13 review). Renewing on the same JID is fine.
 */
export function assertCloudIdFree(state: Pick<CaState, 'issued' | 'revoked'>, cloudId: string, jid: string, now: Date): void {
  const revoked = new Set(state.revoked.map((r) => r.serial));
  const other = state.issued.find((r) => r.kind === 'gateway' && r.name === cloudId && r.jid !== undefined && r.jid !== jid
    && !revoked.has(r.serial) && Date.parse(r.notAfter) > now.getTime());
  if (other) {
    throw trustError('TRUST_BAD_ARGUMENT', `cloud id '${cloudId}' is already issued as '${other.jid}' (serial ${other.serial}, until ${other.notAfter}): revoke it before issuing '${jid}'`);
  }
}
