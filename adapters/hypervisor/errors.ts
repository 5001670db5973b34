/**
 * Error codes of the hypervisor adapters.
 *
 * `HV_…` codes are the contract's own: callers branch on them without knowing the backend
 * (a missing VM is `HV_VM_NOT_FOUND` whether libvirt or vSphere said so). `LIBVIRT_…` and
 * `VMWARE_…` codes say what went wrong talking to one backend; their `details` keep the
 * backend's own fields (virsh exit status and stderr; SOAP fault name and string; HTTP status).
 */
import { defineErrorCodes, IntercloudError } from '../../protocols/errors/index.js';
import type { IntercloudErrorOptions } from '../../protocols/errors/index.js';

/** Codes every adapter raises for the contract's outcomes. */
export const HvErrors = defineErrorCodes('hypervisor', {
  HV_CONFIG_INVALID: { doc: 'the adapter configuration is invalid', retryable: false },
  HV_UNKNOWN_BACKEND: { doc: 'no hypervisor adapter is registered under this name', retryable: false },
  HV_VM_NOT_FOUND: { doc: 'no vm has this name', retryable: false },
  HV_VM_NAME_INVALID: { doc: "the vm name is not one this project passes to a hypervisor (empty, '/', control characters, a leading '-', all digits or uuid-shaped)", retryable: false },
  HV_VM_EXISTS: { doc: 'a vm with this name already exists (name clash at define or import)', retryable: false },
  HV_DISK_NOT_FOUND: { doc: 'the vm has no disk with this id', retryable: false },
  HV_DISK_EXISTS: { doc: 'a disk with this name already exists in the target storage', retryable: false },
  HV_MODEL_INVALID: { doc: 'the vm model cannot be defined on this backend', retryable: false },
  HV_INVALID_STATE: { doc: 'the vm is in a state that does not allow the operation', retryable: true },
  HV_SHUTDOWN_TIMEOUT: { doc: 'the vm did not stop, even after force-off', retryable: true },
  HV_STREAM_SHORT: { doc: 'a disk stream ended before its declared size', retryable: true },
  HV_STREAM_LONG: { doc: 'a disk stream carried more bytes than its declared size', retryable: false },
  HV_NO_SPACE: { doc: 'the target storage has no room for the disk', retryable: false },
  HV_ABORTED: { doc: 'the operation was cancelled by its abort signal', retryable: true },
  HV_TRACKING_UNSUPPORTED: { doc: 'a disk of the vm cannot be change-tracked (not a file image, or storage that is not a directory pool)', retryable: false },
  HV_STATE_NOT_FOUND: { doc: 'the vm has no saved memory and device state', retryable: false },
  HV_STATE_INVALID: { doc: 'a received saved state or disk chain is not acceptable (a file outside what this host wrote, a reference to another file, a wrong name or format)', retryable: false },
});

/** Codes of the libvirt adapter (virsh / qemu-img over SSH or locally). */
export const LibvirtErrors = defineErrorCodes('libvirt', {
  LIBVIRT_UNREACHABLE: { doc: 'the hypervisor host cannot be reached over ssh', retryable: true },
  LIBVIRT_HOST_KEY: { doc: 'the ssh host key does not match the pinned fingerprint or known-hosts entry', retryable: false },
  LIBVIRT_AUTH: { doc: 'the ssh server refused our credentials', retryable: false },
  LIBVIRT_CONNECTION_LOST: { doc: 'the ssh connection closed while a command or stream was running', retryable: true },
  LIBVIRT_COMMAND_MISSING: { doc: 'virsh or qemu-img is not installed (or not at the configured path) on the host', retryable: false },
  LIBVIRT_DAEMON_UNAVAILABLE: { doc: 'virsh could not connect to libvirtd (stopped or restarting): the command did nothing', retryable: true },
  LIBVIRT_DAEMON_LOST: { doc: 'virsh lost its connection to libvirtd mid-command (libvirtd killed or restarted): whether the command took effect is unknown', retryable: true },
  LIBVIRT_COMMAND_FAILED: { doc: 'virsh or qemu-img exited non-zero', retryable: false },
  LIBVIRT_OUTPUT_INVALID: { doc: 'virsh or qemu-img printed something we cannot read', retryable: false },
});

/** Codes of the VMware adapter (vSphere SOAP API over HTTPS). */
export const VmwareErrors = defineErrorCodes('vmware', {
  VMWARE_UNREACHABLE: { doc: 'the vsphere endpoint cannot be reached', retryable: true },
  VMWARE_TLS: { doc: 'the vsphere endpoint certificate does not verify against the pinned ca', retryable: false },
  VMWARE_AUTH: { doc: 'vsphere refused the login (InvalidLogin)', retryable: false },
  VMWARE_FAULT: { doc: 'vsphere answered with a soap fault', retryable: false },
  VMWARE_TASK_FAILED: { doc: 'a vsphere task ended in error', retryable: false },
  VMWARE_HTTP: { doc: 'a datastore or nfc transfer answered with an unexpected http status', retryable: true },
  VMWARE_RESPONSE_INVALID: { doc: 'vsphere answered with something we cannot read', retryable: false },
});

/** Any code an adapter may raise. */
export type HypervisorErrorCode = keyof typeof HvErrors | keyof typeof LibvirtErrors | keyof typeof VmwareErrors;

/** Makes an adapter error: `hvError('HV_VM_NOT_FOUND', "libvirt(cloud-a): no vm 'web1'", { details })`. */
export function hvError(code: HypervisorErrorCode, message: string, options?: IntercloudErrorOptions): IntercloudError<HypervisorErrorCode> {
  return new IntercloudError(code, message, options);
}

/** The error an operation rejects with when its signal aborts. */
export function abortedError(prefix: string, op: string, signal?: AbortSignal): IntercloudError<HypervisorErrorCode> {
  return hvError('HV_ABORTED', `${prefix}: '${op}' was cancelled`, { cause: signal?.reason });
}

/** Throws {@link abortedError} when `signal` has aborted. */
export function throwIfAborted(prefix: string, op: string, signal?: AbortSignal): void {
  if (signal?.aborted) throw abortedError(prefix, op, signal);
}
