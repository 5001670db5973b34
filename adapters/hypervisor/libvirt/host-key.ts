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

/** The key blobs that known_hosts `text` accepts for `host`:`port` (revoked `@revoked` lines excluded). */
export function knownHostKeys(text: string, host: string, port: number): Buffer[] {
  const name = knownHostsName(host, port);
  const keys: Buffer[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    if (fields[0]?.startsWith('@')) {
      if (fields[0] === '@revoked' || fields[0] === '@cert-authority') continue;
      fields.shift();
    }
    const [hosts, , b64] = fields;
    if (!hosts || !b64) continue;
    if (hostPatternMatches(hosts, name)) keys.push(Buffer.from(b64, 'base64'));
  }
  return keys;
}

/** What the host key must be: exactly one of the two. */
export type HostKeyPin = { fingerprint: string } | { knownHosts: string };

/** True when `keyBlob` is the pinned key for `host`:`port`. */
export function hostKeyMatches(pin: HostKeyPin, keyBlob: Buffer, host: string, port: number): boolean {
  if ('fingerprint' in pin) {
    const want = pin.fingerprint.replace(/=+$/, '');
    return sha256Fingerprint(keyBlob) === want;
  }
  return knownHostKeys(pin.knownHosts, host, port).some((k) => k.length === keyBlob.length && timingSafeEqual(k, keyBlob));
}
