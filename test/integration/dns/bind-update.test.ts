/**
 * RFC 2136 updates signed with TSIG against the real BIND 9 that `scripts/services up bind`
 * starts; `dig` (BIND's own client) shows what the server then serves.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDnsAddresses, deleteDnsAddresses, updateDnsRecord, type DnsUpdateOptions } from '../../../protocols/dns/index.js';
import { bindService } from '../../helpers/services.js';

const run = promisify(execFile);

let env: ReturnType<typeof bindService>;
let opts: DnsUpdateOptions;

async function dig(name: string, type: 'A' | 'AAAA'): Promise<string[]> {
  const { stdout } = await run('dig', [`@${env.host}`, '-p', String(env.port), name, type, '+short', '+norecurse']);
  return stdout.split('\n').filter((l) => l.length > 0).sort();
}

function namedAlive(): boolean {
  try {
    process.kill(Number(readFileSync(env.pidFile, 'utf8').trim()), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

beforeAll(() => {
  env = bindService();
  opts = { server: { host: env.host, port: env.port }, zone: env.zone, key: { name: env.keyName, secret: env.key.secret } };
});

describe('TSIG-signed dynamic update against BIND 9', () => {
  const name = `vm-${process.pid}.vms.intercloud.test`;

  it('adds A and AAAA records that dig then sees', async () => {
    const res = await updateDnsRecord(name, ['10.77.0.5', '2001:db8::5'], 60, opts);
    expect(res.rcode).toBe('NOERROR');
    expect(Math.abs(res.serverTime - Date.now() / 1000)).toBeLessThan(300);
    expect(await dig(name, 'A')).toEqual(['10.77.0.5']);
    expect(await dig(name, 'AAAA')).toEqual(['2001:db8::5']);
  });

  it('replaces the addresses on re-address (same name, new address)', async () => {
    await updateDnsRecord(name, ['10.88.0.5'], 60, opts);
    expect(await dig(name, 'A')).toEqual(['10.88.0.5']);
    expect(await dig(name, 'AAAA')).toEqual([]);
  });

  it('deletes the addresses when given none', async () => {
    await updateDnsRecord(name, [], 60, opts);
    expect(await dig(name, 'A')).toEqual([]);
  });
});

describe('adding and deleting single addresses (a re-address from one site to another)', () => {
  const name = `moving-${process.pid}.vms.intercloud.test`;

  it('adds an address beside the one there, then deletes just the old one', async () => {
    await updateDnsRecord(name, ['192.0.2.1'], 60, opts);
    await addDnsAddresses(name, ['198.51.100.1'], 60, opts);
    expect(await dig(name, 'A')).toEqual(['192.0.2.1', '198.51.100.1']);
    await deleteDnsAddresses(name, ['192.0.2.1'], opts);
    expect(await dig(name, 'A')).toEqual(['198.51.100.1']);
  });

  it('is idempotent: adding an address twice keeps one, deleting an absent one changes nothing', async () => {
    await addDnsAddresses(name, ['198.51.100.1'], 60, opts);
    await deleteDnsAddresses(name, ['192.0.2.1', '2001:db8::1'], opts);
    expect(await dig(name, 'A')).toEqual(['198.51.100.1']);
    await deleteDnsAddresses(name, ['198.51.100.1'], opts);
    expect(await dig(name, 'A')).toEqual([]);
  });
});

describe('TSIG failures are refused with a coded error and change nothing', () => {
  const name = `bad-${process.pid}.vms.intercloud.test`;

  it('a wrong secret → DNS_TSIG_REJECTED (BADSIG)', async () => {
    await expect(updateDnsRecord(name, ['10.1.1.1'], 60, { ...opts, key: { name: env.keyName, secret: Buffer.alloc(32, 7) } }))
      .rejects.toMatchObject({ code: 'DNS_TSIG_REJECTED', details: { rcode: 'NOTAUTH', tsigError: 'BADSIG' } });
    expect(await dig(name, 'A')).toEqual([]);
    // Errors are logged: the key's name and secret appear in neither the message nor the details.
    const err = await updateDnsRecord(name, ['10.1.1.1'], 60, { ...opts, key: { name: env.keyName, secret: Buffer.alloc(32, 7) } }).then(() => undefined, (e: unknown) => e as Error);
    expect(JSON.stringify({ message: err?.message, ...err })).not.toContain(env.keyName);
    expect(namedAlive()).toBe(true);
  });

  it('an unknown key name → DNS_TSIG_REJECTED (BADKEY)', async () => {
    await expect(updateDnsRecord(name, ['10.1.1.1'], 60, { ...opts, key: { name: 'not-a-key', secret: env.key.secret } }))
      .rejects.toMatchObject({ code: 'DNS_TSIG_REJECTED', details: { tsigError: 'BADKEY' } });
    expect(await dig(name, 'A')).toEqual([]);
  });

  it('a clock an hour off → DNS_TSIG_REJECTED (BADTIME) with the server\'s time', async () => {
    const err = await updateDnsRecord(name, ['10.1.1.1'], 60, { ...opts, now: () => Date.now() - 3_600_000 }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'DNS_TSIG_REJECTED', details: { tsigError: 'BADTIME' } });
    expect(Math.abs((err as { details: { serverTime: number } }).details.serverTime - Date.now() / 1000)).toBeLessThan(60);
  });

  it('a zone the server does not serve → DNS_UPDATE_REFUSED with its rcode', async () => {
    const err = await updateDnsRecord('x.other.test', ['10.1.1.1'], 60, { ...opts, zone: 'other.test' }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'DNS_UPDATE_REFUSED' });
    expect(['NOTAUTH', 'NOTZONE', 'REFUSED']).toContain((err as { details: { rcode: string } }).details.rcode);
  });

  it('a silent server → DNS_NO_ANSWER after retries', async () => {
    await expect(updateDnsRecord(name, ['10.1.1.1'], 60, { ...opts, server: { host: '127.0.0.1', port: 15399 }, retries: 1, initialTimeoutMs: 100 }))
      .rejects.toMatchObject({ code: 'DNS_NO_ANSWER', retryable: true, details: { attempts: 2 } });
  });
});
