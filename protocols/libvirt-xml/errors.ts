/**
 * Error codes of the libvirt domain XML codec. They carry the descriptors area's `OVF_` prefix
 * (`OVF_LIBVIRT_…`) so they never collide with the hypervisor adapter's `LIBVIRT_…` codes.
 */
import { defineErrorCodes } from '../errors/index.js';

/** Every code the libvirt domain XML codec raises. */
export const LIBVIRT_XML_ERRORS = defineErrorCodes('ovf', {
  OVF_LIBVIRT_INVALID: { doc: 'a libvirt domain document is not a domain or has a missing/malformed field (name, memory, vcpu, mac, uuid)', retryable: false },
});
