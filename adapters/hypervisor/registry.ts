/**
 * The hypervisor adapters, registered explicitly in one place: name → `{ configSchema, create }`.
 * The agent parses `hypervisor.config` with the chosen adapter's schema (strict: unknown keys
 * are errors) when it reads its config file ({@link safeParseHypervisorSettings}), resolves the
 * fields the schema marks as local paths ({@link resolveHypervisorPaths}), and only later, before
 * anything connects, calls `create` with the parsed value.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, posix, resolve } from 'node:path';
import { z } from 'zod';
import type { Hypervisor } from './contract.js';
import { hvError } from './errors.js';
import { FakeHypervisor } from './fake/fake-hypervisor.js';
import { LocalRunner } from './libvirt/command-runner.js';
import { LibvirtHypervisor } from './libvirt/libvirt-hypervisor.js';
import { SshRunner } from './libvirt/ssh-runner.js';
import { VmwareHypervisor } from './vmware/vmware-hypervisor.js';

const cloudName = z.string().min(1).describe('cloud id, used in messages');

/**
 * The string fields of adapter configs that name files on the machine the agent runs on (it reads
 * them when it creates the adapter). Whoever reads a config file resolves relative values against
 * the file's folder ({@link resolveHypervisorPaths}), without knowing any adapter's fields.
 */
export const LOCAL_PATHS = z.registry<{ readonly description: string }>();

/** A config field naming a file on this machine: relative to the config file's folder. */
function localPath(description: string): z.ZodString {
  const field = z.string().min(1).describe(description);
  LOCAL_PATHS.add(field, { description });
  return field;
}

/** A directory on the hypervisor host, which may be another machine: it must be absolute. */
function hostDirectory(description: string): z.ZodString {
  return z.string().min(1).describe(description)
    .refine((p) => posix.isAbsolute(p), 'write an absolute directory on the hypervisor host (a relative one has no folder to be relative to there)');
}

/** `libvirt`: virsh over SSH (`ssh` given) or locally (`ssh` absent). */
export const LibvirtConfigSchema = z.strictObject({
  name: cloudName,
  uri: z.string().min(1).describe('libvirt URI for `virsh -c`, e.g. qemu:///system'),
  pool: z.string().min(1).default('default'),
  virsh: z.string().min(1).default('virsh').describe('virsh path or name on the host'),
  qemuImg: z.string().min(1).default('qemu-img').describe('qemu-img path or name on the host'),
  domainType: z.enum(['kvm', 'qemu']).default('kvm').describe('qemu where the host has no KVM (TCG)'),
  nicTarget: z.strictObject({ type: z.enum(['network', 'bridge', 'direct', 'user']), name: z.string().min(1).optional() }).optional(),
  pollMs: z.number().int().min(10).max(10_000).default(250),
  diskIo: z.enum(['file', 'libvirt']).default('file').describe('file: dd on the volume path; libvirt: virsh vol-upload/vol-download'),
  consoleLogDir: hostDirectory('host directory where serial consoles of VMs defined here are logged').optional(),
  ssh: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(22),
    username: z.string().min(1),
    privateKeyFile: localPath('private key file (key-only login)'),
    hostKeyFingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'write it as ssh-keygen -lf prints it: SHA256:<base64>').optional(),
    knownHostsFile: localPath('known_hosts file holding the host key').optional(),
    maxChannels: z.number().int().min(1).max(64).default(8),
    connectTimeoutMs: z.number().int().min(100).default(10_000),
  }).refine((s) => (s.hostKeyFingerprint === undefined) !== (s.knownHostsFile === undefined), {
    message: 'pin the host key: give exactly one of hostKeyFingerprint or knownHostsFile',
  }).optional(),
});

/** `vmware`: the vSphere SOAP API of a vCenter (or vcsim). */
export const VmwareConfigSchema = z.strictObject({
  name: cloudName,
  url: z.string().regex(/^https:\/\/[^/]+\/sdk$/, 'write it as https://HOST[:PORT]/sdk'),
  user: z.string().min(1),
  password: z.string().min(1).describe('secret'),
  caFile: localPath('PEM of the CA or certificate the endpoint must present'),
  datacenter: z.string().min(1),
  datastore: z.string().min(1),
  computeResource: z.string().min(1).optional(),
  network: z.string().min(1).default('VM Network'),
  pollMs: z.number().int().min(10).max(10_000).default(250),
  timeoutMs: z.number().int().min(100).default(60_000),
  importVia: z.enum(['datastore', 'nfc']).default('datastore').describe('datastore: /folder upload + CreateVM_Task; nfc: CreateImportSpec + ImportVApp'),
});

/** `fake`: in memory, for unit tests and dry runs. */
export const FakeConfigSchema = z.strictObject({
  name: cloudName,
  vcpus: z.number().int().positive().default(8),
  memoryBytes: z.number().int().positive().default(16 * 1024 ** 3),
  diskBytes: z.number().int().positive().default(100 * 1024 ** 3),
  guestsIgnoreShutdown: z.boolean().default(false),
});

/** One adapter's registration. */
export interface HypervisorRegistration<S extends z.ZodType> {
  /** Strict schema of the adapter's config. */
  readonly configSchema: S;
  /** Makes the adapter from a parsed config. Opens no connection (they open on first use). */
  readonly create: (config: z.output<S>) => Hypervisor;
}

function file(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw hvError('HV_CONFIG_INVALID', `cannot read the ${what} '${path}': check the path (relative paths are relative to the config file) and that the agent may read it`, { cause: err, details: { path } });
  }
}

/** Every hypervisor adapter, by the name used in `hypervisor.kind`. */
export const HYPERVISORS = {
  libvirt: {
    configSchema: LibvirtConfigSchema,
    create: (c: z.output<typeof LibvirtConfigSchema>): Hypervisor => {
      const runner = c.ssh === undefined
        ? new LocalRunner()
        : new SshRunner({
          host: c.ssh.host,
          port: c.ssh.port,
          username: c.ssh.username,
          privateKey: file(c.ssh.privateKeyFile, 'ssh private key'),
          hostKey: c.ssh.hostKeyFingerprint !== undefined
            ? { fingerprint: c.ssh.hostKeyFingerprint }
            : { knownHosts: file(c.ssh.knownHostsFile!, 'known_hosts file') },
          maxChannels: c.ssh.maxChannels,
          connectTimeoutMs: c.ssh.connectTimeoutMs,
        });
      return new LibvirtHypervisor({
        name: c.name, uri: c.uri, pool: c.pool, virsh: c.virsh, qemuImg: c.qemuImg, pollMs: c.pollMs,
        domainType: c.domainType, diskIo: c.diskIo, ...(c.nicTarget ? { nicTarget: c.nicTarget } : {}),
        ...(c.consoleLogDir ? { consoleLogDir: c.consoleLogDir } : {}),
      }, runner);
    },
  },
  vmware: {
    configSchema: VmwareConfigSchema,
    create: (c: z.output<typeof VmwareConfigSchema>): Hypervisor => new VmwareHypervisor({
      name: c.name,
      endpoint: { url: c.url, user: c.user, password: c.password, ca: file(c.caFile, 'ca file'), timeoutMs: c.timeoutMs },
      datacenter: c.datacenter,
      datastore: c.datastore,
      ...(c.computeResource ? { computeResource: c.computeResource } : {}),
      network: c.network,
      pollMs: c.pollMs,
      importVia: c.importVia,
    }),
  },
  fake: {
    configSchema: FakeConfigSchema,
    create: (c: z.output<typeof FakeConfigSchema>): Hypervisor => new FakeHypervisor(c),
  },
} as const satisfies Record<string, { configSchema: z.ZodType; create: (config: never) => Hypervisor }>;

/** A registered adapter name. */
export type HypervisorKind = keyof typeof HYPERVISORS;

/**
 * An adapter's config parsed by its own schema (defaults filled in), tagged with its kind: the
 * resolved, typed value {@link createHypervisor} takes.
 */
export type HypervisorSettings = {
  [K in HypervisorKind]: { readonly kind: K; readonly config: z.output<(typeof HYPERVISORS)[K]['configSchema']> };
}[HypervisorKind];

/** The outcome of {@link safeParseHypervisorSettings}: the settings, or every problem with its path. */
export type HypervisorSettingsResult =
  | { readonly success: true; readonly data: HypervisorSettings }
  | { readonly success: false; readonly issues: readonly z.core.$ZodIssue[] };

function isHypervisorKind(kind: string): kind is HypervisorKind {
  return Object.hasOwn(HYPERVISORS, kind);
}

function knownKinds(): string {
  return Object.keys(HYPERVISORS).map((k) => `'${k}'`).join(', ');
}

/**
 * Parses `config` with the schema of adapter `kind`, without throwing. Issue paths are relative to
 * `{ kind, config }`: `['kind']` for an unknown adapter, `['config', …]` for the config's own
 * problems (zod's issues, so a caller can word them like its other config problems).
 */
export function safeParseHypervisorSettings(kind: string, config: unknown): HypervisorSettingsResult {
  if (!isHypervisorKind(kind)) {
    return { success: false, issues: [{ code: 'custom', path: ['kind'], input: kind, message: `no hypervisor adapter '${kind}': use one of ${knownKinds()}` }] };
  }
  const parsed = HYPERVISORS[kind].configSchema.safeParse(config);
  if (!parsed.success) return { success: false, issues: parsed.error.issues.map((i) => ({ ...i, path: ['config', ...i.path] })) };
  return { success: true, data: { kind, config: parsed.data } as HypervisorSettings };
}

/**
 * Parses `config` with the schema of adapter `kind`. Throws `HV_UNKNOWN_BACKEND` for an unknown
 * kind and `HV_CONFIG_INVALID` (with every problem and its path) for a bad config.
 */
export function parseHypervisorSettings(kind: string, config: unknown): HypervisorSettings {
  const result = safeParseHypervisorSettings(kind, config);
  if (result.success) return result.data;
  if (!isHypervisorKind(kind)) throw hvError('HV_UNKNOWN_BACKEND', result.issues[0]!.message, { details: { kind } });
  const problems = result.issues.map((i) => `${i.path.slice(1).join('.') || '(config)'}: ${i.message}`);
  throw hvError('HV_CONFIG_INVALID', `invalid '${kind}' hypervisor config: ${problems.join('; ')}`, { details: { kind, problems } });
}

/** Walks a config schema and collects the key paths of the fields registered in {@link LOCAL_PATHS}. */
function localPathsOf(schema: z.ZodType, at: readonly string[], out: string[][]): void {
  if (LOCAL_PATHS.has(schema)) {
    out.push([...at]);
  } else if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodNullable) {
    localPathsOf(schema.unwrap() as z.ZodType, at, out);
  } else if (schema instanceof z.ZodObject) {
    for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) localPathsOf(field, [...at, key], out);
  }
}

/** The key paths of adapter `kind`'s config fields that name files on this machine (e.g. `['caFile']`). */
export function hypervisorConfigPaths(kind: HypervisorKind): string[][] {
  const out: string[][] = [];
  localPathsOf(HYPERVISORS[kind].configSchema, [], out);
  return out;
}

/** A copy of `value` with the string at `path` passed through `map` (absent keys stay absent). */
function mapAt(value: unknown, path: readonly string[], map: (s: string) => string): unknown {
  if (path.length === 0) return typeof value === 'string' ? map(value) : value;
  if (typeof value !== 'object' || value === null) return value;
  const [key, ...rest] = path as [string, ...string[]];
  if (!Object.hasOwn(value, key)) return value;
  return { ...value, [key]: mapAt((value as Record<string, unknown>)[key], rest, map) };
}

/**
 * A copy of `settings` whose local paths (the fields the adapter's schema marks, see
 * {@link hypervisorConfigPaths}) are absolute: relative ones resolved against `baseDir`, the
 * folder of the config file they were written in.
 */
export function resolveHypervisorPaths(settings: HypervisorSettings, baseDir: string): HypervisorSettings {
  let config: unknown = settings.config;
  for (const path of hypervisorConfigPaths(settings.kind)) {
    config = mapAt(config, path, (p) => (isAbsolute(p) ? p : resolve(baseDir, p)));
  }
  return { kind: settings.kind, config } as HypervisorSettings;
}

/**
 * Creates adapter `settings.kind` from its parsed settings. Opens no connection; reads the local
 * files the config names and throws `HV_CONFIG_INVALID` naming one it cannot read.
 */
export function createHypervisor(settings: HypervisorSettings): Hypervisor;
/**
 * Parses `config` with the schema of adapter `kind` and creates it. Throws `HV_UNKNOWN_BACKEND`
 * for an unknown kind and `HV_CONFIG_INVALID` (with every problem and its path) for a bad config.
 */
export function createHypervisor(kind: string, config: unknown): Hypervisor;
export function createHypervisor(kindOrSettings: string | HypervisorSettings, config?: unknown): Hypervisor {
  const settings = typeof kindOrSettings === 'string' ? parseHypervisorSettings(kindOrSettings, config) : kindOrSettings;
  return (HYPERVISORS[settings.kind].create as (c: unknown) => Hypervisor)(settings.config);
}
