/**
 * `importVm` for backends without a native import: write each disk, then define; undo on failure.
 */
import type { VirtualMachine } from '../../protocols/vm/index.js';
import { IntercloudError, messageOf } from '../../protocols/errors/index.js';
import type { CallOptions, DefineResult, DiskRef, Hypervisor, ImportDisk } from './contract.js';
import { hvError } from './errors.js';

/**
 * `importVm` in terms of `writeDisk` + `defineVm`, undoing the disks on failure. Backends
 * without a native import use it.
 */
export async function importByParts(hv: Hypervisor, vm: VirtualMachine, disks: readonly ImportDisk[], options: CallOptions = {}): Promise<DefineResult> {
  if (disks.length !== vm.disks.length) {
    throw hvError('HV_MODEL_INVALID', `${hv.kind}: import of '${vm.name}' has ${vm.disks.length} disks in the model but ${disks.length} streams`, { details: { vm: vm.name } });
  }
  if ((await hv.vmState(vm.name, options)) !== 'absent') {
    for (const d of disks) d.source.destroy();
    throw hvError('HV_VM_EXISTS', `${hv.kind}: a vm named '${vm.name}' already exists`, { details: { vm: vm.name } });
  }
  const written: DiskRef[] = [];
  try {
    const modelDisks = [];
    for (const [i, d] of disks.entries()) {
      const md = vm.disks[i]!;
      const ext = d.format === 'vmdk' || d.format === 'vmdk-stream' ? 'vmdk' : d.format;
      const ref = await hv.writeDisk({ name: `${vm.name}-disk${i}.${ext}`, format: d.format, sizeBytes: d.sizeBytes, capacityBytes: md.capacityBytes }, d.source, options);
      written.push(ref);
      modelDisks.push({ ...md, format: d.format, file: { href: ref.href, sizeBytes: d.sizeBytes } });
    }
    return await hv.defineVm({ ...vm, disks: modelDisks }, options);
  } catch (err) {
    for (const d of disks) d.source.destroy();
    // Cleanup must run even when the caller's signal aborted.
    for (const ref of written) await cleanup(err, () => hv.removeDisk(ref.href));
    throw err;
  }
}

/**
 * Runs a cleanup step after `err` made an operation fail. A cleanup that fails too does not hide
 * the original error: its message is added to `err.details.cleanupProblems`.
 */
export async function cleanup(err: unknown, step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (cleanupErr) {
    if (err instanceof IntercloudError) {
      const problems = [...((err.details['cleanupProblems'] as string[] | undefined) ?? []), messageOf(cleanupErr)];
      Object.defineProperty(err, 'details', { value: { ...err.details, cleanupProblems: problems } });
    }
  }
}
