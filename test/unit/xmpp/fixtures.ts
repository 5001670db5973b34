/** Sample values shared by the xmpp unit tests. */
import type { CatalogEntry } from '../../../protocols/xmpp/catalog.js';
import type { Offer } from '../../../protocols/xmpp/negotiation.js';

export const FINGERPRINT = Array.from({ length: 32 }, (_, i) => (i * 7 % 256).toString(16).padStart(2, '0')).join('');

export function sampleEntry(over: Partial<CatalogEntry> = {}): CatalogEntry {
  return {
    cloudId: 'cloud-b',
    jid: 'cloud-b@intercloud.test',
    regions: ['eu-central', 'eu-west'],
    hypervisors: ['kvm'],
    formats: ['ovf', 'qcow2'],
    capabilities: ['vm-hosting', 'transfer-amqp'],
    capacity: { vcpus: 32, memoryMiB: 65536, diskGiB: 2000, objectStorageGiB: 10000 },
    terms: { currency: 'EUR', pricePerVcpuHour: 0.04, pricePerGbMonth: 0.02 },
    transferUri: 'amqps://127.0.0.1:25671/intercloud',
    certificateSha256: FINGERPRINT,
    updated: '2026-11-25T13:00:00.000Z',
    ...over,
  };
}

export function sampleOffer(over: Partial<Offer> = {}): Offer {
  return {
    offerId: 'offer-1',
    from: 'cloud-a',
    workload: {
      type: 'vm',
      name: 'web1',
      vcpus: 2,
      memoryMiB: 2048,
      firmware: 'bios',
      disks: [{ id: 'vda', sizeGiB: 10, format: 'qcow2' }],
      nics: [{ mac: '52:54:00:12:34:56', network: 'default' }],
    },
    constraints: { regions: ['eu-central'], deadline: '2026-11-25T14:00:00.000Z' },
    terms: { currency: 'EUR', maxPricePerVcpuHour: 0.05 },
    issued: '2026-11-25T13:00:00.000Z',
    expires: '2026-11-25T13:05:00.000Z',
    ...over,
  };
}

/** A storage subcontract offer from cloud-a (issue 14): 100 GiB, 3 replicas, quorum writes, in eu-central or eu-west. */
export function sampleStorageOffer(over: Partial<Offer> = {}): Offer {
  return sampleOffer({
    offerId: 'offer-s1',
    workload: {
      type: 'storage', subcontractId: 'sc-1', sourceBucket: 'photos', sourcePrefix: '2026/', replicas: 3, ack: 'quorum',
      capacityGiB: 100, maxObjects: 100_000, ends: '2026-12-25T13:00:00.000Z', atEnd: 'delete',
    },
    constraints: { regions: ['eu-central', 'eu-west'] },
    terms: { currency: 'EUR', maxPricePerGbMonth: 0.02 },
    ...over,
  });
}
