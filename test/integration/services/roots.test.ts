/**
 * Issue 13, several Roots: the second Prosody (Root 2, `root2.test`) that
 * scripts/services.d/20-prosody.sh runs beside the first, and the s2s federation between them —
 * certificate-authenticated only (XEP-0178 SASL EXTERNAL, no dialback), with each other only.
 * Played with a tiny raw XMPP client: logins and s2s streams as a peer Root and as a certified
 * cloud trying to pass for one.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  certificateToPem, generateKeyPair, issueGatewayCertificate, parseCertificatePem, privateKeyFromPem, privateKeyToPem,
} from '../../../protocols/trust/index.js';
import { service, type PkiEnv, type RootsEnv, type Xmpp2Env, type XmppEnv } from '../../helpers/services.js';
import { RawXmpp, type RawStreamOptions } from './xmpp-raw.js';

describe('two Intercloud Roots federated over certificate-authenticated s2s (issue 13)', () => {
  let root1: XmppEnv;
  let root2: Xmpp2Env;
  let roots: RootsEnv;
  let pki: PkiEnv;
  let ca: Buffer;
  const open: RawXmpp[] = [];

  beforeAll(() => {
    root1 = service('prosody');
    root2 = service('prosody2');
    roots = service('roots');
    pki = service('pki');
    ca = readFileSync(pki.root);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });

  /** A gateway certificate under the real Intercloud Root naming `cloud`@`domain`. */
  function gateway(cloud: string, domain: string): { cert: Buffer; key: Buffer } {
    const issuer = { certificate: parseCertificatePem(readFileSync(pki.root, 'utf8')), privateKey: privateKeyFromPem(readFileSync(pki.rootKey, 'utf8')) };
    const keys = generateKeyPair('ec');
    const cert = issueGatewayCertificate(issuer, { cloudId: cloud, jid: `${cloud}@${domain}`, dns: [`${cloud}.${domain}`], publicKey: keys.publicKey, now: new Date(), days: 1 });
    return { cert: Buffer.from(certificateToPem(cert.der)), key: Buffer.from(privateKeyToPem(keys.privateKey)) };
  }

  /** STARTTLS to `domain` at host:port (optionally an s2s stream), presenting `id`. */
  async function secure(port: number, domain: string, servername: string, id?: { cert: Buffer; key: Buffer }, stream: RawStreamOptions = {}): Promise<RawXmpp> {
    const c = await RawXmpp.connect('127.0.0.1', port, domain, stream);
    open.push(c);
    const sock = await c.starttls(domain, { ca, servername, ...(id ?? {}) });
    expect(sock.authorized).toBe(true);
    return c;
  }

  it('lists both Roots in services.json, Root 1 first, with certificate-only s2s', () => {
    expect(roots.list.map((r) => r.domain)).toEqual([root1.domain, root2.domain]);
    expect(roots.list[0]).toMatchObject({ port: root1.port, s2sPort: root1.s2sPort, pubsubJid: root1.pubsubJid });
    expect(roots.list[1]).toMatchObject({ port: root2.port, s2sPort: root2.s2sPort, pubsubJid: root2.pubsubJid });
    expect(roots.s2s).toEqual({ secureAuth: true, dialback: false });
    expect(root2.domain).not.toBe(root1.domain);
  });

  it('Root 2 requires TLS and presents its own certificate under the Intercloud Root', async () => {
    const c = await RawXmpp.connect(root2.host, root2.port, root2.domain);
    open.push(c);
    const f = await c.until(/<stream:features>([\s\S]*?)<\/stream:features>/);
    expect(f[1]).toMatch(/<starttls xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]>\s*<required\/>/);
    const sock = await c.starttls(root2.domain, { ca, servername: root2.tls.servername });
    expect(sock.authorized).toBe(true);
    expect(sock.getPeerCertificate().subjectaltname).toContain(`DNS:${root2.pubsubJid}`);
  });

  it('a gateway logs in by its certificate at its own Root only', async () => {
    const home = gateway('roots-gw', root2.domain);
    const c = await secure(root2.port, root2.domain, root2.tls.servername, home);
    expect(await c.auth('EXTERNAL', `roots-gw@${root2.domain}`)).toBe('success');
    expect(await c.bind(root2.domain, 'roots-test')).toBe(`roots-gw@${root2.domain}/roots-test`);
    // Root 1's certificate for cloud-a names cloud-a@intercloud.test: no account at Root 2 …
    const a = { cert: readFileSync(pki.clouds['cloud-a']!.cert), key: readFileSync(pki.clouds['cloud-a']!.key) };
    const wrongRoot = await secure(root2.port, root2.domain, root2.tls.servername, a);
    expect(await wrongRoot.auth('EXTERNAL', `cloud-a@${root2.domain}`)).toBe('not-authorized');
    // … and a Root 2 certificate none at Root 1.
    const back = await secure(root1.port, root1.domain, root1.tls.servername, home);
    expect(await back.auth('EXTERNAL', `roots-gw@${root1.domain}`)).toBe('not-authorized');
  });

  it('a peer Root with its server certificate is offered SASL EXTERNAL on s2s, and no dialback', async () => {
    const root2Cert = { cert: readFileSync(pki.servers.prosody2.cert), key: readFileSync(pki.servers.prosody2.key) };
    const c = await secure(root1.s2sPort, root1.domain, root1.tls.servername, root2Cert, { ns: 'jabber:server', from: root2.domain });
    const f = await c.until(/<stream:features>([\s\S]*?)<\/stream:features>/);
    expect(f[1]).toMatch(/<mechanism>EXTERNAL<\/mechanism>/);
    expect(f[1]).not.toMatch(/dialback/);
    expect(await c.auth('EXTERNAL', root2.domain)).toBe('success');
  });

  it('a certified cloud cannot open s2s as a domain its certificate names (policy-violation before any mechanism)', async () => {
    // cloud-c's certificate names DNS cloud-c.intercloud.test and has serverAuth + clientAuth.
    const c3 = { cert: readFileSync(pki.clouds['cloud-c']!.cert), key: readFileSync(pki.clouds['cloud-c']!.key) };
    const own = await secure(root1.s2sPort, root1.domain, root1.tls.servername, c3, { ns: 'jabber:server', from: 'cloud-c.intercloud.test' });
    expect(await own.closedByPeer()).toBe(true);
    expect(own.received).toMatch(/policy-violation/);
    expect(own.received).not.toMatch(/<mechanism>/);
  });

  it('a certified cloud cannot open s2s as the peer Root (its certificate does not name it)', async () => {
    const c3 = { cert: readFileSync(pki.clouds['cloud-c']!.cert), key: readFileSync(pki.clouds['cloud-c']!.key) };
    const as2 = await secure(root1.s2sPort, root1.domain, root1.tls.servername, c3, { ns: 'jabber:server', from: root2.domain });
    expect(await as2.closedByPeer()).toBe(true);
    expect(as2.received).toMatch(/not-authorized/);
    expect(as2.received).not.toMatch(/<mechanism>EXTERNAL/);
  });
});
