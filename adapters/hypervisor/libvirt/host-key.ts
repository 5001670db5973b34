/**
 * SSH host key verification: a pinned SHA-256 fingerprint (as `ssh-keygen -lf` prints it,
 * `SHA256:<base64 without padding>`) or known_hosts lines (OpenSSH `sshd(8)` "SSH_KNOWN_HOSTS
 * FILE FORMAT", plain or hashed `|1|salt|hash` host names). Pure functions.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The `SHA256:…` fingerprint of a host key blob (RFC 4253 §6.6 public key format). */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** How known_hosts names a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hostPatternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    const want = Buffer.from(hash, 'base64');
    return want.length === mac.length && timingSafeEqual(mac, want);
  }
  return pattern.split(',').some((p) => p === name);
}

/** One known_hosts line: its marker (`@revoked`, `@cert-authority`), host patterns and key blob. */
interface KnownHostsEntry {
  marker: string | undefined;
  hosts: string;
  key: Buffer;
}

function knownHostsEntries(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined;
    const [hosts, , b64] = fields;
    if (!hosts || !b64) continue;
    entries.push({ marker, hosts, key: Buffer.from(b64, 'base64') });
  }
  return entries;
}

/**
 * The key blobs that known_hosts `text` accepts for `host`:`port`: plain lines whose host
 * pattern matches, less every key an `@revoked` line names. `@cert-authority` lines are not host
 * keys (host certificates are not supported) and are ignored.
 */
export function knownHostKeys(text: string, host: string, port: number): Buffer[] {
  const name = knownHostsName(host, port);
  const entries = knownHostsEntries(text);
  const revoked = revokedKeys(entries);
  return entries
    .filter((e) => e.marker === undefined && hostPatternMatches(e.hosts, name))
    .map((e) => e.key)
    .filter((k) => !revoked.some((r) => sameKey(r, k)));
}

/**
 * Keys that `@revoked` lines name. sshd(8): such a key "must not ever be accepted" — it is
 * refused for every host, whatever host pattern its line carries (stricter than OpenSSH, which
 * looks only at lines for the host it connects to).
 */
function revokedKeys(entries: readonly KnownHostsEntry[]): Buffer[] {
  return entries.filter((e) => e.marker === '@revoked').map((e) => e.key);
}

/** True when known_hosts `text` revokes `keyBlob` (an `@revoked` line names it). */
export function knownHostKeyRevoked(text: string, keyBlob: Buffer): boolean {
  return revokedKeys(knownHostsEntries(text)).some((r) => sameKey(r, keyBlob));
}

function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What the host key must be: exactly one of the two. */
export type HostKeyPin = { fingerprint: string } | { knownHosts: string };

/** True when `keyBlob` is the pinned key for `host`:`port`. */
export function hostKeyMatches(pin: HostKeyPin, keyBlob: Buffer, host: string, port: number): boolean {
  if ('fingerprint' in pin) {
    const want = pin.fingerprint.replace(/=+$/, '');
    return sha256Fingerprint(keyBlob) === want;
  }
  if (knownHostKeyRevoked(pin.knownHosts, keyBlob)) return false;
  return knownHostKeys(pin.knownHosts, host, port).some((k) => sameKey(k, keyBlob));
}
