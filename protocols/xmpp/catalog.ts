/**
 * Catalog entries: what a gateway publishes about its cloud in the Root's directory
 * (XEP-0060 item, id = cloud id, on {@link CATALOG_NODE}). Signed by the gateway.
 *
 * ```xml
 * <entry xmlns='urn:intercloud:catalog:0' cloud='cloud-a' jid='cloud-a@intercloud.test'
 *        updated='2026-11-25T13:00:00.000Z'>
 *   <region>eu-central</region>
 *   <hypervisor>kvm</hypervisor>
 *   <format>ovf</format>
 *   <capability>vm-hosting</capability>
 *   <capacity vcpus='32' memory-mib='65536' disk-gib='2000' object-storage-gib='10000'/>
 *   <terms currency='EUR' vcpu-hour='0.04' gb-month='0.02'/>
 *   <transfer uri='amqps://127.0.0.1:25671/intercloud'/>
 *   <certificate sha256='3f1c…'/>
 *   <migration><mode>cold</mode><mode>warm</mode><mode>live</mode>
 *     <restore hypervisor='qemu' version='7.2.19'><machine arch='x86_64' name='pc-i440fx-7.2' alias='pc'/></restore>
 *   </migration>
 *   <signature xmlns='urn:intercloud:signature:0'>…</signature>
 * </entry>
 * ```
 */
import { xml, type Element } from '@xmpp/client';
import { attr, checkSize, child, CLOUD_ID_RE, decimal, malformed, num, numAttr, texts, timeAttr, TOKEN_RE } from './fields.js';
import { buildMigrationAdvert, normalizeMigrationAdvert, parseMigrationAdvert, type MigrationAdvert } from './migration-mode.js';
import { CAPABILITIES, ICNS, type Capability } from './namespaces.js';
import { buildSignature, readSignature } from './signature.js';

/** Free capacity a cloud offers right now. */
export interface Capacity {
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly diskGiB: number;
  readonly objectStorageGiB: number;
}

/** Prices a cloud asks. */
export interface Terms {
  /** ISO 4217 code. */
  readonly currency: string;
  readonly pricePerVcpuHour: number;
  readonly pricePerGbMonth: number;
}

/** One cloud's directory entry. */
export interface CatalogEntry {
  readonly cloudId: string;
  /** The gateway's bare JID. */
  readonly jid: string;
  readonly regions: readonly string[];
  readonly hypervisors: readonly string[];
  readonly formats: readonly string[];
  readonly capabilities: readonly Capability[];
  readonly capacity: Capacity;
  readonly terms: Terms;
  /** Where disks and objects are sent (the AMQP broker URI). */
  readonly transferUri: string;
  /** SHA-256 of the gateway certificate DER, 64 lowercase hex digits. */
  readonly certificateSha256: string;
  /** XEP-0082 DateTime of this version. */
  readonly updated: string;
  /**
   * The migration modes the cloud takes and what it can restore (issue 15); absent means `cold`
   * only, and an entry that takes only `cold` carries none (so readers before issue 15 verify it).
   */
  readonly migration?: MigrationAdvert;
}

/** A catalog entry with the signature envelope that came with it. */
export interface SignedCatalogEntry {
  readonly entry: CatalogEntry;
  readonly signature: string;
}

const FINGERPRINT_RE = /^[0-9a-f]{64}$/;
const URI_RE = /^[a-z][a-z0-9+.-]*:\/\/[^\s<>"]{1,512}$/;
const CURRENCY_RE = /^[A-Z]{3}$/;
const BARE_JID_RE = /^[a-z0-9][a-z0-9-]{0,62}@[a-z0-9.-]{1,253}$/;
const CAPABILITY_RE = new RegExp(`^(${CAPABILITIES.join('|')})$`);

/** The value that is signed for an entry (prices rounded as the wire carries them). */
export function catalogPayload(entry: CatalogEntry): Record<string, unknown> {
  return { type: 'catalog-entry', ...normalizeCatalogEntry(entry) };
}

/** The entry with its prices rounded to what the XML carries (see {@link decimal}). */
export function normalizeCatalogEntry(entry: CatalogEntry): CatalogEntry {
  const { migration, ...rest } = entry;
  const advert = normalizeMigrationAdvert(migration);
  return {
    ...rest,
    ...(advert === undefined ? {} : { migration: advert }),
    terms: { ...entry.terms, pricePerVcpuHour: decimal(entry.terms.pricePerVcpuHour), pricePerGbMonth: decimal(entry.terms.pricePerGbMonth) },
  };
}

/** Builds the `<entry/>` element, with its signature. */
export function buildCatalogEntry(entry: CatalogEntry, signature: string): Element {
  return xml(
    'entry',
    { xmlns: ICNS.CATALOG, cloud: entry.cloudId, jid: entry.jid, updated: entry.updated },
    ...entry.regions.map((r) => xml('region', {}, r)),
    ...entry.hypervisors.map((h) => xml('hypervisor', {}, h)),
    ...entry.formats.map((f) => xml('format', {}, f)),
    ...entry.capabilities.map((c) => xml('capability', {}, c)),
    xml('capacity', {
      vcpus: num(entry.capacity.vcpus),
      'memory-mib': num(entry.capacity.memoryMiB),
      'disk-gib': num(entry.capacity.diskGiB),
      'object-storage-gib': num(entry.capacity.objectStorageGiB),
    }),
    xml('terms', {
      currency: entry.terms.currency,
      'vcpu-hour': num(entry.terms.pricePerVcpuHour),
      'gb-month': num(entry.terms.pricePerGbMonth),
    }),
    xml('transfer', { uri: entry.transferUri }),
    xml('certificate', { sha256: entry.certificateSha256 }),
    ...(normalizeMigrationAdvert(entry.migration) === undefined ? [] : [buildMigrationAdvert(entry.migration as MigrationAdvert)]),
    buildSignature(signature),
  );
}

/**
 * Reads an `<entry/>`; throws `XMPP_MALFORMED` / `XMPP_OVERSIZED` naming the bad field.
 * The signature is returned, not checked: verification needs the trust area.
 */
export function parseCatalogEntry(el: Element | undefined): SignedCatalogEntry {
  if (!el || !el.is('entry', ICNS.CATALOG)) return malformed('entry', `is not an entry in '${ICNS.CATALOG}'`);
  checkSize(el, 'entry');
  const p = 'entry';
  const capacity = child(el, 'capacity', p);
  const terms = child(el, 'terms', p);
  const migrationEls = el.getChildren('migration');
  if (migrationEls.length > 1) malformed(`${p}/migration`, 'appears more than once');
  const migration = migrationEls.length === 0 ? undefined : normalizeMigrationAdvert(parseMigrationAdvert(migrationEls[0] as Element, `${p}/migration`));
  const entry: CatalogEntry = {
    cloudId: attr(el, 'cloud', p, CLOUD_ID_RE),
    jid: attr(el, 'jid', p, BARE_JID_RE),
    regions: texts(el, 'region', p, TOKEN_RE),
    hypervisors: texts(el, 'hypervisor', p, TOKEN_RE),
    formats: texts(el, 'format', p, TOKEN_RE),
    capabilities: texts(el, 'capability', p, CAPABILITY_RE) as Capability[],
    capacity: {
      vcpus: numAttr(capacity, 'vcpus', `${p}/capacity`),
      memoryMiB: numAttr(capacity, 'memory-mib', `${p}/capacity`),
      diskGiB: numAttr(capacity, 'disk-gib', `${p}/capacity`),
      objectStorageGiB: numAttr(capacity, 'object-storage-gib', `${p}/capacity`),
    },
    terms: {
      currency: attr(terms, 'currency', `${p}/terms`, CURRENCY_RE),
      pricePerVcpuHour: numAttr(terms, 'vcpu-hour', `${p}/terms`, { decimal: true }),
      pricePerGbMonth: numAttr(terms, 'gb-month', `${p}/terms`, { decimal: true }),
    },
    transferUri: attr(child(el, 'transfer', p), 'uri', `${p}/transfer`, URI_RE),
    certificateSha256: attr(child(el, 'certificate', p), 'sha256', `${p}/certificate`, FINGERPRINT_RE),
    updated: timeAttr(el, 'updated', p),
    ...(migration === undefined ? {} : { migration }),
  };
  if (entry.regions.length === 0) malformed(`${p}/region`, 'is missing (at least one region)');
  return { entry, signature: readSignature(el, p) };
}

/** What `discoverPeers` filters on; every given criterion must hold. */
export interface PeerFilter {
  readonly capability?: Capability;
  readonly region?: string;
  readonly minVcpus?: number;
  readonly minMemoryMiB?: number;
  readonly minDiskGiB?: number;
  readonly minObjectStorageGiB?: number;
  readonly format?: string;
  readonly hypervisor?: string;
  /** Leave this cloud out (normally the caller's own). */
  readonly excludeCloud?: string;
}

/** Whether `entry` satisfies `filter` (pure; no presence or trust considered). */
export function matchesFilter(entry: CatalogEntry, filter: PeerFilter): boolean {
  if (filter.excludeCloud !== undefined && entry.cloudId === filter.excludeCloud) return false;
  if (filter.capability !== undefined && !entry.capabilities.includes(filter.capability)) return false;
  if (filter.region !== undefined && !entry.regions.includes(filter.region)) return false;
  if (filter.format !== undefined && !entry.formats.includes(filter.format)) return false;
  if (filter.hypervisor !== undefined && !entry.hypervisors.includes(filter.hypervisor)) return false;
  if (filter.minVcpus !== undefined && entry.capacity.vcpus < filter.minVcpus) return false;
  if (filter.minMemoryMiB !== undefined && entry.capacity.memoryMiB < filter.minMemoryMiB) return false;
  if (filter.minDiskGiB !== undefined && entry.capacity.diskGiB < filter.minDiskGiB) return false;
  if (filter.minObjectStorageGiB !== undefined && entry.capacity.objectStorageGiB < filter.minObjectStorageGiB) return false;
  return true;
}
