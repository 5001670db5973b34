/**
 * Error codes of the virt-image reader (`OVF_VIRTIMAGE_…`, in the descriptors area).
 */
import { defineErrorCodes } from '../errors/index.js';

/** Every code the virt-image reader raises. */
export const VIRTIMAGE_ERRORS = defineErrorCodes('ovf', {
  OVF_VIRTIMAGE_INVALID: { doc: 'a virt-image descriptor lacks a name, domain, boot or drive, or a drive refers to no storage disk', retryable: false },
});
