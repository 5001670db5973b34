/**
 * The agent's configuration: one schema, strict (unknown keys are errors), parsed once at
 * start into a resolved, typed {@link AgentConfig}. Paths are resolved against the config
 * file's folder. A bad config exits non-zero before any socket opens.
 */
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { safeParseHypervisorSettings } from '../../adapters/hypervisor/index.js';
import { MAX_RECEIVED_CHUNK_SIZE } from '../../protocols/amqp/receiver-machine.js';

const cloudId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a cloud id is lowercase letters, digits and dashes, e.g. "cloud-a"');
/** `HOST:PORT`, resolved once into its parts. */
const hostPort = z.string().regex(/^[^:\s]+:\d{1,5}$/, 'write it as HOST:PORT, e.g. "127.0.0.1:9464"')
  .transform((s) => ({ host: s.slice(0, s.lastIndexOf(':')), port: Number(s.slice(s.lastIndexOf(':') + 1)) }));

/** A key the config must have: when absent, the message says what to write (`howTo`). */
const missing = (howTo: string) => ({ error: (iss: { input?: unknown }) => (iss.input === undefined ? `missing: ${howTo}` : undefined) });
const dnsName = /^(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * DNS re-addressing (RFC 2136 update signed with TSIG, `protocols/dns`): while a vm runs in
 * this cloud, its name `<vm>.<zone>` has A/AAAA records for this cloud's `locators`.
 */
const DnsAddressingSchema = z.strictObject({
  server: z.string(missing('the primary server of the zone, as HOST:PORT, e.g. server: "127.0.0.1:15353"'))
    .regex(/^[^:\s]+:\d{1,5}$/, 'write it as HOST:PORT, e.g. "127.0.0.1:15353"')
    .transform((s) => ({ host: s.slice(0, s.lastIndexOf(':')), port: Number(s.slice(s.lastIndexOf(':') + 1)) })),
  zone: z.string(missing("the zone that holds the vms' names, e.g. zone: vms.intercloud.test (its server must accept updates signed with the tsig key)"))
    .regex(dnsName, 'write a dns name, e.g. "vms.intercloud.test"'),
  tsigName: z.string(missing('the name of the tsig key the zone accepts updates signed with (BIND: the key named in the zone\'s allow-update), e.g. tsigName: intercloud-update'))
    .min(1, 'name the tsig key, e.g. tsigName: intercloud-update'),
  tsigSecret: z.string(missing("the tsig key's secret, base64, as tsig-keygen writes it in the key's `secret \"…\";` line"))
    .min(1, "write the tsig key's secret, base64, as tsig-keygen writes it")
    .regex(base64, "the tsig key's secret is base64, as tsig-keygen writes it: copy it from the key's `secret \"…\";` line")
    .describe('secret, base64'),
  tsigAlgorithm: z.enum(['hmac-sha256', 'hmac-sha512']).default('hmac-sha256'),
  locators: z.array(z.string().refine((a) => isIP(a) !== 0, 'write an ipv4 or ipv6 address, e.g. 198.51.100.1'), missing(
    "the addresses at which this cloud reaches its vms (its site's locators, like lisp rlocs): a vm's name points at them while it runs here, e.g. locators: [198.51.100.1]",
  )).min(1, 'give at least one address, e.g. locators: [198.51.100.1]'),
  /** TTL of the records (seconds): how long resolvers may keep answering with the old site. */
  ttl: z.number().int().min(0).max(86_400).default(60),
});

const AgentConfigShape = z.strictObject({
  /** This cloud. */
  cloud: z.strictObject({
    id: cloudId,
    regions: z.array(z.string().min(1)).min(1).default(['default']),
  }),
  /** This gateway's identity under the Intercloud Root. */
  identity: z.strictObject({
    root: z.string().min(1).describe('PEM file of the Intercloud Root CA'),
    cert: z.string().min(1).describe('PEM file of this gateway certificate'),
    key: z.string().min(1).describe('PEM file of this gateway private key'),
    crl: z.string().min(1).optional().describe('PEM file of the Root CRL'),
  }),
  /** The Root's XMPP server. */
  xmpp: z.strictObject({
    service: z.string().regex(/^xmpps?:\/\/[^/]+$/, 'write it as xmpp://HOST:PORT, e.g. "xmpp://127.0.0.1:15222"'),
    domain: z.string().min(1),
    pubsub: z.string().min(1),
    /** TLS server name to verify (defaults to the domain). */
    servername: z.string().min(1).optional(),
    /**
     * The other Intercloud Roots whose directories this cloud reads (like DNS root hints): each
     * Root's gateway domain and the PubSub service of its directory, reached through our Root's
     * s2s federation. Gateways of these domains are peers like our own Root's.
     */
    directories: z.array(z.strictObject({
      domain: z.string().min(1),
      pubsub: z.string().min(1),
    })).default([]),
  }),
  /** The broker disks and objects travel through. */
  amqp: z.strictObject({
    /** This cloud's own broker, named in its accepts; a source sends to the broker its peer's accept names. */
    url: z.string().regex(/^amqps:\/\//, 'the broker must be reached over TLS: write amqps://HOST:PORT/VHOST'),
    servername: z.string().min(1).optional(),
    /**
     * The DNS name this cloud's broker certificate carries, named in accepts (issue 13); it must
     * be under `<cloud id>.<xmpp domain>` or peers refuse the accepts. Default: `servername`,
     * else the url's host.
     */
    identity: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'write the dns name of the broker certificate, e.g. broker.cloud-b.intercloud.example').optional(),
    /**
     * The broker's management API (rabbitmq_management), where the agent grants a peer the
     * resources of exactly the offers it accepted, and withdraws them when their jobs end. Without
     * it the operator must give peers static permissions.
     */
    management: z.strictObject({
      url: z.string().regex(/^https?:\/\/[^/]+\/?$/, 'write http://HOST:PORT of the management listener'),
      user: z.string().min(1),
      passwordFile: z.string().min(1).describe('file holding the management password'),
    }).optional(),
    // A receiver takes chunks up to MAX_RECEIVED_CHUNK_SIZE (its memory per transfer is its prefetch of them).
    chunkBytes: z.number().int().min(4096).max(MAX_RECEIVED_CHUNK_SIZE, `a peer's receiver takes chunks of at most ${MAX_RECEIVED_CHUNK_SIZE} bytes`).default(1024 * 1024),
    // Chunks unconfirmed at most per transfer: the rate is at most window × chunk ÷ round trip to the target's broker.
    window: z.number().int().min(1).max(1024).default(8),
  }),
  /** The local hypervisor backend; `config` is checked by the adapter's own schema (below). */
  hypervisor: z.strictObject({
    kind: z.string().min(1),
    config: z.record(z.string(), z.unknown()).default({}),
  }),
  /**
   * Object storage this cloud lends to peers as a storage subcontractor (issue 14); absent: it
   * takes no storage offers. One object store per region: B stores a subcontract only in the
   * store configured for the region it accepted. `kind` names an object-store adapter
   * (`adapters/storage`, e.g. `s3`) and `config` is that adapter's own config (its `name` and
   * `region` are the cloud id and the region key), checked by the adapter's schema.
   */
  storage: z.strictObject({
    /** GiB of object storage (every replica counted) peers may hold here in all; the catalog advertises it less what is reserved. */
    capacityGiB: z.number().int().min(0),
    /** Longest subcontract taken, in days. */
    maxSubcontractDays: z.number().int().min(1).max(36_500).default(365),
    /**
     * Most objects one subcontract may hold (default one million). The receiving agent keeps each
     * of a subcontract's keys in memory to count its reservation, and a peer's empty objects cost
     * it little else: this bounds both.
     */
    maxObjectsPerSubcontract: z.number().int().positive().default(1_000_000),
    /**
     * How this cloud replicates the buckets it subcontracts (A): a listing pass of each every
     * `passSeconds` (Swift's S3 API has no event notifications), an audit of B's copy every
     * `auditSeconds`. Absent: 30 s and 600 s.
     */
    replication: z.strictObject({
      passSeconds: z.number().min(0.2).max(86_400).default(30),
      auditSeconds: z.number().min(1).max(604_800).default(600),
    }).optional(),
    regions: z.record(
      z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'a region is a token such as "eu-west"'),
      z.strictObject({
        kind: z.string().min(1),
        config: z.record(z.string(), z.unknown()).default({}),
        /** The most replicas this region's store keeps of each object (its ring's replica count). */
        maxReplicas: z.number().int().min(1).max(16).default(1),
      }),
    ).refine((r) => Object.keys(r).length > 0, 'name at least one region with its object store, e.g. regions: { eu-west: { kind: s3, config: { … } } }'),
  }).optional(),
  /** Who may send us work, and how much. */
  policy: z.strictObject({
    acceptFrom: z.array(z.union([cloudId, z.literal('*')])).default([]),
    maxVcpusPerVm: z.number().int().positive().default(16),
    maxMemoryBytesPerVm: z.number().int().positive().default(64 * 1024 ** 3),
    reservationSeconds: z.number().int().min(10).max(86_400).default(600),
    maxClockSkewMs: z.number().int().min(1).default(2_000),
    /** Per sending cloud: most vCPUs held in live reservations and running migrations (unset: no limit but capacity). */
    quotaVcpusPerCloud: z.number().int().positive().optional(),
    /** Per sending cloud: most live reservations at once, so no one cloud can hold all of our capacity. */
    quotaReservationsPerCloud: z.number().int().positive().default(8),
    /**
     * vCPUs this cloud offers per physical CPU of the host (Nova's `cpu_allocation_ratio`): the
     * catalog and the admission check count `floor(cpus × ratio)` less the vCPUs running VMs hold.
     * 1 (the default): no overcommit.
     */
    cpuAllocationRatio: z.number().min(0.1).max(64).default(1),
  }).default({ acceptFrom: [], maxVcpusPerVm: 16, maxMemoryBytesPerVm: 64 * 1024 ** 3, reservationSeconds: 600, maxClockSkewMs: 2_000, quotaReservationsPerCloud: 8, cpuAllocationRatio: 1 }),
  /** Terms this cloud offers in its catalog entry. */
  terms: z.strictObject({
    currency: z.string().length(3).default('EUR'),
    pricePerVcpuHour: z.number().nonnegative().default(0),
    pricePerGbMonth: z.number().nonnegative().default(0),
  }).default({ currency: 'EUR', pricePerVcpuHour: 0, pricePerGbMonth: 0 }),
  /** Addressing continuity after a move. */
  addressing: z.strictObject({
    lisp: z.strictObject({
      mapServer: hostPort,
      keyId: z.number().int().min(0).max(255),
      algorithm: z.enum(['hmac-sha-1-96', 'hmac-sha-256-128']).default('hmac-sha-256-128'),
      keyFile: z.string().min(1).describe('file holding the site key shared with the map server'),
      rlocs: z.array(z.string().min(1)).min(1),
    }).optional(),
    dns: DnsAddressingSchema.optional(),
  }).default({}),
  /** How migrations run on this side. */
  migration: z.strictObject({
    /** Graceful shutdown of the source VM before it is forced off. */
    shutdownTimeoutMs: z.number().int().min(0).default(60_000),
    /** How long a VM started here waits for the source's commit before it is removed again. */
    commitTimeoutMs: z.number().int().min(1_000).default(3_600_000),
    /**
     * How often the source sends an unanswered instantiate or commit again (a stanza lost in a
     * reset s2s link is never bounced); default `REQUEST_RESEND_MS` of agent/daemon/control-ports.ts.
     */
    requestResendMs: z.number().int().min(1_000).max(300_000).default(30_000),
    /** Broker-persistent messages for transfers (both ends keep journals either way). */
    persistentTransfers: z.boolean().default(false),
    /**
     * The machine types (versioned, `pc-i440fx-7.2`, or an alias, `pc`) this cloud restores a
     * live move's saved state onto; absent: every one the host runs. The catalog advertises only
     * these: a live offer of another is refused before any cut-over (issue 15).
     */
    restoreMachines: z.array(z.string().min(1)).optional(),
    /**
     * Issue 16: directories of base images this cloud holds (raw golden images), indexed by
     * whole-image SHA-256 (saved beside each image). A peer offering a disk that is a qcow2
     * overlay on a base of the same content is told it is held. Absolute paths; absent: none.
     */
    baseImages: z.array(z.string().refine((d) => isAbsolute(d), 'a base image directory must be an absolute path, e.g. "/srv/golden"')).max(64).optional(),
    /**
     * Local policy for the networks of VMs that peers move here: the peer's network name →
     * a local network (`map`), else `default`, else the hypervisor's default. A peer never
     * names a local network or host interface itself.
     */
    networks: z.strictObject({
      map: z.record(z.string().min(1), z.string().min(1)).default({}),
      default: z.string().min(1).optional(),
    }).default({ map: {} }),
  }).default({ shutdownTimeoutMs: 60_000, commitTimeoutMs: 3_600_000, requestResendMs: 30_000, persistentTransfers: false, networks: { map: {} } }),
  /** Where the agent keeps journals, staging files and its audit log. */
  state: z.strictObject({
    dir: z.string().min(1),
  }),
  /** The local API for the cloud's own orchestration (HTTP on a Unix socket). */
  api: z.strictObject({
    socket: z.string().min(1),
  }),
  metrics: z.strictObject({
    listen: hostPort.optional(),
  }).default({}),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  }).default({ level: 'info' }),
});

/**
 * The agent's config schema. `hypervisor.config` is parsed by the schema of the adapter that
 * `hypervisor.kind` names (registered in `adapters/hypervisor`), named after the cloud unless it
 * says otherwise; its problems are reported under `hypervisor.…` like every other key's, so a bad
 * adapter config fails here, at `--check` and at start, before the agent opens anything.
 */
export const AgentConfigSchema = AgentConfigShape.superRefine((c, ctx) => {
  // The catalog advertises cloud.regions: a store in a region the catalog does not list would
  // never be chosen, and a region it lists with no store would be promised and refused.
  for (const region of Object.keys(c.storage?.regions ?? {})) {
    if (!c.cloud.regions.includes(region)) {
      ctx.addIssue({ code: 'custom', path: ['storage', 'regions', region], message: `region '${region}' is not one of cloud.regions (${c.cloud.regions.join(', ')}): add it there or remove its store` });
    }
  }
}).transform((c, ctx) => {
  const hv = safeParseHypervisorSettings(c.hypervisor.kind, { name: c.cloud.id, ...c.hypervisor.config });
  if (!hv.success) {
    for (const issue of hv.issues) ctx.issues.push({ ...issue, path: ['hypervisor', ...issue.path] } as typeof ctx.issues[number]);
    return z.NEVER;
  }
  return { ...c, hypervisor: hv.data };
});

/** The resolved configuration the daemon runs with. */
export type AgentConfig = z.output<typeof AgentConfigSchema>;

/** Paths in the config that are resolved against the config file's folder. */
export const CONFIG_PATH_KEYS: ReadonlyArray<readonly string[]> = [
  ['identity', 'root'], ['identity', 'cert'], ['identity', 'key'], ['identity', 'crl'], ['addressing', 'lisp', 'keyFile'], ['amqp', 'management', 'passwordFile'],
  ['state', 'dir'], ['api', 'socket'],
];

/** Keys whose values are secrets: the logger redacts them. */
export const CONFIG_SECRET_PATHS = ['addressing.dns.tsigSecret', 'addressing.dns.tsigName', 'hypervisor.config.password'] as const;
