/**
 * The agent's DNS addresser checks its key and zone at start against the real BIND that
 * `scripts/services up bind` starts: a signed update that changes nothing. A wrong key or zone
 * is a config error with the fix (the agent exits 2 before it takes any work), a silent server
 * is only reported, and the zone is left as it was (`dig` of its SOA serial).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../agent/config/index.js';
import { dnsAddresser } from '../../../agent/daemon/addressing-ports.js';
import { bindService } from '../../helpers/services.js';

const run = promisify(execFile);

let env: ReturnType<typeof bindService>;

const signal = (): AbortSignal => AbortSignal.timeout(10_000);

function configWith(o: { server?: string; zone?: string; tsigName?: string; tsigSecret?: string } = {}) {
  const dns = {
    server: o.server ?? `${env.host}:${env.port}`, zone: o.zone ?? env.zone,
    tsigName: o.tsigName ?? env.keyName, tsigSecret: o.tsigSecret ?? env.key.secret, locators: ['10.213.7.2'],
  };
  return parseConfig([
    'cloud: { id: cloud-b }', 'identity: { root: r.pem, cert: c.pem, key: k.pem }',
    'xmpp: { service: "xmpp://127.0.0.1:15222", domain: intercloud.test, pubsub: pubsub.intercloud.test }',
    'amqp: { url: "amqps://127.0.0.1:25671/intercloud" }', 'hypervisor: { kind: fake }',
    `addressing: { dns: ${JSON.stringify(dns)} }`, 'state: { dir: /tmp/x }', 'api: { socket: /tmp/x.sock }',
  ].join('\n'), '/etc/intercloud/agent.yaml').addressing.dns!;
}

async function serial(): Promise<string> {
  const { stdout } = await run('dig', [`@${env.host}`, '-p', String(env.port), env.zone, 'SOA', '+short', '+norecurse']);
  return stdout.trim().split(/\s+/)[2] ?? '';
}

beforeAll(() => {
  env = bindService();
});

describe('the dns addresser checks its key and zone at start', () => {
  it('says ok with the right key, and changes nothing in the zone', async () => {
    const before = await serial();
    expect(before).toMatch(/^\d+$/);
    expect(await dnsAddresser(configWith()).verify(signal())).toBe('ok');
    expect(await serial()).toBe(before);
  });

  it('a wrong secret is a config error that says which keys to check, and never names the key', async () => {
    const err = await dnsAddresser(configWith({ tsigSecret: Buffer.alloc(32, 7).toString('base64') })).verify(signal()).then(() => undefined, (e: unknown) => e as Error);
    expect(err).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/refuses updates of zone 'vms\.intercloud\.test': check addressing\.dns\.tsigName, tsigSecret/) });
    expect(err?.cause).toMatchObject({ code: 'DNS_TSIG_REJECTED', details: { tsigError: 'BADSIG' } });
    expect(JSON.stringify({ m: err?.message, c: (err?.cause as Error).message, ...err })).not.toContain(env.keyName);
  });

  it('a zone the server is not primary for is a config error that says so', async () => {
    await expect(dnsAddresser(configWith({ zone: 'other.test' })).verify(signal()))
      .rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/check that addressing\.dns\.server is the primary of zone 'other\.test'/) });
  });

  it('a silent server is reported as unreachable, not as an error', async () => {
    // 15399: nothing listens there (the bind-update test's silent server).
    expect(await dnsAddresser(configWith({ server: '127.0.0.1:15399' })).verify(signal())).toBe('unreachable');
  }, 20_000);
});
