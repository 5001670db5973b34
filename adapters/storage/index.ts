/**
 * Object-store adapters: one contract ({@link ObjectStore}), the adapters registered by name
 * (`s3`, `fake`), name checks and error codes. Other folders import only from here.
 */
export type {
  GetObjectOptions, ListObjectsOptions, ListPage, ObjectInfo, ObjectListing, ObjectRead, ObjectStore, PutObjectOptions,
  StoreCallOptions,
} from './contract.js';
export { StoreErrors, storeError, throwIfStoreAborted, type StoreErrorCode } from './errors.js';
export { MAX_OBJECT_KEY_BYTES, validateBucketName, validateObjectKey } from './names.js';
export { expectedEtag, MAX_OBJECT_BYTES, SHA256_METADATA_KEY } from './integrity.js';
export {
  createObjectStore, FakeStoreConfigSchema, OBJECT_STORES, objectStoreConfigPaths, parseObjectStoreSettings, resolveObjectStorePaths,
  S3ConfigSchema, safeParseObjectStoreSettings, STORE_LOCAL_PATHS,
  type ObjectStoreKind, type ObjectStoreRegistration, type ObjectStoreSettings, type ObjectStoreSettingsResult,
} from './registry.js';
export { FakeObjectStore, type FakeObjectStoreConfig, type FakeObjectStoreFaults } from './fake/fake-object-store.js';
