/**
 * The format-neutral VM model shared by the OVF, libvirt and virt-image codecs, the hypervisor
 * adapters and the migration engine. See `README.md` for the conventions (bytes, lowercase MACs,
 * source order) and `model.ts` for every field.
 */
export type {
  ConversionReport,
  DiskBus,
  DiskFormat,
  FileCompression,
  Firmware,
  NicAttachment,
  NicModel,
  ReportEntry,
  ReportSeverity,
  VirtualMachine,
  VmCdrom,
  VmCpu,
  VmDisk,
  VmFileRef,
  VmGraphics,
  VmNic,
  VmOrigin,
  VmProperty,
  WithReport,
} from './model.js';
export { VM_ERRORS, type VmErrorCode } from './errors.js';
export { assertValidVm, normaliseMac, normaliseUuid, ReportBuilder } from './normalise.js';
export { MAX_VM_NAME_BYTES, vmNameProblem } from './names.js';
