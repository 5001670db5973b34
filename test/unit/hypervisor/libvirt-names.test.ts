/**
 * Names that come from peers reach `virsh` as arguments (issue 12, finding 9): the libvirt
 * adapter refuses, before running anything, a name virsh would read as an option (`-x`), a
 * domain id (`7`) or a UUID, and libvirt's illegal ones. Recorded with a command runner that
 * only notes what it was asked to run.
 */
import { describe, expect, it } from 'vitest';
import { LibvirtHypervisor } from '../../../adapters/hypervisor/libvirt/libvirt-hypervisor.js';
import type { CommandRunner } from '../../../adapters/hypervisor/libvirt/command-runner.js';

function recordingRunner(): { runner: CommandRunner; argvs: string[][] } {
  const argvs: string[][] = [];
  const runner = {
    where: 'local',
    run: async (argv: readonly string[]) => { argvs.push([...argv]); return { exitStatus: 0, stdout: Buffer.from('shut off\n'), stderr: '' }; },
    spawn: () => { throw new Error('not used'); },
    close: async () => undefined,
  } as unknown as CommandRunner;
  return { runner, argvs };
}

const settings = { name: 'cloud-b', uri: 'qemu:///system', pool: 'default', virsh: 'virsh', qemuImg: 'qemu-img', pollMs: 10, domainType: 'qemu', diskIo: 'file' as const };

describe('libvirt adapter: vm names', () => {
  it.each(['-x', '--help', '7', '6f1c2b9e-2f4a-4c1e-9d7a-0b1c2d3e4f50', 'a/b', ''])('refuses %j before virsh runs', async (name) => {
    const { runner, argvs } = recordingRunner();
    const hv = new LibvirtHypervisor(settings, runner);
    for (const call of [
      () => hv.vmState(name), () => hv.describeVm(name), () => hv.startVm(name), () => hv.undefineVm(name),
      () => hv.shutdownVm(name, { timeoutMs: 10 }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'HV_VM_NAME_INVALID' });
    }
    expect(argvs).toEqual([]);
  });

  it('passes ordinary names to virsh', async () => {
    const { runner, argvs } = recordingRunner();
    const hv = new LibvirtHypervisor(settings, runner);
    expect(await hv.vmState('web-1')).toBe('stopped');
    expect(argvs[0]).toEqual(['virsh', '-q', '-c', 'qemu:///system', 'domstate', 'web-1']);
  });
});
