/**
 * Hypervisor adapters: one contract ({@link Hypervisor}), the adapters registered by name
 * (`libvirt`, `vmware`, `fake`) and their error codes. Other folders import only from here.
 */
export type {
  CallOptions, DefineResult, DiskExtent, DiskInfo, DiskRef, HostCapacity, Hypervisor, ImportDisk, NewDisk,
  ReadDiskOptions, ShutdownOptions, ShutdownResult, UndefineOptions, VmDescription, VmListing, VmPowerState,
} from './contract.js';
export {
  canRestore, chainImport, changeTracking, stateCapture, stateRestore,
  type ChainImage, type ChainImport, type ChangeTracking, type LinkOptions, type HypervisorCapabilities, type MachineType, type PrecopyRound, type ReceivedImage,
  type RestoreOptions, type RestoreRequest, type RestoreResult, type RestoreTarget, type SavedState, type SaveStateOptions, type StateCapture, type StateRequirements,
  type StateRestore,
} from './capabilities.js';
export { HvErrors, LibvirtErrors, VmwareErrors, type HypervisorErrorCode } from './errors.js';
export {
  createHypervisor, FakeConfigSchema, HYPERVISORS, hypervisorConfigPaths, LibvirtConfigSchema, LOCAL_PATHS, parseHypervisorSettings,
  resolveHypervisorPaths, safeParseHypervisorSettings, VmwareConfigSchema,
  type HypervisorKind, type HypervisorRegistration, type HypervisorSettings, type HypervisorSettingsResult,
} from './registry.js';
export { FakeHypervisor, type FakeHypervisorConfig } from './fake/fake-hypervisor.js';
export { sha256Fingerprint } from './libvirt/host-key.js';
export { QCOW2_HEADER_READ_BYTES, qcow2HeaderProblem, receivedDiskProblem } from './image-header.js';
