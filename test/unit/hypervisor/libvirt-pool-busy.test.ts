/**
 * A pool refresh refused while libvirtd builds a volume in the pool: the libvirt adapter over a
 * stand-in host whose `virsh pool-refresh` answers as Debian 12's does then. The real libvirtd
 * building a volume is in test/integration/hypervisor/libvirt-faults.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { LibvirtHypervisor } from '../../../adapters/hypervisor/libvirt/libvirt-hypervisor.js';
import type { CommandResult, CommandRunner } from '../../../adapters/hypervisor/libvirt/command-runner.js';

const settings = { name: 'cloud-a', uri: 'qemu:///system', pool: 'default', virsh: 'virsh', qemuImg: 'qemu-img', pollMs: 5, domainType: 'qemu', diskIo: 'file' as const };
const BUILDING = "error: Failed to refresh pool default\nerror: internal error: pool 'default' has asynchronous jobs running.\n";

/** A host whose pool refuses `refusals` refreshes with `stderr`, then holds `/pool/web1.img`. */
function host(refusals: number, stderr = BUILDING): { runner: CommandRunner; refreshes: () => number; volumes: Set<string> } {
  let refreshes = 0;
  const volumes = new Set(['/pool/web1.img']);
  const ok = (stdout = ''): CommandResult => ({ exitStatus: 0, stdout: Buffer.from(stdout), stderr: '' }) as CommandResult;
  const runner = {
    where: 'stand-in',
    run: async (argv: readonly string[]): Promise<CommandResult> => {
      const [cmd, ...rest] = argv.slice(4);
      switch (cmd) {
        case 'pool-refresh':
          refreshes++;
          return refreshes <= refusals ? ({ exitStatus: 1, stdout: Buffer.alloc(0), stderr } as CommandResult) : ok();
        case 'vol-list': return ok([...volumes].map((p) => `${p.slice(6)} ${p}`).join('\n'));
        case 'vol-delete': volumes.delete(rest[1]!); return ok();
        default: throw new Error(`unexpected ${argv.join(' ')}`);
      }
    },
    spawn: () => { throw new Error('not used'); },
    close: async () => undefined,
  } as unknown as CommandRunner;
  return { runner, refreshes: () => refreshes, volumes };
}

describe('libvirt adapter: a pool busy building a volume', () => {
  it('the refresh is asked again until libvirtd takes it, then the operation goes on', async () => {
    const h = host(3);
    await new LibvirtHypervisor(settings, h.runner).removeDisk('/pool/web1.img');
    expect(h.refreshes()).toBeGreaterThanOrEqual(4);
    expect(h.volumes.size).toBe(0);
  });

  it('any other refusal of the refresh is the error at once', async () => {
    const h = host(1, "error: Failed to refresh pool default\nerror: Requested operation is not valid: storage pool 'default' is not active\n");
    await expect(new LibvirtHypervisor(settings, h.runner).removeDisk('/pool/web1.img')).rejects.toMatchObject({ code: 'LIBVIRT_COMMAND_FAILED' });
    expect(h.refreshes()).toBe(1);
    expect(h.volumes.size).toBe(1);
  });

  it('a caller who gives up while it waits gets HV_ABORTED, and nothing is removed', async () => {
    const h = host(Number.POSITIVE_INFINITY);
    const err = await new LibvirtHypervisor(settings, h.runner).removeDisk('/pool/web1.img', { signal: AbortSignal.timeout(400) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HV_ABORTED' });
    expect(h.refreshes()).toBeGreaterThan(1);
    expect(h.volumes.size).toBe(1);
  });
});
