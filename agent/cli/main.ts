/**
 * The `intercloud` command line. Every area registers its subcommands here, explicitly,
 * in one list (no import side effects): add a `register…` function from
 * `agent/cli/commands/<area>.ts` to {@link COMMANDS}.
 */
import { Command, CommanderError } from 'commander';
import { registerAgentCommands } from './commands/agent.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerCaCommands } from './commands/ca.js';
import { registerCertCommands } from './commands/cert.js';
import { registerJobCommands } from './commands/jobs.js';
import { registerHypervisorCommands } from './commands/hypervisor.js';
import { registerLispCommands } from './commands/lisp.js';
import { registerStorageCommands } from './commands/storage.js';
import { registerTimeCommands } from './commands/time.js';
import { registerOvaCommands, registerOvfCommands } from './commands/ovf.js';
import { registerTransferCommands } from './commands/transfer.js';
import { registerXmppCommands } from './commands/xmpp.js';
import { runningAgentPeerOffsets } from './commands/jobs.js';
import { EXIT, exitCodeOf, printError } from './output.js';

/** One area's subcommands. */
export type RegisterCommands = (program: Command) => void;

/** The areas of the CLI, in the order `intercloud --help` lists them. */
const COMMANDS: RegisterCommands[] = [
  registerAgentCommands,
  registerJobCommands,
  registerStorageCommands,
  registerHypervisorCommands,
  registerCaCommands,
  registerCertCommands,
  registerAuditCommands,
  registerLispCommands,
  (p) => registerTimeCommands(p, { peerOffsets: runningAgentPeerOffsets }),
  registerTransferCommands, registerOvfCommands, registerOvaCommands, registerXmppCommands];

/** Builds the program with every area's subcommands registered. */
export function buildProgram(): Command {
  const program = new Command('intercloud')
    .description('Intercloud gateway agent: find, trust and move workloads to other clouds')
    .version('0.1.0')
    .showHelpAfterError()
    // Commander's own errors (unknown command or option, missing argument …) are usage errors:
    // printed with the CLI's code, like every other error, and mapped to exit 2 in runCli.
    // Subcommands inherit this output setting from the program when they are created.
    .configureOutput({ outputError: (text, write) => write(`error [CLI_USAGE]: ${text.replace(/^error: /, '')}`) })
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

/** Runs the CLI with `argv` and returns the process exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    // Help and --version end with exit code 0; every other commander error is a usage error.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    printError(err);
    return exitCodeOf(err);
  }
}
