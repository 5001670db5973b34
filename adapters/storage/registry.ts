/**
 * The object-store adapters, registered explicitly in one place: name → `{ configSchema, create }`.
 * Whoever reads the agent's config parses an adapter's config with its schema (strict: unknown keys
 * are errors) with {@link safeParseObjectStoreSettings}, resolves the fields the schema marks as
 * local paths ({@link resolveObjectStorePaths}), and only later calls `create`, which reads those
 * files (a secret key must be private to its owner) but opens no connection.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { ObjectStore } from './contract.js';
import { storeError } from './errors.js';
import { FakeObjectStore } from './fake/fake-object-store.js';
import { S3ObjectStore } from './s3/s3-object-store.js';

const MiB = 1024 * 1024;
const cloudName = z.string().min(1).describe('cloud id, used in messages');
const regionName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'write a region name as the catalog advertises it, e.g. eu-west').describe('the storage region this store keeps data in');

/**
 * The string fields of adapter configs that name files on the machine the agent runs on (it reads
 * them when it creates the adapter). Whoever reads a config file resolves relative values against
 * the file's folder ({@link resolveObjectStorePaths}), without knowing any adapter's fields.
 */
export const STORE_LOCAL_PATHS = z.registry<{ readonly description: string }>();

/** A config field naming a file on this machine: relative to the config file's folder. */
function localPath(description: string): z.ZodString {
  const field = z.string().min(1).describe(description);
  STORE_LOCAL_PATHS.add(field, { description });
  return field;
}

/** `s3`: an S3 endpoint (Swift's s3api, Ceph RGW, MinIO, AWS), path-style. */
export const S3ConfigSchema = z.strictObject({
  name: cloudName,
  endpoint: z.string().regex(/^https?:\/\/[^/?#]+\/?$/, 'write it as http(s)://HOST[:PORT] (path-style: no bucket in the host, no path)'),
  region: regionName,
  signingRegion: z.string().min(1).optional().describe('the region SigV4 signs for (Swift s3api `location`); defaults to `region`'),
  accessKeyId: z.string().min(1),
  secretAccessKeyFile: localPath('file holding the secret access key (mode 0600, one line)'),
  caFile: localPath('PEM of the CA the https endpoint must chain to').optional(),
  partSizeBytes: z.number().int().min(5 * MiB, 'S3 parts are at least 5 MiB').max(64 * MiB, 'keep parts at most 64 MiB: each in flight sits in memory').default(16 * MiB),
  partConcurrency: z.number().int().min(1).max(8).default(2),
  connectTimeoutMs: z.number().int().min(100).default(5_000),
  idleTimeoutMs: z.number().int().min(1_000).default(30_000).describe('a connection idle this long fails the call (a hung store does not hang the agent)'),
  maxAttempts: z.number().int().min(1).max(10).default(3),
  maxSockets: z.number().int().min(1).max(256).default(16),
}).refine((c) => c.caFile === undefined || c.endpoint.startsWith('https://'), {
  message: 'caFile is for https endpoints: drop it or write the endpoint as https://',
  path: ['caFile'],
});

/** `fake`: in memory, for unit tests and dry runs. */
export const FakeStoreConfigSchema = z.strictObject({
  name: cloudName,
  region: regionName.default('fake-region'),
  partSizeBytes: z.number().int().min(1).default(8 * MiB),
  capacityBytes: z.number().int().positive().default(1024 ** 3),
});

/** One adapter's registration. */
export interface ObjectStoreRegistration<S extends z.ZodType> {
  /** Strict schema of the adapter's config. */
  readonly configSchema: S;
  /** Makes the adapter from a parsed config. Opens no connection. */
  readonly create: (config: z.output<S>) => ObjectStore;
}

/** Reads a secret file: it must be readable by its owner only (mode 0600 or stricter). */
function secretFile(path: string, what: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw storeError('STORE_CONFIG_INVALID', `cannot read the ${what} '${path}': check the path (relative paths are relative to the config file) and that the agent may read it`, { cause: err, details: { path } });
  }
  if ((mode & 0o077) !== 0) {
    throw storeError('STORE_CONFIG_INVALID', `the ${what} '${path}' is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`, { details: { path, mode: mode & 0o777 } });
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret.length === 0 || /[\r\n]/.test(secret)) {
    throw storeError('STORE_CONFIG_INVALID', `the ${what} '${path}' must hold the secret on one line`, { details: { path } });
  }
  return secret;
}

function file(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw storeError('STORE_CONFIG_INVALID', `cannot read the ${what} '${path}': check the path (relative paths are relative to the config file) and that the agent may read it`, { cause: err, details: { path } });
  }
}

/** Every object-store adapter, by the name used in the agent's storage config (`kind`). */
export const OBJECT_STORES = {
  s3: {
    configSchema: S3ConfigSchema,
    create: (c: z.output<typeof S3ConfigSchema>): ObjectStore => new S3ObjectStore({
      name: c.name,
      endpoint: c.endpoint.replace(/\/$/, ''),
      region: c.region,
      signingRegion: c.signingRegion ?? c.region,
      accessKeyId: c.accessKeyId,
      secretAccessKey: secretFile(c.secretAccessKeyFile, 'secret access key file'),
      ...(c.caFile !== undefined ? { ca: file(c.caFile, 'ca file') } : {}),
      partSizeBytes: c.partSizeBytes,
      partConcurrency: c.partConcurrency,
      connectTimeoutMs: c.connectTimeoutMs,
      idleTimeoutMs: c.idleTimeoutMs,
      maxAttempts: c.maxAttempts,
      maxSockets: c.maxSockets,
    }),
  },
  fake: {
    configSchema: FakeStoreConfigSchema,
    create: (c: z.output<typeof FakeStoreConfigSchema>): ObjectStore => new FakeObjectStore(c),
  },
} as const satisfies Record<string, { configSchema: z.ZodType; create: (config: never) => ObjectStore }>;

/** A registered adapter name. */
export type ObjectStoreKind = keyof typeof OBJECT_STORES;

/** An adapter's config parsed by its own schema (defaults filled in), tagged with its kind. */
export type ObjectStoreSettings = {
  [K in ObjectStoreKind]: { readonly kind: K; readonly config: z.output<(typeof OBJECT_STORES)[K]['configSchema']> };
}[ObjectStoreKind];

/** The outcome of {@link safeParseObjectStoreSettings}: the settings, or every problem with its path. */
export type ObjectStoreSettingsResult =
  | { readonly success: true; readonly data: ObjectStoreSettings }
  | { readonly success: false; readonly issues: readonly z.core.$ZodIssue[] };

function isObjectStoreKind(kind: string): kind is ObjectStoreKind {
  return Object.hasOwn(OBJECT_STORES, kind);
}

/**
 * Parses `config` with the schema of adapter `kind`, without throwing. Issue paths are relative to
 * `{ kind, config }`: `['kind']` for an unknown adapter, `['config', …]` for the config's own problems.
 */
export function safeParseObjectStoreSettings(kind: string, config: unknown): ObjectStoreSettingsResult {
  if (!isObjectStoreKind(kind)) {
    const known = Object.keys(OBJECT_STORES).map((k) => `'${k}'`).join(', ');
    return { success: false, issues: [{ code: 'custom', path: ['kind'], input: kind, message: `no object-store adapter '${kind}': use one of ${known}` }] };
  }
  const parsed = OBJECT_STORES[kind].configSchema.safeParse(config);
  if (!parsed.success) return { success: false, issues: parsed.error.issues.map((i) => ({ ...i, path: ['config', ...i.path] })) };
  return { success: true, data: { kind, config: parsed.data } as ObjectStoreSettings };
}

/**
 * Parses `config` with the schema of adapter `kind`. Throws `STORE_UNKNOWN_BACKEND` for an unknown
 * kind and `STORE_CONFIG_INVALID` (with every problem and its path) for a bad config.
 */
export function parseObjectStoreSettings(kind: string, config: unknown): ObjectStoreSettings {
  const result = safeParseObjectStoreSettings(kind, config);
  if (result.success) return result.data;
  if (!isObjectStoreKind(kind)) throw storeError('STORE_UNKNOWN_BACKEND', result.issues[0]!.message, { details: { kind } });
  const problems = result.issues.map((i) => `${i.path.slice(1).join('.') || '(config)'}: ${i.message}`);
  throw storeError('STORE_CONFIG_INVALID', `invalid '${kind}' object-store config: ${problems.join('; ')}`, { details: { kind, problems } });
}

/** Walks a config schema and collects the key paths of the fields registered in {@link STORE_LOCAL_PATHS}. */
function localPathsOf(schema: z.ZodType, at: readonly string[], out: string[][]): void {
  if (STORE_LOCAL_PATHS.has(schema)) {
    out.push([...at]);
  } else if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodNullable) {
    localPathsOf(schema.unwrap() as z.ZodType, at, out);
  } else if (schema instanceof z.ZodObject) {
    for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) localPathsOf(field, [...at, key], out);
  }
}

/** The key paths of adapter `kind`'s config fields that name files on this machine (e.g. `['secretAccessKeyFile']`). */
export function objectStoreConfigPaths(kind: ObjectStoreKind): string[][] {
  const out: string[][] = [];
  localPathsOf(OBJECT_STORES[kind].configSchema, [], out);
  return out;
}

/**
 * A copy of `settings` whose local paths ({@link objectStoreConfigPaths}) are absolute: relative
 * ones resolved against `baseDir`, the folder of the config file they were written in.
 */
export function resolveObjectStorePaths(settings: ObjectStoreSettings, baseDir: string): ObjectStoreSettings {
  const config: Record<string, unknown> = { ...settings.config };
  for (const path of objectStoreConfigPaths(settings.kind)) {
    const [key] = path as [string];
    const value = config[key];
    if (path.length === 1 && typeof value === 'string' && !isAbsolute(value)) config[key] = resolve(baseDir, value);
  }
  return { kind: settings.kind, config } as ObjectStoreSettings;
}

/** Creates adapter `settings.kind` from its parsed settings; reads the files it names (`STORE_CONFIG_INVALID` naming one it cannot read). */
export function createObjectStore(settings: ObjectStoreSettings): ObjectStore;
/**
 * Parses `config` with the schema of adapter `kind` and creates it. Throws `STORE_UNKNOWN_BACKEND`
 * for an unknown kind and `STORE_CONFIG_INVALID` (with every problem and its path) for a bad config.
 */
export function createObjectStore(kind: string, config: unknown): ObjectStore;
export function createObjectStore(kindOrSettings: string | ObjectStoreSettings, config?: unknown): ObjectStore {
  const settings = typeof kindOrSettings === 'string' ? parseObjectStoreSettings(kindOrSettings, config) : kindOrSettings;
  return (OBJECT_STORES[settings.kind].create as (c: unknown) => ObjectStore)(settings.config);
}
