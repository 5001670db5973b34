import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../agent/config/index.js';

const FP = `SHA256:${'A'.repeat(43)}`;

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

  it('takes how often an unanswered instantiate or commit is sent again (migration.requestResendMs, default 30 s)', () => {
    expect(parseConfig(good, '/etc/a.yaml').migration.requestResendMs).toBe(30_000);
    const fast = good + 'migration: { requestResendMs: 5000 }\n';
    expect(parseConfig(fast, '/etc/a.yaml').migration.requestResendMs).toBe(5_000);
    expect(() => parseConfig(good + 'migration: { requestResendMs: 10 }\n', '/etc/a.yaml')).toThrow(/migration\.requestResendMs/);
  });

  it('takes the directories of base images this cloud holds (migration.baseImages, issue 16): absolute paths only; none by default', () => {
    expect(parseConfig(good, '/etc/a.yaml').migration.baseImages).toBeUndefined();
    expect(parseConfig(good + 'migration: { baseImages: [/srv/golden, /srv/more] }\n', '/etc/a.yaml').migration.baseImages).toEqual(['/srv/golden', '/srv/more']);
    expect(() => parseConfig(good + 'migration: { baseImages: [golden] }\n', '/etc/a.yaml')).toThrow(/migration\.baseImages\.0: a base image directory must be an absolute path/);
  });

  it('rejects unknown keys and says which, and how to fix them', () => {
    expect(() => parseConfig(good + 'colud: x\n', '/etc/a.yaml')).toThrow(/unknown key\(s\) 'colud'.*remove or correct/s);
    expect(() => parseConfig(good.replace('cloud-a,', 'Cloud_A,'), '/etc/a.yaml')).toThrow(/cloud\.id: a cloud id is lowercase/);
    expect(() => parseConfig(good.replace('amqps://', 'amqp://'), '/etc/a.yaml')).toThrow(/amqp\.url: the broker must be reached over TLS/);
  });

  it('takes the other Roots\' directories to read (xmpp.directories, issue 13); none by default', () => {
    expect(parseConfig(good, '/etc/a.yaml').xmpp.directories).toEqual([]);
    const two = good.replace('pubsub: pubsub.intercloud.test }', 'pubsub: pubsub.intercloud.test, directories: [{ domain: root2.test, pubsub: pubsub.root2.test }] }');
    expect(parseConfig(two, '/etc/a.yaml').xmpp.directories).toEqual([{ domain: 'root2.test', pubsub: 'pubsub.root2.test' }]);
    const typo = good.replace('pubsub: pubsub.intercloud.test }', 'pubsub: pubsub.intercloud.test, directories: [{ domain: root2.test, pubsubJid: pubsub.root2.test }] }');
    expect(() => parseConfig(typo, '/etc/a.yaml')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('reports yaml syntax errors with the line', () => {
    expect(() => parseConfig('cloud: [\n', '/etc/a.yaml')).toThrow(expect.objectContaining({ code: 'CONFIG_SYNTAX', message: expect.stringContaining("'/etc/a.yaml:") }));
    expect(() => parseConfig('', '/etc/a.yaml')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('checks hypervisor.config against the adapter\'s own schema and says how to fix it', () => {
    const withHv = (hv: string): string => good.replace('hypervisor: { kind: libvirt, config: { uri: "qemu:///system" } }', `hypervisor: ${hv}`);
    const problem = (hv: string): unknown => {
      try {
        parseConfig(withHv(hv), '/etc/intercloud/agent.yaml');
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(problem('{ kind: libvirt, config: { uri: "qemu:///system", colour: red } }')).toMatchObject({
      code: 'CONFIG_INVALID', message: expect.stringContaining("hypervisor.config: unknown key(s) 'colour' — remove or correct the spelling"),
    });
    expect(problem('{ kind: libvirt, config: { uri: "qemu:///system", ssh: { host: h, username: u, privateKeyFile: k } } }')).toMatchObject({
      code: 'CONFIG_INVALID', message: expect.stringContaining('hypervisor.config.ssh: pin the host key: give exactly one of hostKeyFingerprint or knownHostsFile'),
    });
    expect(problem('{ kind: libvirt, config: { uri: "qemu:///system", domainType: xen } }')).toMatchObject({
      code: 'CONFIG_INVALID', message: expect.stringMatching(/hypervisor\.config\.domainType: .*"kvm"\|"qemu"/),
    });
    expect(problem('{ kind: vmware, config: { url: "http://vc.example/sdk", user: u, password: p, caFile: ca.pem, datacenter: d, datastore: s } }')).toMatchObject({
      code: 'CONFIG_INVALID', message: expect.stringContaining('hypervisor.config.url: write it as https://HOST[:PORT]/sdk'),
    });
    expect(problem('{ kind: xen, config: {} }')).toMatchObject({
      code: 'CONFIG_INVALID', message: expect.stringContaining("hypervisor.kind: no hypervisor adapter 'xen': use one of 'libvirt', 'vmware', 'fake'"),
    });
    expect(problem('{ kind: libvirt, config: { uri: "qemu:///system", consoleLogDir: consoles } }')).toMatchObject({
      code: 'CONFIG_INVALID', message: expect.stringContaining('hypervisor.config.consoleLogDir: write an absolute directory on the hypervisor host'),
    });
  });

  it('parses the adapter config once into the adapter\'s typed config: defaults filled, named after the cloud', () => {
    const c = parseConfig(good, '/etc/intercloud/agent.yaml');
    expect(c.hypervisor).toEqual({
      kind: 'libvirt',
      config: { name: 'cloud-a', uri: 'qemu:///system', pool: 'default', virsh: 'virsh', qemuImg: 'qemu-img', domainType: 'kvm', pollMs: 250, diskIo: 'file' },
    });
  });

  it('resolves relative paths inside the adapter config against the config file\'s folder', () => {
    const libvirt = parseConfig(good.replace('config: { uri: "qemu:///system" }',
      `config: { uri: "qemu:///system", consoleLogDir: /var/log/ic, ssh: { host: h, username: u, privateKeyFile: keys/ssh_key, knownHostsFile: ../ssh/known_hosts } }`),
    '/etc/intercloud/agent.yaml');
    expect(libvirt.hypervisor.config).toMatchObject({
      consoleLogDir: '/var/log/ic',
      ssh: { privateKeyFile: '/etc/intercloud/keys/ssh_key', knownHostsFile: '/etc/ssh/known_hosts', host: 'h' },
    });
    const absolute = parseConfig(good.replace('config: { uri: "qemu:///system" }',
      `config: { uri: "qemu:///system", ssh: { host: h, username: u, privateKeyFile: /srv/key, hostKeyFingerprint: "${FP}" } }`),
    '/etc/intercloud/agent.yaml');
    expect(absolute.hypervisor.config).toMatchObject({ ssh: { privateKeyFile: '/srv/key' } });
    const vmware = parseConfig(good.replace('kind: libvirt, config: { uri: "qemu:///system" }',
      'kind: vmware, config: { url: "https://vc.example/sdk", user: u, password: p, caFile: pki/vcenter.pem, datacenter: d, datastore: s }'),
    '/etc/intercloud/agent.yaml');
    expect(vmware.hypervisor).toMatchObject({ kind: 'vmware', config: { caFile: '/etc/intercloud/pki/vcenter.pem' } });
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
