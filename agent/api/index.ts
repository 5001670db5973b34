/** The agent's local API (HTTP on a Unix socket): server, client and request types. */
export {
  startLocalApi, parseMigrationRequest, parseStorageSubcontractRequest, API_ERRORS, type LocalApiHandlers, type MigrationRequest, type StorageApiHandlers,
} from './server.js';
export { LocalApiClient } from './client.js';
