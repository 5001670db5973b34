/**
 * The migration's hypervisor ports on top of an adapter ({@link Hypervisor}): the source
 * describes its VM as OVF and stops, starts or removes it; the target imports the VM from
 * the OVF and the received disk files. No backend detail is visible here: only the contract.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Hypervisor, VmPowerState } from '../../adapters/hypervisor/index.js';
import { IntercloudError } from '../../protocols/errors/index.js';
import { readOvf, writeOvf } from '../../protocols/ovf/index.js';
import type { TransferSource } from '../../protocols/amqp/index.js';
import { fileSource, streamSource } from '../../protocols/amqp/index.js';
import type { HypervisorPort, TargetHypervisorPort, VmSummary } from '../migration/index.js';

const stateOf = (s: VmPowerState | 'absent'): 'running' | 'stopped' | 'absent' =>
  s === 'absent' ? 'absent' : s === 'running' || s === 'paused' ? 'running' : 'stopped';

/** The source side's hypervisor port. */
export function sourceHypervisorPort(hv: Hypervisor, opts: { shutdownTimeoutMs: number }): HypervisorPort {
  return {
    async describe(vm, signal) {
      // The adapter reports disk sizes from the images themselves (domain XML has none).
      const { vm: model } = await hv.describeVm(vm, { signal });
      const { value: descriptor } = writeOvf([model]);
      const summary: VmSummary = {
        name: model.name,
        vcpus: model.cpu.count,
        memoryBytes: model.memoryBytes,
        macs: model.nics.flatMap((n) => (n.mac ? [n.mac] : [])),
        disks: model.disks.map((x, i) => ({ id: String(i), capacityBytes: x.capacityBytes })),
        addresses: [],
      };
      return { summary, descriptor };
    },
    state: async (vm, signal) => stateOf(await hv.vmState(vm, { signal })),
    stop: async (vm, signal) => { await hv.shutdownVm(vm, { timeoutMs: opts.shutdownTimeoutMs, signal }); },
    start: async (vm, signal) => hv.startVm(vm, { signal }),
    remove: async (vm, signal) => { await hv.undefineVm(vm, { removeStorage: true, signal }); },
  };
}

const LOCAL_STORAGE_TTL_MS = 60_000;
const localStorageSeen = new WeakMap<Hypervisor, { dir: string | undefined; at: number }>();

/**
 * {@link Hypervisor.localStorageDir} of `hv`, remembered for a minute: the probe costs two
 * hypervisor commands (over SSH, a round trip each), and one migration asks on both the
 * receive and the define step. `undefined` when the adapter has no local storage.
 */
export async function localStorageDirOf(hv: Hypervisor, signal: AbortSignal): Promise<string | undefined> {
  if (!hv.localStorageDir) return undefined;
  const seen = localStorageSeen.get(hv);
  if (seen && Date.now() - seen.at < LOCAL_STORAGE_TTL_MS) return seen.dir;
  const dir = await hv.localStorageDir({ signal });
  localStorageSeen.set(hv, { dir, at: Date.now() });
  return dir;
}

/**
 * A disk of a stopped VM as a transfer source: bytes streamed from the adapter (reopened at
 * an offset for re-sends), holes known from its allocation map are never read. An image in
 * the hypervisor's local storage directory ({@link Hypervisor.localStorageDir}) is read as a
 * file here, sparing the adapter's hop (over SSH: one more encryption of every byte).
 */
export async function diskTransferSource(hv: Hypervisor, vm: string, diskId: string, signal: AbortSignal): Promise<TransferSource> {
  const [info, local] = await Promise.all([hv.statDisk(vm, diskId, { signal }), localStorageDirOf(hv, signal)]);
  const extents = info.extents?.filter((e) => e.data).map((e) => ({ offset: e.offset, length: e.length }));
  if (local !== undefined && dirname(info.href) === local) return fileSource(info.href, extents);
  return streamSource({
    size: info.sizeBytes,
    ...(extents ? { extents } : {}),
    open: (offset: number): Readable => {
      const out = new PassThrough();
      hv.readDisk(vm, diskId, { offset, length: info.sizeBytes - offset, signal }).then(
        (s) => { s.on('error', (err) => out.destroy(err)); s.pipe(out); },
        (err: unknown) => out.destroy(err as Error),
      );
      return out;
    },
  });
}

/**
 * The target side's hypervisor port: defines the VM from the OVF on the received files when
 * they lie in the hypervisor's local storage (received there directly), else imports it from
 * the OVF + received files (the adapter streams them into its storage); then runs it.
 */
export function targetHypervisorPort(hv: Hypervisor, opts: { shutdownTimeoutMs: number }): TargetHypervisorPort {
  return {
    async define({ descriptor, disks }, signal) {
      const { value: pkg } = readOvf(descriptor, { source: 'instantiate request' });
      const vm = pkg.systems[0];
      if (!vm) throw new IntercloudError('MIGRATE_BAD_DESCRIPTOR', 'the descriptor holds no virtual system');
      if ((await hv.vmState(vm.name, { signal })) !== 'absent') return { vm: vm.name }; // defined by an earlier attempt
      const files = vm.disks.map((d, i) => {
        const path = disks[String(i)];
        if (path === undefined) throw new IntercloudError('MIGRATE_BAD_DESCRIPTOR', `vm '${vm.name}': no received file for disk '${i}'`);
        return { path, format: d.format ?? 'raw' };
      });
      // Received straight into the hypervisor's storage: define the VM on those files.
      const local = await localStorageDirOf(hv, signal);
      if (local !== undefined && files.every((f) => dirname(f.path) === local)) {
        const sized = await Promise.all(files.map(async (f) => ({ ...f, sizeBytes: (await fs.stat(f.path)).size })));
        await hv.defineVm({ ...vm, disks: vm.disks.map((d, i) => ({ ...d, format: sized[i]!.format, file: { href: sized[i]!.path, sizeBytes: sized[i]!.sizeBytes } })) }, { signal });
        return { vm: vm.name };
      }
      const parts = await Promise.all(files.map(async (f) => {
        const st = await fs.stat(f.path);
        return { source: createReadStream(f.path), sizeBytes: st.size, format: f.format };
      }));
      try {
        await hv.importVm(vm, parts, { signal });
      } finally {
        for (const p of parts) p.source.destroy();
      }
      // The hypervisor holds its own copy now: the staged files go (a crash before this line
      // leaves them to the offer's discard, which only a compensation runs).
      await Promise.all(files.map((f) => fs.rm(f.path, { force: true })));
      return { vm: vm.name };
    },
    start: async (vm, signal) => hv.startVm(vm, { signal }),
    stop: async (vm, signal) => { if ((await hv.vmState(vm, { signal })) !== 'absent') await hv.shutdownVm(vm, { timeoutMs: opts.shutdownTimeoutMs, signal }); },
    state: async (vm, signal) => stateOf(await hv.vmState(vm, { signal })),
    remove: async (vm, signal) => { await hv.undefineVm(vm, { removeStorage: true, signal }); },
  };
}
