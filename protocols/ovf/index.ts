/**
 * OVF (DMTF DSP0243) codec: read OVF 0.9/1.x/2.x descriptors into the VM model and write OVF 1.x/2.0.
 * Pure; file and archive I/O live in `protocols/ova`.
 */
export { OVF_ERRORS, type OvfErrorCode } from './errors.js';
export { diskFormatFromUri, OVF_NS, readOvf, type OvfDeploymentOption, type OvfFile, type OvfPackage, type OvfVersion, type ReadOvfOptions } from './reader.js';
export { formatByteUnits, parseAllocationUnits, type ParsedUnit } from './units.js';
export { writeOvf, type WriteOvfOptions } from './writer.js';
