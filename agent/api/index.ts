/** The agent's local API (HTTP on a Unix socket): server, client and request types. */
export { startLocalApi, parseMigrationRequest, API_ERRORS, type LocalApiHandlers, type MigrationRequest } from './server.js';
export { LocalApiClient } from './client.js';
