import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  certificateToPem, generateKeyPair, issueGatewayCertificate, issueServerCertificate, parseCertificatePem,
} from '../../../protocols/trust/index.js';
import { DAY, NOW, makeRoot } from './fixtures.js';

const root = makeRoot();
const keys = generateKeyPair();

describe('gateway identities', () => {
  it('name the cloud in CN, URI, xmppAddr and DNS SANs, with serverAuth+clientAuth and a bounded life', () => {
    const cert = parseCertificatePem(certificateToPem(issueGatewayCertificate(root, { cloudId: 'cloud-a', publicKey: keys.publicKey, now: NOW }).der));
    expect(cert.subject).toMatchObject({ commonName: 'cloud-a', organization: 'Intercloud' });
    expect(cert.subjectAltNames).toEqual({ uris: ['intercloud://cloud-a'], xmppAddrs: ['cloud-a@intercloud.test'], dns: ['cloud-a.intercloud.test'], ips: [] });
    expect(cert.extKeyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.basicConstraints).toEqual({ ca: false });
    expect([...(cert.keyUsage ?? [])]).toEqual(['digitalSignature']);
    expect(cert.notAfter.getTime() - NOW.getTime()).toBe(90 * DAY);
    expect(cert.authorityKeyId?.equals(root.certificate.subjectKeyId!)).toBe(true);
    expect(cert.serial.length).toBe(32);
  });

  it('take a given JID and DNS names, and get distinct random serials', () => {
    const a = issueGatewayCertificate(root, { cloudId: 'cloud-b', jid: 'cloud-b@root2.test', dns: ['b.example.org', 'gw.b.example.org'], publicKey: keys.publicKey, now: NOW, days: 7 });
    const b = issueGatewayCertificate(root, { cloudId: 'cloud-b', publicKey: keys.publicKey, now: NOW });
    expect(a.subjectAltNames.xmppAddrs).toEqual(['cloud-b@root2.test']);
    expect(a.subjectAltNames.dns).toEqual(['b.example.org', 'gw.b.example.org']);
    expect(a.serial).not.toBe(b.serial);
  });

  it('name a JID whose local part is the cloud id, on any Root\'s domain: a certificate for cloud-d cannot hold the account cloud-a@<a root> (issue 13)', () => {
    for (const jid of ['cloud-a@root2.test', 'cloud-a@intercloud.test', 'gw@example.org', 'Cloud-d@root2.test']) {
      expect(() => issueGatewayCertificate(root, { cloudId: 'cloud-d', jid, publicKey: keys.publicKey, now: NOW }), jid)
        .toThrowError(expect.objectContaining({ code: 'TRUST_BAD_ARGUMENT' }) as Error);
    }
    expect(issueGatewayCertificate(root, { cloudId: 'cloud-d', jid: 'cloud-d@root2.test', publicKey: keys.publicKey, now: NOW }).subjectAltNames.xmppAddrs).toEqual(['cloud-d@root2.test']);
  });

  it('never name a Root\'s own host: cloud id \'pubsub\' or a DNS name pubsub.<root> would pass the other Roots\' s2s as that Root\'s directory (issue 13 review)', () => {
    for (const spec of [
      { cloudId: 'pubsub' }, { cloudId: 'scram', jid: 'scram@root2.test' },
      { cloudId: 'cloud-x', jid: 'cloud-x@root2.test', dns: ['pubsub.root2.test'] }, { cloudId: 'cloud-x', dns: ['cloud-x.intercloud.test', 'PubSub.intercloud.test'] },
    ]) {
      expect(() => issueGatewayCertificate(root, { ...spec, publicKey: keys.publicKey, now: NOW }), JSON.stringify(spec))
        .toThrowError(expect.objectContaining({ code: 'TRUST_BAD_ARGUMENT' }) as Error);
    }
    expect(issueGatewayCertificate(root, { cloudId: 'pubsub-eu', publicKey: keys.publicKey, now: NOW }).subjectAltNames.dns).toEqual(['pubsub-eu.intercloud.test']);
  });

  it('refuse bad cloud ids, JIDs, DNS names and lifetimes (TRUST_BAD_ARGUMENT)', () => {
    const bad = [
      { cloudId: 'Cloud_A' }, { cloudId: '-x' }, { cloudId: 'a', jid: 'no-at-sign' }, { cloudId: 'a', dns: ['bad..name'] },
      { cloudId: 'a', days: 0 }, { cloudId: 'a', days: 10_000 }, { cloudId: 'a', days: 1.5 },
    ];
    for (const spec of bad) {
      expect(() => issueGatewayCertificate(root, { ...spec, publicKey: keys.publicKey, now: NOW })).toThrowError(expect.objectContaining({ code: 'TRUST_BAD_ARGUMENT' }) as Error);
    }
  });
});

describe('server certificates', () => {
  it('carry DNS and IP SANs with CN = first DNS name', () => {
    const cert = issueServerCertificate(root, { dns: ['intercloud.test', 'localhost'], ips: ['127.0.0.1', '::1', '2001:db8::7:1', '::ffff:10.0.0.1'], publicKey: keys.publicKey, now: NOW });
    expect(cert.subject.commonName).toBe('intercloud.test');
    expect(cert.subjectAltNames.ips).toEqual(['127.0.0.1', '::1', '2001:db8::7:1', '::ffff:a00:1']);
    expect(() => issueServerCertificate(root, { dns: [], publicKey: keys.publicKey, now: NOW })).toThrowError(expect.objectContaining({ code: 'TRUST_BAD_ARGUMENT' }) as Error);
    expect(() => issueServerCertificate(root, { dns: ['x'], ips: ['1.2.3'], publicKey: keys.publicKey, now: NOW })).toThrowError(expect.objectContaining({ code: 'TRUST_BAD_ARGUMENT' }) as Error);
  });

  it('round-trip any IPv4 address and DNS label through DER', () => {
    fc.assert(fc.property(fc.ipV4(), fc.domain(), (ip, dns) => {
      const cert = issueServerCertificate(root, { dns: [dns.toLowerCase()], ips: [ip], publicKey: keys.publicKey, now: NOW });
      expect(cert.subjectAltNames.ips).toEqual([ip]);
      expect(cert.subjectAltNames.dns).toEqual([dns.toLowerCase()]);
    }), { numRuns: 50 });
  });
});

describe('IPv6 SANs', () => {
  it('are written as 16 octets and read back in RFC 5952 form', () => {
    const cert = issueServerCertificate(root, { dns: ['x'], ips: ['2001:db8:0:0:1:0:0:1', '0:0:0:0:0:0:0:0', 'fe80::'], publicKey: keys.publicKey, now: NOW });
    expect(cert.subjectAltNames.ips).toEqual(['2001:db8::1:0:0:1', '::', 'fe80::']);
  });
});
