/**
 * The libvirt adapter's save of a paused VM's state (live-move.ts), on scripted host commands:
 * a save that fails after its file was reported whole leaves a file that is not the VM's saved
 * state, so no later call may answer with it (a retried commit would otherwise find the VM
 * stopped and take whatever file is there) until the VM is resumed here.
 */
import { describe, expect, it } from 'vitest';
import type { CommandResult, RunOptions } from '../../../adapters/hypervisor/libvirt/command-runner.js';
import { LibvirtLiveMove, type LibvirtOps } from '../../../adapters/hypervisor/libvirt/live-move.js';
import type { LibvirtSettings } from '../../../adapters/hypervisor/libvirt/libvirt-hypervisor.js';
import { hvError } from '../../../adapters/hypervisor/errors.js';

const POOL = '/pool';
const ok = (stdout = ''): CommandResult => ({ exitStatus: 0, stderr: '', stdout: Buffer.from(stdout) });

/** A host whose VM `web1` runs until suspended; `virsh save` writes the file, then fails as told. */
function host(o: { saveFails: boolean }) {
  const commands: string[] = [];
  let state: 'running' | 'paused' | 'stopped' = 'running';
  const virsh = async (args: readonly string[], _o?: RunOptions): Promise<string> => {
    commands.push(`virsh ${args.join(' ')}`);
    switch (args[0]) {
      case 'pool-dumpxml': return `<pool type='dir'><name>default</name><target><path>${POOL}</path></target></pool>`;
      case 'suspend': state = 'paused'; return '';
      case 'resume': state = 'running'; return '';
      case 'restore': state = 'running'; return '';
      case 'save':
        // The file is whole (the watch reports it), then the VM's teardown fails.
        await new Promise((r) => setTimeout(r, 30));
        if (o.saveFails) throw hvError('LIBVIRT_COMMAND_FAILED', "libvirt: 'virsh save' exited with status 1: error: operation failed");
        state = 'stopped';
        return '';
      default: throw new Error(`unscripted virsh ${args.join(' ')}`);
    }
  };
  const ops: LibvirtOps = {
    prefix: 'libvirt(test)',
    settings: { pool: 'default' } as LibvirtSettings,
    virsh,
    virshRaw: async (args) => ok(await virsh(args)),
    qemuImg: async (args) => { throw new Error(`unscripted qemu-img ${args.join(' ')}`); },
    run: async (argv) => {
      commands.push(argv[0] === 'sh' ? 'watch' : argv.join(' '));
      if (argv[0] === 'sh') return ok('...\n90000000\n');
      if (argv[0] === 'stat') return state === 'stopped' || o.saveFails ? ok('90000000\n') : { exitStatus: 1, stderr: 'no such file', stdout: Buffer.alloc(0) };
      return ok();
    },
    checkName: () => undefined,
    vmState: async () => state,
    volumes: async () => [],
    removeDisk: async (href) => { commands.push(`remove ${href}`); },
    undefineVm: async () => ({ existed: true }),
    streamFile: () => { throw new Error('not read here'); },
  };
  return { ops, commands, state: () => state, fail: (v: boolean) => { o.saveFails = v; } };
}

describe('libvirt: a save that failed after its file was whole', () => {
  it('is the answer to every later save until the vm is resumed here; then a new save goes on', async () => {
    const h = host({ saveFails: true });
    const live = new LibvirtLiveMove(h.ops);
    await live.pause('web1');
    const told: number[] = [];
    const first = await live.saveState('web1', { onWritten: (s) => told.push(s.sizeBytes) }).then(() => undefined, (e: unknown) => e);
    expect(first).toMatchObject({ code: 'LIBVIRT_COMMAND_FAILED' });
    expect(told).toEqual([90000000]);
    // Asked again (a retried commit): the same failure, and no new save, no look at the stale file.
    const saves = h.commands.filter((c) => c.startsWith('virsh save')).length;
    await expect(live.saveState('web1')).rejects.toBe(first);
    expect(h.commands.filter((c) => c.startsWith('virsh save')).length).toBe(saves);
    // The VM resumed here (the move compensated), then a new cut-over: this one saves.
    await live.resumeFromState('web1');
    expect(h.state()).toBe('running');
    h.fail(false);
    await live.pause('web1');
    expect(await live.saveState('web1')).toEqual({ href: `${POOL}/web1.state`, sizeBytes: 90000000 });
    expect(h.state()).toBe('stopped');
  });
});
