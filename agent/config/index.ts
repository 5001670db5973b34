/** The agent's configuration: schema, loading, and which keys are secrets. */
export { AgentConfigSchema, CONFIG_SECRET_PATHS, type AgentConfig } from './schema.js';
export { loadConfig, parseConfig, CONFIG_ERRORS } from './load.js';
