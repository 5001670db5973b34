/**
 * `intercloud cert …`: checks a peer certificate the way the agent does before any
 * intercloud transaction — `verify` prints a verdict and a reason code; `show` prints the
 * fields the trust area reads.
 */
import type { Command } from 'commander';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import {
  parseCertificatePem, parseCertificatesPem, parseCrlsPem, verifyCertificatePem, type VerifyOptions,
} from '../../../protocols/trust/index.js';
import { EXIT, printJson } from '../output.js';
import { collect, readInput, usage } from './trust-args.js';

interface VerifyFlags {
  root: string[];
  crl?: string[];
  chain?: string;
  cloud?: string;
  jid?: string;
  dns?: string;
  purpose?: string;
  at?: string;
  requireCrl?: boolean;
  json?: boolean;
}

/** Registers `intercloud cert`. */
export function registerCertCommands(program: Command): void {
  const cert = program.command('cert').description('check peer certificates against the Intercloud Root');

  cert.command('verify')
    .description('verify CERT (chain, validity, key usage, revocation, identity); exit 0 good, 3 rejected')
    .argument('<cert>', 'PEM certificate (later blocks in the file are taken as intermediates)')
    .requiredOption('--root <file>', 'trusted root certificate(s), PEM (repeatable)', collect)
    .option('--crl <file>', 'CRL(s), PEM (repeatable)', collect)
    .option('--chain <file>', 'intermediate certificates, PEM')
    .option('--cloud <id>', 'the certificate must name this cloud (URI SAN intercloud://ID)')
    .option('--jid <jid>', 'the certificate must carry this id-on-xmppAddr')
    .option('--dns <name>', 'the certificate must carry this DNS SAN')
    .option('--purpose <eku>', 'serverAuth or clientAuth')
    .option('--at <iso-time>', 'verify at this time instead of now')
    .option('--require-crl', 'reject when no CRL covers the issuer')
    .option('--json', 'print json')
    .action((file: string, o: VerifyFlags) => {
      if (o.purpose !== undefined && o.purpose !== 'serverAuth' && o.purpose !== 'clientAuth') {
        throw usage(`--purpose '${o.purpose}' is not 'serverAuth' or 'clientAuth'`);
      }
      const now = o.at === undefined ? new Date() : new Date(o.at);
      if (Number.isNaN(now.getTime())) throw usage(`--at '${o.at}' is not a time`);
      const options: VerifyOptions = {
        roots: o.root.flatMap((f) => parseCertificatesPem(readInput(f, 'root'))),
        intermediates: o.chain === undefined ? [] : parseCertificatesPem(readInput(o.chain, 'chain')),
        crls: (o.crl ?? []).flatMap((f) => parseCrlsPem(readInput(f, 'crl'))),
        now,
        purpose: o.purpose as VerifyOptions['purpose'],
        expectCloudId: o.cloud,
        expectJid: o.jid,
        expectDns: o.dns,
        requireCrl: o.requireCrl === true,
      };
      const pem = readInput(file, 'certificate');
      try {
        const identity = verifyCertificatePem(pem, options);
        if (o.json) printJson({ verdict: 'good', certificate: file, identity: { ...identity, notAfter: identity.notAfter.toISOString() } });
        else process.stdout.write(`good: '${identity.subject}'${identity.cloudId ? ` cloud '${identity.cloudId}'` : ''}${identity.jid ? ` jid '${identity.jid}'` : ''} until ${identity.notAfter.toISOString()} sha256 ${identity.fingerprint256}\n`);
        process.exitCode = EXIT.ok;
      } catch (err) {
        if (!isIntercloudError(err) || !err.code.startsWith('TRUST_')) throw err;
        if (o.json) printJson({ verdict: 'rejected', certificate: file, code: err.code, message: err.message, details: err.details });
        else process.stdout.write(`rejected [${err.code}]: ${err.message}\n`);
        process.exitCode = EXIT.rejected;
      }
    });

  cert.command('show')
    .description('print the fields of a PEM certificate the trust area reads')
    .argument('<cert>', 'PEM certificate')
    .action((file: string) => {
      const c = parseCertificatePem(readInput(file, 'certificate'));
      printJson({
        serial: c.serial, subject: c.subject.text, issuer: c.issuer.text,
        notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString(),
        basicConstraints: c.basicConstraints, keyUsage: c.keyUsage ? [...c.keyUsage] : undefined,
        extKeyUsage: c.extKeyUsage, subjectAltNames: c.subjectAltNames, fingerprint256: c.fingerprint256,
      });
    });
}
