/**
 * Object-store adapters: one contract ({@link ObjectStore}), name checks and error codes.
 * Other folders import only from here.
 */
export type {
  GetObjectOptions, ListObjectsOptions, ListPage, ObjectInfo, ObjectListing, ObjectRead, ObjectStore, PutObjectOptions,
  StoreCallOptions,
} from './contract.js';
export { StoreErrors, storeError, throwIfStoreAborted, type StoreErrorCode } from './errors.js';
export { MAX_OBJECT_KEY_BYTES, validateBucketName, validateObjectKey } from './names.js';
