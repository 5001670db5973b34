/**
 * Base images known by content (issue 16): the whole-image SHA-256 of a file, saved beside it,
 * and the target's store of the base images its operator lists.
 */
export {
  BASE_IMAGE_ERRORS, BaseImageStore, SAVED_HASH_SUFFIX, imageSha256, isImageHash, type BaseImageCode, type HeldBase,
} from './base-images.js';
