/**
 * libvirtd lost in the middle of a command (killed, restarting): the libvirt adapter over a
 * stand-in host whose `virsh` carries out the command and then reports the dropped connection,
 * as Debian 12's virsh does ("Disconnected from … due to end of file", exit 1). The real
 * daemon's cut connections are in test/integration/hypervisor/libvirt-faults.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { LibvirtHypervisor } from '../../../adapters/hypervisor/libvirt/libvirt-hypervisor.js';
import type { CommandResult, CommandRunner } from '../../../adapters/hypervisor/libvirt/command-runner.js';

const settings = { name: 'cloud-a', uri: 'qemu:///system', pool: 'default', virsh: 'virsh', qemuImg: 'qemu-img', pollMs: 5, domainType: 'qemu', diskIo: 'file' as const };
const DROPPED = 'error: Disconnected from qemu:///system due to end of file\nerror: End of file while reading data: Input/output error\n';
const AWAY = 'error: failed to connect to the hypervisor\nerror: Failed to connect socket to \'/run/libvirt/libvirt-sock\': No such file or directory\n';

/**
 * A host with VM `web1` after a live move: its disk's chain (overlays 1 and 2 on `web1.img`) and
 * its saved state in pool `default` at /pool. `undefine` takes effect, then the connection drops;
 * libvirtd is then away for `awayFor` commands.
 */
function hostLosingLibvirtd(awayFor: number): { runner: CommandRunner; volumes: Map<string, string>; exists: () => boolean } {
  const volumes = new Map(['web1-disk0.ovl1.qcow2', 'web1-disk0.ovl2.qcow2', 'web1.img', 'web1.state'].map((n) => [n, `/pool/${n}`]));
  let exists = true;
  let away = 0;
  const ok = (stdout = ''): CommandResult => ({ exitStatus: 0, stdout: Buffer.from(stdout), stderr: '' }) as CommandResult;
  const fail = (stderr: string): CommandResult => ({ exitStatus: 1, stdout: Buffer.alloc(0), stderr }) as CommandResult;
  const runner = {
    where: 'stand-in',
    run: async (argv: readonly string[]): Promise<CommandResult> => {
      if (argv[0] === 'qemu-img') {
        const path = argv[argv.length - 1]!;
        const backing = path.endsWith('ovl1.qcow2') ? '/pool/web1.img' : '/pool/web1-disk0.ovl1.qcow2';
        return ok(JSON.stringify({ format: 'qcow2', 'virtual-size': 1 << 20, 'backing-filename': backing, 'backing-filename-format': 'raw' }));
      }
      if (away > 0) {
        away--;
        return fail(AWAY);
      }
      const [cmd, ...rest] = argv.slice(4);
      switch (cmd) {
        case 'domstate': return exists ? ok('shut off\n') : fail("error: failed to get domain 'web1'\n");
        case 'list': return ok(exists ? 'web1\n' : '');
        case 'pool-refresh': return ok();
        case 'vol-list': return ok([...volumes].map(([n, p]) => `${n} ${p}`).join('\n'));
        case 'pool-dumpxml': return ok("<pool type='dir'><name>default</name><target><path>/pool</path></target></pool>");
        case 'vol-delete': {
          const name = [...volumes].find(([, p]) => p === rest[1])?.[0];
          if (name) volumes.delete(name);
          return ok();
        }
        case 'undefine':
          // libvirt removes the domain and its disk's top image, then the answer is lost.
          exists = false;
          volumes.delete('web1-disk0.ovl2.qcow2');
          away = awayFor;
          return fail(DROPPED);
        default: throw new Error(`unexpected ${argv.join(' ')}`);
      }
    },
    spawn: () => { throw new Error('not used'); },
    close: async () => undefined,
  } as unknown as CommandRunner;
  return { runner, volumes, exists: () => exists };
}

describe('libvirt adapter: libvirtd lost mid-command', () => {
  it.each([0, 3])('undefine with its storage, the answer lost and libvirtd away for %i commands: asked again once back, the leftovers removed', async (awayFor) => {
    const host = hostLosingLibvirtd(awayFor);
    const hv = new LibvirtHypervisor(settings, host.runner);
    await expect(hv.undefineVm('web1', { removeStorage: true })).resolves.toEqual({ existed: true });
    expect(host.exists()).toBe(false);
    // The base and the older overlay a retry would not have known of, and the state file: gone.
    expect([...host.volumes.keys()]).toEqual([]);
  });

  it('a command that only lost its answer is LIBVIRT_DAEMON_LOST, retryable', async () => {
    const host = hostLosingLibvirtd(0);
    const hv = new LibvirtHypervisor(settings, {
      ...host.runner, run: async (argv: readonly string[]) => (argv.includes('domstate') ? { exitStatus: 1, stdout: Buffer.alloc(0), stderr: DROPPED } as CommandResult : host.runner.run(argv)),
    } as CommandRunner);
    await expect(hv.vmState('web1')).rejects.toMatchObject({ code: 'LIBVIRT_DAEMON_LOST', retryable: true });
  });
});
