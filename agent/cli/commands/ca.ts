/**
 * `intercloud ca …`: the Intercloud Root CA kept in a directory — `init`, `issue`
 * (gateway identity or `--server` TLS certificate), `revoke`, `crl`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { IntercloudError } from '../../../protocols/errors/index.js';
import {
  CA_FILES, certificateToPem, generateKeyPair, initCaDirectory, issueGatewayCertificate, issueServerCertificate, parseCsrPem,
  privateKeyToPem, readCaDirectory, updateCaState, writeFileAtomic, type Certificate, type KeyType,
} from '../../../protocols/trust/index.js';
import { EXIT, printJson } from '../output.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function usage(message: string): IntercloudError {
  return new IntercloudError('TRUST_BAD_ARGUMENT', message, { details: { exit: EXIT.usage } });
}

function parseDays(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n)) throw usage(`--days '${text}' is not a whole number`);
  return n;
}

function readInput(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new IntercloudError('TRUST_BAD_ARGUMENT', `cannot read '${path}'`, { cause: err, details: { exit: EXIT.usage } });
  }
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
    .option('--xmpp <jid>', 'gateway JID for the id-on-xmppAddr SAN (default ID@intercloud.test)')
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
      // The CSR's self-signature is checked before anything is signed (TRUST_CSR_SIGNATURE).
      const request = o.csr === undefined ? undefined : parseCsrPem(readInput(o.csr));
      const keys = request ? undefined : generateKeyPair(o.keyType);
      const publicKey = request?.publicKey ?? keys!.publicKey;
      const now = new Date();
      const cert = await updateCaState(dir, (ca) => {
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
        });
        return issued;
      });
      const out = resolve(o.out);
      if (keys) writeFileAtomic(`${out}.key`, privateKeyToPem(keys.privateKey), 0o600);
      writeFileAtomic(`${out}.pem`, certificateToPem(cert.der));
      const info = { certificate: `${out}.pem`, ...(keys ? { key: `${out}.key` } : {}), ...summary(cert) };
      if (o.json) printJson(info);
      else process.stdout.write(`issued '${cert.subject.commonName ?? ''}' serial ${cert.serial} -> '${out}.pem'\n`);
    });
}
