/**
 * Conversion between VM descriptor formats (OVF ↔ libvirt, virt-image → libvirt) with one report,
 * plus the capped descriptor file reader.
 */
export { CONVERT_ERRORS, convertDescriptor, detectFormat, readDescriptor, type ConvertOptions, type DescriptorFormat, type ReadDescriptor, type ReadDescriptorOptions } from './convert.js';
export { readDescriptorFile } from './files.js';
