/**
 * Normalisation of the values every format spells differently: MAC addresses, UUIDs, and a
 * structural check of a whole model.
 */
import { vmError } from './errors.js';
import type { ConversionReport, ReportEntry, VirtualMachine } from './model.js';

const MAC_RE = /^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$/i;

/**
 * A MAC address in the model's form: lowercase, colon-separated. Accepts `:`/`-` separators or
 * none (VirtualBox writes `0800271A2B3C`). Returns `undefined` for anything else.
 */
export function normaliseMac(raw: string): string | undefined {
  const m = MAC_RE.exec(raw.trim());
  return m ? m.slice(1, 7).join(':').toLowerCase() : undefined;
}

const UUID_RE = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i;

/**
 * A UUID in canonical lowercase 8-4-4-4-12 form; accepts braces and missing dashes (RFC 9562 §4).
 * Returns `undefined` for anything else.
 */
export function normaliseUuid(raw: string): string | undefined {
  const m = UUID_RE.exec(raw.trim());
  return m ? m.slice(1, 6).join('-').toLowerCase() : undefined;
}

/**
 * Checks the model's invariants (positive sizes, topology product, normalised MAC/UUID, boot
 * orders unique). Throws `VM_INVALID` naming the first offending path.
 */
export function assertValidVm(vm: VirtualMachine): void {
  const bad = (path: string, why: string): never => {
    throw vmError('VM_INVALID', `vm '${vm.name}': ${path} ${why}`, { details: { path } });
  };
  if (vm.name.length === 0) bad('name', 'is empty');
  if (!Number.isSafeInteger(vm.memoryBytes) || vm.memoryBytes <= 0) bad('memoryBytes', `must be a positive integer, got '${vm.memoryBytes}'`);
  if (!Number.isSafeInteger(vm.cpu.count) || vm.cpu.count <= 0) bad('cpu.count', `must be a positive integer, got '${vm.cpu.count}'`);
  const t = vm.cpu.topology;
  if (t && t.sockets * t.cores * t.threads !== vm.cpu.count) bad('cpu.topology', `product ${t.sockets}x${t.cores}x${t.threads} differs from count '${vm.cpu.count}'`);
  if (vm.uuid !== undefined && normaliseUuid(vm.uuid) !== vm.uuid) bad('uuid', `is not a lowercase canonical uuid: '${vm.uuid}'`);
  vm.disks.forEach((d, i) => {
    if (!Number.isSafeInteger(d.capacityBytes) || d.capacityBytes < 0) bad(`disks[${i}].capacityBytes`, `must be a non-negative integer, got '${d.capacityBytes}'`);
  });
  vm.nics.forEach((n, i) => {
    if (n.mac !== undefined && normaliseMac(n.mac) !== n.mac) bad(`nics[${i}].mac`, `is not a lowercase colon-separated mac: '${n.mac}'`);
  });
  const orders = [...vm.disks, ...vm.cdroms, ...vm.nics].map((d) => d.bootOrder).filter((o): o is number => o !== undefined);
  if (new Set(orders).size !== orders.length) bad('bootOrder', `values repeat: ${orders.join(',')}`);
}

/**
 * Collects report entries while a reader/writer works; `done()` freezes them into a
 * {@link ConversionReport}.
 */
export class ReportBuilder {
  private readonly entries: ReportEntry[] = [];
  constructor(private readonly from: string, private readonly to: string) {}

  /** Records that the target dropped something at `path`. */
  loss(path: string, message: string, value?: string): void {
    this.entries.push(value === undefined ? { severity: 'loss', path, message } : { severity: 'loss', path, message, value });
  }

  /** Records that a default was chosen or a value adapted at `path`. */
  note(path: string, message: string, value?: string): void {
    this.entries.push(value === undefined ? { severity: 'note', path, message } : { severity: 'note', path, message, value });
  }

  /** Appends the entries of another report (e.g. the reader's, before a writer's). */
  merge(report: ConversionReport): void {
    this.entries.push(...report.entries);
  }

  /** The finished report. */
  done(): ConversionReport {
    return { from: this.from, to: this.to, entries: [...this.entries] };
  }
}
