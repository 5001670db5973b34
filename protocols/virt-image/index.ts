/**
 * virt-image (`image.xml`, virt-image(5)) reader into the VM model. Pure.
 */
export { VIRTIMAGE_ERRORS } from './errors.js';
export { readVirtImage, type ReadVirtImageOptions } from './reader.js';
