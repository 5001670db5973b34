/**
 * The migration modes this cloud advertises in its catalog entry (issue 15), from its adapter's
 * optional capabilities (never the hypervisor's kind) and the operator's setting: `warm` when
 * the adapter links a received disk chain (`chainImport`), `live` when it restores a saved
 * state (`stateRestore`) onto a machine type the operator lets it restore
 * (`migration.restoreMachines`; default every one the host runs); `cold` always. Both need the
 * hypervisor's storage to be a local directory (the images are received there). Admission
 * (`agent/admission`, `admitMode`) takes exactly what this advertises.
 */
import { chainImport, stateRestore, type Hypervisor } from '../../adapters/hypervisor/index.js';
import { MAX_RESTORE_MACHINES, type MigrationAdvert, type MigrationMode } from '../../protocols/xmpp/index.js';
import { localStorageDirOf } from './hypervisor-ports.js';

/** Options of {@link migrationAdvertOf}. */
export interface MigrationAdvertOptions {
  /**
   * The machine types (versioned names, `pc-i440fx-7.2`, or their aliases, `pc`) a saved state
   * may be restored onto here; absent: every one the host runs. None of the host's left: no `live`.
   */
  readonly restoreMachines?: readonly string[];
  readonly signal?: AbortSignal;
}

/** What this cloud takes; `undefined` when only `cold` (the catalog entry names no modes). */
export async function migrationAdvertOf(hv: Hypervisor, options: MigrationAdvertOptions = {}): Promise<MigrationAdvert | undefined> {
  const signal = options.signal ?? AbortSignal.timeout(30_000);
  const restore = stateRestore(hv);
  const link = chainImport(hv);
  if ((restore === undefined && link === undefined) || (await localStorageDirOf(hv, signal)) === undefined) return undefined;
  const allowed = options.restoreMachines === undefined ? undefined : new Set(options.restoreMachines);
  const t = restore === undefined ? undefined : await restore.restoreTarget({ signal });
  const machines = (t?.machines ?? [])
    .filter((m) => allowed === undefined || allowed.has(m.machine) || (m.alias !== undefined && allowed.has(m.alias)))
    .slice(0, MAX_RESTORE_MACHINES);
  const live = t !== undefined && machines.length > 0;
  const modes: MigrationMode[] = ['cold', ...(link === undefined ? [] : ['warm' as const]), ...(live ? ['live' as const] : [])];
  if (modes.length === 1) return undefined;
  return {
    modes,
    ...(live ? { restore: { hypervisor: t.hypervisor, ...(t.version === undefined ? {} : { version: t.version }), machines } } : {}),
  };
}
