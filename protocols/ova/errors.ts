/**
 * Error codes of OVA packages (`OVF_OVA_…`, in the descriptors area).
 */
import { defineErrorCodes } from '../errors/index.js';

/** Every code the OVA packer/verifier raises. */
export const OVA_ERRORS = defineErrorCodes('ovf', {
  OVF_OVA_PATH: { doc: "a tar entry name is unsafe: absolute, '..' segment, backslash or nul", retryable: false },
  OVF_OVA_LAYOUT: { doc: 'the tar does not follow dsp0243 §5.3: descriptor not first, a duplicate or non-file entry, no descriptor', retryable: false },
  OVF_OVA_MANIFEST: { doc: 'the .mf manifest is malformed, misses a file, or a sha-256 digest does not match', retryable: false },
  OVF_OVA_SIGNATURE: { doc: 'the .cert file is malformed or its signature over the manifest does not verify', retryable: false },
  OVF_OVA_UNTRUSTED: { doc: 'the signing certificate is not trusted by the intercloud root (cause: the trust verdict)', retryable: false },
  OVF_OVA_TOO_LARGE: { doc: 'a descriptor, manifest or certificate entry is larger than its cap', retryable: false },
});

/** An OVA error code. */
export type OvaErrorCode = keyof typeof OVA_ERRORS;
