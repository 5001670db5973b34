/**
 * Who may map a VM's address (issue 12, finding 4), against a real map server process
 * (`intercloud root map-server`, this tree's code) that the test starts on its own loopback
 * port, configured the way scripts/services.d/68-lisp.sh configures the Root's: one key and
 * one granted EID block per cloud, the Intercloud Root and its CRL for hand-overs. The
 * attacker is cloud-c, a certified cloud with its own site key and its own certificate under
 * the Root (services.json → pki.clouds['cloud-c']), driven by plain LISP/trust calls.
 * Also the conformance faults an independent implementation found: proxy Map-Reply flags
 * (checked with tshark), withdrawal by a record without locators, negative-reply prefixes,
 * and a Map-Notify under another key id.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Registrar, decodeLispMessage, encodeLispMessage, lookupEid, registerEid, registerNonceAt, signEidHandOver, withdrawEid,
  type MappingRecord, type RegistrarEvent, type RegistrarOptions,
} from '../../../protocols/lisp/index.js';
import { loadGatewayIdentity, type Signer } from '../../../protocols/trust/index.js';
import { service, serviceEnv } from '../../helpers/services.js';
import { readLispFields, startCapture } from './tshark-helpers.js';

const run = promisify(execFile);

interface LispEnv {
  sites: Record<string, { keyId: number; algorithm: 'hmac-sha-256-128'; keyFile: string; rlocs: string[] }>;
}

/** The grants 68-lisp.sh gives each cloud. */
const GRANTS: Record<string, string[]> = {
  'cloud-a': ['10.0.0.0/9', '2001:db8:a::/48'],
  'cloud-b': ['10.128.0.0/10', '2001:db8:b::/48'],
  'cloud-c': ['10.192.0.0/10', '2001:db8:c::/48'],
};

let lisp: LispEnv;
let server: ChildProcess;
let port = 0;
let config: string;
const log: Array<Record<string, unknown>> = [];
let ids: Record<'cloud-a' | 'cloud-b' | 'cloud-c', Signer>;
let dir: string;

function site(cloud: string, over: Partial<RegistrarOptions> = {}): RegistrarOptions {
  const s = lisp.sites[cloud]!;
  return {
    mapServer: { host: '127.0.0.1', port }, keyId: s.keyId, algorithm: s.algorithm, key: readFileSync(s.keyFile, 'utf8').trim(),
    rlocs: s.rlocs, retries: 1, initialTimeoutMs: 300, refreshIntervalMs: 0, ...over,
  };
}

const rlocOf = (cloud: string): string => lisp.sites[cloud]!.rlocs[0]!;
const resolver = (): { resolver: { host: string; port: number } } => ({ resolver: { host: '127.0.0.1', port } });
async function mappedTo(eid: string): Promise<string[]> {
  return (await lookupEid(eid, resolver())).locators.map((l) => l.address);
}
function rejections(since: number): Array<{ site?: string; code: string; details?: Record<string, unknown> }> {
  return log.slice(since).filter((e) => e['kind'] === 'rejected')
    .map((e) => ({ ...(e['site'] ? { site: e['site'] as string } : {}), ...(e['error'] as { code: string; details?: Record<string, unknown> }) }));
}
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 150));
}

beforeAll(async () => {
  lisp = serviceEnv<LispEnv>('lisp');
  const pki = service('pki');
  ids = {
    'cloud-a': await loadGatewayIdentity(pki.clouds['cloud-a']!.cert, pki.clouds['cloud-a']!.key),
    'cloud-b': await loadGatewayIdentity(pki.clouds['cloud-b']!.cert, pki.clouds['cloud-b']!.key),
    'cloud-c': await loadGatewayIdentity(pki.clouds['cloud-c']!.cert, pki.clouds['cloud-c']!.key),
  };
  dir = mkdtempSync(join(tmpdir(), 'lisp-ownership-'));
  // cloud-d: a site whose grant overlaps cloud-a's (as every site's did before), to show that
  // a grant never lets a site take a prefix another site holds.
  writeFileSync(join(dir, 'cloud-d.key'), 'cloud-d-test-key\n', { mode: 0o600 });
  const sites = [
    ...Object.entries(GRANTS).map(([name, allowedPrefixes]) => ({ name, keyId: lisp.sites[name]!.keyId, keyFile: lisp.sites[name]!.keyFile, allowedPrefixes })),
    { name: 'cloud-d', keyId: 4, keyFile: join(dir, 'cloud-d.key'), allowedPrefixes: ['10.0.0.0/8'] },
  ];
  config = join(dir, 'map-server.json');
  writeFileSync(config, JSON.stringify({
    listen: '127.0.0.1:0', trust: { root: pki.root, crl: pki.crl }, stateFile: join(dir, 'state.json'), sites,
  }), { mode: 0o600 });
  await startServer();
}, 40_000);

/** Starts this tree's map server with the test's config; `port` is where it listens. */
async function startServer(): Promise<void> {
  server = spawn('scripts/intercloud', ['root', 'map-server', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout! });
  port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the map server did not start in 30 s')), 30_000);
    server.once('exit', (code) => reject(new Error(`the map server exited with ${code}`)));
    lines.on('line', (line) => {
      const e = JSON.parse(line) as Record<string, unknown>;
      log.push(e);
      if (e['kind'] === 'listening') { clearTimeout(t); resolve((e['address'] as { port: number }).port); }
    });
  });
}

async function stopServer(): Promise<void> {
  if (server?.exitCode === null) {
    const gone = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await gone;
  }
}

afterAll(stopServer);

describe('a site registers only what it was granted or handed, never what another site holds', () => {
  it('cloud-c registering cloud-a\'s EID is refused; the EID stays mapped to cloud-a', async () => {
    const eid = '10.77.200.5';
    await registerEid(site('cloud-a'), [eid]);
    const since = log.length;
    await expect(registerEid(site('cloud-c'), [eid])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
    // cloud-d's grant covers the EID, but cloud-a holds it
    const d = { ...site('cloud-a'), keyId: 4, key: 'cloud-d-test-key', rlocs: ['203.0.113.99'] };
    await expect(registerEid(d, [eid])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
    await expect(registerEid(d, ['10.77.0.0/16'])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
    expect(rejections(since)).toEqual(expect.arrayContaining([
      expect.objectContaining({ site: 'cloud-c', code: 'LISP_EID_HELD', details: expect.objectContaining({ holder: 'cloud-a' }) }),
      expect.objectContaining({ site: 'cloud-d', code: 'LISP_EID_HELD', details: expect.objectContaining({ holder: 'cloud-a' }) }),
    ]));
    expect(await mappedTo(eid)).toEqual([rlocOf('cloud-a')]);
    await withdrawEid(site('cloud-a'), [eid]);
    // unregistered, in cloud-a's grant: still not cloud-c's to take
    const since2 = log.length;
    await expect(registerEid(site('cloud-c'), [eid])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
    expect(rejections(since2)[0]).toMatchObject({ site: 'cloud-c', code: 'LISP_EID_NOT_ALLOWED' });
    expect(await mappedTo(eid)).toEqual([]);
  });

  it('a replayed Map-Register is refused (captured on the path, sent again after the withdrawal)', async () => {
    const eid = '10.77.201.5';
    const relay = await Relay.open(port);
    try {
      await registerEid({ ...site('cloud-a'), mapServer: { host: '127.0.0.1', port: relay.port } }, [eid]);
    } finally {
      relay.close();
    }
    const captured = relay.fromClient.find((d) => decodeLispMessage(d).type === 'map-register')!;
    await withdrawEid(site('cloud-a'), [eid]);
    expect(await mappedTo(eid)).toEqual([]);
    const since = log.length;
    const attacker = createSocket('udp4');
    const answers: Buffer[] = [];
    attacker.on('message', (m) => answers.push(m));
    await new Promise<void>((resolve) => attacker.send(captured, port, '127.0.0.1', () => resolve()));
    await settle();
    attacker.close();
    expect(answers).toEqual([]);
    expect(rejections(since)).toEqual([expect.objectContaining({ site: 'cloud-a', code: 'LISP_STALE_NONCE' })]);
    expect(await mappedTo(eid)).toEqual([]);
  });

  it('a hand-over signed by cloud-c for cloud-a\'s EID is refused', async () => {
    const eid = '10.77.202.5';
    await registerEid(site('cloud-a'), [eid]);
    const since = log.length;
    const now = new Date();
    const forged = signEidHandOver({ eids: [eid], from: 'cloud-a', to: 'cloud-c', offerId: 'stolen-1' }, ids['cloud-c'], { now });
    const own = signEidHandOver({ eids: [eid], from: 'cloud-c', to: 'cloud-c', offerId: 'stolen-2' }, ids['cloud-c'], { now });
    // and cloud-a's genuine hand-over to cloud-b, which cloud-c got hold of
    const notForC = signEidHandOver({ eids: [eid], from: 'cloud-a', to: 'cloud-b', offerId: 'offer-b' }, ids['cloud-a'], { now });
    for (const h of [forged, own, notForC]) {
      await expect(registerEid(site('cloud-c'), [eid], undefined, JSON.stringify(h)))
        .rejects.toMatchObject({ code: 'LISP_HAND_OVER_REFUSED', details: { code: 'LISP_HAND_OVER_INVALID' } });
    }
    expect(rejections(since).map((r) => r.details)).toEqual([
      expect.objectContaining({ from: 'cloud-a', signer: 'cloud-c' }),
      expect.objectContaining({ from: 'cloud-c', holder: 'cloud-a' }),
      expect.objectContaining({ to: 'cloud-b' }),
    ]);
    await expect(registerEid(site('cloud-c'), [eid])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
    expect(await mappedTo(eid)).toEqual([rlocOf('cloud-a')]);
    await withdrawEid(site('cloud-a'), [eid]);
  });

  it('a hand-over cloud-a signed moves its EID to cloud-b (with `intercloud map register --hand-over`); cloud-a is told and cannot take it back', async () => {
    const eid = '10.77.203.5';
    const events: RegistrarEvent[] = [];
    const source = await Registrar.open(site('cloud-a', { onEvent: (e) => events.push(e) }));
    try {
      await source.register([eid]);
      const h = signEidHandOver({ eids: [eid], from: 'cloud-a', to: 'cloud-b', offerId: 'offer-203' }, ids['cloud-a'], { now: new Date() });
      const file = join(dir, 'hand-over.json');
      writeFileSync(file, JSON.stringify(h));
      const b = lisp.sites['cloud-b']!;
      const { stdout } = await run('scripts/intercloud', [
        'map', 'register', eid, '--map-server', `127.0.0.1:${port}`, '--key-id', String(b.keyId), '--key-file', b.keyFile,
        '--rloc', rlocOf('cloud-b'), '--hand-over', file, '--json',
      ]);
      expect(JSON.parse(stdout)).toMatchObject({ registered: [`${eid}/32`] });
      expect(await mappedTo(eid)).toEqual([rlocOf('cloud-b')]);
      await settle();
      expect(events).toContainEqual({ kind: 'unsolicited-map-notify', eids: [`${eid}/32`], acked: true, released: [`${eid}/32`] });
      expect(source.registered()).toEqual([]); // no longer refreshed by the site it left
      expect(log).toContainEqual(expect.objectContaining({ kind: 'mapping-moved', eids: [`${eid}/32`], from: 'cloud-a', to: 'cloud-b', offerId: 'offer-203' }));
      // the source's withdrawal is confirmed and changes nothing; it cannot register it again
      await source.withdraw([eid]);
      expect(await mappedTo(eid)).toEqual([rlocOf('cloud-b')]);
      const since = log.length;
      await expect(registerEid(site('cloud-a'), [eid])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
      const refused = rejections(since);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(r).toMatchObject({ site: 'cloud-a', code: 'LISP_EID_HELD', details: { holder: 'cloud-b' } });
      // cloud-b presenting it again (its answer lost) is answered again while it holds the EID
      await expect(registerEid(site('cloud-b'), [eid], undefined, JSON.stringify(h))).resolves.toMatchObject({ type: 'map-notify' });
    } finally {
      await source.close();
    }
    await withdrawEid(site('cloud-b'), [eid]);
    // back to the site whose grant covers it
    await registerEid(site('cloud-a'), [eid]);
    expect(await mappedTo(eid)).toEqual([rlocOf('cloud-a')]);
    await withdrawEid(site('cloud-a'), [eid]);
  });
});

describe('a restarted map server (its state file) keeps who holds what', () => {
  it('the EID handed to cloud-b stays cloud-b\'s; a Map-Register captured before the restart is still refused', async () => {
    const eid = '10.77.207.5';
    const relay = await Relay.open(port);
    try {
      await registerEid({ ...site('cloud-a'), mapServer: { host: '127.0.0.1', port: relay.port } }, [eid]);
    } finally {
      relay.close();
    }
    const captured = relay.fromClient.find((d) => decodeLispMessage(d).type === 'map-register')!;
    const h = signEidHandOver({ eids: [eid], from: 'cloud-a', to: 'cloud-b', offerId: 'offer-207' }, ids['cloud-a'], { now: new Date() });
    await registerEid(site('cloud-b'), [eid], undefined, JSON.stringify(h));
    await stopServer();
    await startServer();
    expect(await mappedTo(eid)).toEqual([rlocOf('cloud-b')]);
    await registerEid(site('cloud-b'), [eid]); // its refresh, outside its grant
    const since = log.length;
    await expect(registerEid(site('cloud-a'), [eid])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
    const attacker = createSocket('udp4');
    await new Promise<void>((resolve) => attacker.send(captured, port, '127.0.0.1', () => resolve()));
    await settle();
    attacker.close();
    const codes = rejections(since).map((r) => r.code);
    expect(codes).toContain('LISP_EID_HELD');
    expect(codes[codes.length - 1]).toBe('LISP_STALE_NONCE');
    expect(await mappedTo(eid)).toEqual([rlocOf('cloud-b')]);
    await withdrawEid(site('cloud-b'), [eid]);
  }, 60_000);
});

describe('conformance (RFC 9301)', () => {
  it('a withdrawal by a record without locators removes the registration; the negative reply covers the least-specific free prefix', async () => {
    const eid = '10.77.204.5';
    await registerEid(site('cloud-a'), [eid]);
    const s = lisp.sites['cloud-a']!;
    const key = readFileSync(s.keyFile, 'utf8').trim();
    // as the independent implementation withdraws: Record TTL 1440, locator count 0
    const record: MappingRecord = { ttl: 1440, eid: { address: eid, maskLength: 32 }, action: 0, authoritative: true, mapVersion: 0, locators: [] };
    const nonce = registerNonceAt(Date.now(), 1);
    const msg = encodeLispMessage({
      type: 'map-register', proxyReply: true, securityCapable: false, useTtlForTimeout: false, wantMapNotify: true,
      nonce, keyId: s.keyId, algorithmId: 2, authData: Buffer.alloc(0), records: [record],
    }, { key });
    const notify = await sendAndWait(msg, port);
    expect(decodeLispMessage(notify)).toMatchObject({ type: 'map-notify', nonce });
    const rec = await lookupEid(eid, resolver());
    expect(rec).toMatchObject({ locators: [], ttl: 1, action: 2 });
    // not the exact /32: the widest prefix around it inside the configured space (cloud-d's
    // 10.0.0.0/8 is the widest) that overlaps no registration
    expect(rec.eid).toEqual({ address: '10.0.0.0', maskLength: 8 });
  });

  it('a proxy Map-Reply sets neither the A bit nor any locator\'s L bit (tshark decodes it)', async () => {
    const eid = '10.77.205.5';
    await registerEid(site('cloud-a'), [eid]); // the registrar sets L on its own locators
    const cap = await startCapture(port, 4);
    await lookupEid(eid, resolver());
    await lookupEid('10.77.205.6', resolver());
    await cap.done;
    const rows = await readLispFields(cap.file, port, ['lisp.type', 'lisp.mapping.auth', 'lisp.loc.flags.local', 'lisp.mapping.eid.masklen', 'lisp.mapping.loccnt', '_ws.malformed']);
    const replies = rows.filter((r) => r['lisp.type']?.[0] === '2');
    expect(replies).toHaveLength(2);
    for (const r of replies) {
      expect(r['_ws.malformed']).toEqual([]);
      expect(r['lisp.mapping.auth']!.map(bit)).toEqual([0]);
    }
    expect(replies[0]!['lisp.mapping.loccnt']).toEqual(['1']);
    expect(replies[0]!['lisp.loc.flags.local']!.map(bit)).toEqual([0]);
    expect(replies[1]!['lisp.mapping.loccnt']).toEqual(['0']);
    expect(Number(replies[1]!['lisp.mapping.eid.masklen']![0])).toBeLessThan(32);
    await withdrawEid(site('cloud-a'), [eid]);
  });

  it('a Map-Notify under another key id is not an acknowledgement, though its HMAC verifies under the same key', async () => {
    const key = 'shared-secret';
    const fake = createSocket('udp4');
    fake.on('message', (msg, rinfo) => {
      const m = decodeLispMessage(msg);
      if (m.type !== 'map-register') return;
      const notify = encodeLispMessage({ type: 'map-notify', nonce: m.nonce, keyId: m.keyId + 1, algorithmId: m.algorithmId, authData: Buffer.alloc(0), records: m.records }, { key });
      fake.send(notify, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => fake.bind(0, '127.0.0.1', () => resolve()));
    const events: RegistrarEvent[] = [];
    try {
      await expect(registerEid({
        mapServer: { host: '127.0.0.1', port: fake.address().port }, keyId: 5, algorithm: 'hmac-sha-256-128', key, rlocs: ['192.0.2.1'],
        retries: 1, initialTimeoutMs: 200, onEvent: (e) => events.push(e),
      }, ['10.77.206.5'])).rejects.toMatchObject({ code: 'LISP_NO_ANSWER' });
    } finally {
      fake.close();
    }
    expect(events.filter((e) => e.kind === 'ignored').length).toBeGreaterThan(0);
  });
});

/** tshark prints booleans as 1/0 or True/False depending on the field. */
function bit(v: string): number {
  return v === '1' || v === 'True' ? 1 : 0;
}

async function sendAndWait(msg: Buffer, to: number): Promise<Buffer> {
  const sock = createSocket('udp4');
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer in 2 s')), 2000);
      sock.on('message', (m) => { clearTimeout(t); resolve(m); });
      sock.send(msg, to, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

/** A UDP relay between one client and the map server that keeps what the client sent (an on-path observer). */
class Relay {
  readonly fromClient: Buffer[] = [];
  private client?: { address: string; port: number };
  private constructor(private readonly front: Socket, private readonly back: Socket, readonly port: number) {}

  static async open(serverPort: number): Promise<Relay> {
    const front = createSocket('udp4');
    const back = createSocket('udp4');
    await Promise.all([
      new Promise<void>((resolve) => front.bind(0, '127.0.0.1', () => resolve())),
      new Promise<void>((resolve) => back.bind(0, '127.0.0.1', () => resolve())),
    ]);
    const r = new Relay(front, back, front.address().port);
    front.on('message', (m, rinfo) => {
      r.client = { address: rinfo.address, port: rinfo.port };
      r.fromClient.push(Buffer.from(m));
      back.send(m, serverPort, '127.0.0.1');
    });
    back.on('message', (m) => { if (r.client) front.send(m, r.client.port, r.client.address); });
    return r;
  }

  close(): void {
    this.front.close();
    this.back.close();
  }
}
