/**
 * Error codes of the OVF codec (`OVF_…`). XML-level codes (`OVF_XML_…`) live in `protocols/xml`.
 */
import { defineErrorCodes } from '../errors/index.js';

/** Every code the OVF reader/writer raises. */
export const OVF_ERRORS = defineErrorCodes('ovf', {
  OVF_NAMESPACE: { doc: 'the root is not an ovf envelope in a known namespace (dsp8023 1.x/2.x or vmware 0.9), or a required namespace is wrong', retryable: false },
  OVF_NO_CONTENT: { doc: 'the envelope holds no virtualsystem or virtualsystemcollection', retryable: false },
  OVF_MISSING: { doc: 'a required element or attribute is missing (e.g. virtualsystem ovf:id, disk ovf:capacity)', retryable: false },
  OVF_BAD_VALUE: { doc: 'a value is malformed: a number, allocation unit, mac, or an unresolved template placeholder', retryable: false },
  OVF_BAD_REFERENCE: { doc: 'a reference points nowhere: disk fileRef, item hostresource or parent, unknown property in ${…}', retryable: false },
  OVF_BAD_CONFIGURATION: { doc: 'the requested deployment option is not declared in the deploymentoptionsection', retryable: false },
});

/** An OVF codec error code. */
export type OvfErrorCode = keyof typeof OVF_ERRORS;
