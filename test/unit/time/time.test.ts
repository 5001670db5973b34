import { describe, expect, it } from 'vitest';
import { checkClockSkew, judgePeers, parseChronyTracking, parsePmcTimeStatus } from '../../../protocols/time/index.js';

// Captured from chrony 4.3 (`chronyc -c tracking`) on this project's services (chronyd -x synced to a local chronyd).
const CHRONY = '7F000001,127.0.0.1,9,1795613400.538203876,-0.000001282,-0.000000044,0.000000287,-0.020,-0.001,0.093,0.000005979,0.000001974,1.1,Normal\n';
// The same daemon's text form said: "System time : 0.000001282 seconds fast of NTP time", "Frequency : 0.020 ppm slow".
const CHRONY_UNSYNCED = '00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n';
// Captured from linuxptp 3.1.1 (`pmc -u -b 0 'GET TIME_STATUS_NP'`) against ptp4l -S on lo.
const PMC = `sending: GET TIME_STATUS_NP
\t000000.fffe.000000-0 seq 0 RESPONSE MANAGEMENT TIME_STATUS_NP 
\t\tmaster_offset              0
\t\tingress_time               0
\t\tcumulativeScaledRateOffset +0.000000000
\t\tscaledLastGmPhaseChange    0
\t\tgmTimeBaseIndicator        0
\t\tlastGmPhaseChange          0x0000'0000000000000000.0000
\t\tgmPresent                  false
\t\tgmIdentity                 000000.fffe.000000
`;

describe('chronyc -c tracking', () => {
  it('parses a synchronised daemon with signs as chronyc\'s text form states them', () => {
    const t = parseChronyTracking(CHRONY);
    expect(t).toMatchObject({
      source: 'chrony', referenceId: '7F000001', referenceName: '127.0.0.1', stratum: 9, leapStatus: 'Normal', synchronized: true,
      referenceTimeMs: 1795613400538.2039,
    });
    expect(t.systemOffsetMs).toBeCloseTo(0.001282, 9); // "fast of NTP time" → positive
    expect(t.frequencyPpm).toBeCloseTo(-0.02, 9); // "0.020 ppm slow" → negative
    expect(t.rootDelayMs).toBeCloseTo(0.005979, 9);
    expect(t.updateIntervalSeconds).toBe(1.1);
  });

  it('reports an unsynchronised daemon', () => {
    expect(parseChronyTracking(CHRONY_UNSYNCED)).toMatchObject({ synchronized: false, referenceTimeMs: null, stratum: 0 });
  });

  it('refuses other output with TIME_BAD_OUTPUT', () => {
    expect(() => parseChronyTracking('506 Cannot talk to daemon\n')).toThrow(expect.objectContaining({ code: 'TIME_BAD_OUTPUT' }));
    expect(() => parseChronyTracking(CHRONY.replace('9,', 'x,'))).toThrow(expect.objectContaining({ code: 'TIME_BAD_OUTPUT', details: expect.objectContaining({ field: 'stratum' }) }));
  });
});

describe('pmc GET TIME_STATUS_NP', () => {
  it('parses the response block', () => {
    expect(parsePmcTimeStatus(PMC)).toEqual({
      source: 'ptp', portIdentity: '000000.fffe.000000-0', masterOffsetMs: 0, ingressTime: '0', cumulativeScaledRateOffset: 0,
      gmPresent: false, gmIdentity: '000000.fffe.000000', synchronized: false,
    });
    const synced = PMC.replace('master_offset              0', 'master_offset              -1250').replace('gmPresent                  false', 'gmPresent                  true');
    expect(parsePmcTimeStatus(synced)).toMatchObject({ masterOffsetMs: -0.00125, gmPresent: true, synchronized: true });
  });

  it('no response (ptp4l not running) is TIME_NO_DAEMON; a missing field is TIME_BAD_OUTPUT', () => {
    expect(() => parsePmcTimeStatus('sending: GET TIME_STATUS_NP\n')).toThrow(expect.objectContaining({ code: 'TIME_NO_DAEMON' }));
    expect(() => parsePmcTimeStatus(PMC.replace(/\t\tgmPresent.*\n/, ''))).toThrow(expect.objectContaining({ code: 'TIME_BAD_OUTPUT' }));
  });
});

describe('clock-skew policy', () => {
  it('passes offsets within the bound, either sign', () => {
    expect(() => checkClockSkew(1999, 2000)).not.toThrow();
    expect(() => checkClockSkew(-2000, 2000)).not.toThrow();
  });

  it('refuses beyond the bound with TIME_CLOCK_SKEW and reason clock-skew', () => {
    expect(() => checkClockSkew(-2500, 2000, { peer: 'cloud-b@intercloud.test' })).toThrow(expect.objectContaining({
      code: 'TIME_CLOCK_SKEW', retryable: true, details: { reason: 'clock-skew', offsetMs: -2500, boundMs: 2000, peer: 'cloud-b@intercloud.test' },
    }));
  });

  it('gives half the round trip the benefit of the doubt', () => {
    expect(() => checkClockSkew(2300, 2000, { roundTripMs: 800 })).not.toThrow();
    expect(() => checkClockSkew(2500, 2000, { roundTripMs: 800 })).toThrow(expect.objectContaining({ code: 'TIME_CLOCK_SKEW' }));
  });

  it('refuses unusable numbers (NaN offset) rather than passing them', () => {
    expect(() => checkClockSkew(Number.NaN, 2000)).toThrow(expect.objectContaining({ code: 'TIME_CLOCK_SKEW', retryable: false }));
  });

  it('judges a list of peers', () => {
    const at = 1_700_000_000_000;
    expect(judgePeers([
      { peer: 'a', offsetMs: 10, roundTripMs: 4, measuredAt: at },
      { peer: 'b', offsetMs: -5000, roundTripMs: 4, measuredAt: at },
    ], 2000).map((p) => [p.peer, p.withinBound])).toEqual([['a', true], ['b', false]]);
  });
});
