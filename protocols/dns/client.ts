/**
 * Sends a TSIG-signed RFC 2136 update over UDP and checks the signed answer — the
 * re-address step for clouds whose addressing is plain DNS. I/O only; messages come from
 * the pure `update.ts` and `tsig.ts`.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { dnsError } from './errors.js';
import { TSIG_ERROR_NAMES, readTsig, signRequest, verifyResponse, type TsigAlgorithm, type TsigKey } from './tsig.js';
import { buildAddressUpdate, readHeader, type AddressUpdate } from './update.js';

/** Options of {@link updateDnsRecord}. */
export interface DnsUpdateOptions {
  /** The zone's primary server. */
  server: { host: string; port: number };
  /** The zone (`vms.intercloud.test`). */
  zone: string;
  /** The TSIG key; `secret` as BIND writes it (base64) or raw bytes. */
  key: { name: string; algorithm?: TsigAlgorithm; secret: string | Buffer };
  /** Retries after the first attempt when no answer comes (default 2). */
  retries?: number;
  /** Wait for the first answer (ms, default 1000), doubling per retry. */
  initialTimeoutMs?: number;
  /** Clock for TSIG's Time Signed (ms since the epoch); default Date.now. */
  now?: () => number;
  signal?: AbortSignal;
}

/** What the server said to a successful update. */
export interface DnsUpdateResult {
  rcode: 'NOERROR';
  /** The server's Time Signed from its TSIG (seconds since the epoch). */
  serverTime: number;
}

function resolveKey(key: DnsUpdateOptions['key']): TsigKey {
  const secret = typeof key.secret === 'string' ? Buffer.from(key.secret, 'base64') : key.secret;
  if (secret.length === 0 || !key.name) throw dnsError('DNS_CONFIG', 'the tsig key has no name or an empty secret');
  return { name: key.name, algorithm: key.algorithm ?? 'hmac-sha256', secret };
}

/**
 * Makes `name`'s A/AAAA records exactly `addresses` (none: deletes them) with an RFC 2136
 * update signed with TSIG (RFC 8945). Resolves once the server's signed NOERROR arrives.
 * Errors: DNS_TSIG_REJECTED (bad key or signature; `details.tsigError`), DNS_UPDATE_REFUSED
 * (`details.rcode`), DNS_TSIG_BAD_RESPONSE, DNS_NO_ANSWER (retryable), DNS_CONFIG.
 */
export async function updateDnsRecord(name: string, addresses: string[], ttl: number, opts: DnsUpdateOptions): Promise<DnsUpdateResult> {
  return sendUpdate({ zone: opts.zone, name, addresses, ttl, mode: 'replace' }, opts);
}

/**
 * Adds `addresses` to `name`'s A/AAAA records (RFC 2136 §2.5.1), leaving the others; an
 * address already there stays once. Same signing, answer and errors as {@link updateDnsRecord}.
 */
export async function addDnsAddresses(name: string, addresses: string[], ttl: number, opts: DnsUpdateOptions): Promise<DnsUpdateResult> {
  return sendUpdate({ zone: opts.zone, name, addresses, ttl, mode: 'add' }, opts);
}

/**
 * Deletes just `addresses` from `name`'s A/AAAA records (RFC 2136 §2.5.4), leaving the
 * others; an address not there is fine. Same signing, answer and errors as {@link updateDnsRecord}.
 */
export async function deleteDnsAddresses(name: string, addresses: string[], opts: DnsUpdateOptions): Promise<DnsUpdateResult> {
  return sendUpdate({ zone: opts.zone, name, addresses, ttl: 0, mode: 'delete' }, opts);
}

async function sendUpdate(update: Omit<AddressUpdate, 'id'>, opts: DnsUpdateOptions): Promise<DnsUpdateResult> {
  const { name } = update;
  const key = resolveKey(opts.key);
  const id = randomInt(0, 0x10000);
  const unsigned = buildAddressUpdate({ id, ...update });
  const now = opts.now ?? Date.now;
  const socket = createSocket({ type: isIPv6(opts.server.host) ? 'udp6' : 'udp4' });
  socket.on('error', () => undefined); // ICMP unreachable: the attempt goes unanswered
  const where = `${opts.server.host}:${opts.server.port}`;
  try {
    const retries = opts.retries ?? 2;
    let timeout = opts.initialTimeoutMs ?? 1000;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (opts.signal?.aborted) throw dnsError('DNS_NO_ANSWER', `dns update to '${where}' was aborted`, { cause: opts.signal.reason, retryable: false });
      // Each attempt is signed afresh so Time Signed stays inside the fudge.
      const { signed, mac } = signRequest(unsigned, key, Math.floor(now() / 1000));
      const response = await new Promise<Buffer | undefined>((resolve) => {
        const onMessage = (msg: Buffer): void => {
          if (msg.length >= 2 && msg.readUInt16BE(0) === id) done(msg);
        };
        const onAbort = (): void => done(undefined);
        const timer = setTimeout(() => done(undefined), timeout);
        const done = (v: Buffer | undefined): void => {
          clearTimeout(timer);
          socket.off('message', onMessage);
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(v);
        };
        socket.on('message', onMessage);
        opts.signal?.addEventListener('abort', onAbort);
        socket.send(signed, opts.server.port, opts.server.host);
      });
      if (response) return check(response, mac, key, name, where);
      timeout *= 2;
    }
    throw dnsError('DNS_NO_ANSWER', `dns update of '${name}' got no answer from '${where}' after ${retries + 1} attempts`, {
      details: { server: where, attempts: retries + 1 },
    });
  } finally {
    socket.close();
  }
}

function check(response: Buffer, requestMac: Buffer, key: TsigKey, name: string, where: string): DnsUpdateResult {
  const header = readHeader(response);
  const tsig = readTsig(response)?.record;
  // RFC 8945 §5.2: a server that cannot verify answers NOTAUTH with the TSIG error (unsigned).
  if (tsig && tsig.error !== 0) {
    const tsigError = TSIG_ERROR_NAMES[tsig.error] ?? String(tsig.error);
    // The key's name is a credential's identifier: it stays out of errors (they are logged).
    throw dnsError('DNS_TSIG_REJECTED', `dns(${where}): update of '${name}' refused: tsig ${tsigError.toLowerCase()} for the configured key`, {
      details: { rcode: header.rcodeName, tsigError, ...(tsig.error === 18 && tsig.otherData.length === 6 ? { serverTime: tsig.otherData.readUIntBE(0, 6) } : {}) },
    });
  }
  if (header.rcodeName === 'NOTAUTH' && !tsig) {
    throw dnsError('DNS_TSIG_REJECTED', `dns(${where}): update of '${name}' refused as not authorized (notauth, unsigned answer)`, {
      details: { rcode: header.rcodeName },
    });
  }
  const verified = verifyResponse(response, requestMac, key);
  if (header.rcode !== 0) {
    throw dnsError('DNS_UPDATE_REFUSED', `dns(${where}): update of '${name}' refused with ${header.rcodeName.toLowerCase()}`, {
      details: { rcode: header.rcodeName },
    });
  }
  return { rcode: 'NOERROR', serverTime: verified.timeSigned };
}
