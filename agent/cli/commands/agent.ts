/**
 * `intercloud agent --config FILE`: the gateway daemon. The config, the hypervisor adapter's
 * own part included, is checked before any file is written or socket opened (exit 2 with the fix
 * on a bad config; `--check` stops there); SIGTERM/SIGINT stop it cleanly, with
 * running jobs left in their journals to resume at the next start.
 */
import type { Command } from 'commander';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import { loadConfig } from '../../config/index.js';
import { startGateway } from '../../daemon/gateway.js';
import { createRootLogger } from '../../log.js';

/** Default config path of the systemd unit. */
export const DEFAULT_CONFIG = '/etc/intercloud/agent.yaml';

/** Registers `intercloud agent`. */
export function registerAgentCommands(program: Command): void {
  program
    .command('agent')
    .description('run the gateway agent (the daemon)')
    .option('-c, --config <file>', 'agent config (YAML)', DEFAULT_CONFIG)
    .option('--check', 'check the config and exit')
    .action(async (o: { config: string; check?: boolean }) => {
      const config = await loadConfig(o.config);
      if (o.check) {
        // The config (the adapter's own part included) parsed above; creating the adapter also
        // reads the files it names (ssh key, known_hosts, CA). It connects nothing.
        await createHypervisor(config.hypervisor).close();
        process.stdout.write(`config '${o.config}' is valid (cloud '${config.cloud.id}', hypervisor '${config.hypervisor.kind}')\n`);
        return;
      }
      const log = createRootLogger(config.log.level);
      const gateway = await startGateway(config, log);
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          log.info({ signal }, 'stopping');
          gateway.stop().then(resolve, (err: unknown) => { log.error({ err }, 'stop failed'); resolve(); });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
