/**
 * Issue 14: the agent configs scripts/local-federation.ts writes lend each cloud's Swift
 * (services.json → `swift.<cloud>`) as its object storage, in a region the catalog lists — and
 * write what they wrote before when there is no Swift or storage is turned off.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../agent/config/index.js';
import { writeAgentConfig, type loadServicesFile } from '../../../scripts/local-federation.js';

type Services = ReturnType<typeof loadServicesFile>;

const services = (withSwift: boolean): Services => ({
  stateDir: '/srv/ic',
  pki: { root: '/srv/ic/pki/root.pem', rootKey: '/srv/ic/pki/root.key', crl: '/srv/ic/pki/crl.pem', clouds: { 'cloud-b': { cert: '/srv/ic/pki/b.pem', key: '/srv/ic/pki/b.key' } } },
  prosody: { host: '127.0.0.1', port: 15222, domain: 'intercloud.test', pubsubJid: 'pubsub.intercloud.test' },
  brokers: { 'cloud-b': { url: 'amqps://127.0.0.1:25672/transfers', identity: 'broker.cloud-b.intercloud.test', pidFile: '', ctl: '', log: '', management: { url: 'http://127.0.0.1:25682', user: '_agent', passwordFile: '/srv/ic/mgmt.pw' } } },
  sshd: { host: '127.0.0.1', port: 2222, user: 'root', privateKey: '/srv/ic/ssh.key', hostKeyFingerprint: 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU' },
  libvirt: { instances: { 'cloud-b': { uri: 'qemu+ssh://root@127.0.0.1:2222/system', poolPath: '/srv/pool', address: '10.0.0.2' } } },
  lisp: { host: '127.0.0.1', port: 4342, sites: { 'cloud-b': { keyId: 1, algorithm: 'hmac-sha-256-128', keyFile: '/srv/ic/lisp.key', rlocs: ['10.0.0.2'] } } },
  ...(withSwift ? {
    swift: { 'cloud-b': { endpoint: 'http://127.0.0.1:26180', region: 'na-east', accessKeyId: 'cloud-b:agent', secretAccessKeyFile: '/srv/ic/swift/b.key', replicas: 3 } },
  } : {}),
});

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'fed-config-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

describe('local-federation config: storage (issue 14)', () => {
  it("lends the cloud's Swift in its region, which the catalog lists beside the cloud's own", async () => {
    const path = await writeAgentConfig(services(true), 'cloud-b', dir, { region: 'eu-central' });
    const c = parseConfig(await readFile(path, 'utf8'), path);
    expect(c.cloud.regions).toEqual(['eu-central', 'na-east']);
    expect(c.storage).toEqual({
      capacityGiB: 100, maxSubcontractDays: 365, maxObjectsPerSubcontract: 1_000_000, replication: { passSeconds: 2, auditSeconds: 600 },
      regions: { 'na-east': { kind: 's3', maxReplicas: 3, config: { endpoint: 'http://127.0.0.1:26180', accessKeyId: 'cloud-b:agent', secretAccessKeyFile: '/srv/ic/swift/b.key' } } },
    });
  });

  it('writes no storage section without a Swift in services.json, or with storage: false', async () => {
    for (const [s, o] of [[services(false), {}], [services(true), { storage: false as const }]] as const) {
      const path = await writeAgentConfig(s, 'cloud-b', dir, { region: 'eu-central', ...o });
      const c = parseConfig(await readFile(path, 'utf8'), path);
      expect(c.storage).toBeUndefined();
      expect(c.cloud.regions).toEqual(['eu-central']);
    }
  });
});
