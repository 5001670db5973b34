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
