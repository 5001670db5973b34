/**
 * Choosing a migration's mode at the source (issue 15): `cold`, `warm` (disks pre-copied while
 * the VM runs, a short stop, a boot at the target) or `live` (warm, plus memory and device
 * state saved and restored: no reboot). The source's support comes from its adapter's optional
 * capabilities (never its kind); the target's from its signed catalog advert. The choice is a
 * pure function; the offer then carries the mode (and, for live, the state's needs) and the
 * target re-checks it at admission (`agent/admission`, `admitMode`).
 */
import { changeTracking, stateCapture, type CallOptions, type Hypervisor } from '../../adapters/hypervisor/index.js';
import { IntercloudError } from '../../protocols/errors/index.js';
import {
  MIGRATION_MODES, modeRank, type MigrationAdvert, type MigrationMode, type Offer, type StateNeeds,
} from '../../protocols/xmpp/index.js';
import { targetModeRefusal, type ModeRefusal } from '../admission/index.js';
import type { MIGRATION_ERRORS } from './source.js';

/** What the source's adapter can do for one VM. */
export interface SourceModeSupport {
  /** Disk change tracking (pre-copy): needed by `warm` and `live`. */
  readonly changeTracking: boolean;
  /** Memory and device state capture: needed by `live`. */
  readonly stateCapture: boolean;
  /** What the VM's saved state needs of the target's host (when the adapter captures state). */
  readonly state?: StateNeeds;
}

/**
 * The source's support for moving `vm`, from the adapter's capability accessors; asks the
 * adapter for the VM's state requirements when it captures state (`HV_VM_NOT_FOUND` for an
 * unknown VM propagates).
 */
export async function sourceModeSupport(hv: Hypervisor, vm: string, options: CallOptions = {}): Promise<SourceModeSupport> {
  const capture = stateCapture(hv);
  const tracking = changeTracking(hv) !== undefined;
  if (capture === undefined) return { changeTracking: tracking, stateCapture: false };
  return { changeTracking: tracking, stateCapture: true, state: await capture.stateRequirements(vm, options) };
}

/** What the operator asked for (`intercloud migrate --mode … --fallback …`). */
export interface ModeRequest {
  /** The mode wanted; absent: the best both sides support. */
  readonly mode?: MigrationMode;
  /**
   * The lowest mode the operator accepts when `mode` cannot be used (`live` with fallback `warm`:
   * live, else warm, never cold). Absent: `mode` only; with no `mode`, down to `cold`.
   */
  readonly fallback?: MigrationMode;
}

/** What {@link chooseMode} looks at. */
export interface ModeChoiceInput {
  /** The VM's name (for messages). */
  readonly vm: string;
  readonly request: ModeRequest;
  readonly source: SourceModeSupport;
  readonly target: {
    readonly cloudId: string;
    /** The target's catalog advert; absent: cold only. */
    readonly advert?: MigrationAdvert;
    /** Modes the target already refused when offered (`unsupported-mode`): never chosen again. */
    readonly refused?: readonly MigrationMode[];
  };
}

/** The chosen mode. */
export interface ModeChoice {
  readonly mode: MigrationMode;
  /** For `live`: what the offer says the saved state needs. */
  readonly state?: StateNeeds;
  /** A lower mode than the one requested, as the operator's fallback allowed. */
  readonly fellBack: boolean;
  /** The better modes within the request that could not be used, best first, and why. */
  readonly passedOver: readonly ModeRefusal[];
}

/** Why the source cannot use `mode` itself; `undefined` when it can. */
function sourceRefusal(source: SourceModeSupport, mode: MigrationMode): ModeRefusal | undefined {
  if (mode === 'cold') return undefined;
  if (!source.changeTracking) return { mode, why: 'source-no-change-tracking', text: 'this cloud\'s hypervisor cannot track disk changes (no pre-copy)' };
  if (mode === 'live' && (!source.stateCapture || source.state === undefined)) {
    return { mode, why: 'source-no-state-capture', text: 'this cloud\'s hypervisor cannot save a vm\'s memory and device state' };
  }
  return undefined;
}

/**
 * Picks the mode: the best one (live > warm > cold) within what the operator accepts —
 * from `request.mode` (default `live`) down to `request.fallback` (default `request.mode`, or
 * `cold` when no mode was asked) — that the source's adapter can do and the target advertises
 * (for live: restores the state's exact machine type). Pure.
 *
 * Throws `MIGRATE_BAD_MODE_REQUEST` for a fallback above the requested mode, and
 * `MIGRATE_MODE_UNSUPPORTED` (details: `requested`, `fallback`, `refused`: each mode tried and
 * why not) when no accepted mode can be used.
 */
export function chooseMode(input: ModeChoiceInput): ModeChoice {
  const { vm, request, source, target } = input;
  const highest = request.mode ?? 'live';
  const lowest = request.fallback ?? request.mode ?? 'cold';
  if (modeRank(lowest) > modeRank(highest)) {
    throw new IntercloudError<keyof typeof MIGRATION_ERRORS>(
      'MIGRATE_BAD_MODE_REQUEST',
      `fallback mode '${lowest}' is above the requested mode '${highest}': give a lower fallback, or none`,
      { details: { requested: highest, fallback: lowest } },
    );
  }
  const refused: ModeRefusal[] = [];
  for (let rank = modeRank(highest); rank >= modeRank(lowest); rank--) {
    const mode = MIGRATION_MODES[rank] as MigrationMode;
    const why = sourceRefusal(source, mode)
      ?? (target.refused?.includes(mode) ? { mode, why: 'target-refused' as const, text: `refused '${mode}' when offered` } : undefined)
      ?? targetModeRefusal(target.advert, mode, source.state);
    if (why !== undefined) {
      refused.push(why);
      continue;
    }
    return {
      mode,
      ...(mode === 'live' && source.state !== undefined ? { state: source.state } : {}),
      fellBack: request.mode !== undefined && mode !== request.mode,
      passedOver: refused,
    };
  }
  const reasons = refused.map((r) => `${r.mode}: ${r.why.startsWith('source-') ? r.text : `target cloud '${target.cloudId}' ${r.text}`}`);
  throw new IntercloudError<keyof typeof MIGRATION_ERRORS>(
    'MIGRATE_MODE_UNSUPPORTED',
    `cannot move vm '${vm}' to cloud '${target.cloudId}' in mode ${request.mode === undefined ? 'any' : `'${request.mode}'`}`
      + `${lowest === highest ? '' : ` down to '${lowest}'`}: ${reasons.join('; ')}`,
    { details: { requested: request.mode ?? 'best', fallback: lowest, refused } },
  );
}

/** The offer's mode fields for a choice: `mode` (none for cold) and, for live, `state`. */
export function offerModeFields(choice: ModeChoice): Pick<Offer, 'mode' | 'state'> {
  if (choice.mode === 'cold') return {};
  return { mode: choice.mode, ...(choice.mode === 'live' && choice.state !== undefined ? { state: choice.state } : {}) };
}
