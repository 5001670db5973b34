import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service, type GuestEnv, type LibvirtEnv, type SshEnv } from '../../helpers/services.js';
import { sshExec } from './ssh-exec.js';

const run = promisify(execFile);

/** A domain booting the services' Linux guest from its kernel/initrd, with `disk` as vda. */
function guestDomainXml(name: string, guest: GuestEnv, disk: string, consoleLog: string): string {
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>${guest.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${guest.kernel}</kernel><initrd>${guest.initrd}</initrd><cmdline>${guest.cmdline}</cmdline></os>
  <cpu mode='custom'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff><on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/><target dev='vda' bus='virtio'/></disk>
    <serial type='file'><source path='${consoleLog}'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>`;
}

async function waitForLine(file: string, prefix: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const line = text.split(/\r?\n/).find((l) => l.startsWith(prefix));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no '${prefix}' line in '${file}' after ${timeoutMs} ms: ${text.slice(-400)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('libvirt (two QEMU/TCG clouds) and the Linux guest', () => {
  let libvirt: LibvirtEnv;
  let guest: GuestEnv;
  let ssh: SshEnv;
  let work: string;
  const cleanup: Array<() => Promise<unknown>> = [];

  beforeAll(() => {
    libvirt = service('libvirt');
    guest = service('guest');
    ssh = service('sshd');
    work = mkdtempSync(join(tmpdir(), 'intercloud-libvirt-test-'));
  });
  afterAll(async () => {
    // Best effort: a domain already destroyed or undefined by the test itself is not an error here.
    for (const f of cleanup.reverse()) await f().catch((err: unknown) => err);
    rmSync(work, { recursive: true, force: true });
  });

  const virsh = (cloud: string, ...args: string[]) => {
    const inst = libvirt.instances[cloud];
    if (!inst) throw new Error(`no libvirt instance '${cloud}' in services.json`);
    return run('virsh', ['-q', '-c', inst.uri, ...args], { encoding: 'utf8' });
  };

  it('runs two independent instances with their own host UUIDs', async () => {
    expect(Object.keys(libvirt.instances).sort()).toEqual(['cloud-a', 'cloud-b']);
    const uuids: string[] = [];
    for (const [cloud, inst] of Object.entries(libvirt.instances)) {
      const caps = (await virsh(cloud, 'capabilities')).stdout;
      expect(caps).toContain(`<uuid>${inst.hostUuid}</uuid>`);
      uuids.push(inst.hostUuid);
      const pools = (await virsh(cloud, 'pool-list', '--name')).stdout;
      expect(pools.split('\n').map((p) => p.trim())).toContain(inst.pool);
    }
    expect(new Set(uuids).size).toBe(2);
  });

  it('answers the same URI through sshd (how the libvirt adapter drives a remote host)', async () => {
    const inst = libvirt.instances['cloud-b'];
    expect(inst).toBeDefined();
    const r = await sshExec(ssh, `virsh -q -c '${inst?.uri}' capabilities`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`<uuid>${inst?.hostUuid}</uuid>`);
  });

  for (const cloud of ['cloud-a', 'cloud-b']) {
    it(`defines and boots the Linux guest from a qemu-img qcow2 on ${cloud}; it reads its disk's identity`, async () => {
      const inst = libvirt.instances[cloud];
      if (!inst) throw new Error(`no libvirt instance '${cloud}'`);
      const name = `svc-test-${cloud}-${process.pid}`;
      const diskId = `disk-${cloud}-${process.pid}`;
      const disk = join(inst.poolPath, `${name}.qcow2`);
      const consoleLog = join(work, `${name}.console.log`);
      await run(guest.makeDisk, [diskId, disk, '32M']);
      cleanup.push(() => run('rm', ['-f', disk]));
      const info = (await run('qemu-img', ['info', '--output=json', disk], { encoding: 'utf8' })).stdout;
      expect(JSON.parse(info)).toMatchObject({ format: 'qcow2' });

      const xml = join(work, `${name}.xml`);
      writeFileSync(xml, guestDomainXml(name, guest, disk, consoleLog));
      await virsh(cloud, 'define', xml);
      cleanup.push(() => virsh(cloud, 'undefine', name));
      await virsh(cloud, 'start', name);
      cleanup.push(() => virsh(cloud, 'destroy', name));

      expect((await virsh(cloud, 'domstate', name)).stdout.trim()).toBe('running');
      const up = await waitForLine(consoleLog, guest.startMarker, 60_000);
      expect(up).toBe(`${guest.startMarker} kernel=${guest.kernelRelease} disk=${diskId}`);
      const hb = await waitForLine(consoleLog, guest.heartbeatMarker, 10_000);
      expect(hb).toMatch(new RegExp(`^${guest.heartbeatMarker} n=\\d+ uptime=[\\d.]+ disk=${diskId}$`));

      await virsh(cloud, 'destroy', name);
      expect((await virsh(cloud, 'domstate', name)).stdout.trim()).toBe('shut off');
    });
  }
});
