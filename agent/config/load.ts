/**
 * Reading the agent's config file: YAML → {@link AgentConfigSchema} → resolved paths.
 * Errors say which key is wrong and how to fix it.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { resolveHypervisorPaths } from '../../adapters/hypervisor/index.js';
import { defineErrorCodes, IntercloudError } from '../../protocols/errors/index.js';
import { AgentConfigSchema, CONFIG_PATH_KEYS, type AgentConfig } from './schema.js';

export const CONFIG_ERRORS = defineErrorCodes('config', {
  CONFIG_UNREADABLE: { doc: 'the config file cannot be read', retryable: false },
  CONFIG_SYNTAX: { doc: 'the config file is not valid yaml', retryable: false },
  CONFIG_INVALID: { doc: 'the config file has a wrong, missing or unknown key', retryable: false },
});

/** Parses config text (YAML) into a resolved config; `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string): AgentConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? `:${err.linePos[0].line}` : '';
    throw new IntercloudError('CONFIG_SYNTAX', `config '${file}${where}': not valid yaml: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const parsed = AgentConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const key = i.path.join('.') || '(top level)';
      if (i.code === 'unrecognized_keys') return `${key}: unknown key(s) ${i.keys.map((k) => `'${k}'`).join(', ')} — remove or correct the spelling`;
      return `${key}: ${i.message}`;
    });
    throw new IntercloudError('CONFIG_INVALID', `config '${file}' is invalid:\n  ${problems.join('\n  ')}`, {
      details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
    });
  }
  const config = parsed.data;
  const base = dirname(resolve(file));
  for (const path of CONFIG_PATH_KEYS) {
    let obj = config as unknown as Record<string, unknown>;
    for (const k of path.slice(0, -1)) obj = (obj[k] ?? {}) as Record<string, unknown>;
    const last = path[path.length - 1]!;
    const v = obj[last];
    if (typeof v === 'string' && !isAbsolute(v)) obj[last] = resolve(base, v);
  }
  // The adapter's schema marks its own path fields; the agent need not know them.
  return { ...config, hypervisor: resolveHypervisorPaths(config.hypervisor, base) };
}

/** Reads and parses the config file at `file`. */
export async function loadConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new IntercloudError('CONFIG_UNREADABLE', `cannot read config '${file}': ${(err as Error).message} — pass --config PATH`, { cause: err });
  }
  return parseConfig(text, file);
}
