/**
 * The anchors the migration benchmarks compare the agents with, run on the same two libvirtd
 * instances (cloud-a → cloud-b, `services.json` `libvirt.instances`) and the loopback sshd:
 *
 * - **cold by hand**: `virsh shutdown` (forced off after the agent's timeout), `scp` the disk,
 *   `virsh define` + `start` at cloud-b;
 * - **live by hand**: the mechanism the agent's live mode uses, typed by an operator who holds
 *   both hosts: an external disk-only snapshot freezes the base, `scp` the base while the guest
 *   writes to the overlay, `virsh save --bypass-cache`, `scp` the overlay and the state file,
 *   `qemu-img rebase -u` the overlay onto the copied base, `virsh restore --xml` with the
 *   host's paths rewritten, `virsh define`;
 * - **libvirt live migration**: `virsh migrate --live --copy-storage-all` between the two
 *   libvirtd (QEMU's own pre-copy of memory and disks over NBD; one administrative domain, so
 *   the anchor for what is possible). Its downtime is what libvirt reports (`domjobinfo`).
 *
 * Each returns the total time, the downtime (source stopped → target running) and the guest's
 * heartbeat gap as a user of the VM sees it, measured the same way as for the agents.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { domState, virsh, waitForText, type loadServicesFile } from '../../scripts/local-federation.js';
import { HB, HeartbeatWatch, heartbeatGapMs, load, sleep } from './measure.js';

const run = promisify(execFile);
type Services = ReturnType<typeof loadServicesFile>;

/** One move, measured. */
export interface MoveResult {
  kind: string;
  totalMs: number;
  downtimeMs: number;
  guestGapMs: number | undefined;
  /** The guest printed its boot line at the target (it rebooted). */
  rebooted: boolean;
  wireBytes: number;
  rssA?: number;
  rssB?: number;
  load: string;
  /** Agents' warm and live moves: where the cut-over went ({@link cutOverPhases}). */
  phases?: string;
}

/** A VM at cloud-a to move: its name, its disk's path, and its console logs at both ends. */
export interface MoveSubject {
  vm: string;
  diskPath: string;
  sourceConsole: string;
  targetConsole: string;
}

function scpArgs(s: Services): string[] {
  return ['-q', '-P', String(s.sshd.port), '-i', s.sshd.privateKey,
    '-o', `UserKnownHostsFile=${(s.sshd as { knownHostsFile?: string }).knownHostsFile}`,
    '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'];
}

/** Copies `from` (on the loopback sshd) to the local path `to` with scp. */
async function scp(s: Services, from: string, to: string): Promise<void> {
  await run('scp', [...scpArgs(s), `${s.sshd.user}@${s.sshd.host}:${from}`, to]);
}

/** The domain XML with cloud-a's pool paths and the console log rewritten for cloud-b. */
function forCloudB(s: Services, xml: string, targetConsole: string): string {
  const a = s.libvirt.instances['cloud-a']!;
  const b = s.libvirt.instances['cloud-b']!;
  return xml.replaceAll(`${a.poolPath}/`, `${b.poolPath}/`).replace(/<log file='[^']*'/g, `<log file='${targetConsole}'`);
}

async function watchBoth(m: MoveSubject): Promise<{ src: HeartbeatWatch; dst: HeartbeatWatch }> {
  await fs.rm(m.targetConsole, { force: true });
  return { src: new HeartbeatWatch(() => m.sourceConsole), dst: new HeartbeatWatch(() => m.targetConsole) };
}

async function settle(m: MoveSubject, w: { src: HeartbeatWatch; dst: HeartbeatWatch }): Promise<void> {
  await waitForText(m.targetConsole, HB, 60_000).catch(() => '');
  await sleep(300);
  w.src.stop();
  w.dst.stop();
}

/** Cold, by hand: stop as the agent does (ACPI, forced off after `shutdownTimeoutMs`), scp, define, start. */
export async function coldByHand(s: Services, m: MoveSubject, shutdownTimeoutMs: number): Promise<MoveResult> {
  const b = s.libvirt.instances['cloud-b']!;
  const xml = forCloudB(s, await virsh(s, 'cloud-a', 'dumpxml', '--inactive', m.vm), m.targetConsole);
  const xmlPath = join(b.poolPath, `${m.vm}.xml`);
  const w = await watchBoth(m);
  const l0 = load();
  const t0 = performance.now();
  await virsh(s, 'cloud-a', 'shutdown', m.vm);
  const deadline = Date.now() + shutdownTimeoutMs;
  while ((await domState(s, 'cloud-a', m.vm)) === 'running' && Date.now() < deadline) await sleep(100);
  if ((await domState(s, 'cloud-a', m.vm)) === 'running') await virsh(s, 'cloud-a', 'destroy', m.vm);
  const stopped = performance.now();
  await scp(s, m.diskPath, join(b.poolPath, `${m.vm}-disk0.img`));
  await fs.writeFile(xmlPath, xml);
  await virsh(s, 'cloud-b', 'define', xmlPath);
  await virsh(s, 'cloud-b', 'start', m.vm);
  const done = performance.now();
  await fs.rm(xmlPath, { force: true });
  await settle(m, w);
  return {
    kind: 'cold by hand', totalMs: done - t0, downtimeMs: done - stopped, guestGapMs: heartbeatGapMs(w.src, w.dst),
    rebooted: w.dst.booted, wireBytes: (await fs.stat(m.diskPath)).size, load: l0,
  };
}

/**
 * Live, by hand: one pre-copy round (snapshot, scp the frozen base), save, scp the overlay and
 * the state, rebase, restore with the paths rewritten, define. The source is left undefined.
 */
export async function liveByHand(s: Services, m: MoveSubject): Promise<MoveResult> {
  const a = s.libvirt.instances['cloud-a']!;
  const b = s.libvirt.instances['cloud-b']!;
  const overlayA = join(a.poolPath, `${m.vm}-hand-ovl1.qcow2`);
  const stateA = join(a.poolPath, `${m.vm}-hand.state`);
  const baseB = join(b.poolPath, `${m.vm}-disk0.img`);
  const overlayB = join(b.poolPath, `${m.vm}-hand-ovl1.qcow2`);
  const stateB = join(b.poolPath, `${m.vm}-hand.state`);
  const xmlB = join(b.poolPath, `${m.vm}-hand.xml`);
  const w = await watchBoth(m);
  const l0 = load();
  const t0 = performance.now();
  await virsh(s, 'cloud-a', 'snapshot-create-as', m.vm, '--disk-only', '--atomic', '--no-metadata', '--diskspec', `vda,file=${overlayA}`);
  await scp(s, m.diskPath, baseB);
  const stopped = performance.now();
  await virsh(s, 'cloud-a', 'save', m.vm, stateA, '--bypass-cache');
  await Promise.all([scp(s, overlayA, overlayB), scp(s, stateA, stateB)]);
  await run('qemu-img', ['rebase', '-u', '-F', 'raw', '-b', baseB, '-f', 'qcow2', overlayB]);
  await fs.writeFile(xmlB, forCloudB(s, await virsh(s, 'cloud-a', 'save-image-dumpxml', stateA), m.targetConsole));
  await virsh(s, 'cloud-b', 'restore', stateB, '--xml', xmlB, '--bypass-cache');
  const done = performance.now();
  await fs.writeFile(xmlB, await virsh(s, 'cloud-b', 'dumpxml', '--inactive', m.vm));
  await virsh(s, 'cloud-b', 'define', xmlB);
  const wire = (await Promise.all([m.diskPath, overlayA, stateA].map((f) => fs.stat(f)))).reduce((n, st) => n + st.size, 0);
  await Promise.all([xmlB, stateB, stateA, overlayA].map((f) => fs.rm(f, { force: true })));
  await virsh(s, 'cloud-a', 'undefine', m.vm).catch(() => undefined);
  await settle(m, w);
  return {
    kind: 'live by hand', totalMs: done - t0, downtimeMs: done - stopped, guestGapMs: heartbeatGapMs(w.src, w.dst),
    rebooted: w.dst.booted, wireBytes: wire, load: l0,
  };
}

/** libvirt's own live migration with its disks, between the two libvirtd (same administrative domain). */
export async function libvirtLiveMigration(s: Services, m: MoveSubject): Promise<MoveResult> {
  const b = s.libvirt.instances['cloud-b']! as { uri: string; address: string; migrationPorts: [number, number]; poolPath: string };
  const xmlB = join(b.poolPath, `${m.vm}-migrate.xml`);
  await fs.writeFile(xmlB, forCloudB(s, await virsh(s, 'cloud-a', 'dumpxml', '--migratable', m.vm), m.targetConsole));
  const w = await watchBoth(m);
  const l0 = load();
  const t0 = performance.now();
  const [port] = b.migrationPorts;
  await virsh(s, 'cloud-a', 'migrate', '--live', '--copy-storage-all', '--persistent', '--undefinesource',
    '--xml', xmlB, '--persistent-xml', xmlB, '--migrateuri', `tcp://${b.address}:${port}`,
    '--disks-uri', `tcp://${b.address}:${port + 1}`, m.vm, b.uri);
  const done = performance.now();
  const info = await virsh(s, 'cloud-b', 'domjobinfo', '--completed', m.vm);
  const downtime = /Total downtime:\s+(\d+)\s*ms/.exec(info);
  const data = /Data total:\s+([\d.]+) (KiB|MiB|GiB)/.exec(info);
  const unit = { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;
  await fs.rm(xmlB, { force: true });
  await settle(m, w);
  return {
    kind: 'libvirt live', totalMs: done - t0, downtimeMs: downtime ? Number(downtime[1]) : NaN,
    guestGapMs: heartbeatGapMs(w.src, w.dst), rebooted: w.dst.booted,
    wireBytes: data ? Number(data[1]) * unit[data[2] as keyof typeof unit] : NaN, load: l0,
  };
}
