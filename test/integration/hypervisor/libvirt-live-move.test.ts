/**
 * A running guest moves between the two real libvirtd (cloud-a over the sshd service, cloud-b in
 * local mode) through the adapters' live-move capabilities, and goes on running: it writes its
 * disk during the pre-copy rounds, its memory and device state is saved at cloud-a and restored at
 * cloud-b, and afterwards the disks compare identical (`qemu-img compare`, independent of the
 * adapter) and its heartbeat counter and uptime continue (no second boot line).
 * Also: an abort after a round leaves the source VM running on its original disk, no overlay left.
 * Timings (snapshot, save, restore, state size) are printed with the machine's load.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, mkdirSync, chmodSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeTracking, createHypervisor, stateCapture, stateRestore } from '../../../adapters/hypervisor/index.js';
import type { ChangeTracking, Hypervisor, StateCapture, StateRestore } from '../../../adapters/hypervisor/index.js';
import type { VirtualMachine } from '../../../protocols/vm/index.js';
import { libvirt, libvirtSshConfig, virsh } from './env.js';
import { heartbeats, makeWritingGuestDisk, waitForHeartbeat } from './writing-guest.js';

const MiB = 1024 * 1024;
const EMPTY_OVERLAY_MAX = 256 * 1024;

function guestVm(name: string, href: string, mac: string): VirtualMachine {
  return {
    name,
    firmware: 'bios',
    cpu: { count: 1 },
    memoryBytes: 128 * MiB,
    disks: [{ capacityBytes: 64 * MiB, bus: 'virtio', format: 'raw', file: { href } }],
    cdroms: [],
    nics: [{ mac, model: 'virtio' }],
    serialPorts: 1,
  };
}

function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`the libvirt adapter declares no ${what}`);
  return v;
}

const ms = (t0: number): number => Math.round(performance.now() - t0);
const sha256File = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('libvirt: a running guest moves from cloud-a to cloud-b and keeps running', () => {
  let a: Hypervisor;
  let b: Hypervisor;
  let work: string;
  let consA: string;
  let consB: string;
  const run = randomBytes(3).toString('hex');
  const made: Array<[Hypervisor, string]> = [];
  const files: Array<[Hypervisor, string]> = [];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'hv-live-'));
    chmodSync(work, 0o755);
    consA = join(work, 'consoles-a');
    consB = join(work, 'consoles-b');
    mkdirSync(consA);
    mkdirSync(consB);
    a = createHypervisor('libvirt', libvirtSshConfig('cloud-a', { consoleLogDir: consA }));
    const { ssh: _ssh, ...local } = libvirtSshConfig('cloud-b', { consoleLogDir: consB });
    b = createHypervisor('libvirt', local);
  });
  afterAll(async () => {
    for (const [hv, n] of made) await hv.undefineVm(n, { removeStorage: true });
    for (const [hv, f] of files) await hv.removeDisk(f);
    await a.close();
    await b.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** A writing guest defined and started on cloud-a; resolves once it heartbeats. */
  async function bootOnA(name: string, mac: string): Promise<{ href: string; log: string }> {
    const img = join(work, `${name}.img`);
    await makeWritingGuestDisk(name, img, work);
    const ref = await a.writeDisk({ name: `${name}-disk0.img`, format: 'raw', sizeBytes: statSync(img).size, capacityBytes: 64 * MiB }, createReadStream(img));
    files.push([a, ref.href]);
    made.push([a, name]);
    await a.defineVm(guestVm(name, ref.href, mac));
    await a.startVm(name);
    const log = join(consA, `${name}-serial0.log`);
    await waitForHeartbeat(log, 2, 120_000);
    return { href: ref.href, log };
  }

  it('pre-copies twice while the guest writes, saves, restores at cloud-b: disks identical, no reboot', async () => {
    const name = `live${run}`;
    const trackA: ChangeTracking = must(changeTracking(a), 'change tracking');
    const capA: StateCapture = must(stateCapture(a), 'state capture');
    const restB: StateRestore = must(stateRestore(b), 'state restore');
    const { href: baseA, log: logA } = await bootOnA(name, '52:54:00:1c:bb:01');

    // The target can take this VM's state (same QEMU, same machine type).
    const needs = await capA.stateRequirements(name);
    const offer = await restB.restoreTarget();
    expect(offer.machines.some((m) => m.arch === needs.arch && m.machine === needs.machine)).toBe(true);

    // Round 1: the base is frozen and copied while the guest writes to overlay 1.
    let t0 = performance.now();
    const r1 = await trackA.startRound(name);
    const snap1 = ms(t0);
    expect(r1.round).toBe(1);
    expect(r1.frozen.map((f) => f.href)).toEqual([baseA]);
    const sent: string[][] = [[]];
    const copy = async (href: string, format: 'raw' | 'qcow2', sizeBytes: number, as: string): Promise<string> => {
      const ref = await b.writeDisk({ name: as, format, sizeBytes, capacityBytes: 64 * MiB }, await trackA.readImage(name, href));
      files.push([b, ref.href]);
      return ref.href;
    };
    sent[0]!.push(await copy(baseA, 'raw', r1.frozen[0]!.sizeBytes, `${name}-disk0.img`));
    // The guest writes 64 KiB a second: its overlay grows during the round.
    await waitForHeartbeat(logA, heartbeats(readFileSync(logA, 'latin1')).at(-1)!.n + 3, 30_000);
    const during = await trackA.chain(name);
    expect(during[0]!.map((i) => i.depth)).toEqual([0, 1]);
    expect(during[0]![1]!.sizeBytes).toBeGreaterThan(EMPTY_OVERLAY_MAX);

    // Round 2: overlay 1 is frozen and copied.
    t0 = performance.now();
    const r2 = await trackA.startRound(name);
    const snap2 = ms(t0);
    expect(r2.round).toBe(2);
    expect(r2.frozen[0]!.href).toBe(r1.overlays[0]!.href);
    sent[0]!.push(await copy(r2.frozen[0]!.href, 'qcow2', r2.frozen[0]!.sizeBytes, `${name}-disk0.ovl1.qcow2`));
    await waitForHeartbeat(logA, heartbeats(readFileSync(logA, 'latin1')).at(-1)!.n + 2, 30_000);

    // Cut-over: paused, memory and device state saved, the last overlay and the state copied. A
    // state file an earlier move left (whole, as libvirt marks one) is not taken for this save's:
    // the pause removes it, and the save says when its own file is whole, before the VM is down.
    const statePath = join(libvirt('cloud-a').poolPath, `${name}.state`);
    const stale = Buffer.concat([Buffer.from('LibvirtQemudSave'), randomBytes(4080)]);
    writeFileSync(statePath, stale);
    // The pre-copy's last look at the chains before its cut-over (what a move's planning does).
    expect((await trackA.chain(name))[0]!.map((i) => i.href)).toEqual([baseA, r1.overlays[0]!.href, r2.overlays[0]!.href]);
    await capA.pause(name);
    expect(await a.vmState(name)).toBe('paused');
    t0 = performance.now();
    const early: Array<{ sizeBytes: number; at: number; sha256: string }> = [];
    // The chain is read while libvirt still stops the VM (its save job holds the domain's description).
    let inSave: Promise<{ chain: Awaited<ReturnType<ChangeTracking['chain']>>; at: number }> | undefined;
    const saved = await capA.saveState(name, {
      onWritten: (w) => {
        early.push({ sizeBytes: w.sizeBytes, at: ms(t0), sha256: sha256File(w.href) });
        inSave = trackA.chain(name).then((chain) => ({ chain, at: ms(t0) }));
      },
    });
    const saveMs = ms(t0);
    const duringSave = await inSave!;
    expect(await a.vmState(name)).toBe('stopped');
    expect(early).toHaveLength(1);
    expect(early[0]!.sizeBytes).toBe(saved.sizeBytes);
    expect(saved.sizeBytes).toBeGreaterThan(stale.length);
    expect(early[0]!.sha256).toBe(sha256File(statePath));
    expect(early[0]!.at).toBeLessThan(saveMs);
    const lastAtA = heartbeats(readFileSync(logA, 'latin1')).at(-1)!;
    const final = (await trackA.chain(name))[0]!;
    expect(final.map((i) => i.href)).toEqual([baseA, r1.overlays[0]!.href, r2.overlays[0]!.href]);
    // What the pause saw, answered before the save ended: the same images, the same lengths.
    expect(duringSave.chain[0]!.map((i) => [i.href, i.sizeBytes])).toEqual(final.map((i) => [i.href, i.sizeBytes]));
    expect(duringSave.at).toBeLessThan(saveMs);
    expect(final[2]!.sizeBytes).toBeGreaterThan(EMPTY_OVERLAY_MAX);
    sent[0]!.push(await copy(final[2]!.href, 'qcow2', final[2]!.sizeBytes, `${name}-disk0.ovl2.qcow2`));
    const stateRef = await b.writeDisk({ name: `${name}.state`, format: 'raw', sizeBytes: saved.sizeBytes, capacityBytes: saved.sizeBytes }, await capA.readState(name));
    files.push([b, stateRef.href]);

    // Restore at cloud-b, paused: nothing runs or writes yet, so both chains must be equal.
    t0 = performance.now();
    const restored = await restB.restoreVm({
      name, state: stateRef.href,
      disks: [[{ href: sent[0]![0]!, format: 'raw' }, { href: sent[0]![1]!, format: 'qcow2' }, { href: sent[0]![2]!, format: 'qcow2' }]],
    }, { paused: true, transient: true });
    const restoreMs = ms(t0);
    made.push([b, name]);
    expect(restored.disks.map((d) => d.href)).toEqual([sent[0]![2]]);
    const uriB = libvirt('cloud-b').uri;
    expect(virsh(uriB, 'domstate', name).trim()).toBe('paused');
    // Transient until defined (off the cut-over): by its UUID, as it is.
    expect(virsh(uriB, 'dominfo', name)).toMatch(/^Persistent:\s+no$/m);
    await restB.persistRestored(restored.uuid!);
    expect(virsh(uriB, 'dominfo', name)).toMatch(/^Persistent:\s+yes$/m);
    expect(virsh(uriB, 'domstate', name).trim()).toBe('paused');
    // Independent of the adapter: the guest-visible contents of both chains are the same.
    execFileSync('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', 'qcow2', final[2]!.href, sent[0]![2]!]);
    // The target's chain refers only to its own files.
    const chainB = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--backing-chain', '--output=json', '-f', 'qcow2', sent[0]![2]!], { encoding: 'utf8' })) as Array<{ filename: string }>;
    expect(chainB.map((c) => c.filename)).toEqual([...sent[0]!].reverse());

    await b.startVm(name);
    const logB = join(consB, `${name}-serial0.log`);
    const hbB = await waitForHeartbeat(logB, lastAtA.n + 2, 60_000);
    // The counter and uptime go on from where they were at cloud-a; no boot line at cloud-b.
    const firstB = hbB[0]!;
    expect(firstB.n).toBeGreaterThan(lastAtA.n);
    expect(firstB.n).toBeLessThanOrEqual(lastAtA.n + 3);
    expect(firstB.uptime).toBeGreaterThan(lastAtA.uptime);
    expect(readFileSync(logB, 'latin1')).not.toContain('INTERCLOUD-GUEST-UP');
    expect(firstB.disk).toBe(name);

    // Later: the chain flattened into the base while the guest runs.
    await restB.flattenDisks(name);
    const flat = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--backing-chain', '--output=json', '-f', 'raw', sent[0]![0]!], { encoding: 'utf8' })) as unknown[];
    expect(flat).toHaveLength(1);
    expect((await b.describeVm(name)).disks.map((d) => d.href)).toEqual([sent[0]![0]]);
    const n = heartbeats(readFileSync(logB, 'latin1')).at(-1)!.n;
    await waitForHeartbeat(logB, n + 1, 30_000);
    expect(await b.vmState(name)).toBe('running');

    // The source gives the VM up: its saved state is discarded, then the VM and its whole chain go.
    await capA.discardState(name);
    await expect(capA.readState(name)).rejects.toMatchObject({ code: 'HV_STATE_NOT_FOUND' });
    expect(await a.undefineVm(name, { removeStorage: true })).toEqual({ existed: true });
    for (const f of final) expect(() => statSync(f.href), f.href).toThrow();

    console.log(`live move (cloud-a → cloud-b): snapshot ${snap1} / ${snap2} ms, save ${saveMs} ms (state whole at ${early[0]!.at} ms, chain read by ${duringSave.at} ms), state ${(saved.sizeBytes / MiB).toFixed(1)} MiB, `
      + `restore ${restoreMs} ms, overlays ${(during[0]![1]!.sizeBytes / 1024).toFixed(0)} / ${(final[2]!.sizeBytes / 1024).toFixed(0)} KiB; `
      + `heartbeat n ${lastAtA.n} → ${firstB.n}, uptime ${lastAtA.uptime} → ${firstB.uptime}; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  }, 300_000);

  it('aborts after a round: the source runs on its original disk, no overlay left', async () => {
    const name = `abort${run}`;
    const trackA = must(changeTracking(a), 'change tracking');
    const { href: baseA, log } = await bootOnA(name, '52:54:00:1c:bb:02');
    const r1 = await trackA.startRound(name);
    const ovl = r1.overlays[0]!.href;
    await waitForHeartbeat(log, heartbeats(readFileSync(log, 'latin1')).at(-1)!.n + 2, 30_000);
    expect(statSync(ovl).size).toBeGreaterThan(EMPTY_OVERLAY_MAX);

    await trackA.abortTracking(name);
    expect(await a.vmState(name)).toBe('running');
    const uriA = libvirt('cloud-a').uri;
    // libvirt's own view: one disk, the base, no backing store.
    const live = virsh(uriA, 'dumpxml', name);
    expect(live).toContain(`<source file='${baseA}'`);
    expect(live).not.toContain('.ovl1.qcow2');
    expect(virsh(uriA, 'dumpxml', '--inactive', name)).toContain(`<source file='${baseA}'/>`);
    expect(() => statSync(ovl)).toThrow();
    expect(virsh(uriA, 'vol-list', '--pool', libvirt('cloud-a').pool)).not.toContain(`${name}-disk0.ovl`);
    // The guest goes on, writing to its base now.
    const n = heartbeats(readFileSync(log, 'latin1')).at(-1)!.n;
    await waitForHeartbeat(log, n + 2, 30_000);
    expect(readFileSync(log, 'latin1').split('INTERCLOUD-GUEST-UP').length - 1).toBe(1);
    // Aborting again is harmless.
    await trackA.abortTracking(name);
    expect((await trackA.chain(name))[0]!.map((i) => i.href)).toEqual([baseA]);
  }, 300_000);

  it('refuses what a peer may send to reach other files: a data file, a base with a backing file; a peer\'s backing reference is replaced', async () => {
    const rest = must(stateRestore(b), 'state restore');
    const name = `adv${run}`;
    const w = async (file: string, as: string, format: 'raw' | 'qcow2'): Promise<string> => {
      const ref = await b.writeDisk({ name: as, format, sizeBytes: statSync(file).size, capacityBytes: 4 * MiB }, createReadStream(file));
      files.push([b, ref.href]);
      return ref.href;
    };
    const base = join(work, 'adv-base.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', base, '4M']);
    // An overlay whose guest data lives in an external file of the peer's choosing.
    const withData = join(work, 'adv-data.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(work, 'adv-data.raw')}`, withData, '4M']);
    // An overlay and a qcow2 base that point at files of the host.
    const pointing = join(work, 'adv-ovl.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', '/etc/hostname', pointing, '4M']);
    const qbase = join(work, 'adv-qbase.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', '/etc/hostname', qbase, '4M']);
    const state = join(work, 'adv.state');
    execFileSync('dd', ['if=/dev/urandom', `of=${state}`, 'bs=64k', 'count=4', 'status=none']);

    const hBase = await w(base, `${name}-base.raw`, 'raw');
    const hData = await w(withData, `${name}-data.qcow2`, 'qcow2');
    const hPoint = await w(pointing, `${name}-ovl.qcow2`, 'qcow2');
    const hQbase = await w(qbase, `${name}-qbase.qcow2`, 'qcow2');
    const hState = await w(state, `${name}.state`, 'raw');
    const codeOf = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'resolved', (e: { code?: string }) => e.code);

    expect(await codeOf(rest.restoreVm({ name, state: hState, disks: [[{ href: hBase, format: 'raw' }, { href: hData, format: 'qcow2' }]] }))).toBe('HV_STATE_INVALID');
    expect(await codeOf(rest.restoreVm({ name, state: hState, disks: [[{ href: hQbase, format: 'qcow2' }]] }))).toBe('HV_STATE_INVALID');
    expect(await codeOf(rest.restoreVm({ name, state: hState, disks: [[{ href: hBase, format: 'raw' }, { href: hBase, format: 'qcow2' }]] }))).toBe('HV_STATE_INVALID');
    // Only regular files right in the pool's directory, not hidden, are its volumes: a symbolic link
    // there to a host file, a hidden file, a directory, a missing file and a path that climbs out
    // are each refused by name, before anything opens them.
    const poolB = libvirt('cloud-b').poolPath;
    const link = join(poolB, `${name}-link.raw`);
    const hidden = join(poolB, `.${name}-hidden.raw`);
    const sub = join(poolB, `${name}-dir`);
    symlinkSync('/etc/passwd', link);
    writeFileSync(hidden, Buffer.alloc(4096));
    mkdirSync(sub);
    try {
      for (const bad of [link, hidden, sub, join(poolB, `${name}-missing.raw`), `${poolB}/../../../../etc/passwd`, `${poolB}//${name}-base.raw`]) {
        for (const req of [{ state: bad, base: hBase }, { state: hState, base: bad }]) {
          const err = await rest.restoreVm({ name, state: req.state, disks: [[{ href: req.base, format: 'raw' }]] }).then(() => undefined, (e: unknown) => e);
          expect(err, bad).toMatchObject({ code: 'HV_STATE_INVALID', details: { href: bad } });
        }
      }
    } finally {
      rmSync(link, { force: true });
      rmSync(hidden, { force: true });
      rmSync(sub, { recursive: true, force: true });
    }
    // The overlay is linked onto the base written here before anything reads through it; the
    // random state file is then refused by libvirt itself.
    expect(await codeOf(rest.restoreVm({ name, state: hState, disks: [[{ href: hBase, format: 'raw' }, { href: hPoint, format: 'qcow2' }]] }))).toBe('LIBVIRT_COMMAND_FAILED');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '-f', 'qcow2', '--output=json', hPoint], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(info['backing-filename']).toBe(hBase);
    expect(await b.vmState(name)).toBe('absent');
  }, 120_000);
});
