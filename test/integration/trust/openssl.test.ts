/**
 * Independent checks of what `intercloud ca …` issues: OpenSSL must accept the gateway
 * certificates, honour the CRL, show the SANs; certificates and CSRs made by OpenSSL must be
 * handled by the trust area; the PKI that `scripts/services up` made must verify.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { serviceEnv } from '../../helpers/services.js';

const CLI = resolve(import.meta.dirname, '../../../scripts/intercloud');

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function cli(...args: string[]): Run {
  return run(CLI, args);
}

function ok(r: Run): Run {
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

function opensslVerify(dir: string, cert: string): Run {
  return run('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-crl_check', '-CRLfile', join(dir, 'crl.pem'), cert]);
}

describe('intercloud ca with an ECDSA root, checked by openssl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trust-it-'));

  beforeAll(() => {
    ok(cli('ca', 'init', '--dir', dir));
    ok(cli('ca', 'issue', '--dir', dir, '--cloud', 'cloud-a', '--xmpp', 'cloud-a@intercloud.test', '--dns', 'cloud-a.intercloud.test', '--out', join(dir, 'cloud-a')));
    ok(cli('ca', 'issue', '--dir', dir, '--cloud', 'cloud-b', '--out', join(dir, 'cloud-b')));
    ok(cli('ca', 'crl', '--dir', dir, '--out', join(dir, 'crl.pem')));
  });

  it('openssl verify -crl_check accepts a good gateway certificate', () => {
    const r = opensslVerify(dir, join(dir, 'cloud-a.pem'));
    expect(r.stdout.trim()).toBe(`${join(dir, 'cloud-a.pem')}: OK`);
    expect(r.status).toBe(0);
  });

  it('openssl x509 -text shows the SANs, EKU, basicConstraints and keyUsage', () => {
    const text = ok(run('openssl', ['x509', '-in', join(dir, 'cloud-a.pem'), '-noout', '-text'])).stdout;
    expect(text).toContain('Subject: O = Intercloud, CN = cloud-a');
    expect(text).toMatch(/othername: ?XmppAddr:?:cloud-a@intercloud\.test/);
    expect(text).toContain('URI:intercloud://cloud-a');
    expect(text).toContain('DNS:cloud-a.intercloud.test');
    expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature/);
    const rootText = ok(run('openssl', ['x509', '-in', join(dir, 'root.pem'), '-noout', '-text'])).stdout;
    expect(rootText).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(rootText).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(rootText).toContain('ASN1 OID: prime256v1');
  });

  it('after ca revoke + ca crl, openssl rejects the revoked certificate and still accepts the other', () => {
    ok(cli('ca', 'revoke', '--dir', dir, '--cert', join(dir, 'cloud-b.pem')));
    ok(cli('ca', 'crl', '--dir', dir, '--out', join(dir, 'crl.pem')));
    const crlText = ok(run('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-noout', '-text'])).stdout;
    const serial = ok(run('openssl', ['x509', '-in', join(dir, 'cloud-b.pem'), '-noout', '-serial'])).stdout.trim().split('=')[1]!;
    expect(crlText).toContain(`Serial Number: ${serial}`);
    expect(crlText).toMatch(/CRL Number:\s+2/);
    ok(run('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-noout', '-CAfile', join(dir, 'root.pem')]));
    const revoked = opensslVerify(dir, join(dir, 'cloud-b.pem'));
    expect(revoked.status).not.toBe(0);
    expect(revoked.stdout + revoked.stderr).toContain('certificate revoked');
    expect(opensslVerify(dir, join(dir, 'cloud-a.pem')).status).toBe(0);
  });

  it('intercloud cert verify agrees with openssl (exit 0 good, 3 revoked with the reason code)', () => {
    const good = ok(cli('cert', 'verify', '--root', join(dir, 'root.pem'), '--crl', join(dir, 'crl.pem'), '--cloud', 'cloud-a', '--jid', 'cloud-a@intercloud.test', '--json', join(dir, 'cloud-a.pem')));
    expect(JSON.parse(good.stdout)).toMatchObject({ verdict: 'good', identity: { cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' } });
    const bad = cli('cert', 'verify', '--root', join(dir, 'root.pem'), '--crl', join(dir, 'crl.pem'), '--json', join(dir, 'cloud-b.pem'));
    expect(bad.status).toBe(3);
    expect(JSON.parse(bad.stdout)).toMatchObject({ verdict: 'rejected', code: 'TRUST_REVOKED' });
    const wrongCloud = cli('cert', 'verify', '--root', join(dir, 'root.pem'), '--cloud', 'cloud-b', join(dir, 'cloud-a.pem'));
    expect(wrongCloud.status).toBe(3);
    expect(wrongCloud.stdout).toContain('TRUST_IDENTITY_MISMATCH');
  });

  it('signs CSRs made by openssl (EC and RSA) and refuses one whose signature does not match', () => {
    for (const [name, alg] of [['ec-gw', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']], ['rsa-gw', ['-newkey', 'rsa:2048']]] as const) {
      ok(run('openssl', ['req', '-new', ...alg, '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', '/CN=ignored']));
      ok(cli('ca', 'issue', '--dir', dir, '--cloud', 'cloud-c', '--csr', join(dir, `${name}.csr`), '--out', join(dir, name)));
      expect(opensslVerify(dir, join(dir, `${name}.pem`)).status).toBe(0);
      // The certificate holds the requester's key.
      const certKey = ok(run('openssl', ['x509', '-in', join(dir, `${name}.pem`), '-noout', '-pubkey'])).stdout;
      const reqKey = ok(run('openssl', ['pkey', '-in', join(dir, `${name}.key`), '-pubout'])).stdout;
      expect(certKey).toBe(reqKey);
    }
    const csrDer = spawnSync('openssl', ['req', '-in', join(dir, 'ec-gw.csr'), '-outform', 'DER']).stdout;
    const at = csrDer.indexOf(Buffer.from('ignored'));
    csrDer[at]! ^= 0x01;
    writeFileSync(join(dir, 'bad.csr'), `-----BEGIN CERTIFICATE REQUEST-----\n${csrDer.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`);
    // OpenSSL 3.0 `req -verify` reports the failure but exits 0: read its verdict.
    const check = run('openssl', ['req', '-in', join(dir, 'bad.csr'), '-noout', '-verify']);
    expect(check.stdout + check.stderr).toContain('self-signature verify failure');
    const refused = cli('ca', 'issue', '--dir', dir, '--cloud', 'cloud-c', '--csr', join(dir, 'bad.csr'), '--out', join(dir, 'bad'));
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('TRUST_CSR_SIGNATURE');
  });

  it('verifies a certificate that openssl signed with the root key (an independent producer)', () => {
    ok(run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'o.key'), '-out', join(dir, 'o.csr'), '-subj', '/O=Intercloud/CN=cloud-o']));
    writeFileSync(join(dir, 'o.ext'), [
      'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=URI:intercloud://cloud-o,otherName:1.3.6.1.5.5.7.8.5;UTF8:cloud-o@intercloud.test,DNS:cloud-o.intercloud.test',
      'authorityKeyIdentifier=keyid', 'subjectKeyIdentifier=hash', '',
    ].join('\n'));
    ok(run('openssl', ['x509', '-req', '-in', join(dir, 'o.csr'), '-CA', join(dir, 'root.pem'), '-CAkey', join(dir, 'root.key'), '-set_serial', '0x1234abcd', '-days', '5', '-extfile', join(dir, 'o.ext'), '-out', join(dir, 'o.pem')]));
    const r = ok(cli('cert', 'verify', '--root', join(dir, 'root.pem'), '--crl', join(dir, 'crl.pem'), '--cloud', 'cloud-o', '--jid', 'cloud-o@intercloud.test', '--purpose', 'clientAuth', '--json', join(dir, 'o.pem')));
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: 'good', identity: { cloudId: 'cloud-o', serial: '1234abcd' } });
  });
});

describe('intercloud ca with an RSA-3072 root', () => {
  it('issues certificates openssl accepts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trust-rsa-'));
    ok(cli('ca', 'init', '--dir', dir, '--key-type', 'rsa'));
    ok(cli('ca', 'issue', '--dir', dir, '--server', '--dns', 'localhost', '--ip', '127.0.0.1', '--out', join(dir, 'srv')));
    ok(cli('ca', 'crl', '--dir', dir, '--out', join(dir, 'crl.pem')));
    expect(ok(run('openssl', ['x509', '-in', join(dir, 'root.pem'), '-noout', '-text'])).stdout).toContain('Public-Key: (3072 bit)');
    expect(opensslVerify(dir, join(dir, 'srv.pem')).status).toBe(0);
    expect(ok(run('openssl', ['x509', '-in', join(dir, 'srv.pem'), '-noout', '-ext', 'subjectAltName'])).stdout).toContain('DNS:localhost, IP Address:127.0.0.1');
  });
});

interface PkiEnv {
  root: string;
  crl: string;
  clouds: Record<string, { cert: string; jid: string }>;
  servers: Record<string, { cert: string }> & { brokers?: Record<string, { cert: string; identity: string }> };
}

describe('the PKI that scripts/services up issued', () => {
  it('every gateway and server certificate verifies against the root and its CRL', () => {
    const pki = serviceEnv<PkiEnv>('pki');
    for (const [cloud, c] of Object.entries(pki.clouds)) {
      ok(cli('cert', 'verify', '--root', pki.root, '--crl', pki.crl, '--cloud', cloud, '--jid', c.jid, '--purpose', 'clientAuth', c.cert));
      expect(run('openssl', ['verify', '-CAfile', pki.root, '-crl_check', '-CRLfile', pki.crl, c.cert]).status).toBe(0);
    }
    const { brokers = {}, ...servers } = pki.servers;
    for (const s of Object.values(servers)) {
      ok(cli('cert', 'verify', '--root', pki.root, '--crl', pki.crl, '--purpose', 'serverAuth', '--dns', 'localhost', s.cert));
    }
    // each cloud's broker: its identity, the name a source checks before it logs in (issue 13)
    expect(Object.keys(brokers).sort()).toEqual(['cloud-a', 'cloud-b']);
    for (const b of Object.values(brokers)) {
      ok(cli('cert', 'verify', '--root', pki.root, '--crl', pki.crl, '--purpose', 'serverAuth', '--dns', b.identity, b.cert));
    }
    expect(readFileSync(pki.root, 'utf8')).toContain('BEGIN CERTIFICATE');
  });
});
