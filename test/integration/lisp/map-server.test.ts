/**
 * The Root's map server as `scripts/services up lisp` runs it (`intercloud root map-server`
 * in its own process): the re-address sequence of a migration, the CLI, bad input that
 * must not stop it, and a map server that does not answer.
 */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Registrar, encodeLispMessage, lookupEid, registerEid, signEidHandOver, withdrawEid, type RegistrarEvent, type RegistrarOptions,
} from '../../../protocols/lisp/index.js';
import { loadGatewayIdentity } from '../../../protocols/trust/index.js';
import { service, serviceEnv } from '../../helpers/services.js';

const run = promisify(execFile);

interface LispEnv {
  host: string;
  port: number;
  pidFile: string;
  log: string;
  sites: Record<string, { keyId: number; algorithm: 'hmac-sha-1-96' | 'hmac-sha-256-128'; keyFile: string; rlocs: string[] }>;
}

let env: LispEnv;
function site(cloud: string, over: Partial<RegistrarOptions> = {}): RegistrarOptions {
  const s = env.sites[cloud]!;
  return {
    mapServer: { host: env.host, port: env.port }, keyId: s.keyId, algorithm: s.algorithm, key: readFileSync(s.keyFile, 'utf8').trim(),
    rlocs: s.rlocs, retries: 3, initialTimeoutMs: 300, ...over,
  };
}

function logSince(offset: number): Array<{ kind: string; error?: { code: string }; eids?: string[]; site?: string; acknowledged?: boolean }> {
  return readFileSync(env.log, 'utf8').slice(offset).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { kind: string });
}

function serverAlive(): boolean {
  const pid = Number(readFileSync(env.pidFile, 'utf8').trim());
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

beforeAll(() => {
  env = serviceEnv<LispEnv>('lisp');
});

describe('re-address: the target registers with the source\'s signed hand-over, the source withdraws, both confirmed by Map-Notify', () => {
  it('moves 10.77.0.5 from cloud-a to cloud-b; cloud-a hears of it by an unsolicited Map-Notify and acks it', async () => {
    const vm = '10.77.0.5';
    const events: RegistrarEvent[] = [];
    const pki = service('pki');
    const holder = await loadGatewayIdentity(pki.clouds['cloud-a']!.cert, pki.clouds['cloud-a']!.key);
    const source = await Registrar.open(site('cloud-a', { refreshIntervalMs: 0, onEvent: (e) => events.push(e) }));
    try {
      await source.register([vm]);
      expect((await lookupEid(vm, { resolver: env })).locators.map((l) => l.address)).toEqual(env.sites['cloud-a']!.rlocs);
      const offset = readFileSync(env.log, 'utf8').length;
      const handOver = signEidHandOver({ eids: [vm], from: 'cloud-a', to: 'cloud-b', offerId: `it-${Date.now()}` }, holder, { now: new Date() });
      const notify = await registerEid(site('cloud-b'), [vm], undefined, JSON.stringify(handOver));
      expect(notify.records.map((r) => r.eid)).toEqual([{ address: vm, maskLength: 32 }]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(events).toContainEqual({ kind: 'unsolicited-map-notify', eids: [`${vm}/32`], acked: true, released: [`${vm}/32`] });
      expect(source.registered()).toEqual([]); // no longer refreshed by the site it left
      const log = logSince(offset);
      expect(log.map((e) => e.kind)).toEqual(expect.arrayContaining(['hand-over-accepted', 'registered', 'mapping-moved', 'map-notify-ack']));
      expect(log.find((e) => e.kind === 'map-notify-ack')).toMatchObject({ site: 'cloud-a', acknowledged: true });
      await source.withdraw([vm]);
    } finally {
      await source.close();
    }
    const rec = await lookupEid(vm, { resolver: env });
    expect(rec.locators.map((l) => l.address)).toEqual(env.sites['cloud-b']!.rlocs);
    // and `intercloud map lookup` prints the same
    const { stdout } = await run('scripts/intercloud', ['map', 'lookup', vm, '--resolver', `${env.host}:${env.port}`, '--json']);
    expect(JSON.parse(stdout)).toMatchObject({ eid: `${vm}/32`, rlocs: [{ address: env.sites['cloud-b']!.rlocs[0] }] });
    await withdrawEid(site('cloud-b'), [vm]);
    expect((await lookupEid(vm, { resolver: env })).locators).toEqual([]);
  });

  it('registers an IPv6 VM address of its grant as a /128 with `intercloud map register` and withdraws it', async () => {
    const s = env.sites['cloud-c']!;
    const args = ['--map-server', `${env.host}:${env.port}`, '--key-id', String(s.keyId), '--key-file', s.keyFile, '--json'];
    const reg = await run('scripts/intercloud', ['map', 'register', '2001:db8:c::5', '--rloc', s.rlocs[0]!, ...args]);
    expect(JSON.parse(reg.stdout)).toMatchObject({ registered: ['2001:db8:c::5/128'] });
    expect((await lookupEid('2001:db8:c::5', { resolver: env })).locators[0]!.address).toBe(s.rlocs[0]);
    const wd = await run('scripts/intercloud', ['map', 'withdraw', '2001:db8:c::5', ...args]);
    expect(JSON.parse(wd.stdout)).toMatchObject({ withdrawn: ['2001:db8:c::5/128'] });
  });

  it('re-registers on its period (RFC 9301 §8.2), each refresh confirmed by a Map-Notify', async () => {
    const events: RegistrarEvent[] = [];
    const r = await Registrar.open(site('cloud-c', { refreshIntervalMs: 200, onEvent: (e) => events.push(e) }));
    try {
      await r.register(['10.192.0.9']);
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(events.filter((e) => e.kind === 'refreshed').length).toBeGreaterThanOrEqual(2);
      expect(r.registered()).toEqual(['10.192.0.9/32']);
      await r.withdraw(['10.192.0.9']);
      expect(r.registered()).toEqual([]);
    } finally {
      await r.close();
    }
  });
});

describe('bad input: refused with a code, no answer, and the map server keeps running', () => {
  async function refused(opts: RegistrarOptions, eid: string, code: string): Promise<void> {
    const offset = readFileSync(env.log, 'utf8').length;
    await expect(registerEid({ ...opts, retries: 1, initialTimeoutMs: 200 }, [eid])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const codes = logSince(offset).filter((e) => e.kind === 'rejected').map((e) => e.error?.code);
    expect(codes).toContain(code);
    expect(serverAlive()).toBe(true);
    expect((await lookupEid('10.1.1.1', { resolver: env })).locators).toEqual([]);
  }

  it('a Map-Register with a bad HMAC', async () => {
    await refused(site('cloud-a', { key: 'not-the-key' }), '10.77.1.1', 'LISP_BAD_HMAC');
  });

  it('a Map-Register with an unknown key id', async () => {
    await refused(site('cloud-a', { keyId: 99 }), '10.77.1.2', 'LISP_UNKNOWN_KEY_ID');
  });

  it('a registration for an EID outside the site\'s allowed prefixes', async () => {
    await refused(site('cloud-a'), '172.16.5.5', 'LISP_EID_NOT_ALLOWED');
  });

  it('truncated packets, wrong lengths and unknown types', async () => {
    const offset = readFileSync(env.log, 'utf8').length;
    const good = encodeLispMessage({
      type: 'map-register', proxyReply: true, securityCapable: false, useTtlForTimeout: false, wantMapNotify: true, nonce: 1n, keyId: 1,
      algorithmId: 2, authData: Buffer.alloc(0), records: [{ ttl: 1, eid: { address: '10.77.2.1', maskLength: 32 }, action: 0, authoritative: true, mapVersion: 0, locators: [] }],
    }, { key: 'x' });
    const wrongLength = Buffer.from(good);
    wrongLength.writeUInt16BE(7, 14);
    const unknownType = Buffer.from(good);
    unknownType[0] = 0xf0;
    const s = createSocket('udp4');
    for (const d of [good.subarray(0, 10), wrongLength, unknownType, Buffer.concat([good, Buffer.alloc(2)])]) {
      await new Promise<void>((resolve) => s.send(d, env.port, env.host, () => resolve()));
    }
    s.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const codes = logSince(offset).filter((e) => e.kind === 'rejected').map((e) => e.error?.code);
    expect(codes).toEqual(['LISP_TRUNCATED', 'LISP_BAD_LENGTH', 'LISP_UNKNOWN_TYPE', 'LISP_BAD_LENGTH']);
    expect(serverAlive()).toBe(true);
    await registerEid(site('cloud-a'), ['10.77.2.2']);
    await withdrawEid(site('cloud-a'), ['10.77.2.2']);
  });
});

describe('a map server that does not answer', () => {
  it('retries with growing waits, then fails with LISP_NO_ANSWER (retryable)', async () => {
    const started = Date.now();
    const err = await registerEid(site('cloud-a', { mapServer: { host: '127.0.0.1', port: 14399 }, retries: 2, initialTimeoutMs: 100 }), ['10.77.3.3'])
      .then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'LISP_NO_ANSWER', retryable: true, details: { attempts: 3, server: '127.0.0.1:14399' } });
    // 100 + 200 + 400 ms of waiting
    expect(Date.now() - started).toBeGreaterThanOrEqual(690);
  });

  it('`intercloud map lookup` against a silent resolver exits 4 (unavailable)', async () => {
    const err = await run('scripts/intercloud', ['map', 'lookup', '10.0.0.1', '--resolver', '127.0.0.1:14399', '--retries', '1', '--timeout', '100'])
      .then(() => undefined, (e: unknown) => e as { code: number; stderr: string });
    expect(err?.code).toBe(4);
    expect(err?.stderr).toContain('LISP_NO_ANSWER');
  });
});
