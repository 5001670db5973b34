/**
 * The storage policy admission applies (issue 14), from the config's `storage` section. Pure.
 */
import type { StoragePolicy } from '../admission/index.js';
import type { AgentConfig } from '../config/index.js';

const DAY_MS = 86_400_000;

/** The {@link StoragePolicy} of a config's storage section; `undefined` (no storage offers taken) without one. */
export function storagePolicyOf(storage: AgentConfig['storage']): StoragePolicy | undefined {
  if (!storage) return undefined;
  return {
    regions: Object.fromEntries(Object.entries(storage.regions).map(([region, s]) => [region, { maxReplicas: s.maxReplicas }])),
    maxDurationMs: storage.maxSubcontractDays * DAY_MS,
    ...(storage.maxObjectsPerSubcontract === undefined ? {} : { maxObjectsPerSubcontract: storage.maxObjectsPerSubcontract }),
  };
}
