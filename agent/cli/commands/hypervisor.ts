/**
 * `intercloud hv …`: the local hypervisor as the agent's config describes it (`hypervisor.kind`
 * and `hypervisor.config`), through the same adapter the daemon uses: list VMs, describe one,
 * show host capacity. For operators checking the adapter's view before a migration.
 */
import type { Command } from 'commander';
import { createHypervisor } from '../../../adapters/hypervisor/index.js';
import type { Hypervisor } from '../../../adapters/hypervisor/index.js';
import { loadConfig } from '../../config/index.js';
import { printJson } from '../output.js';
import { DEFAULT_CONFIG } from './agent.js';

async function withHypervisor<T>(configFile: string, run: (hv: Hypervisor) => Promise<T>): Promise<T> {
  const config = await loadConfig(configFile);
  const hv = createHypervisor(config.hypervisor);
  try {
    return await run(hv);
  } finally {
    await hv.close();
  }
}

const GiB = 1024 ** 3;

/** Registers `intercloud hv`. */
export function registerHypervisorCommands(program: Command): void {
  const hv = program.command('hv').description("the local hypervisor through the agent's adapter (libvirt, vmware)");

  hv.command('list')
    .description('the VMs the hypervisor knows, with their power state')
    .option('-c, --config <file>', 'agent config (YAML)', DEFAULT_CONFIG)
    .option('--json', 'print json')
    .action(async (o: { config: string; json?: boolean }) => {
      const vms = await withHypervisor(o.config, (h) => h.listVms());
      if (o.json) printJson(vms);
      else for (const v of vms) process.stdout.write(`${v.name}\t${v.state}\n`);
    });

  hv.command('describe')
    .description('one VM in the shared model, its power state and disks')
    .argument('<vm>', 'VM name')
    .option('-c, --config <file>', 'agent config (YAML)', DEFAULT_CONFIG)
    .action(async (vm: string, o: { config: string }) => {
      printJson(await withHypervisor(o.config, (h) => h.describeVm(vm)));
    });

  hv.command('capacity')
    .description('free and total vCPUs, memory and disk (what the catalog entry advertises)')
    .option('-c, --config <file>', 'agent config (YAML)', DEFAULT_CONFIG)
    .option('--json', 'print json')
    .action(async (o: { config: string; json?: boolean }) => {
      const c = await withHypervisor(o.config, (h) => h.hostCapacity());
      if (o.json) printJson(c);
      else {
        process.stdout.write(`vcpus   ${c.vcpusFree} free of ${c.vcpusTotal}\n`);
        process.stdout.write(`memory  ${(c.memoryBytesFree / GiB).toFixed(1)} GiB free of ${(c.memoryBytesTotal / GiB).toFixed(1)} GiB\n`);
        process.stdout.write(`disk    ${(c.diskBytesFree / GiB).toFixed(1)} GiB free of ${(c.diskBytesTotal / GiB).toFixed(1)} GiB\n`);
      }
    });
}
