/**
 * Error codes of the VM model (`VM_…`): values that cannot be represented in the model.
 */
import { defineErrorCodes, IntercloudError, type IntercloudErrorOptions } from '../errors/index.js';

/** Every code the VM model raises. */
export const VM_ERRORS = defineErrorCodes('vm', {
  VM_INVALID: { doc: 'a vm model value is out of range or malformed (mac, uuid, size, cpu topology)', retryable: false },
});

/** A VM model error code. */
export type VmErrorCode = keyof typeof VM_ERRORS;

/** Builds a VM model error. */
export function vmError(code: VmErrorCode, message: string, options?: IntercloudErrorOptions): IntercloudError<VmErrorCode> {
  return new IntercloudError(code, message, options);
}
