/**
 * `intercloud time` and the host readers against the real chronyd and ptp4l that
 * `scripts/services up timesync` starts on loopback (both with hands off the clock).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { readChrony, readHostTimeSync, readPtp } from '../../../protocols/time/index.js';
import { serviceEnv } from '../../helpers/services.js';

const run = promisify(execFile);

interface TimesyncEnv { chrony: { host: string; port: number }; ptp: { socket: string } }
let env: TimesyncEnv;

beforeAll(() => {
  env = serviceEnv<TimesyncEnv>('timesync');
});

describe('host time sync from the real daemons', () => {
  it('reads chronyd synchronised to the Root\'s chronyd, with a sub-millisecond offset on one clock', async () => {
    const t = await readChrony({ chronyHost: env.chrony.host, chronyPort: env.chrony.port });
    expect(t).toMatchObject({ source: 'chrony', referenceId: '7F000001', synchronized: true, leapStatus: 'Normal' });
    expect(t.stratum).toBe(9);
    expect(Math.abs(t.systemOffsetMs)).toBeLessThan(1);
  });

  it('reads ptp4l\'s TIME_STATUS_NP through pmc', async () => {
    const p = await readPtp({ pmcSocket: env.ptp.socket });
    expect(p.source).toBe('ptp');
    expect(p.portIdentity).toMatch(/^[0-9a-f]{6}\.[0-9a-f]{4}\.[0-9a-f]{6}-\d+$/);
    expect(Number.isFinite(p.masterOffsetMs)).toBe(true);
  });

  it('auto falls back to ptp4l when chronyd does not answer, and fails with TIME_NO_DAEMON when neither does', async () => {
    const p = await readHostTimeSync({ chronyHost: '127.0.0.1', chronyPort: 11399, pmcSocket: env.ptp.socket, timeoutMs: 3000 });
    expect(p.source).toBe('ptp');
    await expect(readHostTimeSync({ chronyHost: '127.0.0.1', chronyPort: 11399, pmcSocket: '/nonexistent/ptp4l', timeoutMs: 3000 }))
      .rejects.toMatchObject({ code: 'TIME_NO_DAEMON', retryable: true });
  });

  it('`intercloud time --json` prints the host state, and no peers when no agent runs to measure them', async () => {
    const { stdout } = await run('scripts/intercloud', ['time', '--json', '--chrony-host', env.chrony.host, '--chrony-port', String(env.chrony.port)], {
      env: { ...process.env, INTERCLOUD_SOCKET: '/nonexistent/agent.sock' },
    });
    expect(JSON.parse(stdout)).toMatchObject({ host: { source: 'chrony', synchronized: true }, peers: [], maxSkewMs: 2000 });
  });

  it('`intercloud time` with no daemon exits 4 with TIME_NO_DAEMON', async () => {
    const err = await run('scripts/intercloud', ['time', '--source', 'ptp', '--pmc-socket', '/nonexistent/ptp4l'])
      .then(() => undefined, (e: unknown) => e as { code: number; stderr: string });
    expect(err?.code).toBe(4);
    expect(err?.stderr).toContain('TIME_NO_DAEMON');
  });
});
