/**
 * The `intercloud` command line. Every area registers its subcommands here, explicitly,
 * in one table (no import side effects): add an entry for `agent/cli/commands/<area>.ts` to
 * {@link CLI_AREAS}, naming the top-level commands its `register…` function adds. A run loads
 * only the area of the command it is given (all of them for help, the version or an unknown
 * command): an area's imports (the daemon, the adapters, the XMPP and AMQP clients) cost the
 * other commands about 2 s of CPU at every start.
 */
import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeOf, printError } from './output.js';

/** One area's subcommands. */
export type RegisterCommands = (program: Command) => void;

/** One area of the CLI: the top-level commands it registers, and its registration (loaded on use). */
export interface CliArea {
  readonly commands: readonly string[];
  readonly load: () => Promise<RegisterCommands>;
}

/** The areas of the CLI, in the order `intercloud --help` lists them. */
export const CLI_AREAS: readonly CliArea[] = [
  { commands: ['agent'], load: async () => (await import('./commands/agent.js')).registerAgentCommands },
  { commands: ['migrate', 'jobs', 'job', 'cancel'], load: async () => (await import('./commands/jobs.js')).registerJobCommands },
  { commands: ['storage'], load: async () => (await import('./commands/storage.js')).registerStorageCommands },
  { commands: ['hv'], load: async () => (await import('./commands/hypervisor.js')).registerHypervisorCommands },
  { commands: ['ca'], load: async () => (await import('./commands/ca.js')).registerCaCommands },
  { commands: ['cert'], load: async () => (await import('./commands/cert.js')).registerCertCommands },
  { commands: ['audit'], load: async () => (await import('./commands/audit.js')).registerAuditCommands },
  { commands: ['root', 'map'], load: async () => (await import('./commands/lisp.js')).registerLispCommands },
  {
    commands: ['time'],
    load: async () => {
      const [{ registerTimeCommands }, { runningAgentPeerOffsets }] = await Promise.all([import('./commands/time.js'), import('./commands/jobs.js')]);
      return (p) => registerTimeCommands(p, { peerOffsets: runningAgentPeerOffsets });
    },
  },
  { commands: ['transfer'], load: async () => (await import('./commands/transfer.js')).registerTransferCommands },
  { commands: ['ovf'], load: async () => (await import('./commands/ovf.js')).registerOvfCommands },
  { commands: ['ova'], load: async () => (await import('./commands/ovf.js')).registerOvaCommands },
  { commands: ['peers'], load: async () => (await import('./commands/xmpp.js')).registerXmppCommands },
];

/**
 * The areas a run with `argv` needs: the one area of its command when `argv` starts with a
 * command an area names, else every area (help, the version, no command, an unknown one).
 */
export function areasFor(argv: readonly string[]): readonly CliArea[] {
  const first = argv[0];
  const area = first === undefined ? undefined : CLI_AREAS.find((a) => a.commands.includes(first));
  return area ? [area] : CLI_AREAS;
}

/** Builds the program with the subcommands of the areas `argv` needs ({@link areasFor}). */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('intercloud')
    .description('Intercloud gateway agent: find, trust and move workloads to other clouds')
    .version('0.1.0')
    .showHelpAfterError()
    // Commander's own errors (unknown command or option, missing argument …) are usage errors:
    // printed with the CLI's code, like every other error, and mapped to exit 2 in runCli.
    // Subcommands inherit this output setting from the program when they are created.
    .configureOutput({ outputError: (text, write) => write(`error [CLI_USAGE]: ${text.replace(/^error: /, '')}`) })
    .exitOverride();
  const registers = await Promise.all(areasFor(argv).map((a) => a.load()));
  for (const register of registers) register(program);
  return program;
}

/** Runs the CLI with `argv` and returns the process exit code. */
export async function runCli(argv: string[]): Promise<number> {
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    // Help and --version end with exit code 0; every other commander error is a usage error.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    printError(err);
    return exitCodeOf(err);
  }
}
