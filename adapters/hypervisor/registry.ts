/**
 * The hypervisor adapters, registered explicitly in one place: name → `{ configSchema, create }`.
 * The daemon parses `hypervisor.config` with the chosen adapter's schema (strict: unknown keys
 * are errors) before anything connects, then calls `create`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Hypervisor } from './contract.js';
import { hvError } from './errors.js';
import { FakeHypervisor } from './fake/fake-hypervisor.js';
import { LocalRunner } from './libvirt/command-runner.js';
import { LibvirtHypervisor } from './libvirt/libvirt-hypervisor.js';
import { SshRunner } from './libvirt/ssh-runner.js';
import { VmwareHypervisor } from './vmware/vmware-hypervisor.js';

const cloudName = z.string().min(1).describe('cloud id, used in messages');

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
  consoleLogDir: z.string().min(1).optional().describe('host directory where serial consoles of VMs defined here are logged'),
  ssh: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(22),
    username: z.string().min(1),
    privateKeyFile: z.string().min(1).describe('private key file (key-only login)'),
    hostKeyFingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'write it as ssh-keygen -lf prints it: SHA256:<base64>').optional(),
    knownHostsFile: z.string().min(1).optional(),
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
  caFile: z.string().min(1).describe('PEM of the CA or certificate the endpoint must present'),
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
    throw hvError('HV_CONFIG_INVALID', `cannot read the ${what} '${path}'`, { cause: err, details: { path } });
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
 * Parses `config` with the schema of adapter `kind` and creates it. Throws `HV_UNKNOWN_BACKEND`
 * for an unknown kind and `HV_CONFIG_INVALID` (with every problem and its path) for a bad config.
 */
export function createHypervisor(kind: string, config: unknown): Hypervisor {
  if (!Object.hasOwn(HYPERVISORS, kind)) {
    throw hvError('HV_UNKNOWN_BACKEND', `no hypervisor adapter '${kind}' (known: ${Object.keys(HYPERVISORS).map((k) => `'${k}'`).join(', ')})`, { details: { kind } });
  }
  const reg = HYPERVISORS[kind as HypervisorKind];
  const parsed = reg.configSchema.safeParse(config);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw hvError('HV_CONFIG_INVALID', `invalid '${kind}' hypervisor config: ${problems.join('; ')}`, { details: { kind, problems } });
  }
  return (reg.create as (c: unknown) => Hypervisor)(parsed.data);
}
