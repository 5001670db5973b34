/**
 * Issue 14: the config's storage section — one object store per region, each region one the
 * catalog advertises — and the storage policy admission gets from it.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../agent/config/index.js';
import { storagePolicyOf } from '../../../agent/subcontract/index.js';

const base = `
cloud: { id: cloud-b, regions: [eu-west, us-east] }
identity: { root: pki/root.pem, cert: pki/cloud-b.pem, key: pki/cloud-b.key }
xmpp: { service: "xmpp://127.0.0.1:15222", domain: intercloud.test, pubsub: pubsub.intercloud.test }
amqp: { url: "amqps://127.0.0.1:25671/intercloud" }
hypervisor: { kind: libvirt, config: { uri: "qemu:///system" } }
state: { dir: /var/lib/intercloud }
api: { socket: /run/intercloud/agent.sock }
`;

const withStorage = (section: string): string => `${base}storage: ${section}\n`;

describe('agent config: storage (issue 14)', () => {
  it('has no storage section by default: the cloud takes no storage offers', () => {
    const c = parseConfig(base, '/etc/a.yaml');
    expect(c.storage).toBeUndefined();
    expect(storagePolicyOf(c.storage)).toBeUndefined();
  });

  it('parses one store per region with its replicas, and fills the defaults', () => {
    const c = parseConfig(withStorage(`{ capacityGiB: 500, regions: {
      eu-west: { kind: s3, maxReplicas: 3, config: { endpoint: "http://127.0.0.1:18080" } },
      us-east: { kind: s3, config: { endpoint: "http://127.0.0.1:18081" } } } }`), '/etc/a.yaml');
    expect(c.storage).toEqual({
      capacityGiB: 500, maxSubcontractDays: 365, maxObjectsPerSubcontract: 1_000_000,
      regions: {
        'eu-west': { kind: 's3', maxReplicas: 3, config: { endpoint: 'http://127.0.0.1:18080' } },
        'us-east': { kind: 's3', maxReplicas: 1, config: { endpoint: 'http://127.0.0.1:18081' } },
      },
    });
    expect(storagePolicyOf(c.storage)).toEqual({
      regions: { 'eu-west': { maxReplicas: 3 }, 'us-east': { maxReplicas: 1 } }, maxDurationMs: 365 * 86_400_000, maxObjectsPerSubcontract: 1_000_000,
    });
  });

  it('refuses a store in a region the catalog does not list, and says how to fix it', () => {
    expect(() => parseConfig(withStorage('{ capacityGiB: 5, regions: { ap-south: { kind: s3 } } }'), '/etc/a.yaml'))
      .toThrow(/storage\.regions\.ap-south: region 'ap-south' is not one of cloud\.regions \(eu-west, us-east\): add it there or remove its store/);
  });

  it('refuses a storage section without a region, without capacity, with unknown keys or too many replicas', () => {
    expect(() => parseConfig(withStorage('{ capacityGiB: 5, regions: {} }'), '/etc/a.yaml')).toThrow(/name at least one region/);
    expect(() => parseConfig(withStorage('{ regions: { eu-west: { kind: s3 } } }'), '/etc/a.yaml')).toThrow(/storage\.capacityGiB/);
    expect(() => parseConfig(withStorage('{ capacityGiB: 5, regions: { eu-west: { kind: s3, adapter: s3 } } }'), '/etc/a.yaml')).toThrow(/adapter/);
    expect(() => parseConfig(withStorage('{ capacityGiB: 5, regions: { eu-west: { kind: s3, maxReplicas: 17 } } }'), '/etc/a.yaml')).toThrow(/maxReplicas/);
  });
});
