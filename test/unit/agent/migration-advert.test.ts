/**
 * The catalog advert of the modes this cloud takes (issue 15), from its adapter's capabilities
 * (never its kind) and the operator's `migration.restoreMachines`: `warm` when the adapter links
 * received chains, `live` only for the machine types the operator lets it restore; what the
 * advert leaves out is refused at admission and passed over (or fallen back from) at the source.
 */
import { describe, expect, it } from 'vitest';
import { createHypervisor, type Hypervisor } from '../../../adapters/hypervisor/index.js';
import { admitMode } from '../../../agent/admission/index.js';
import { migrationAdvertOf } from '../../../agent/daemon/migration-advert.js';
import { chooseMode } from '../../../agent/migration/modes.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import type { Offer } from '../../../protocols/xmpp/index.js';

/** The fake, its storage a local directory (as a libvirt dir pool's). */
const fakeHv = (): Hypervisor => Object.assign(
  createHypervisor('fake', { name: 'b', diskBytes: 1 << 20, guestsIgnoreShutdown: false }),
  { localStorageDir: async () => '/pool' },
);
/** The one machine type the fake runs. */
const FAKE_MACHINE = { arch: 'x86_64', machine: 'fake-1' };
const state = { hypervisor: 'fake', ...FAKE_MACHINE };
const offer = (mode: 'warm' | 'live'): Offer => ({
  offerId: 'o1', vm: { name: 'web1', vcpus: 1, memoryBytes: 1 << 27, macs: [], disks: [], addresses: [] }, mode, ...(mode === 'live' ? { state } : {}),
} as unknown as Offer);
const source = { changeTracking: true, stateCapture: true, state };

describe('migration advert', () => {
  it('advertises warm and live from the capabilities, every machine type by default', async () => {
    const advert = await migrationAdvertOf(fakeHv());
    expect(advert?.modes).toEqual(['cold', 'warm', 'live']);
    expect(advert?.restore?.machines).toEqual([FAKE_MACHINE]);
    expect(admitMode({ offer: offer('warm'), takes: advert })).toBeUndefined();
    expect(admitMode({ offer: offer('live'), takes: advert })).toBeUndefined();
  });

  it('restoreMachines leaves out the others: live is refused before any cut-over, warm taken with the fallback', async () => {
    const advert = await migrationAdvertOf(fakeHv(), { restoreMachines: ['pc-q35-9.9'] });
    expect(advert?.modes).toEqual(['cold', 'warm']);
    expect(advert?.restore).toBeUndefined();
    expect(admitMode({ offer: offer('live'), takes: advert })).toMatchObject({ verdict: 'reject', reason: 'unsupported-mode' });
    expect(admitMode({ offer: offer('warm'), takes: advert })).toBeUndefined();
    const target = { cloudId: 'cloud-b', advert: advert! };
    const choice = chooseMode({ vm: 'web1', request: { mode: 'live', fallback: 'warm' }, source, target });
    expect(choice).toMatchObject({ mode: 'warm', fellBack: true, passedOver: [{ mode: 'live', why: 'target-mode' }] });
    let code: string | undefined;
    try { chooseMode({ vm: 'web1', request: { mode: 'live' }, source, target }); } catch (e) { code = isIntercloudError(e) ? e.code : String(e); }
    expect(code).toBe('MIGRATE_MODE_UNSUPPORTED');
    // An allowed machine type keeps live.
    expect((await migrationAdvertOf(fakeHv(), { restoreMachines: [FAKE_MACHINE.machine] }))?.modes).toEqual(['cold', 'warm', 'live']);
  });
});
