import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../agent/config/index.js';

const good = `
cloud: { id: cloud-a, regions: [eu-west] }
identity: { root: pki/root.pem, cert: pki/cloud-a.pem, key: pki/cloud-a.key }
xmpp: { service: "xmpp://127.0.0.1:15222", domain: intercloud.test, pubsub: pubsub.intercloud.test }
amqp: { url: "amqps://127.0.0.1:25671/intercloud" }
hypervisor: { kind: libvirt, config: { uri: "qemu:///system" } }
addressing: { lisp: { mapServer: "127.0.0.1:4342", keyId: 1, keyFile: lisp.key, rlocs: [192.0.2.1] } }
state: { dir: /var/lib/intercloud }
api: { socket: /run/intercloud/agent.sock }
`;

describe('agent config', () => {
  it('parses, fills defaults and resolves relative paths against the file', () => {
    const c = parseConfig(good, '/etc/intercloud/agent.yaml');
    expect(c.identity.root).toBe('/etc/intercloud/pki/root.pem');
    expect(c.state.dir).toBe('/var/lib/intercloud');
    expect(c.amqp.chunkBytes).toBe(1024 * 1024);
    expect(c.policy.acceptFrom).toEqual([]);
    expect(c.addressing.lisp?.keyId).toBe(1);
    expect(c.addressing.lisp?.mapServer).toEqual({ host: '127.0.0.1', port: 4342 });
    expect(c.addressing.lisp?.keyFile).toBe('/etc/intercloud/lisp.key');
    expect(c.migration.shutdownTimeoutMs).toBe(60_000);
  });

  it('rejects unknown keys and says which, and how to fix them', () => {
    expect(() => parseConfig(good + 'colud: x\n', '/etc/a.yaml')).toThrow(/unknown key\(s\) 'colud'.*remove or correct/s);
    expect(() => parseConfig(good.replace('cloud-a,', 'Cloud_A,'), '/etc/a.yaml')).toThrow(/cloud\.id: a cloud id is lowercase/);
    expect(() => parseConfig(good.replace('amqps://', 'amqp://'), '/etc/a.yaml')).toThrow(/amqp\.url: the broker must be reached over TLS/);
  });

  it('reports yaml syntax errors with the line', () => {
    expect(() => parseConfig('cloud: [\n', '/etc/a.yaml')).toThrow(expect.objectContaining({ code: 'CONFIG_SYNTAX', message: expect.stringContaining("'/etc/a.yaml:") }));
    expect(() => parseConfig('', '/etc/a.yaml')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('agent config: dns re-addressing', () => {
  const dns = (fields: string) => good.replace(/^addressing: .*$/m, `addressing: { dns: { ${fields} } }`);
  const full = 'server: "127.0.0.1:15353", zone: vms.intercloud.test, tsigName: intercloud-update, tsigSecret: "c2VjcmV0LXNlY3JldC1zZWNyZXQ=", locators: [198.51.100.1]';
  const problems = (text: string): string => {
    try {
      parseConfig(text, '/etc/a.yaml');
    } catch (err) {
      expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
      return (err as Error).message;
    }
    throw new Error('the config was accepted');
  };

  it('parses server, zone, key, locators, and fills the algorithm and ttl', () => {
    const c = parseConfig(dns(full), '/etc/a.yaml');
    expect(c.addressing.lisp).toBeUndefined();
    expect(c.addressing.dns).toEqual({
      server: { host: '127.0.0.1', port: 15353 }, zone: 'vms.intercloud.test', tsigName: 'intercloud-update',
      tsigSecret: 'c2VjcmV0LXNlY3JldC1zZWNyZXQ=', tsigAlgorithm: 'hmac-sha256', locators: ['198.51.100.1'], ttl: 60,
    });
  });

  it('rejects a dns config without a zone, and says what to write', () => {
    const msg = problems(dns(full.replace('zone: vms.intercloud.test, ', '')));
    expect(msg).toMatch(/addressing\.dns\.zone: missing: the zone that holds the vms' names, e\.g\. zone: vms\.intercloud\.test/);
  });

  it('rejects a dns config without its tsig key name or secret, and says where to find them', () => {
    const noName = problems(dns(full.replace('tsigName: intercloud-update, ', '')));
    expect(noName).toMatch(/addressing\.dns\.tsigName: missing: the name of the tsig key .*allow-update/);
    const noSecret = problems(dns(full.replace('tsigSecret: "c2VjcmV0LXNlY3JldC1zZWNyZXQ=", ', '')));
    expect(noSecret).toMatch(/addressing\.dns\.tsigSecret: missing: the tsig key's secret.*tsig-keygen/);
    expect(problems(dns(full.replace('"c2VjcmV0LXNlY3JldC1zZWNyZXQ="', '"not base64!"')))).toMatch(/addressing\.dns\.tsigSecret: .*base64/);
  });

  it('rejects a dns config without locators, a bad locator or a bad server', () => {
    expect(problems(dns(full.replace(', locators: [198.51.100.1]', '')))).toMatch(/addressing\.dns\.locators: missing: the addresses .* e\.g\. locators: \[198\.51\.100\.1\]/);
    expect(problems(dns(full.replace('[198.51.100.1]', '[cloud-b.example]')))).toMatch(/addressing\.dns\.locators\.0: .*ipv4 or ipv6 address/);
    expect(problems(dns(full.replace('"127.0.0.1:15353"', '"127.0.0.1"')))).toMatch(/addressing\.dns\.server: write it as HOST:PORT/);
  });

  it('never puts the tsig secret in its error message', () => {
    const msg = problems(dns(full.replace('zone: vms.intercloud.test, ', '').replace('[198.51.100.1]', '[x]')));
    expect(msg).not.toContain('c2VjcmV0LXNlY3JldC1zZWNyZXQ=');
  });
});
