import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { service, type PkiEnv, type XmppEnv } from '../../helpers/services.js';
import { RawXmpp } from './xmpp-raw.js';

describe('prosody (XMPP control plane)', () => {
  let xmpp: XmppEnv;
  let pki: PkiEnv;
  let ca: Buffer;
  const open: RawXmpp[] = [];

  beforeAll(() => {
    xmpp = service('prosody');
    pki = service('pki');
    ca = readFileSync(xmpp.tls.ca);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });

  /** STARTTLS to `domain` with cloud's certificate (or none), verified against our root. */
  async function secure(domain: string, cloud?: string): Promise<RawXmpp> {
    const c = await RawXmpp.connect(xmpp.host, xmpp.port, domain);
    open.push(c);
    const id = cloud ? pki.clouds[cloud] : undefined;
    const sock = await c.starttls(domain, {
      ca,
      servername: xmpp.tls.servername,
      ...(id ? { cert: readFileSync(id.cert), key: readFileSync(id.key) } : {}),
    });
    expect(sock.authorized).toBe(true);
    return c;
  }

  it('requires TLS: only STARTTLS (required) is offered before it, no SASL mechanism', async () => {
    const c = await RawXmpp.connect(xmpp.host, xmpp.port, xmpp.domain);
    open.push(c);
    const m = await c.until(/<stream:features>([\s\S]*?)<\/stream:features>/);
    expect(m[1]).toMatch(/<starttls xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]>\s*<required\/>/);
    expect(m[1]).not.toMatch(/<mechanisms/);
  });

  it('presents a certificate that verifies against the Intercloud Root for intercloud.test', async () => {
    const c = await RawXmpp.connect(xmpp.host, xmpp.port, xmpp.domain);
    open.push(c);
    const sock = await c.starttls(xmpp.domain, { ca, servername: xmpp.tls.servername });
    expect(sock.authorized).toBe(true);
    const subject = sock.getPeerCertificate().subjectaltname ?? '';
    expect(subject).toContain(`DNS:${xmpp.domain}`);
    expect(subject).toContain(`DNS:${xmpp.pubsubJid}`);
  });

  it('logs cloud-a in with SASL EXTERNAL by its certificate (XEP-0178) and binds its JID', async () => {
    const c = await secure(xmpp.domain, 'cloud-a');
    expect(await c.mechanisms()).toContain('EXTERNAL');
    expect(await c.auth('EXTERNAL', 'cloud-a@intercloud.test')).toBe('success');
    const jid = await c.bind(xmpp.domain, 'services-test');
    expect(jid).toBe('cloud-a@intercloud.test/services-test');
  });

  it('refuses EXTERNAL when the requested identity is not the certificate’s', async () => {
    const c = await secure(xmpp.domain, 'cloud-a');
    expect(await c.auth('EXTERNAL', 'cloud-b@intercloud.test')).toBe('not-authorized');
  });

  it('does not log in a client without a certificate', async () => {
    const c = await secure(xmpp.domain);
    // mod_auth_ccert offers EXTERNAL only (no password mechanism) and fails it without a certificate.
    expect(await c.mechanisms()).toEqual(['EXTERNAL']);
    expect(await c.auth('EXTERNAL', '=')).toMatch(/^(not-authorized|account-disabled)$/);
  });

  it('offers stream management, time, ping and a PubSub service holding the catalog node, where a gateway creates none', async () => {
    const c = await secure(xmpp.domain, 'cloud-b');
    expect(await c.auth('EXTERNAL', 'cloud-b@intercloud.test')).toBe('success');
    c.openStream(xmpp.domain);
    const features = await c.until(/<stream:features>([\s\S]*?)<\/stream:features>/);
    expect(features[1]).toMatch(/<sm xmlns=['"]urn:xmpp:sm:3['"]/); // XEP-0198
    c.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>t</resource></bind></iq>`);
    await c.until(/<iq[^>]*id=['"]b1['"][^>]*type=['"]result['"]|<iq[^>]*type=['"]result['"][^>]*id=['"]b1['"]/);

    const info = await c.iq(`<iq type='get' id='d1' to='${xmpp.domain}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, 'd1');
    for (const feature of ['urn:xmpp:time', 'urn:xmpp:ping', 'http://jabber.org/protocol/disco#info']) {
      expect(info).toContain(`var='${feature}'`);
    }
    const time = await c.iq(`<iq type='get' id='t1' to='${xmpp.domain}'><time xmlns='urn:xmpp:time'/></iq>`, 't1');
    expect(time).toMatch(/<utc>\d{4}-\d\d-\d\dT/); // XEP-0202

    const items = await c.iq(`<iq type='get' id='d2' to='${xmpp.domain}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`, 'd2');
    expect(items).toContain(`jid='${xmpp.pubsubJid}'`);
    // the Root's server made the catalog node; gateways are not admins of the PubSub service
    const nodes = await c.iq(`<iq type='get' id='d3' to='${xmpp.pubsubJid}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`, 'd3');
    expect(nodes).toContain(`node='${xmpp.catalogNode}'`);
    const node = `services-test-${process.pid}-${Date.now()}`;
    const created = await c.iq(
      `<iq type='set' id='p1' to='${xmpp.pubsubJid}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='${node}'/></pubsub></iq>`,
      'p1',
    );
    expect(created).toMatch(/type=['"]error['"][\s\S]*<forbidden/);
  });

  it('has a password fallback account on the SCRAM host', async () => {
    const c = await secure(xmpp.scram.domain);
    const mechs = await c.mechanisms();
    expect(mechs).toContain('SCRAM-SHA-1');
    const password = readFileSync(xmpp.scram.passwordFile, 'utf8').trim(); // 0600: tests run as root
    expect(await c.auth('PLAIN', `\0${xmpp.scram.username}\0${password}`)).toBe('success');
    expect(await c.bind(xmpp.scram.domain, 'r')).toBe(`${xmpp.scram.jid}/r`);
  });

  it('refuses a wrong fallback password', async () => {
    const c = await secure(xmpp.scram.domain);
    expect(await c.auth('PLAIN', `\0${xmpp.scram.username}\0wrong`)).toBe('not-authorized');
  });
});
