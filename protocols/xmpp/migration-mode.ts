/**
 * Migration modes on the wire (issue 15): `cold` (stop, copy, boot), `warm` (disks pre-copied
 * while the VM runs, then a short stop and a boot at the target) and `live` (warm, plus the VM's
 * memory and device state saved and restored: the guest does not reboot).
 *
 * - A catalog entry says which modes a cloud takes at all and, for `live`, what it can restore
 *   (hypervisor, version, machine types): `<migration><mode/>…<restore …><machine …/></restore></migration>`.
 * - An offer says the mode the source wants and, for `live`, what the VM's saved state needs:
 *   `<migration mode='live'><state hypervisor arch machine/></migration>`.
 * - An accept names the mode the target agreed to (`<accept mode='live'>`).
 *
 * An absent field means `cold`, and `cold` is never written: what a cold offer, accept or entry
 * signs is exactly what it signed before modes existed, so old peers interoperate. A peer that
 * does not know modes cannot verify a payload that names one (it reads the XML without it), so
 * it refuses a warm or live offer rather than running it cold. Pure codecs, no I/O.
 */
import { xml, type Element } from '@xmpp/client';
import { attr, child, malformed, optAttr, oversized, texts, TOKEN_RE } from './fields.js';

/** The modes, best last (`live` > `warm` > `cold`). */
export const MIGRATION_MODES = ['cold', 'warm', 'live'] as const;
/** One of {@link MIGRATION_MODES}. */
export type MigrationMode = (typeof MIGRATION_MODES)[number];

/** At most this many machine types in a restore advertisement (QEMU 7.2 lists ~50 for x86_64). */
export const MAX_RESTORE_MACHINES = 256;

const MODE_RE = /^(cold|warm|live)$/;

/** What a VM's saved state needs of the host that restores it (the adapter's `StateRequirements`). */
export interface StateNeeds {
  readonly hypervisor: string;
  readonly arch: string;
  readonly machine: string;
}

/** One machine type a target can restore onto. */
export interface RestoreMachine {
  readonly arch: string;
  readonly machine: string;
  readonly alias?: string;
}

/** What a target can restore (the adapter's `RestoreTarget`, as advertised). */
export interface RestoreAdvert {
  readonly hypervisor: string;
  readonly version?: string;
  readonly machines: readonly RestoreMachine[];
}

/** What a catalog entry advertises about migrations into the cloud. */
export interface MigrationAdvert {
  /** The modes the cloud takes (always at least one; `cold` when the entry names none). */
  readonly modes: readonly MigrationMode[];
  /** What it can restore a saved state onto; required when `modes` has `live`. */
  readonly restore?: RestoreAdvert;
}

/** The mode's rank: 0 for `cold`, 1 for `warm`, 2 for `live` (a higher rank is the better mode). */
export function modeRank(mode: MigrationMode): number {
  return MIGRATION_MODES.indexOf(mode);
}

/** The modes a catalog entry's advert says the cloud takes: `['cold']` when it has none. */
export function advertisedModes(advert: MigrationAdvert | undefined): readonly MigrationMode[] {
  return advert === undefined ? ['cold'] : advert.modes;
}

/** `<state hypervisor arch machine/>`. */
export function buildStateNeeds(needs: StateNeeds): Element {
  return xml('state', { hypervisor: needs.hypervisor, arch: needs.arch, machine: needs.machine });
}

/** Reads `<state/>`; throws `XMPP_MALFORMED` naming the bad field. */
export function parseStateNeeds(el: Element, path: string): StateNeeds {
  return { hypervisor: attr(el, 'hypervisor', path, TOKEN_RE), arch: attr(el, 'arch', path, TOKEN_RE), machine: attr(el, 'machine', path, TOKEN_RE) };
}

/** A mode attribute; `undefined` when absent. */
export function modeAttr(el: Element, path: string): MigrationMode | undefined {
  return optAttr(el, 'mode', path, MODE_RE) as MigrationMode | undefined;
}

/** `<migration><mode/>…<restore hypervisor version><machine arch name alias/>…</restore></migration>`. */
export function buildMigrationAdvert(advert: MigrationAdvert): Element {
  const r = advert.restore;
  return xml(
    'migration',
    {},
    ...advert.modes.map((m) => xml('mode', {}, m)),
    ...(r === undefined ? [] : [xml(
      'restore',
      { hypervisor: r.hypervisor, version: r.version },
      ...r.machines.map((m) => xml('machine', { arch: m.arch, name: m.machine, alias: m.alias })),
    )]),
  );
}

/**
 * Reads a `<migration/>` advert: at least one mode, none twice; `live` only with a `<restore/>`
 * naming at least one machine type; at most {@link MAX_RESTORE_MACHINES} of them.
 */
export function parseMigrationAdvert(el: Element, path: string): MigrationAdvert {
  const modes = texts(el, 'mode', path, MODE_RE) as MigrationMode[];
  if (modes.length === 0) malformed(`${path}/mode`, 'is missing (at least one mode)');
  if (new Set(modes).size !== modes.length) malformed(`${path}/mode`, 'names a mode twice');
  const restoreEls = el.getChildren('restore');
  if (restoreEls.length > 1) malformed(`${path}/restore`, 'appears more than once');
  if (restoreEls.length === 0) {
    if (modes.includes('live')) malformed(`${path}/restore`, "is missing (mode 'live' needs it)");
    return { modes };
  }
  const r = child(el, 'restore', path);
  const rp = `${path}/restore`;
  const machineEls = r.getChildren('machine');
  if (machineEls.length > MAX_RESTORE_MACHINES) throw oversized(`${rp}/machine`, `has more than ${MAX_RESTORE_MACHINES} entries`);
  if (machineEls.length === 0) malformed(`${rp}/machine`, 'is missing (at least one machine type)');
  const version = optAttr(r, 'version', rp, TOKEN_RE);
  return {
    modes,
    restore: {
      hypervisor: attr(r, 'hypervisor', rp, TOKEN_RE),
      ...(version === undefined ? {} : { version }),
      machines: machineEls.map((m, i) => {
        const alias = optAttr(m, 'alias', `${rp}/machine[${i}]`, TOKEN_RE);
        return {
          arch: attr(m, 'arch', `${rp}/machine[${i}]`, TOKEN_RE),
          machine: attr(m, 'name', `${rp}/machine[${i}]`, TOKEN_RE),
          ...(alias === undefined ? {} : { alias }),
        };
      }),
    },
  };
}

/** The advert as signed and sent: `undefined` when it says only `cold` with nothing to restore (absent = cold). */
export function normalizeMigrationAdvert(advert: MigrationAdvert | undefined): MigrationAdvert | undefined {
  if (advert === undefined) return undefined;
  if (advert.restore === undefined && advert.modes.length === 1 && advert.modes[0] === 'cold') return undefined;
  return advert;
}
