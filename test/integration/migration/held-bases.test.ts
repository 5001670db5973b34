/**
 * Issue 16, hostile peer: a real cloud-b agent that holds a golden base image (its
 * `migration.baseImages` directory), and the certified cloud `cloud-c` as the attacker — a plain
 * XMPP client with its own certificate from the Root, no agent. cloud-c may name a base only by
 * content hash: the accept names a disk's base as held only when a file of cloud-b's base
 * directory has that content; a hash it does not hold, and the hash of a file cloud-b has
 * outside that directory, are not held; a hash that is not one (a path, upper case, short) is a
 * malformed offer. Checked from outside the agent: the signed accept's `<base/>` elements, the
 * stanza errors, the files of the base directory unchanged.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { xml, type Client, type Element } from '@xmpp/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStatus } from '../../../agent/sequencer/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import * as X from '../../../protocols/xmpp/index.js';
import { AgentProcess, loadServicesFile, writeAgentConfig } from '../../../scripts/local-federation.js';
import { STATE_DIR } from '../../helpers/services.js';
import { lockFederation } from '../../../scripts/federation-lock.js';
import { requestIq } from '../../helpers/xmpp-iq.js';

const s = loadServicesFile(STATE_DIR) as ReturnType<typeof loadServicesFile> & {
  prosody: { host: string; port: number; domain: string; tls: { servername: string } };
};
const DOMAIN = s.prosody.domain;
const B_JID = `cloud-b@${DOMAIN}/gateway`;
const ROOT = readFileSync(s.pki.root, 'utf8');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function trustOf(cloud: string): X.TrustBinding {
  const c = s.pki.clouds[cloud]!;
  return X.createTrustBinding({ certificatePem: readFileSync(c.cert, 'utf8'), privateKeyPem: readFileSync(c.key, 'utf8'), rootsPem: ROOT, crlPem: readFileSync(s.pki.crl, 'utf8') });
}

/** A plain xmpp.js client logged in as `cloud` by its certificate (SASL EXTERNAL). */
async function client(cloud: string, resource: string): Promise<Client> {
  const id = s.pki.clouds[cloud]!;
  const c = X.createXmppClient({
    service: `xmpp://${s.prosody.host}:${s.prosody.port}`, domain: DOMAIN, resource,
    tls: { ca: ROOT, cert: readFileSync(id.cert, 'utf8'), key: readFileSync(id.key, 'utf8'), servername: s.prosody.tls.servername },
    externalJid: `${cloud}@${DOMAIN}`,
  });
  c.reconnect.stop();
  c.on('error', () => undefined);
  await c.start();
  return c;
}

interface Answer { type: 'result' | 'error'; reason?: string; accept?: X.Accept }

async function ask(c: Client, child: Element): Promise<Answer> {
  try {
    const r = await requestIq(c, 'set', B_JID, child, 20_000);
    const first = r.getChildElements()[0];
    return { type: 'result', ...(first?.is('accept', X.ICNS.NEGOTIATION) ? { accept: X.parseAccept(first).accept } : {}) };
  } catch (err) {
    const el = (err as { element?: Element }).element;
    if (!el) throw err;
    const info = X.parseStanzaError(el);
    const reject = X.parseReject(info.application, info.text);
    return { type: 'error', ...(reject ? { reason: reject.reason } : {}) };
  }
}

let seq = 0;
/** cloud-c's offer of a one-disk vm whose disk is an overlay on the base with content hash `base`. */
function offer(base: string): X.Offer {
  const now = Date.now();
  seq += 1;
  return X.normalizeOffer({
    offerId: randomUUID(),
    from: 'cloud-c',
    workload: {
      type: 'vm', name: `hb-${process.pid}-${seq}`, vcpus: 1, memoryMiB: 64, firmware: 'bios',
      disks: [{ id: '0', sizeGiB: 1, format: 'qcow2', base }, { id: '1', sizeGiB: 1, format: 'raw' }], nics: [{ mac: '52:54:00:7e:0c:16' }],
    },
    constraints: { regions: [] },
    terms: { currency: 'EUR' },
    issued: new Date(now).toISOString(),
    expires: new Date(now + 60_000).toISOString(),
  });
}

async function signed(trust: X.TrustBinding, o: X.Offer): Promise<Element> {
  return X.buildOffer(o, await trust.sign(X.MESSAGE_TYPES.OFFER, X.offerPayload(o), 60_000));
}

async function release(c: Client, trust: X.TrustBinding, offerId: string): Promise<void> {
  const payload = X.migrationRequestPayload({ type: 'release', offerId }, 'cloud-b');
  await c.iqCaller.request(xml('iq', { type: 'set', to: B_JID }, X.buildOfferRequest('release', offerId, await trust.sign(X.MESSAGE_TYPES.MIGRATION_REQUEST, payload, 60_000))), 20_000);
}

async function jobEnded(agent: AgentProcess, offerId: string, timeoutMs = 60_000): Promise<JobStatus> {
  const t0 = Date.now();
  for (;;) {
    let j: JobStatus | 'unknown';
    try {
      j = await agent.api.job(`in-${offerId}`);
    } catch (err) {
      if (!isIntercloudError(err, 'SEQ_UNKNOWN_JOB')) throw err;
      j = 'unknown';
    }
    if (j !== 'unknown' && j.state !== 'running') return j;
    if (Date.now() - t0 > timeoutMs) throw new Error(`target job of offer '${offerId}' still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const dir = join(STATE_DIR, 'test-migration', `held-bases-${process.pid}`);
let unlock: (() => Promise<void>) | undefined;
beforeAll(async () => { unlock = await lockFederation(); }, 660_000);
afterAll(async () => {
  await unlock?.();
  if (process.env['INTERCLOUD_KEEP_TEST_DIRS'] === undefined) await fs.rm(dir, { recursive: true, force: true });
});

describe('cloud-c names bases to cloud-b by content hash only (issue 16)', () => {
  let b: AgentProcess;
  let c: Client;
  const cTrust = trustOf('cloud-c');
  const golden = randomBytes(3 * 1024 * 1024 + 17);
  const secret = randomBytes(1024 * 1024);
  const bases = join(dir, 'bases');
  const outside = join(dir, 'outside');

  beforeAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(bases, { recursive: true });
    await fs.mkdir(outside, { recursive: true });
    await fs.writeFile(join(bases, 'golden-os.raw'), golden);
    await fs.writeFile(join(outside, 'secret.raw'), secret);
    // A symlink in the base directory to the file outside it: not a base either.
    await fs.symlink(join(outside, 'secret.raw'), join(bases, 'link.raw'));
    b = new AgentProcess('cloud-b', join(dir, 'b'));
    await writeAgentConfig(s, 'cloud-b', join(dir, 'b'), { region: 'eu-central', acceptFrom: ['*'], baseImages: [bases] });
    await b.start();
    c = await client('cloud-c', `it-hb-${process.pid}`);
  }, 180_000);
  afterAll(async () => {
    await c?.stop();
    await b?.stop('SIGTERM');
  }, 60_000);

  /** Offers a disk on `base` and answers which disks the signed accept names as held; releases the offer. */
  async function heldFor(base: string): Promise<readonly string[]> {
    const o = offer(base);
    const a = await ask(c, await signed(cTrust, o));
    expect(a.type, JSON.stringify(a)).toBe('result');
    expect(a.accept?.offerId).toBe(o.offerId);
    await release(c, cTrust, o.offerId);
    await jobEnded(b, o.offerId);
    return a.accept?.bases ?? [];
  }

  it('a base cloud-b holds: the accept names that disk (and only it)', async () => {
    expect(await heldFor(sha256(golden))).toEqual(['0']);
  }, 120_000);

  it('a hash cloud-b holds no file of: not held', async () => {
    expect(await heldFor(sha256(randomBytes(64)))).toEqual([]);
  }, 120_000);

  it('the hash of a file cloud-b has outside its base directory (also linked into it): not held', async () => {
    expect(await heldFor(sha256(secret))).toEqual([]);
  }, 120_000);

  it('a base that is not a sha-256 (a path, upper case, short): the offer is malformed', async () => {
    for (const bad of [join(bases, 'golden-os.raw'), '../bases/golden-os.raw', sha256(golden).toUpperCase(), sha256(golden).slice(0, 40)]) {
      // The attacker signs whatever it likes: the codec refuses it before anything is looked up.
      const el = await signed(cTrust, offer(sha256(golden)));
      (el.getChild('vm')!.getChildren('disk')[0] as Element).attrs['base'] = bad;
      expect(await ask(c, el), bad).toMatchObject({ type: 'error', reason: 'malformed' });
    }
  }, 120_000);

  it('left the base directory as it was (only the saved hash beside each base)', async () => {
    expect((await fs.readdir(bases)).sort()).toEqual(['golden-os.raw', 'golden-os.raw.icx-sha256.json', 'link.raw']);
    expect(sha256(await fs.readFile(join(bases, 'golden-os.raw')))).toBe(sha256(golden));
    expect(await fs.readdir(outside)).toEqual(['secret.raw']);
  });
});
