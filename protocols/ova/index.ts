/**
 * OVA packages (DMTF DSP0243 §5): pack and verify tar archives with a SHA-256 manifest and an
 * optional signature by the cloud's certificate, checked against the Intercloud Root.
 * `manifest.ts` holds the pure codecs; `archive.ts` streams files.
 */
export { OVA_ERRORS, type OvaErrorCode } from './errors.js';
export { checkEntryName, formatCertFile, formatManifest, parseCertFile, parseManifest, type CertFile, type ManifestEntry } from './manifest.js';
export { localFileOf, packOva, verifyOva, type PackedOva, type PackOvaOptions, type VerifiedOva, type VerifyOvaOptions } from './archive.js';
