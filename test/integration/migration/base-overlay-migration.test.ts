/**
 * Issue 16, real servers: a cold migration cloud-a → cloud-b of a VM whose disk is a qcow2
 * overlay on a raw golden base. When cloud-b's agent lists a directory holding a copy of that
 * base (`migration.baseImages`), only the overlay travels (bytes sent ≈ the overlay file) and
 * cloud-b links it onto its own copy; when it does not, the flattened disk travels. Either way
 * the VM boots at cloud-b (its heartbeat), the disk it sees there is the disk it saw at cloud-a
 * (`qemu-img compare` with a flattened copy taken before the move), and cloud-b's base is not
 * among the VM's storage (it is left as it was after the VM is removed). Checked with virsh,
 * qemu-img and the files, never through the agents.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { refreshPool, removeVm, virsh, waitForText } from '../../../scripts/local-federation.js';
import { STATE_DIR } from '../../helpers/services.js';
import {
  assertNothingLeftAtTarget, federationHooks, identity, migrate, migrateToCompletion, setUpFederation, sha256File, waitForEnd, type Federation,
} from './federation-fixture.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/**
 * Turns the federation's VM at cloud-a into one on a qcow2 overlay: its raw disk becomes the
 * golden base (moved out of the pool into `goldenA`), a qcow2 overlay in the pool takes the
 * guest's disk (1 MiB of its own bytes written into it), the domain is defined on the overlay
 * and booted again. A copy of the base goes to `goldenB` (cloud-b's base directory, if any).
 * Returns the overlay and a flattened copy of the disk as the guest sees it, taken now.
 */
async function overlayVm(f: Federation, goldenA: string, goldenB: string | undefined): Promise<{ overlay: string; flat: string; overlayBytes: number }> {
  const pool = f.s.libvirt.instances['cloud-a']!.poolPath;
  const raw = join(pool, `${f.vm}-disk0.img`);
  const overlay = join(pool, `${f.vm}-disk0.qcow2`);
  const base = join(goldenA, 'debian-golden.raw');
  await virsh(f.s, 'cloud-a', 'destroy', f.vm);
  await fs.mkdir(goldenA, { recursive: true });
  await fs.rename(raw, base);
  if (goldenB !== undefined) {
    await fs.mkdir(goldenB, { recursive: true });
    await fs.copyFile(base, join(goldenB, 'golden-copy.raw'));
  }
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, overlay]);
  // Bytes only the overlay holds (in the disk's unused middle: the boot files are at the front).
  await run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${24 * MiB} ${MiB}`, overlay]);
  await refreshPool(f.s, 'cloud-a');
  const xml = (await virsh(f.s, 'cloud-a', 'dumpxml', '--inactive', f.vm))
    .replace(/<driver name='qemu' type='raw'\/>/, "<driver name='qemu' type='qcow2'/>")
    .replace(`<source file='${raw}'/>`, `<source file='${overlay}'/>`);
  expect(xml).toContain(overlay);
  const xmlPath = join(f.dir, `${f.vm}-overlay.xml`);
  await fs.writeFile(xmlPath, xml);
  await virsh(f.s, 'cloud-a', 'define', xmlPath);
  const log = /<log file='([^']+)'/.exec(xml)![1]!;
  await fs.rm(log, { force: true });
  await virsh(f.s, 'cloud-a', 'start', f.vm);
  await waitForText(log, `disk=${f.diskId}`, 60_000);
  const flat = join(f.dir, 'source-flat.raw');
  await run('qemu-img', ['convert', '-U', '-O', 'raw', overlay, flat]);
  return { overlay, flat, overlayBytes: (await fs.stat(overlay)).size };
}

/** The VM's one disk file at cloud-b, and the heartbeat of the VM booted there. */
async function atTarget(f: Federation): Promise<string> {
  expect(await virsh(f.s, 'cloud-a', 'domstate', f.vm).catch(() => 'absent')).toBe('absent');
  expect(await virsh(f.s, 'cloud-b', 'domstate', f.vm)).toBe('running');
  const xml = await virsh(f.s, 'cloud-b', 'dumpxml', f.vm);
  const log = /<log file='([^']+)'/.exec(xml)?.[1];
  if (log !== undefined) {
    const before = (await fs.readFile(log, 'latin1').catch(() => '')).length;
    const t0 = Date.now();
    for (;;) {
      const fresh = (await fs.readFile(log, 'latin1').catch(() => '')).slice(before);
      const hb = /INTERCLOUD-GUEST-HB [^\r\n]*disk=(\S+)/.exec(fresh);
      if (hb) { expect(hb[1]).toBe(f.diskId); break; }
      if (Date.now() - t0 > 60_000) throw new Error(`no heartbeat at cloud-b in '${log}' within 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const disks = (await virsh(f.s, 'cloud-b', 'domblklist', f.vm, '--details')).split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[1] === 'disk');
  expect(disks).toHaveLength(1);
  return disks[0]![3]!;
}

describe('a vm on a qcow2 overlay moves to cloud-b (issue 16)', () => {
  const slot = federationHooks();

  it('cloud-b holds the base: only the overlay is sent, linked onto its own base; the vm boots on the same disk', async () => {
    const { vm } = identity(16);
    const dir = join(STATE_DIR, 'test-migration', `${vm}-golden-${process.pid}`);
    const goldenB = join(dir, 'golden-b');
    await fs.mkdir(goldenB, { recursive: true });
    try {
      const f = (slot.f = await setUpFederation(16, { diskMiB: 64, randomMiB: 16, b: { baseImages: [goldenB] } }));
      const { flat, overlayBytes } = await overlayVm(f, join(dir, 'golden-a'), goldenB);
      // cloud-b's agent reads its base directory at every lookup: the copy counts at once.
      const baseB = join(goldenB, 'golden-copy.raw');
      const baseBsha = await sha256File(baseB);
      const { job } = await migrateToCompletion(f);
      const sent = job.results['transfer'] as { bytesSent: number };
      // The overlay file (≈ 1.3 MiB), not the 64 MiB disk (16 MiB of it random).
      expect(sent.bytesSent).toBeGreaterThan(MiB);
      expect(sent.bytesSent).toBeLessThanOrEqual(overlayBytes);
      const disk = await atTarget(f);
      // The disk the VM runs on at cloud-b is an overlay on cloud-b's own base …
      const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', disk])).stdout) as Record<string, unknown>;
      expect(info['format']).toBe('qcow2');
      expect(info['full-backing-filename']).toBe(baseB);
      expect(info['backing-filename-format']).toBe('raw');
      // … and reads as the disk the guest had at cloud-a.
      await run('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'qcow2', flat, disk]);
      await assertNothingLeftAtTarget(f, 'cloud-b');
      // The base is not the VM's storage: removing the VM with its storage leaves it as it was.
      await removeVm(f.s, 'cloud-b', f.vm);
      expect(await sha256File(baseB)).toBe(baseBsha);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 400_000);

  it('cloud-b does not hold the base: the flattened disk is sent and the vm boots on it', async () => {
    const { vm } = identity(17);
    const dir = join(STATE_DIR, 'test-migration', `${vm}-golden-${process.pid}`);
    const goldenB = join(dir, 'golden-b');
    await fs.mkdir(goldenB, { recursive: true });
    try {
      // cloud-b lists a base directory, without this base in it.
      const f = (slot.f = await setUpFederation(17, { diskMiB: 64, randomMiB: 16, b: { baseImages: [goldenB] } }));
      const { flat, overlayBytes } = await overlayVm(f, join(dir, 'golden-a'), undefined);
      const { jobId } = await migrate(f);
      const job = await waitForEnd(f.a, jobId);
      expect(job.error).toBeUndefined();
      expect(job.state).toBe('completed');
      const sent = job.results['transfer'] as { bytesSent: number };
      // The flattened disk: at least its 16 MiB of random bytes (zero chunks are skipped).
      expect(sent.bytesSent).toBeGreaterThan(16 * MiB);
      expect(sent.bytesSent).toBeGreaterThan(overlayBytes);
      const disk = await atTarget(f);
      const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', disk])).stdout) as Record<string, unknown>;
      expect(info['format']).toBe('raw');
      expect(info['backing-filename']).toBeUndefined();
      await run('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'raw', flat, disk]);
      await assertNothingLeftAtTarget(f, 'cloud-b');
      // The source's flattened scratch copy is gone.
      const journal = join(f.a.dir, 'state');
      const { stdout } = await run('find', [journal, '-name', '*.flat.raw*']);
      expect(stdout.trim()).toBe('');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 400_000);
});
