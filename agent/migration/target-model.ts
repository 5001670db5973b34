/**
 * What the target defines for a peer's VM, decided without I/O.
 *
 * A certificate under the Intercloud Root proves who a peer is, not that it may touch
 * anything here but what it brought. So the target builds its domain from the files it
 * received for the offer and the model's hardware fields only:
 * - the descriptor names exactly the VM of the offer (name, vCPUs, memory no larger);
 * - each disk is a received file, in the format the file itself has (`qemu-img info`, read
 *   by the daemon), never the one the descriptor claims; a backing file or an external data
 *   file is refused unless it is another received file of the same offer;
 * - everything else that names something of the host (CD-ROM images, non-file disk sources,
 *   network names, the VM's UUID) is dropped or replaced by local policy and reported as a
 *   loss, so the peer learns what did not carry over.
 */
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { IntercloudError } from '../../protocols/errors/index.js';
import {
  vmNameProblem, type DiskFormat, type ReportEntry, type VirtualMachine, type VmDisk, type VmNic,
} from '../../protocols/vm/index.js';
import type { VmSummary } from './ports.js';

/** What `qemu-img info --output=json` says of one received file, as far as the target cares. */
export interface ImageInfo {
  /** qemu's format name (`raw`, `qcow2`, …). */
  format: string;
  virtualSizeBytes: number;
  /** The backing file as written in the image, when it has one. */
  backingFile?: string;
  /** The format the image declares for its backing file (absent: qemu would probe it). */
  backingFormat?: string;
  /** An external data file (qcow2 `data-file`), when it has one. */
  dataFile?: string;
}

/** Reads `qemu-img info --output=json` (one image, no `--backing-chain`). */
export function parseImageInfo(text: string, file: string): ImageInfo {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new IntercloudError('MIGRATE_BAD_DISK', `received file '${file}': qemu-img info printed no json`, { cause: err });
  }
  const format = v['format'];
  const size = v['virtual-size'];
  if (typeof format !== 'string' || typeof size !== 'number') {
    throw new IntercloudError('MIGRATE_BAD_DISK', `received file '${file}': qemu-img info gave no format or virtual size`);
  }
  const backing = v['full-backing-filename'] ?? v['backing-filename'];
  const specific = (v['format-specific'] as { data?: Record<string, unknown> } | undefined)?.data;
  const dataFile = specific?.['data-file'];
  const backingFormat = v['backing-filename-format'];
  return {
    format, virtualSizeBytes: size,
    ...(typeof backing === 'string' ? { backingFile: backing } : {}),
    ...(typeof backingFormat === 'string' ? { backingFormat } : {}),
    ...(typeof dataFile === 'string' ? { dataFile } : {}),
  };
}

/** Image formats a received disk may have: ones that cannot name other files by themselves. */
const ACCEPTED_FORMATS: Readonly<Record<string, DiskFormat>> = { raw: 'raw', qcow2: 'qcow2' };

/** How the target maps the peer's network names to its own (local policy, from config). */
export interface NetworkPolicy {
  /** Peer network name → local libvirt network. */
  readonly map: Readonly<Record<string, string>>;
  /** Local network for names not in `map`; absent = the hypervisor's default. */
  readonly default?: string;
}

/** What {@link localVmModel} decides from. */
export interface LocalModelInput {
  /** The VM read from the peer's descriptor. */
  readonly described: VirtualMachine;
  /** The accepted offer's VM. */
  readonly offer: VmSummary;
  /** The UUID this target gives the domain (recorded in the job's journal). */
  readonly uuid: string;
  /** The received file of disk `i` and what qemu-img read of it, in the offer's disk order. */
  readonly files: ReadonlyArray<{ readonly path: string; readonly image: ImageInfo }>;
  readonly networks: NetworkPolicy;
}

/** The model to define here, and what of the peer's descriptor it did not keep. */
export interface LocalModel {
  readonly vm: VirtualMachine;
  readonly losses: ReportEntry[];
}

const MiB = 1024 * 1024;

/**
 * Builds the VM to define from the peer's descriptor, the received files and local policy
 * (see the file comment). Throws `MIGRATE_BAD_DESCRIPTOR` when the descriptor is not the
 * offer's VM, `MIGRATE_BAD_DISK` when a received file may not be used as a disk.
 */
export function localVmModel(input: LocalModelInput): LocalModel {
  const { described: d, offer } = input;
  const bad = (why: string): never => {
    throw new IntercloudError('MIGRATE_BAD_DESCRIPTOR', `descriptor of vm '${offer.name}': ${why}`);
  };
  if (d.name !== offer.name) bad(`names vm ${JSON.stringify(d.name)}, the offer '${offer.name}'`);
  const problem = vmNameProblem(d.name);
  if (problem !== undefined) bad(`vm name ${problem}`);
  if (d.cpu.count !== offer.vcpus) bad(`has ${d.cpu.count} vcpus, the offer ${offer.vcpus}`);
  if (Math.ceil(d.memoryBytes / MiB) * MiB > offer.memoryBytes) bad(`has ${d.memoryBytes} bytes of memory, the offer ${offer.memoryBytes}`);
  if (d.disks.length !== offer.disks.length || input.files.length !== offer.disks.length) {
    bad(`has ${d.disks.length} disks, the offer ${offer.disks.length} and ${input.files.length} were received`);
  }

  const losses: ReportEntry[] = [];
  const loss = (path: string, message: string, value?: string): void => {
    losses.push({ severity: 'loss', path, message, ...(value !== undefined ? { value } : {}) });
  };
  const received = new Map(input.files.map((f) => [resolve(f.path), f.image]));
  const disks = d.disks.map((disk, i): VmDisk => {
    const { path, image } = input.files[i]!;
    const format = ACCEPTED_FORMATS[image.format];
    if (format === undefined) {
      throw new IntercloudError('MIGRATE_BAD_DISK', `disk ${i} of vm '${offer.name}': received image is '${image.format}'; only raw and qcow2 are taken`, {
        details: { disk: i, format: image.format },
      });
    }
    // The guest sees the image's virtual size: a small file may declare a huge disk.
    const offered = offer.disks[i]!.capacityBytes;
    if (image.virtualSizeBytes > offered) {
      throw new IntercloudError('MIGRATE_BAD_DISK', `disk ${i} of vm '${offer.name}': the image declares ${image.virtualSizeBytes} bytes, the offer ${offered}`, {
        details: { disk: i, virtualSizeBytes: image.virtualSizeBytes, offeredBytes: offered },
      });
    }
    // A backing file must declare its format, and that format must be what the received file
    // is: otherwise qemu probes it, and a raw-looking file read as, say, vmdk names host files.
    if (image.backingFile !== undefined) {
      const backing = received.get(resolve(dirname(path), image.backingFile));
      if (backing !== undefined && image.backingFormat !== backing.format) {
        throw new IntercloudError('MIGRATE_BAD_DISK', `disk ${i} of vm '${offer.name}': the image reads its backing file as ${JSON.stringify(image.backingFormat ?? 'probed')}, the received file is '${backing.format}'`, {
          details: { disk: i, backingFile: image.backingFile, ...(image.backingFormat !== undefined ? { backingFormat: image.backingFormat } : {}) },
        });
      }
    }
    for (const [what, ref] of [['backing file', image.backingFile], ['data file', image.dataFile]] as const) {
      // Relative names are relative to the image's own directory (qemu's rule).
      if (ref !== undefined && !received.has(resolve(dirname(path), ref))) {
        throw new IntercloudError('MIGRATE_BAD_DISK', `disk ${i} of vm '${offer.name}': the image names ${what} ${JSON.stringify(ref)}, which is not a disk received for this offer`, {
          details: { disk: i, [what === 'backing file' ? 'backingFile' : 'dataFile']: ref },
        });
      }
    }
    if (disk.format !== undefined && disk.format !== format) {
      losses.push({ severity: 'note', path: `disks[${i}].format`, message: `the descriptor says '${disk.format}', the received file is '${format}'`, value: disk.format });
    }
    if (disk.source !== undefined) loss(`disks[${i}].source`, 'a host storage source named by the peer is not used', disk.source);
    return {
      capacityBytes: image.virtualSizeBytes, format, file: { href: path }, bus: disk.bus,
      ...(disk.controllerModel !== undefined ? { controllerModel: disk.controllerModel } : {}),
      ...(disk.targetDev !== undefined ? { targetDev: disk.targetDev } : {}),
      ...(disk.bootOrder !== undefined ? { bootOrder: disk.bootOrder } : {}),
      ...(disk.readonly !== undefined ? { readonly: disk.readonly } : {}),
    };
  });
  // A CD-ROM drive stays (the guest's device layout), its medium does not: it is a host path.
  const cdroms = d.cdroms.map((c, i) => {
    if (c.file !== undefined) loss(`cdroms[${i}].file`, 'a host file named by the peer is not inserted', c.file.href);
    return { bus: c.bus, ...(c.targetDev !== undefined ? { targetDev: c.targetDev } : {}), ...(c.bootOrder !== undefined ? { bootOrder: c.bootOrder } : {}) };
  });
  const nics = d.nics.map((n, i): VmNic => {
    // The peer names the network: only the policy's own entries count (never `constructor` and kin).
    const mapped = n.network !== undefined && Object.hasOwn(input.networks.map, n.network) ? input.networks.map[n.network] : undefined;
    const local = mapped ?? input.networks.default;
    if (n.network !== undefined && local !== n.network) {
      loss(`nics[${i}].network`, local !== undefined ? `mapped to local network '${local}' by policy` : 'no local network is mapped to it: the default one is used', n.network);
    }
    if (n.attachment !== undefined && n.attachment !== 'network') loss(`nics[${i}].attachment`, `attached to a local network instead of the peer's '${n.attachment}'`, n.attachment);
    return {
      ...(n.mac !== undefined ? { mac: n.mac } : {}), ...(n.model !== undefined ? { model: n.model } : {}),
      ...(local !== undefined ? { network: local, attachment: 'network' as const } : {}),
      ...(n.bootOrder !== undefined ? { bootOrder: n.bootOrder } : {}),
    };
  });
  if (d.uuid !== undefined && d.uuid !== input.uuid) {
    losses.push({ severity: 'note', path: 'uuid', message: `this cloud gives the vm its own uuid '${input.uuid}'`, value: d.uuid });
  }
  const graphics = (d.graphics ?? []).filter((g) => g.type === 'vnc' || g.type === 'spice');
  (d.graphics ?? []).forEach((g, i) => { if (!graphics.includes(g)) loss(`graphics[${i}]`, `display type '${g.type}' is not offered here`, g.type); });
  const vm: VirtualMachine = {
    name: offer.name, uuid: input.uuid, firmware: d.firmware, cpu: d.cpu, memoryBytes: d.memoryBytes, disks, cdroms, nics,
    ...(d.description !== undefined ? { description: d.description } : {}),
    ...(d.os !== undefined ? { os: d.os } : {}),
    ...(d.arch !== undefined ? { arch: d.arch } : {}),
    ...(d.secureBoot !== undefined ? { secureBoot: d.secureBoot } : {}),
    ...(graphics.length ? { graphics } : {}),
    ...(d.serialPorts !== undefined ? { serialPorts: d.serialPorts } : {}),
    ...(d.tpm !== undefined ? { tpm: d.tpm } : {}),
    ...(d.origin !== undefined ? { origin: d.origin } : {}),
  };
  return { vm, losses };
}

/**
 * The domain UUID of a job whose journal recorded none (journaled before the target gave
 * each offer's domain its own UUID): derived from the offer id, so every retry agrees. A
 * domain defined under the old rules never has it, so such a job never adopts, stops or
 * removes one.
 */
export function legacyDomainUuid(offerId: string): string {
  const h = createHash('sha256').update(`intercloud-domain\0${offerId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80; // version 8 (RFC 9562 §5.8)
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
