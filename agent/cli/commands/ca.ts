/**
 * `intercloud ca …`: the Intercloud Root CA kept in a directory — `init`, `issue`
 * (gateway identity or `--server` TLS certificate), `revoke`, `crl`.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { IntercloudError } from '../../../protocols/errors/index.js';
import {
  BACKDATE_MS, CA_FILES, DEFAULT_XMPP_DOMAIN, assertCloudIdFree, buildCrl, certificateToPem, crlToPem, generateKeyPair, initCaDirectory, issueGatewayCertificate, issueServerCertificate, parseCertificatePem, parseCsrPem,
  privateKeyToPem, readCaDirectory, updateCaState, writeFileAtomic, type Certificate, type KeyType,
} from '../../../protocols/trust/index.js';
import { printJson } from '../output.js';
import { collect, readInput, usage } from './trust-args.js';

function parseDays(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n)) throw usage(`--days '${text}' is not a whole number`);
  return n;
}

function summary(cert: Certificate): { serial: string; subject: string; notBefore: string; notAfter: string; fingerprint256: string; subjectAltNames: Certificate['subjectAltNames'] } {
  return {
    serial: cert.serial,
    subject: cert.subject.text,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    fingerprint256: cert.fingerprint256,
    subjectAltNames: cert.subjectAltNames,
  };
}

interface IssueOptions {
  dir: string;
  cloud?: string;
  xmpp?: string;
  dns?: string[];
  ip?: string[];
  days?: string;
  csr?: string;
  server?: boolean;
  keyType: string;
  out: string;
  json?: boolean;
}

/** Registers `intercloud ca`. */
export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('the Intercloud Root CA: create it, issue, revoke, publish the CRL');

  ca.command('init')
    .description('create the root key (DIR/root.key, mode 0600) and self-signed certificate (DIR/root.pem)')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--key-type <type>', 'ec (ECDSA P-256) or rsa (RSA-3072)', 'ec')
    .option('--days <days>', 'root lifetime in days', '3650')
    .option('--if-absent', 'do nothing (exit 0) when DIR already holds a root')
    .option('--json', 'print json')
    .action(async (o: { dir: string; keyType: string; days: string; ifAbsent?: boolean; json?: boolean }) => {
      if (o.keyType !== 'ec' && o.keyType !== 'rsa') throw usage(`--key-type '${o.keyType}' is not 'ec' or 'rsa'`);
      const days = Number(o.days);
      if (!Number.isInteger(days) || days < 1) throw usage(`--days '${o.days}' is not a positive whole number`);
      const dir = resolve(o.dir);
      if (o.ifAbsent && existsSync(`${dir}/${CA_FILES.root}`)) {
        const existing = readCaDirectory(dir);
        if (o.json) printJson({ dir, root: `${dir}/root.pem`, key: `${dir}/root.key`, existed: true, ...summary(existing.issuer.certificate) });
        return;
      }
      const created = await initCaDirectory(dir, { keyType: o.keyType as KeyType, now: new Date(), days });
      const info = { dir, root: `${dir}/root.pem`, key: `${dir}/root.key`, ...summary(created.issuer.certificate) };
      if (o.json) printJson(info);
      else process.stdout.write(`created root '${info.subject}' serial ${info.serial} in '${dir}'\n`);
    });

  ca.command('issue')
    .description('issue a gateway identity (--cloud) or a TLS server certificate (--server); writes OUT.pem and OUT.key')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--cloud <id>', 'cloud id: CN, SAN URI intercloud://ID')
    .option('--xmpp <jid>', 'gateway JID for the id-on-xmppAddr SAN: ID@<its Root domain> (default ID@intercloud.test)')
    .option('--dns <name>', 'DNS SAN (repeatable; default ID.intercloud.test for a gateway)', collect)
    .option('--ip <addr>', 'IP SAN (repeatable; --server only)', collect)
    .option('--days <days>', 'lifetime in days (default 90)')
    .option('--csr <file>', 'sign this PKCS #10 request instead of generating a key')
    .option('--server', 'a server certificate: CN = first --dns, DNS and IP SANs')
    .option('--key-type <type>', 'type of a generated key: ec or rsa', 'ec')
    .requiredOption('--out <prefix>', 'write PREFIX.pem (and PREFIX.key when a key is generated)')
    .option('--json', 'print json')
    .action(async (o: IssueOptions) => {
      if (o.keyType !== 'ec' && o.keyType !== 'rsa') throw usage(`--key-type '${o.keyType}' is not 'ec' or 'rsa'`);
      if (o.server ? o.cloud !== undefined : o.cloud === undefined) throw usage('give exactly one of --cloud ID or --server');
      if (o.server && (o.dns ?? []).length === 0) throw usage('--server needs at least one --dns');
      if (!o.server && (o.ip ?? []).length > 0) throw usage('--ip is for --server certificates only');
      if (o.server && o.xmpp !== undefined) throw usage('--xmpp is for gateway (--cloud) certificates only');
      const days = parseDays(o.days);
      const dir = resolve(o.dir);
      const out = resolve(o.out);
      if (!existsSync(dirname(out))) throw usage(`--out '${o.out}': directory '${dirname(out)}' does not exist`);
      // The CSR's self-signature is checked before anything is signed (TRUST_CSR_SIGNATURE).
      const request = o.csr === undefined ? undefined : parseCsrPem(readInput(o.csr, 'csr'));
      const keys = request ? undefined : generateKeyPair(o.keyType);
      const publicKey = request?.publicKey ?? keys!.publicKey;
      const now = new Date();
      const cert = await updateCaState(dir, (ca) => {
        const jid = o.server ? undefined : (o.xmpp ?? `${o.cloud!}@${DEFAULT_XMPP_DOMAIN}`);
        if (jid !== undefined) assertCloudIdFree(ca.state, o.cloud!, jid, now);
        const issued = o.server
          ? issueServerCertificate(ca.issuer, { dns: o.dns ?? [], ips: o.ip ?? [], publicKey, now, days })
          : issueGatewayCertificate(ca.issuer, { cloudId: o.cloud!, jid: o.xmpp, dns: o.dns, publicKey, now, days });
        ca.state.issued.push({
          serial: issued.serial,
          kind: o.server ? 'server' : 'gateway',
          name: issued.subject.commonName ?? '',
          fingerprint256: issued.fingerprint256,
          notAfter: issued.notAfter.toISOString(),
          issuedAt: now.toISOString(),
          ...(jid === undefined ? {} : { jid }),
        });
        return issued;
      });
      if (keys) writeFileAtomic(`${out}.key`, privateKeyToPem(keys.privateKey), 0o600);
      writeFileAtomic(`${out}.pem`, certificateToPem(cert.der));
      const info = { certificate: `${out}.pem`, ...(keys ? { key: `${out}.key` } : {}), ...summary(cert) };
      if (o.json) printJson(info);
      else process.stdout.write(`issued '${cert.subject.commonName ?? ''}' serial ${cert.serial} -> '${out}.pem'\n`);
    });

  ca.command('revoke')
    .description('mark a certificate this CA issued as revoked (publish with `ca crl`)')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--serial <hex>', 'serial number (hex, colons allowed)')
    .option('--cert <file>', 'the certificate (PEM) to revoke')
    .option('--json', 'print json')
    .action(async (o: { dir: string; serial?: string; cert?: string; json?: boolean }) => {
      if ((o.serial === undefined) === (o.cert === undefined)) throw usage('give exactly one of --serial S or --cert FILE');
      const serial = o.serial !== undefined ? normaliseSerial(o.serial) : parseCertificatePem(readInput(o.cert!, 'certificate')).serial;
      const now = new Date();
      const result = await updateCaState(resolve(o.dir), (ca) => {
        if (!ca.state.issued.some((r) => r.serial === serial)) {
          throw new IntercloudError('TRUST_UNKNOWN_SERIAL', `serial '${serial}' was not issued by the ca in '${ca.dir}'`);
        }
        const already = ca.state.revoked.find((r) => r.serial === serial);
        if (already) return { serial, revokedAt: already.revokedAt, already: true };
        ca.state.revoked.push({ serial, revokedAt: now.toISOString() });
        return { serial, revokedAt: now.toISOString(), already: false };
      });
      if (o.json) printJson(result);
      else process.stdout.write(`${result.already ? 'already revoked' : 'revoked'} serial ${serial} (run 'intercloud ca crl' to publish)\n`);
    });

  ca.command('crl')
    .description('write the root\'s current X.509 v2 CRL (PEM)')
    .requiredOption('--dir <dir>', 'CA directory')
    .requiredOption('--out <file>', 'CRL file to write')
    .option('--days <days>', 'days until nextUpdate', String(DEFAULT_CRL_DAYS))
    .option('--json', 'print json')
    .action(async (o: { dir: string; out: string; days: string; json?: boolean }) => {
      const days = Number(o.days);
      if (!Number.isInteger(days) || days < 1 || days > 365) throw usage(`--days '${o.days}' is not a whole number of days in 1..365`);
      const now = new Date();
      const { der, crlNumber, revoked } = await updateCaState(resolve(o.dir), (ca) => {
        const crlNumber = ca.state.nextCrlNumber;
        ca.state.nextCrlNumber += 1;
        const entries = ca.state.revoked.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revokedAt) }));
        const built = buildCrl({
          issuer: ca.issuer.certificate, signingKey: ca.issuer.privateKey, revoked: entries, crlNumber,
          thisUpdate: new Date(now.getTime() - BACKDATE_MS), nextUpdate: new Date(now.getTime() + days * 86_400_000),
        });
        return { der: built, crlNumber, revoked: entries.length };
      });
      const out = resolve(o.out);
      writeFileAtomic(out, crlToPem(der));
      if (o.json) printJson({ crl: out, crlNumber, revoked });
      else process.stdout.write(`wrote crl #${crlNumber} with ${revoked} revoked certificate(s) to '${out}'\n`);
    });
}

/** Default CRL lifetime (nextUpdate - thisUpdate), in days. */
export const DEFAULT_CRL_DAYS = 7;

/** `AB:CD:01` / `abcd01` / `0xabcd01` → `abcd01` (no leading zero octets), as {@link Certificate.serial}. */
function normaliseSerial(text: string): string {
  const hex = text.replace(/^0x/i, '').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex) || hex.length > 40) throw usage(`--serial '${text}' is not a hex serial number`);
  const even = hex.length % 2 ? `0${hex}` : hex;
  return even.replace(/^(00)+(?=..)/, '');
}
