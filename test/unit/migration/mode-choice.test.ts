/**
 * Choosing the migration mode at the source (issue 15): the best mode both sides support
 * (live > warm > cold), or the one the operator asked for, falling back only as far as the
 * operator allowed; a coded refusal that says why. The source's support comes from the fake
 * hypervisor's capability accessors; the target's adverts are made by hand.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createHypervisor, type Hypervisor } from '../../../adapters/hypervisor/index.js';
import { chooseMode, offerModeFields, sourceModeSupport, type SourceModeSupport } from '../../../agent/migration/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import type { MigrationAdvert } from '../../../protocols/xmpp/index.js';
import { sampleImage, sampleVm } from '../../conformance/hypervisor/suite.js';

async function fakeWithVm(): Promise<Hypervisor> {
  const hv = createHypervisor('fake', { name: 'a', diskBytes: 64 * 1024 * 1024, guestsIgnoreShutdown: false });
  const img = sampleImage(64 * 1024);
  await hv.importVm(sampleVm('web1', { disks: [{ capacityBytes: img.length, bus: 'virtio' }] }), [{ source: Readable.from([img]), sizeBytes: img.length, format: 'raw' }]);
  await hv.startVm('web1');
  return hv;
}

function errorOf(fn: () => unknown): { code: string; details: Record<string, unknown>; message: string } | undefined {
  try {
    fn();
  } catch (err) {
    if (isIntercloudError(err)) return { code: err.code, details: err.details as Record<string, unknown>, message: err.message };
    throw err;
  }
  return undefined;
}

const NEEDS = { hypervisor: 'qemu', arch: 'x86_64', machine: 'pc-i440fx-7.2' };
const FULL: SourceModeSupport = { changeTracking: true, stateCapture: true, state: NEEDS };
const RESTORE = { hypervisor: 'qemu', version: '7.2.19', machines: [{ arch: 'x86_64', machine: 'pc-i440fx-7.2', alias: 'pc' }] };
const ALL: MigrationAdvert = { modes: ['cold', 'warm', 'live'], restore: RESTORE };
const target = (advert?: MigrationAdvert) => ({ cloudId: 'cloud-b', ...(advert === undefined ? {} : { advert }) });

describe('what the source can do, from the adapter\'s capability accessors', () => {
  it('the fake tracks changes and captures state, and names what its saved state needs', async () => {
    const hv = await fakeWithVm();
    const s = await sourceModeSupport(hv, 'web1');
    expect(s).toEqual({ changeTracking: true, stateCapture: true, state: { hypervisor: 'fake', arch: 'x86_64', machine: 'fake-1' } });
  });

  it('an adapter that declares no capabilities can move cold only (no state asked)', async () => {
    const hv = await fakeWithVm();
    Object.defineProperty(hv, 'capabilities', { value: {} });
    expect(await sourceModeSupport(hv, 'web1')).toEqual({ changeTracking: false, stateCapture: false });
  });

  it('the fake moves live to a target that restores its machine type', async () => {
    const source = await sourceModeSupport(await fakeWithVm(), 'web1');
    const fakeTarget: MigrationAdvert = { modes: ['cold', 'warm', 'live'], restore: { hypervisor: 'fake', version: '1', machines: [{ arch: 'x86_64', machine: 'fake-1' }] } };
    expect(chooseMode({ vm: 'web1', request: {}, source, target: target(fakeTarget) })).toMatchObject({ mode: 'live', state: source.state, fellBack: false });
    // A qemu target cannot restore the fake's state: warm is the best both support.
    expect(chooseMode({ vm: 'web1', request: {}, source, target: target(ALL) })).toMatchObject({ mode: 'warm', fellBack: false });
  });
});

describe('choosing the mode', () => {
  it('without a request: the best both support, down to cold', () => {
    expect(chooseMode({ vm: 'web1', request: {}, source: FULL, target: target(ALL) }).mode).toBe('live');
    expect(chooseMode({ vm: 'web1', request: {}, source: FULL, target: target({ modes: ['cold', 'warm'] }) }).mode).toBe('warm');
    expect(chooseMode({ vm: 'web1', request: {}, source: FULL, target: target() }).mode).toBe('cold');
    expect(chooseMode({ vm: 'web1', request: {}, source: { changeTracking: true, stateCapture: false }, target: target(ALL) }).mode).toBe('warm');
    expect(chooseMode({ vm: 'web1', request: {}, source: { changeTracking: false, stateCapture: false }, target: target(ALL) }).mode).toBe('cold');
  });

  it('says which better modes it passed over and why', () => {
    const c = chooseMode({ vm: 'web1', request: {}, source: FULL, target: target({ modes: ['cold', 'warm', 'live'], restore: { hypervisor: 'qemu', machines: [{ arch: 'x86_64', machine: 'pc-q35-7.2' }] } }) });
    expect(c.mode).toBe('warm');
    expect(c.passedOver).toEqual([expect.objectContaining({ mode: 'live', why: 'target-machine' })]);
    expect(c.state).toBeUndefined();
  });

  it('the requested mode when both support it, even below the best', () => {
    expect(chooseMode({ vm: 'web1', request: { mode: 'cold' }, source: FULL, target: target(ALL) })).toMatchObject({ mode: 'cold', fellBack: false });
    expect(chooseMode({ vm: 'web1', request: { mode: 'warm' }, source: FULL, target: target(ALL) })).toMatchObject({ mode: 'warm', fellBack: false });
  });

  it('refuses a requested live move the target cannot restore, naming the machine type: MIGRATE_MODE_UNSUPPORTED', () => {
    const e = errorOf(() => chooseMode({ vm: 'web1', request: { mode: 'live' }, source: { ...FULL, state: { ...NEEDS, machine: 'pc-q35-9.0' } }, target: target(ALL) }));
    expect(e?.code).toBe('MIGRATE_MODE_UNSUPPORTED');
    expect(e?.message).toContain("cannot restore machine type 'pc-q35-9.0'");
    expect(e?.message).toContain("'cloud-b'");
    expect(e?.details).toMatchObject({ requested: 'live', refused: [expect.objectContaining({ mode: 'live', why: 'target-machine' })] });
  });

  it('falls back from live to warm only when the operator allowed it', () => {
    const input = { vm: 'web1', source: FULL, target: target({ modes: ['cold', 'warm'] }) } as const;
    expect(errorOf(() => chooseMode({ ...input, request: { mode: 'live' } }))?.code).toBe('MIGRATE_MODE_UNSUPPORTED');
    expect(chooseMode({ ...input, request: { mode: 'live', fallback: 'warm' } })).toMatchObject({
      mode: 'warm', fellBack: true, passedOver: [expect.objectContaining({ mode: 'live', why: 'target-mode' })],
    });
    // Allowed down to warm is not allowed down to cold.
    expect(errorOf(() => chooseMode({ ...input, target: target(), request: { mode: 'live', fallback: 'warm' } }))?.details)
      .toMatchObject({ refused: [expect.objectContaining({ mode: 'live' }), expect.objectContaining({ mode: 'warm' })] });
    expect(chooseMode({ ...input, target: target(), request: { mode: 'live', fallback: 'cold' } })).toMatchObject({ mode: 'cold', fellBack: true });
  });

  it('refuses warm or live from a source whose adapter cannot do them', () => {
    expect(errorOf(() => chooseMode({ vm: 'web1', request: { mode: 'warm' }, source: { changeTracking: false, stateCapture: false }, target: target(ALL) }))?.details)
      .toMatchObject({ refused: [expect.objectContaining({ why: 'source-no-change-tracking' })] });
    expect(errorOf(() => chooseMode({ vm: 'web1', request: { mode: 'live' }, source: { changeTracking: true, stateCapture: false }, target: target(ALL) }))?.details)
      .toMatchObject({ refused: [expect.objectContaining({ why: 'source-no-state-capture' })] });
  });

  it('does not offer a mode the target already refused at the offer (its advert was stale)', () => {
    const c = chooseMode({ vm: 'web1', request: { mode: 'live', fallback: 'warm' }, source: FULL, target: { ...target(ALL), refused: ['live'] } });
    expect(c).toMatchObject({ mode: 'warm', fellBack: true, passedOver: [expect.objectContaining({ mode: 'live', why: 'target-refused' })] });
  });

  it('refuses a fallback above the requested mode as a bad request: MIGRATE_BAD_MODE_REQUEST', () => {
    expect(errorOf(() => chooseMode({ vm: 'web1', request: { mode: 'warm', fallback: 'live' }, source: FULL, target: target(ALL) }))?.code).toBe('MIGRATE_BAD_MODE_REQUEST');
    expect(errorOf(() => chooseMode({ vm: 'web1', request: { fallback: 'warm' }, source: FULL, target: target() }))?.code).toBe('MIGRATE_MODE_UNSUPPORTED');
  });

  it('gives the offer its mode fields: state for live only, nothing for cold', () => {
    expect(offerModeFields(chooseMode({ vm: 'web1', request: {}, source: FULL, target: target(ALL) }))).toEqual({ mode: 'live', state: NEEDS });
    expect(offerModeFields(chooseMode({ vm: 'web1', request: { mode: 'warm' }, source: FULL, target: target(ALL) }))).toEqual({ mode: 'warm' });
    expect(offerModeFields(chooseMode({ vm: 'web1', request: {}, source: FULL, target: target() }))).toEqual({});
  });
});
