/**
 * Merging a VM's disk chains (live-move.ts `flattenDisks` / `abortTracking`: `virsh blockcommit
 * --active --pivot`) while libvirtd is lost mid-commit, on a scripted host: a commit that pivoted
 * before the connection dropped is found done once libvirtd answers again, and its overlays go
 * with the others; one that did not is the caller's retryable error, the disks done before it
 * already cleaned.
 */
import { describe, expect, it } from 'vitest';
import type { CommandResult, RunOptions } from '../../../adapters/hypervisor/libvirt/command-runner.js';
import { LibvirtLiveMove, type LibvirtOps } from '../../../adapters/hypervisor/libvirt/live-move.js';
import type { LibvirtSettings } from '../../../adapters/hypervisor/libvirt/libvirt-hypervisor.js';
import { hvError } from '../../../adapters/hypervisor/errors.js';

const ok = (stdout = ''): CommandResult => ({ exitStatus: 0, stderr: '', stdout: Buffer.from(stdout) });

/**
 * VM `web1` running on two disks, each on two overlays of its base. `vdb`'s commit fails as
 * `lost` says: after its pivot, before it, or with another error; libvirtd is then away for
 * `awayFor` asks.
 */
function host(lost: 'after-pivot' | 'before-pivot' | 'job-ready' | 'refused', awayFor = 2) {
  const chains: Record<string, string[]> = {
    vda: ['/pool/web1-disk0.ovl2.qcow2', '/pool/web1-disk0.ovl1.qcow2', '/pool/web1.img'],
    vdb: ['/pool/web1-disk1.ovl2.qcow2', '/pool/web1-disk1.ovl1.qcow2', '/pool/web1-data.img'],
  };
  const removed: string[] = [];
  const blockjobs: string[] = [];
  /** A commit job QEMU still runs, ready to pivot, after virsh lost libvirtd. */
  let readyJob: string | undefined;
  let away = 0;
  const daemonAway = () => {
    if (away > 0) {
      away--;
      throw hvError('LIBVIRT_DAEMON_UNAVAILABLE', "libvirt(test): 'virsh' could not connect to libvirtd");
    }
  };
  const virsh = async (args: readonly string[], _o?: RunOptions): Promise<string> => {
    daemonAway();
    switch (args[0]) {
      case 'dumpxml':
        return `<domain type='qemu'><name>web1</name><devices>${Object.entries(chains).map(([dev, c]) => (
          `<disk type='file' device='disk'><driver name='qemu' type='${c.length > 1 ? 'qcow2' : 'raw'}'/><source file='${c[0]}'/><target dev='${dev}' bus='virtio'/></disk>`
        )).join('')}</devices></domain>`;
      case 'blockcommit': {
        const dev = args[2]!;
        if (dev === 'vdb' && lost === 'after-pivot') chains[dev] = chains[dev]!.slice(-1);
        if (dev === 'vdb' && lost === 'job-ready') readyJob = dev;
        if (dev === 'vdb' && lost === 'refused') throw hvError('LIBVIRT_COMMAND_FAILED', "libvirt(test): 'virsh blockcommit' exited with status 1: error: block copy still active");
        if (dev === 'vdb') {
          away = awayFor;
          throw hvError('LIBVIRT_DAEMON_LOST', "libvirt(test): 'virsh blockcommit' lost its connection to libvirtd");
        }
        chains[dev] = chains[dev]!.slice(-1);
        return '';
      }
      default: throw new Error(`unscripted virsh ${args.join(' ')}`);
    }
  };
  const ops: LibvirtOps = {
    prefix: 'libvirt(test)',
    settings: { pool: 'default', pollMs: 2 } as LibvirtSettings,
    virsh,
    virshRaw: async (args) => {
      if (args[0] !== 'blockjob') return ok(await virsh(args));
      daemonAway();
      blockjobs.push(args.slice(2).join(' '));
      const dev = args[2]!;
      if (readyJob !== dev) return { exitStatus: 1, stderr: `error: No active block job '${dev}'\n`, stdout: Buffer.alloc(0) };
      if (args[3] === '--pivot') chains[dev] = chains[dev]!.slice(-1);
      readyJob = undefined;
      return ok();
    },
    qemuImg: async (args) => {
      const top = args[args.length - 1]!;
      const chain = Object.values(chains).find((c) => c[0] === top)!;
      return JSON.stringify(chain.map((filename, i) => ({ filename, format: i === chain.length - 1 ? 'raw' : 'qcow2', 'virtual-size': 1 << 30 })));
    },
    run: async () => ok(),
    checkName: () => undefined,
    vmState: async () => { daemonAway(); return 'running'; },
    volumes: async () => [],
    removeDisk: async (href) => { removed.push(href); },
    undefineVm: async () => ({ existed: true }),
    streamFile: () => { throw new Error('not read here'); },
  };
  return { ops, removed, chains, blockjobs };
}

const OVERLAYS = ['/pool/web1-disk0.ovl2.qcow2', '/pool/web1-disk0.ovl1.qcow2', '/pool/web1-disk1.ovl2.qcow2', '/pool/web1-disk1.ovl1.qcow2'];

describe('libvirt: disk chains merged while libvirtd is lost mid-commit', () => {
  it('the lost commit had pivoted: found done once libvirtd answers, every overlay removed', async () => {
    const h = host('after-pivot');
    await new LibvirtLiveMove(h.ops).flattenDisks('web1');
    expect(h.removed).toEqual(OVERLAYS);
  });

  it('it had not, its job left ready (the pivot was virsh\'s to ask): pivoted now, every overlay removed', async () => {
    const h = host('job-ready');
    await new LibvirtLiveMove(h.ops).flattenDisks('web1');
    expect(h.blockjobs).toEqual(['vdb --pivot']);
    expect(h.removed).toEqual(OVERLAYS);
  });

  it('it had not and no job is left: any job aborted, the retryable error, the disk merged before it already cleaned', async () => {
    const h = host('before-pivot');
    const live = new LibvirtLiveMove(h.ops);
    await expect(live.flattenDisks('web1')).rejects.toMatchObject({ code: 'LIBVIRT_DAEMON_LOST', retryable: true });
    expect(h.blockjobs).toEqual(['vdb --pivot', 'vdb --abort']);
    expect(h.removed).toEqual(OVERLAYS.slice(0, 2));
    expect(h.chains['vdb']).toHaveLength(3);
  });

  it('another failure is the answer at once, the disk merged before it already cleaned', async () => {
    const h = host('refused');
    await expect(new LibvirtLiveMove(h.ops).abortTracking('web1')).rejects.toMatchObject({ code: 'LIBVIRT_COMMAND_FAILED' });
    expect(h.removed).toEqual(OVERLAYS.slice(0, 2));
  });
});
