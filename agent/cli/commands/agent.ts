/**
 * `intercloud agent --config FILE`: the gateway daemon. The config is checked before any
 * socket opens (exit 2 with the fix on a bad config); SIGTERM/SIGINT stop it cleanly, with
 * running jobs left in their journals to resume at the next start.
 */
import type { Command } from 'commander';
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
      if (o.check) { process.stdout.write(`config '${o.config}' is valid (cloud '${config.cloud.id}')\n`); return; }
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
