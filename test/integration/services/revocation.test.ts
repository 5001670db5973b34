/**
 * Issue 12, finding 7 (servers): Prosody and RabbitMQ check the Intercloud Root's CRL. A second
 * certificate is issued to cloud-c by the real CA (`intercloud ca issue` on the services' CA
 * directory), used, then revoked the way the Root's operator does it (`intercloud ca revoke`,
 * `intercloud ca crl`) — nothing restarted or reloaded by hand: within seconds both servers
 * refuse it, while cloud-c's own, unrevoked certificate still logs in to both.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service, type AmqpEnv, type PkiEnv, type XmppEnv } from '../../helpers/services.js';
import { RawXmpp } from './xmpp-raw.js';

const CLI = join(import.meta.dirname, '../../../scripts/intercloud');

describe('servers refuse a revoked certificate (issue 12, finding 7)', () => {
  let pki: PkiEnv;
  let xmpp: XmppEnv;
  let broker: AmqpEnv;
  let dir: string;
  let revoked: { cert: Buffer; key: Buffer };
  let own: { cert: Buffer; key: Buffer };

  beforeAll(() => {
    pki = service('pki');
    xmpp = service('prosody');
    broker = service('rabbitmq');
    dir = mkdtempSync(join(tmpdir(), 'intercloud-revoked-'));
    execFileSync(CLI, ['ca', 'issue', '--dir', pki.dir, '--cloud', 'cloud-c', '--xmpp', 'cloud-c@intercloud.test', '--days', '1', '--out', join(dir, 'cloud-c')]);
    revoked = { cert: readFileSync(join(dir, 'cloud-c.pem')), key: readFileSync(join(dir, 'cloud-c.key')) };
    const c = pki.clouds['cloud-c'];
    if (!c) throw new Error('no cloud-c identity in services.json');
    own = { cert: readFileSync(c.cert), key: readFileSync(c.key) };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The SASL EXTERNAL outcome on Prosody with this certificate. */
  async function xmppLogin(id: { cert: Buffer; key: Buffer }): Promise<string> {
    const c = await RawXmpp.connect(xmpp.host, xmpp.port, xmpp.domain);
    try {
      await c.starttls(xmpp.domain, { ca: readFileSync(xmpp.tls.ca), servername: xmpp.tls.servername, ...id });
      return await c.auth('EXTERNAL', 'cloud-c@intercloud.test');
    } finally {
      c.close();
    }
  }

  /** 'ok' when RabbitMQ accepts an EXTERNAL login with this certificate, else the error. */
  async function amqpLogin(id: { cert: Buffer; key: Buffer }): Promise<string> {
    try {
      const conn = await amqp.connect(broker.url, {
        ca: [readFileSync(broker.tls.ca)], servername: broker.servername, ...id, credentials: amqp.credentials.external(),
      });
      await conn.close();
      return 'ok';
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }

  it('lets the new certificate in while it is not revoked', async () => {
    expect(await xmppLogin(revoked)).toBe('success');
    expect(await amqpLogin(revoked)).toBe('ok');
  });

  it('refuses it on Prosody and RabbitMQ once the operator revoked it and published the CRL', async () => {
    execFileSync(CLI, ['ca', 'revoke', '--dir', pki.dir, '--cert', join(dir, 'cloud-c.pem')]);
    execFileSync(CLI, ['ca', 'crl', '--dir', pki.dir, '--out', pki.crl]);
    // RabbitMQ reads the CRL at each handshake; Prosody's module notices the file within 5 s
    await expect.poll(() => amqpLogin(revoked), { timeout: 15_000, interval: 500 }).toMatch(/CERTIFICATE_REVOKED|ECONNRESET|EPIPE/);
    await expect.poll(() => xmppLogin(revoked), { timeout: 15_000, interval: 500 }).toMatch(/^(not-authorized|account-disabled)$/); // mod_auth_ccert: invalid chain
    // cloud-c's own certificate is not revoked: it still logs in to both
    expect(await xmppLogin(own)).toBe('success');
    expect(await amqpLogin(own)).toBe('ok');
  });
});
