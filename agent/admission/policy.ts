/**
 * Local policy for incoming offers: which clouds may send us work, per-VM limits,
 * per-cloud quotas and free capacity. Pure: admission passes in the offer, the
 * verified sender and what is already reserved.
 */
import type { Capacity, Offer, RejectReason } from '../../protocols/xmpp/index.js';

/**
 * What a policy decides about one offer. An accepted storage offer says which of the offer's
 * allowed regions this cloud stores it in (issue 14).
 */
export type PolicyDecision =
  | { readonly accept: true; readonly region?: string }
  | { readonly accept: false; readonly reason: RejectReason; readonly text: string };

/**
 * What this cloud takes as a storage subcontractor (issue 14; from the config's `storage`
 * section). It stores only in a region it has an object store configured for.
 */
export interface StoragePolicy {
  /** Region → the most replicas the object store of that region keeps. */
  readonly regions: Readonly<Record<string, { readonly maxReplicas: number }>>;
  /** Longest subcontract taken, from the offer's issue to its end (ms). */
  readonly maxDurationMs?: number;
  /** Most objects one subcontract may hold. */
  readonly maxObjectsPerSubcontract?: number;
}

/** Everything a policy may look at. */
export interface OfferContext {
  readonly offer: Offer;
  /** The sender's cloud id, as its verified certificate names it. */
  readonly senderCloud: string;
  /** Capacity still free (configured capacity minus live reservations). */
  readonly free: Capacity;
  /** What the sender already holds in live reservations. */
  readonly senderUsage: { readonly vcpus: number; readonly memoryMiB: number; readonly diskGiB: number; readonly reservations: number };
}

/**
 * A pluggable policy. Contract: both calls are pure and synchronous.
 *
 * `admitsSender` is asked first, before any signature is verified or nonce stored, with
 * the cloud the server authenticated the sending JID as: a cloud that may not send us work
 * costs no verification and leaves nothing behind. `evaluate` is called only after the
 * sender's certificate and signature were verified (so `senderCloud` is the certificate's
 * cloud), and returns a rejection reason of `policy` (not allowed) or `no-capacity`
 * (allowed, but not now).
 */
export interface NegotiationPolicy {
  admitsSender(senderCloud: string): PolicyDecision;
  evaluate(ctx: OfferContext): PolicyDecision;
}

/** Settings of {@link createDefaultPolicy}. */
export interface DefaultPolicyOptions {
  /** Cloud ids allowed to send us work; `'*'` allows every cloud the Root vouches for. */
  readonly acceptFrom: readonly string[];
  readonly maxVcpusPerVm: number;
  readonly maxMemoryMiBPerVm: number;
  /** Per sending cloud: at most this many vCPUs held in live reservations. */
  readonly quotaVcpusPerCloud?: number;
  /** Per sending cloud: at most this many live reservations. */
  readonly quotaReservationsPerCloud?: number;
  /** Storage subcontracts taken (absent: this cloud takes none). */
  readonly storage?: StoragePolicy;
}

/** What a workload needs from our capacity. */
export function workloadDemand(offer: Offer): { vcpus: number; memoryMiB: number; diskGiB: number; objectStorageGiB: number } {
  const w = offer.workload;
  if (w.type === 'vm') {
    return { vcpus: w.vcpus, memoryMiB: w.memoryMiB, diskGiB: w.disks.reduce((s, d) => s + d.sizeGiB, 0), objectStorageGiB: 0 };
  }
  // Every replica takes its own room in the store.
  return { vcpus: 0, memoryMiB: 0, diskGiB: 0, objectStorageGiB: w.capacityGiB * w.replicas };
}

/**
 * The region a storage offer goes to: the first of its allowed regions (in the offer's order of
 * preference) where this cloud has an object store keeping enough replicas; or why none fits.
 * Pure.
 */
export function chooseStorageRegion(offer: Offer, storage: StoragePolicy | undefined): PolicyDecision {
  const w = offer.workload;
  if (w.type !== 'storage') return { accept: true };
  if (!storage || Object.keys(storage.regions).length === 0) {
    return { accept: false, reason: 'policy', text: 'this cloud takes no storage subcontracts (no object store is configured)' };
  }
  const ours = offer.constraints.regions.filter((r) => Object.hasOwn(storage.regions, r));
  if (ours.length === 0) {
    return {
      accept: false, reason: 'policy',
      text: `no object store in the allowed regions ${offer.constraints.regions.map((r) => `'${r}'`).join(', ')}: this cloud stores only in ${Object.keys(storage.regions).map((r) => `'${r}'`).join(', ')}`,
    };
  }
  const region = ours.find((r) => (storage.regions[r]?.maxReplicas ?? 0) >= w.replicas);
  if (region === undefined) {
    const most = Math.max(...ours.map((r) => storage.regions[r]?.maxReplicas ?? 0));
    return { accept: false, reason: 'policy', text: `${w.replicas} replicas asked, the object stores of the allowed regions keep at most ${most}` };
  }
  if (storage.maxObjectsPerSubcontract !== undefined && w.maxObjects > storage.maxObjectsPerSubcontract) {
    return { accept: false, reason: 'policy', text: `${w.maxObjects} objects asked, at most ${storage.maxObjectsPerSubcontract} per subcontract` };
  }
  const duration = Date.parse(w.ends) - Date.parse(offer.issued);
  if (storage.maxDurationMs !== undefined && duration > storage.maxDurationMs) {
    return { accept: false, reason: 'policy', text: `the subcontract would last ${Math.ceil(duration / 1000)} s, at most ${Math.floor(storage.maxDurationMs / 1000)} s are taken` };
  }
  return { accept: true, region };
}

/** The default policy: allow-list, per-VM limits, per-cloud quotas, then capacity. */
export function createDefaultPolicy(options: DefaultPolicyOptions): NegotiationPolicy {
  const admitsSender = (senderCloud: string): PolicyDecision =>
    options.acceptFrom.includes('*') || options.acceptFrom.includes(senderCloud)
      ? { accept: true }
      : { accept: false, reason: 'policy', text: `cloud '${senderCloud}' may not send us work` };
  return {
    admitsSender,
    evaluate(ctx: OfferContext): PolicyDecision {
      const { offer, senderCloud, free, senderUsage } = ctx;
      const allowed = admitsSender(senderCloud);
      if (!allowed.accept) return allowed;
      const need = workloadDemand(offer);
      if (offer.workload.type === 'vm') {
        if (need.vcpus > options.maxVcpusPerVm) {
          return { accept: false, reason: 'policy', text: `vm has ${need.vcpus} vcpus, more than the ${options.maxVcpusPerVm} allowed` };
        }
        if (need.memoryMiB > options.maxMemoryMiBPerVm) {
          return { accept: false, reason: 'policy', text: `vm has ${need.memoryMiB} mib memory, more than the ${options.maxMemoryMiBPerVm} allowed` };
        }
      }
      // Issue 14: a storage offer needs a region with an object store here, before any capacity.
      const placed = chooseStorageRegion(offer, options.storage);
      if (!placed.accept) return placed;
      if (options.quotaReservationsPerCloud !== undefined && senderUsage.reservations + 1 > options.quotaReservationsPerCloud) {
        return { accept: false, reason: 'policy', text: `cloud '${senderCloud}' already holds ${senderUsage.reservations} reservations (quota ${options.quotaReservationsPerCloud})` };
      }
      if (options.quotaVcpusPerCloud !== undefined && senderUsage.vcpus + need.vcpus > options.quotaVcpusPerCloud) {
        return { accept: false, reason: 'policy', text: `cloud '${senderCloud}' would hold ${senderUsage.vcpus + need.vcpus} vcpus (quota ${options.quotaVcpusPerCloud})` };
      }
      if (need.vcpus > free.vcpus || need.memoryMiB > free.memoryMiB || need.diskGiB > free.diskGiB || need.objectStorageGiB > free.objectStorageGiB) {
        return { accept: false, reason: 'no-capacity', text: `not enough free capacity for offer '${offer.offerId}'` };
      }
      return placed;
    },
  };
}
