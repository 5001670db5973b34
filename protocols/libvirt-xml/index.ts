/**
 * libvirt domain XML codec (https://libvirt.org/formatdomain.html): read a `<domain>` into the VM
 * model and write one from it, each with a conversion report. Pure.
 */
export { LIBVIRT_XML_ERRORS } from './errors.js';
export { readLibvirtDomain, type ReadLibvirtOptions } from './reader.js';
export { INTERCLOUD_METADATA_NS, writeLibvirtDomain, type NicTarget, type WriteLibvirtOptions } from './writer.js';
