/**
 * Target-side admission of a migration mode (issue 15): a target refuses, before any cut-over,
 * an offer whose mode it does not take or whose saved state its host cannot restore, with the
 * coded reason `unsupported-mode`. Pure: the target's advert is given.
 */
import { describe, expect, it } from 'vitest';
import { admitMode, createDefaultPolicy, createOfferAdmission, screenOffer, targetModeRefusal } from '../../../agent/admission/index.js';
import type { MigrationAdvert, OfferSender } from '../../../protocols/xmpp/index.js';
import { sampleOffer } from '../xmpp/fixtures.js';

const NEEDS = { hypervisor: 'qemu', arch: 'x86_64', machine: 'pc-i440fx-7.2' };
const RESTORE = { hypervisor: 'qemu', version: '7.2.19', machines: [{ arch: 'x86_64', machine: 'pc-i440fx-7.2', alias: 'pc' }, { arch: 'x86_64', machine: 'pc-q35-7.2' }] };
const ALL: MigrationAdvert = { modes: ['cold', 'warm', 'live'], restore: RESTORE };
const live = (state = NEEDS) => sampleOffer({ mode: 'live', state });

describe('admitting an offer\'s migration mode', () => {
  it('takes a cold offer from any target, and from one that advertises nothing (absent = cold)', () => {
    expect(admitMode({ offer: sampleOffer(), takes: undefined })).toBeUndefined();
    expect(admitMode({ offer: sampleOffer(), takes: ALL })).toBeUndefined();
  });

  it('refuses warm and live at a target that takes only cold: unsupported-mode', () => {
    expect(admitMode({ offer: sampleOffer({ mode: 'warm' }), takes: undefined })).toMatchObject({ verdict: 'reject', reason: 'unsupported-mode' });
    expect(admitMode({ offer: live(), takes: { modes: ['cold'] } })).toMatchObject({ reason: 'unsupported-mode' });
    expect(admitMode({ offer: live(), takes: { modes: ['cold', 'warm'] } })?.text).toMatch(/does not take 'live'/);
  });

  it('takes a live offer whose machine type it runs on that architecture', () => {
    expect(admitMode({ offer: live(), takes: ALL })).toBeUndefined();
    expect(admitMode({ offer: live({ ...NEEDS, machine: 'pc-q35-7.2' }), takes: ALL })).toBeUndefined();
  });

  it('refuses a live offer whose saved state its host cannot restore, naming what is missing', () => {
    const machine = admitMode({ offer: live({ ...NEEDS, machine: 'pc-q35-9.0' }), takes: ALL });
    expect(machine).toMatchObject({ verdict: 'reject', reason: 'unsupported-mode' });
    expect(machine?.text).toContain("machine type 'pc-q35-9.0'");
    // The alias is not the machine: a state saved on 'pc' names its versioned type, never the alias.
    expect(admitMode({ offer: live({ ...NEEDS, machine: 'pc' }), takes: ALL })).toMatchObject({ reason: 'unsupported-mode' });
    expect(admitMode({ offer: live({ ...NEEDS, arch: 'aarch64' }), takes: ALL })).toMatchObject({ reason: 'unsupported-mode' });
    const hv = admitMode({ offer: live({ ...NEEDS, hypervisor: 'vmware' }), takes: ALL });
    expect(hv).toMatchObject({ reason: 'unsupported-mode' });
    expect(hv?.text).toContain("hypervisor 'vmware'");
  });

  it('refuses a live offer without state needs as malformed (the codec refuses it; a caller may build one)', () => {
    expect(admitMode({ offer: sampleOffer({ mode: 'live' }), takes: ALL })).toMatchObject({ reason: 'malformed' });
  });

  it('says why as a code the source can branch on (targetModeRefusal)', () => {
    expect(targetModeRefusal(ALL, 'live', NEEDS)).toBeUndefined();
    expect(targetModeRefusal({ modes: ['cold'] }, 'warm')).toMatchObject({ mode: 'warm', why: 'target-mode' });
    expect(targetModeRefusal({ modes: ['live'] }, 'live', NEEDS)).toMatchObject({ why: 'target-no-restore' });
    expect(targetModeRefusal(ALL, 'live', { ...NEEDS, hypervisor: 'bhyve' })).toMatchObject({ why: 'target-hypervisor' });
    expect(targetModeRefusal(ALL, 'live', { ...NEEDS, machine: 'virt-9.0' })).toMatchObject({ why: 'target-machine' });
  });
});

describe('screening an offer checks its mode before the signature', () => {
  const A: OfferSender = { local: 'cloud-a', domain: 'intercloud.test', jid: 'cloud-a@intercloud.test/gateway' };
  const open = createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 });
  const T0 = Date.parse('2026-11-25T13:01:00.000Z');
  const screen = (offer: ReturnType<typeof sampleOffer>, takes?: MigrationAdvert) =>
    screenOffer({ offer, sender: A, gatewayDomains: ['intercloud.test'], now: T0, policy: open, ...(takes === undefined ? {} : { migration: takes }) });

  it('refuses a live offer its host cannot restore, and takes one it can', () => {
    expect(screen(live({ ...NEEDS, machine: 'pc-q35-9.0' }), ALL)).toMatchObject({ reason: 'unsupported-mode' });
    expect(screen(live(), ALL)).toBeUndefined();
  });

  it('an agent that advertises no modes takes cold only', () => {
    expect(screen(sampleOffer())).toBeUndefined();
    expect(screen(sampleOffer({ mode: 'warm' }))).toMatchObject({ reason: 'unsupported-mode' });
  });

  it('the agent\'s admission port screens with the advert it is given, and with none takes cold only', () => {
    const total = { vcpus: 16, memoryMiB: 32768, diskGiB: 500, objectStorageGiB: 0 };
    const withModes = createOfferAdmission({ policy: open, domain: 'intercloud.test', capacity: total, migration: ALL });
    expect(withModes.screen(live(), A, T0)).toBeUndefined();
    expect(withModes.screen(live({ ...NEEDS, machine: 'pc-q35-9.0' }), A, T0)).toMatchObject({ reason: 'unsupported-mode' });
    const coldOnly = createOfferAdmission({ policy: open, domain: 'intercloud.test', capacity: total });
    expect(coldOnly.screen(sampleOffer(), A, T0)).toBeUndefined();
    expect(coldOnly.screen(live(), A, T0)).toMatchObject({ reason: 'unsupported-mode' });
  });

  it('asks the allow-list and the times first', () => {
    const only = createDefaultPolicy({ acceptFrom: ['cloud-b'], maxVcpusPerVm: 8, maxMemoryMiBPerVm: 16384 });
    expect(screenOffer({ offer: live(), sender: A, gatewayDomains: ['intercloud.test'], now: T0, policy: only })).toMatchObject({ reason: 'policy' });
    expect(screenOffer({ offer: live(), sender: A, gatewayDomains: ['intercloud.test'], now: T0 + 3_600_000, policy: open })).toMatchObject({ reason: 'expired' });
  });
});
