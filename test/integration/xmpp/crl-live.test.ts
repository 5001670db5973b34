/**
 * Issue 12, finding 7 (agent): revocation is live in a running gateway. cloud-c (a plain XMPP
 * client logged in with its own certificate) signs offers with a second cloud-c certificate that
 * the real CA issued; the gateway — its trust binding fed by the daemon's CRL watcher on its CRL
 * file — accepts them, until the CA operator revokes that certificate and re-issues the file
 * (`intercloud ca revoke`, `intercloud ca crl --out FILE`). From then on the same gateway, not
 * restarted, refuses them as untrusted.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, type Element } from '@xmpp/client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrlWatcher } from '../../../agent/daemon/crl-watch.js';
import {
  buildOffer, createTrustBinding, MESSAGE_TYPES, offerPayload, type Offer,
} from '../../../protocols/xmpp/index.js';
import { gatewayJid, offerAnswer, pkiIdentity, sampleVmOffer, rawClient, retractTestEntries, servicesUp, startGateway, testCloud, type TestGateway } from './gateways.js';

const env = servicesUp();
const CLI = join(import.meta.dirname, '../../../scripts/intercloud');
const B = testCloud('crl');
const PKI_DIR = env.pki.dir;


function offerFromC(): Offer {
  return sampleVmOffer('cloud-c');
}

describe('a running gateway takes a re-issued CRL (issue 12, finding 7)', () => {
  let dir: string;
  let crlFile: string;
  let b: TestGateway;
  let watcher: CrlWatcher;
  let c: Client;
  let signer: { cert: string; key: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'intercloud-crl-live-'));
    crlFile = join(dir, 'crl.pem');
    execFileSync(CLI, ['ca', 'crl', '--dir', PKI_DIR, '--out', crlFile]);
    execFileSync(CLI, ['ca', 'issue', '--dir', PKI_DIR, '--cloud', 'cloud-c', '--xmpp', 'cloud-c@intercloud.test', '--days', '1', '--out', join(dir, 'signer')]);
    signer = { cert: readFileSync(join(dir, 'signer.pem'), 'utf8'), key: readFileSync(join(dir, 'signer.key'), 'utf8') };
    b = await startGateway(env, B, { crlPem: readFileSync(crlFile, 'utf8'), acceptFrom: ['*'] });
    watcher = new CrlWatcher({ file: crlFile, apply: (pem) => b.trust.setCrl(pem), log: pino({ level: 'silent' }), pollMs: 3_600_000 });
    await watcher.start();
    c = await rawClient(env, 'cloud-c', pkiIdentity(env.pki, 'cloud-c'), `crl-live-${B}`);
  });
  afterAll(async () => {
    watcher?.stop();
    await c?.stop();
    await b?.session.stop();
    await retractTestEntries(env);
    rmSync(dir, { recursive: true, force: true });
  });

  async function signedOffer(): Promise<Element> {
    const trust = createTrustBinding({ certificatePem: signer.cert, privateKeyPem: signer.key, rootsPem: readFileSync(env.pki.root, 'utf8') });
    const offer = offerFromC();
    return buildOffer(offer, await trust.sign(MESSAGE_TYPES.OFFER, offerPayload(offer), 60_000));
  }

  it('accepts offers signed with the certificate while it is not revoked', async () => {
    expect(await offerAnswer(c, gatewayJid(env, B), await signedOffer())).toBe('accept');
  });

  it('refuses them once the operator revoked it and re-issued the CRL file, without a restart', async () => {
    execFileSync(CLI, ['ca', 'revoke', '--dir', PKI_DIR, '--cert', join(dir, 'signer.pem')]);
    execFileSync(CLI, ['ca', 'crl', '--dir', PKI_DIR, '--out', crlFile]);
    await expect.poll(async () => offerAnswer(c, gatewayJid(env, B), await signedOffer()), { timeout: 10_000, interval: 250 }).toBe('untrusted');
  });
});
