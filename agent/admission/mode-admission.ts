/**
 * Admission of an offer's migration mode (issue 15), pure: a target takes the modes it
 * advertises (absent: `cold` only) and a `live` offer only when its host can restore the VM's
 * saved state (`canRestore`: the same hypervisor, the exact machine type on the same
 * architecture). Anything else is refused `unsupported-mode` before any cut-over, so the
 * source can fall back to a lower mode when its operator allowed it. The same check, as a
 * coded {@link ModeRefusal}, is what the source asks of a target's catalog advert
 * (`agent/migration/modes.ts`).
 */
import { canRestore } from '../../adapters/hypervisor/index.js';
import {
  advertisedModes, type AdmissionRefusal, type MigrationAdvert, type MigrationMode, type Offer, type StateNeeds,
} from '../../protocols/xmpp/index.js';

/** Why a mode cannot be used, as a code a caller branches on. */
export type ModeRefusalReason =
  /** The source's adapter cannot track disk changes (no pre-copy: neither warm nor live). */
  | 'source-no-change-tracking'
  /** The source's adapter cannot save a VM's memory and device state (no live). */
  | 'source-no-state-capture'
  /** The target does not advertise the mode. */
  | 'target-mode'
  /** The target advertises live but nothing it can restore onto. */
  | 'target-no-restore'
  /** The target restores onto another hypervisor than the one the state was saved from. */
  | 'target-hypervisor'
  /** The target does not run the state's exact machine type on its architecture. */
  | 'target-machine'
  /** A live move was asked without the state's needs. */
  | 'no-state-needs'
  /** The target refused the mode when offered (`unsupported-mode`), whatever its advert said. */
  | 'target-refused';

/** One mode that cannot be used, and why (lowercase text naming the values). */
export interface ModeRefusal {
  readonly mode: MigrationMode;
  readonly why: ModeRefusalReason;
  readonly text: string;
}

/**
 * Whether a target whose advert is `takes` can take `mode` (for `live`, a VM whose saved state
 * needs `state`); `undefined` when it can, else why not.
 */
export function targetModeRefusal(takes: MigrationAdvert | undefined, mode: MigrationMode, state?: StateNeeds): ModeRefusal | undefined {
  const modes = advertisedModes(takes);
  if (!modes.includes(mode)) return { mode, why: 'target-mode', text: `does not take '${mode}' migrations (it takes ${modes.map((m) => `'${m}'`).join(', ')})` };
  if (mode !== 'live') return undefined;
  if (state === undefined) return { mode, why: 'no-state-needs', text: "a 'live' move needs the saved state's hypervisor, architecture and machine type" };
  const restore = takes?.restore;
  if (restore === undefined) return { mode, why: 'target-no-restore', text: 'advertises no hypervisor or machine type it can restore a saved state onto' };
  if (canRestore(restore, state)) return undefined;
  if (restore.hypervisor !== state.hypervisor) {
    return { mode, why: 'target-hypervisor', text: `cannot restore a state saved by hypervisor '${state.hypervisor}' (it runs '${restore.hypervisor}')` };
  }
  const onArch = restore.machines.filter((m) => m.arch === state.arch).map((m) => m.machine);
  const runs = onArch.length === 0 ? `no '${state.arch}' machine types` : `${onArch.slice(0, 8).map((m) => `'${m}'`).join(', ')}${onArch.length > 8 ? ', …' : ''}`;
  return {
    mode, why: 'target-machine',
    text: `cannot restore machine type '${state.machine}' on '${state.arch}' (${restore.hypervisor}${restore.version === undefined ? '' : ` ${restore.version}`} runs ${runs})`,
  };
}

/** What {@link admitMode} looks at. */
export interface ModeAdmissionInput {
  readonly offer: Offer;
  /** What this cloud takes (its catalog advert); `undefined`: cold only. */
  readonly takes: MigrationAdvert | undefined;
}

/**
 * Refuses an offer whose mode this cloud does not take, or a live offer whose saved state its
 * host cannot restore: `unsupported-mode` (a live offer without state needs: `malformed`).
 * `undefined`: go on.
 */
export function admitMode(input: ModeAdmissionInput): AdmissionRefusal | undefined {
  const { offer, takes } = input;
  const mode = offer.mode ?? 'cold';
  const refusal = targetModeRefusal(takes, mode, offer.state);
  if (refusal === undefined) return undefined;
  return {
    verdict: 'reject',
    reason: refusal.why === 'no-state-needs' ? 'malformed' : 'unsupported-mode',
    text: `offer '${offer.offerId}': this cloud ${refusal.text}`,
  };
}
