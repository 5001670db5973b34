/**
 * Trust benchmark: certificates issued per second and chain verifications per second by
 * protocols/trust, next to OpenSSL doing the same work in the same run, as ratios; plus
 * Node's crypto against node-forge for the raw RSA signatures forge can do.
 *
 *   npx tsx bench/trust/trust.bench.ts [N]
 *
 * Fairness: OpenSSL runs as ONE process over a batch (`openssl ca -batch -infiles` for
 * issuing, `openssl verify` with N files for verification), and the cost of a 1-item run of
 * the same command (process start, config and root/CRL loading) is subtracted, so both
 * sides are measured per item. Both sides sign the same CSR (ECDSA P-256, SANs as a
 * gateway's) and check its self-signature first; both verify N distinct gateway
 * certificates read from PEM files against the root with a CRL. OpenSSL's issuing also
 * writes each certificate and its index line to disk; ours builds the DER in memory.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import {
  buildCrl, certificateToPem, crlToPem, createRootCertificate, generateKeyPair, issueGatewayCertificate,
  parseCertificatePem, parseCrlsPem, parseCsrPem, privateKeyToPem, verifyCertificate, type Issuer,
} from '../../protocols/trust/index.js';

const N = Number(process.argv[2] ?? 400);
const dir = mkdtempSync(join(tmpdir(), 'trust-bench-'));
const now = new Date();

/** Best of `runs` (the machine is shared: the best run is the least disturbed one). */
function time(fn: () => void, runs = 3): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t) / 1000);
  }
  return best;
}

function opensslSeconds(args: string[], cwd = dir, before: () => void = () => undefined): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 3; r++) {
    before();
    const t = performance.now();
    const res = spawnSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    if (res.status !== 0) throw new Error(`openssl ${args[0] ?? ''} failed: ${res.stderr.toString()}`);
    best = Math.min(best, (performance.now() - t) / 1000);
  }
  return best;
}

function rate(n: number, seconds: number): string {
  return `${Math.round(n / seconds).toLocaleString('en-US').padStart(8)} /s`;
}

function row(what: string, oursPerS: number, theirsPerS: number, anchor: string): void {
  console.log(`${what.padEnd(44)} ours ${rate(oursPerS, 1)}   ${anchor.padEnd(22)} ${rate(theirsPerS, 1)}   ours/anchor ${(oursPerS / theirsPerS).toFixed(2)}x`);
}

console.log(`trust bench: N=${N}, ${cpus().length} cores (shared with other work: figures are indicative), ${execFileSync('openssl', ['version']).toString().trim()}, node ${process.version}\n`);

// ---- setup: a root, a CRL with some revoked serials, one gateway CSR (made by OpenSSL) ----
const rootKeys = generateKeyPair('ec');
const root: Issuer = { certificate: createRootCertificate({ ...rootKeys, now }), privateKey: rootKeys.privateKey };
writeFileSync(join(dir, 'root.pem'), certificateToPem(root.certificate.der));
writeFileSync(join(dir, 'root.key'), privateKeyToPem(root.privateKey));
execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'gw.key', '-out', 'gw.csr',
  '-subj', '/O=Intercloud/CN=cloud-a', '-addext',
  'subjectAltName=URI:intercloud://cloud-a,otherName:1.3.6.1.5.5.7.8.5;UTF8:cloud-a@intercloud.test,DNS:cloud-a.intercloud.test'], { cwd: dir, stdio: 'ignore' });
const csrPem = readFileSync(join(dir, 'gw.csr'), 'utf8');

// ---- issuing ----
function prepareOpensslCa(name: string): string {
  const d = join(dir, name);
  mkdirSync(join(d, 'out'), { recursive: true });
  writeFileSync(join(d, 'index.txt'), '');
  writeFileSync(join(d, 'ca.cnf'), `[ca]
default_ca = ic
[ic]
dir = ${d}
database = $dir/index.txt
new_certs_dir = $dir/out
certificate = ${dir}/root.pem
private_key = ${dir}/root.key
rand_serial = yes
default_md = sha256
default_days = 90
policy = any
unique_subject = no
copy_extensions = copy
email_in_dn = no
x509_extensions = gw
[any]
commonName = supplied
organizationName = optional
[gw]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`);
  return d;
}
function opensslIssue(n: number, name: string): number {
  const d = prepareOpensslCa(name);
  const files = Array.from({ length: n }, () => join(dir, 'gw.csr'));
  return opensslSeconds(['ca', '-batch', '-notext', '-config', join(d, 'ca.cnf'), '-out', join(d, 'all.pem'), '-infiles', ...files], dir,
    () => writeFileSync(join(d, 'index.txt'), ''));
}
function oursIssue(n: number): number {
  return time(() => {
    for (let i = 0; i < n; i++) {
      const req = parseCsrPem(csrPem);
      issueGatewayCertificate(root, { cloudId: 'cloud-a', publicKey: req.publicKey, now });
    }
  });
}
oursIssue(100);
const oursIssueS = oursIssue(N);
const sslIssueStart = opensslIssue(1, 'one');
const sslIssueS = Math.max(opensslIssue(N, 'many') - sslIssueStart, 1e-6);
row('issue a gateway certificate from a CSR', N / oursIssueS, N / sslIssueS, 'openssl ca -batch');
console.log(`${''.padEnd(44)} (openssl start-up of ${(sslIssueStart * 1000).toFixed(0)} ms subtracted)`);

// ---- verification ----
const leaves: string[] = [];
const revoked = [] as { serial: string; revokedAt: Date }[];
for (let i = 0; i < N; i++) {
  const keys = generateKeyPair('ec');
  const cert = issueGatewayCertificate(root, { cloudId: `cloud-${i}`, publicKey: keys.publicKey, now });
  const file = join(dir, `leaf-${i}.pem`);
  writeFileSync(file, certificateToPem(cert.der));
  leaves.push(file);
}
for (let i = 0; i < 50; i++) {
  const extra = issueGatewayCertificate(root, { cloudId: 'gone', publicKey: generateKeyPair().publicKey, now });
  revoked.push({ serial: extra.serial, revokedAt: now });
}
const crlPem = crlToPem(buildCrl({ issuer: root.certificate, signingKey: root.privateKey, revoked, crlNumber: 1, thisUpdate: new Date(now.getTime() - 60_000), nextUpdate: new Date(now.getTime() + 86_400_000) }));
writeFileSync(join(dir, 'crl.pem'), crlPem);
const roots = [parseCertificatePem(readFileSync(join(dir, 'root.pem'), 'utf8'))];
const crls = parseCrlsPem(crlPem);
function oursVerify(files: string[], withCrl: boolean): number {
  return time(() => {
    for (const f of files) verifyCertificate(parseCertificatePem(readFileSync(f, 'utf8')), { roots, crls: withCrl ? crls : [], now, purpose: 'clientAuth' });
  });
}
function opensslVerify(files: string[], withCrl: boolean): number {
  const crlArgs = withCrl ? ['-crl_check', '-CRLfile', join(dir, 'crl.pem')] : [];
  return opensslSeconds(['verify', '-CAfile', join(dir, 'root.pem'), ...crlArgs, '-purpose', 'sslclient', ...files]);
}
for (const withCrl of [false, true]) {
  oursVerify(leaves.slice(0, 100), withCrl);
  const oursVerifyS = oursVerify(leaves, withCrl);
  const sslVerifyStart = opensslVerify(leaves.slice(0, 1), withCrl);
  const sslVerifyS = Math.max(opensslVerify(leaves, withCrl) - sslVerifyStart, 1e-6);
  row(withCrl ? 'verify chain + CRL (read, parse, check)' : 'verify chain (read, parse, check)', N / oursVerifyS, N / sslVerifyS, withCrl ? 'openssl verify -crl_check' : 'openssl verify');
  console.log(`${''.padEnd(44)} (openssl start-up of ${(sslVerifyStart * 1000).toFixed(0)} ms subtracted${withCrl ? '; ours checks the CRL signature once and reuses it, openssl once per certificate' : ''})`);
}
console.log(`${''.padEnd(44)} aim: verification within 2x of openssl, i.e. ours/anchor >= 0.50`);

// ---- Node crypto vs node-forge for the signatures themselves ----
console.log('\nraw signatures (why keys.ts uses Node crypto):');
const rsa = generateKeyPair('rsa');
const rsaPem = privateKeyToPem(rsa.privateKey);
const forgeKey = forge.pki.privateKeyFromPem(rsaPem);
const forgePub = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
const data = Buffer.alloc(600, 7);
const md = (): forge.md.MessageDigest => forge.md.sha256.create().update(data.toString('latin1'));
const rsaSig = sign('sha256', data, createPrivateKey(rsaPem));
const pub = createPublicKey(rsa.publicKey.export({ type: 'spki', format: 'pem' }));
const signN = Math.max(10, Math.floor(N / 20));
const nodeSign = time(() => { for (let i = 0; i < signN * 5; i++) sign('sha256', data, rsa.privateKey); }) / 5;
const forgeSign = time(() => { for (let i = 0; i < signN; i++) forgeKey.sign(md()); });
row('RSA-3072 sign (Node crypto vs forge)', signN / nodeSign, signN / forgeSign, 'node-forge');
const nodeVerify = time(() => { for (let i = 0; i < N; i++) verify('sha256', data, pub, rsaSig); });
const forgeVerify = time(() => { for (let i = 0; i < N; i++) forgePub.verify(md().digest().bytes(), rsaSig.toString('latin1')); });
row('RSA-3072 verify (Node crypto vs forge)', N / nodeVerify, N / forgeVerify, 'node-forge');
const ec = generateKeyPair('ec');
const ecSig = sign('sha256', data, ec.privateKey);
const ecSign = time(() => { for (let i = 0; i < N; i++) sign('sha256', data, ec.privateKey); });
const ecVerify = time(() => { for (let i = 0; i < N; i++) verify('sha256', data, ec.publicKey, ecSig); });
console.log(`${'ECDSA P-256 sign / verify (Node crypto)'.padEnd(44)} ours ${rate(N, ecSign)} / ${rate(N, ecVerify)}   (node-forge 1.4 has no ECDSA)`);
