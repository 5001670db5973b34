/**
 * Reading a 1 GiB disk through the libvirt adapter over SSH versus `scp` of the same file from the
 * same sshd, in the same run, alternating, median of N rounds. The adapter is measured in both
 * read modes: `file` (`dd` on the volume over one ssh2 channel, the default) and `libvirt`
 * (`virsh vol-download`, libvirt's stream). Needs `scripts/services up sshd libvirt`.
 *
 *   npx tsx bench/adapters/libvirt-read.ts [--rounds 3] [--size-mib 1024]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createHypervisor } from '../../adapters/hypervisor/index.js';
import { libvirt, libvirtSshConfig, refreshPool, sshd } from '../../test/integration/hypervisor/env.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const rounds = opt('rounds', 3);
const MiB = 1024 * 1024;
const size = opt('size-mib', 1024) * MiB;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const l = libvirt('cloud-a');
  const s = sshd();
  const vol = `bench-read-${size / MiB}m.raw`;
  const path = `${l.poolPath}/${vol}`;
  // A fully allocated image of random bytes (no holes, nothing compressible), made once.
  if (!existsSync(path) || statSync(path).size !== size) {
    process.stdout.write(`making ${path} (${size / MiB} MiB of random bytes)…\n`);
    execFileSync('dd', ['if=/dev/urandom', `of=${path}`, 'bs=1M', `count=${size / MiB}`, 'status=none']);
    refreshPool(l.uri, l.pool);
  }
  const hv = createHypervisor('libvirt', libvirtSshConfig('cloud-a'));
  const hvStream = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { diskIo: 'libvirt' }));
  const vm = 'bench-reader';
  if ((await hv.vmState(vm)) === 'absent') {
    await hv.defineVm({ name: vm, firmware: 'bios', cpu: { count: 1 }, memoryBytes: 64 * MiB, disks: [{ capacityBytes: size, bus: 'virtio', format: 'raw', file: { href: path } }], cdroms: [], nics: [] });
  }

  const adapterRead = async (h = hv): Promise<number> => {
    const t = performance.now();
    let n = 0;
    for await (const c of await h.readDisk(vm, '0')) n += (c as Buffer).length;
    if (n !== size) throw new Error(`read ${n} bytes, expected ${size}`);
    return (size / MiB) / ((performance.now() - t) / 1000);
  };
  const scpRead = (): number => {
    const t = performance.now();
    const r = spawnSync('scp', ['-q', '-P', String(s.port), '-i', s.privateKey, '-o', `UserKnownHostsFile=${s.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
      `${s.user}@${s.host}:${path}`, '/dev/null']);
    if (r.status !== 0) throw new Error(`scp failed: ${r.stderr.toString()}`);
    return (size / MiB) / ((performance.now() - t) / 1000);
  };

  await adapterRead(); // warm-up: connection, page cache
  await adapterRead(hvStream);
  const ours: number[] = [];
  const viaLibvirt: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    ours.push(await adapterRead());
    theirs.push(scpRead());
    viaLibvirt.push(await adapterRead(hvStream));
    process.stdout.write(`round ${i + 1}: adapter ${ours[i]!.toFixed(0)} MiB/s, scp ${theirs[i]!.toFixed(0)} MiB/s, adapter via vol-download ${viaLibvirt[i]!.toFixed(0)} MiB/s\n`);
  }
  const a = median(ours);
  const b = median(theirs);
  const c = median(viaLibvirt);
  process.stdout.write(`\nread ${size / MiB} MiB over ssh (loopback), median of ${rounds}:\n`);
  process.stdout.write(`  libvirt adapter, diskIo=file (dd over ssh2):         ${a.toFixed(0)} MiB/s\n`);
  process.stdout.write(`  libvirt adapter, diskIo=libvirt (vol-download/ssh2): ${c.toFixed(0)} MiB/s\n`);
  process.stdout.write(`  scp from the same sshd (anchor):                      ${b.toFixed(0)} MiB/s\n`);
  process.stdout.write(`  ratio adapter/scp: ${(a / b).toFixed(2)}x (aim >= 0.8x); via vol-download: ${(c / b).toFixed(2)}x\n`);
  process.stdout.write('  (2 cores shared with other work on this machine: expect +-30% noise)\n');
  await hv.undefineVm(vm);
  await hv.close();
  await hvStream.close();
}

await main();
