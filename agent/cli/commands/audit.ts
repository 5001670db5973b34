/** `intercloud audit verify`: checks the hash chain of an audit log. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { verifyAuditFile, type AuditHead } from '../../../protocols/trust/index.js';
import { EXIT, printJson } from '../output.js';
import { usage } from './trust-args.js';

/** Registers `intercloud audit`. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the hash-chained audit log of trust decisions and intercloud actions');

  audit.command('verify')
    .description('verify the chain of FILE; names the first edited, removed, reordered or cut line (exit 0 intact, 3 broken)')
    .argument('<file>', 'audit log (JSON lines)')
    .option('--count <n>', 'the log must end at this seq (a head remembered elsewhere)')
    .option('--head <hash>', 'the log must end with this hash')
    .option('--json', 'print json')
    .action(async (file: string, o: { count?: string; head?: string; json?: boolean }) => {
      if ((o.count === undefined) !== (o.head === undefined)) {
        throw usage('give --count and --head together');
      }
      if (!existsSync(file)) throw usage(`audit log '${file}' does not exist`);
      if (o.count !== undefined && !/^\d+$/.test(o.count)) throw usage(`--count '${o.count}' is not a whole number`);
      const expect: AuditHead | undefined = o.count === undefined ? undefined : { count: Number(o.count), hash: o.head! };
      try {
        const head = await verifyAuditFile(file, expect);
        if (o.json) printJson({ verdict: 'intact', file, ...head });
        else process.stdout.write(`intact: ${head.count} record(s), head ${head.hash}\n`);
        process.exitCode = EXIT.ok;
      } catch (err) {
        if (!isIntercloudError(err, 'TRUST_AUDIT_BROKEN')) throw err;
        if (o.json) printJson({ verdict: 'broken', file, code: err.code, message: err.message, ...err.details });
        else process.stdout.write(`broken [${err.code}]: ${err.message}\n`);
        process.exitCode = EXIT.rejected;
      }
    });
}
