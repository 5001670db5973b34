/**
 * A federation of gateway agents on this one machine, over the servers `scripts/services up`
 * started: agent configs written from services.json, agents run as child processes (so a
 * test can kill one with SIGKILL and start it again), and a demo VM that boots from its one
 * disk in a cloud's libvirt. Used by `scripts/demo`, the end-to-end tests and
 * `bench/migration`; not part of the agent.
 *
 *   node --import tsx scripts/local-federation.ts config CLOUD DIR [REGION] [PRICE] [ROOT]   writes DIR/agent.yaml
 *     (ROOT prosody|prosody2: the Intercloud Root the gateway logs in to; either one reads the other's directory too)
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, promises as fs, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { LocalApiClient } from '../agent/api/index.js';
import { isPoolBuildingVolume } from '../adapters/hypervisor/libvirt/libvirt-hypervisor.js';
import { parseTsigKeyFile } from '../protocols/dns/index.js';
import {
  certificateToPem, generateKeyPair, issueGatewayCertificate, parseCertificatePem, privateKeyFromPem, privateKeyToPem,
} from '../protocols/trust/index.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');

/** The parts of services.json a federation uses. */
interface ServicesFile {
  stateDir: string;
  pki: { root: string; rootKey: string; crl: string; clouds: Record<string, { cert: string; key: string }> };
  prosody: { host: string; port: number; domain: string; pubsubJid: string };
  /** Each cloud's own broker (scripts/services.d/30-rabbitmq.sh); cloud-c has none. */
  brokers: Record<string, { url: string; identity: string; pidFile: string; ctl: string; log: string; management: { url: string; user: string; passwordFile: string } }>;
  /** The second Intercloud Root (issue 13), federated with `prosody` over s2s. */
  prosody2?: { host: string; port: number; domain: string; pubsubJid: string };
  sshd: { host: string; port: number; user: string; privateKey: string; hostKeyFingerprint: string };
  libvirt: { instances: Record<string, { uri: string; poolPath: string; address: string }> };
  lisp: { host: string; port: number; sites: Record<string, { keyId: number; algorithm: string; keyFile: string; rlocs: string[] }> };
  bind?: { host: string; port: number; zone: string; keyFile: string };
  /** Each cloud's Swift with the S3 API (scripts/services.d/72-swift.sh). */
  swift?: Record<string, { endpoint: string; region: string; accessKeyId: string; secretAccessKeyFile: string; replicas: number }>;
}

/** Reads services.json (throws with the fix when the servers are not up). */
export function loadServicesFile(stateDir = process.env['INTERCLOUD_STATE_DIR'] ?? '/var/lib/intercloud-dev'): ServicesFile {
  const file = join(stateDir, 'services.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ServicesFile;
  } catch (err) {
    throw new Error(`cannot read '${file}': run 'scripts/services up' first`, { cause: err });
  }
}

/** Options of one cloud's agent config. */
export interface AgentConfigOptions {
  region?: string;
  /**
   * vCPUs offered per host CPU (`policy.cpuAllocationRatio`; default 4, Nova's initial ratio): the
   * clouds share one 2-CPU machine, and the tests' own VMs in the same libvirtd must leave room
   * for a migration's guest.
   */
  cpuAllocationRatio?: number;
  pricePerVcpuHour?: number;
  /**
   * How long the source waits for its VM to power off at ACPI before forcing it off (default
   * 1000 ms: the demo guest has no ACPI handler, so it is always forced off after this wait).
   */
  shutdownTimeoutMs?: number;
  commitTimeoutMs?: number;
  /** How often the source sends an unanswered instantiate or commit again (`migration.requestResendMs`). */
  requestResendMs?: number;
  /** The machine types the cloud restores a live move's state onto (`migration.restoreMachines`; default all). */
  restoreMachines?: string[];
  /** Directories of base images the cloud holds (`migration.baseImages`, issue 16; default none). */
  baseImages?: string[];
  reservationSeconds?: number;
  metricsPort?: number;
  acceptFrom?: string[];
  /** Per sending cloud: most vCPUs held in live reservations (`policy.quotaVcpusPerCloud`). */
  quotaVcpusPerCloud?: number;
  /** Per sending cloud: most live reservations (`policy.quotaReservationsPerCloud`). */
  quotaReservationsPerCloud?: number;
  persistentTransfers?: boolean;
  /**
   * How the agent re-addresses the VMs it takes or gives (default `lisp`, the map server's site
   * of the cloud). `dns`: RFC 2136 updates to services.json's BIND zone with its TSIG key; the
   * cloud's locator is its libvirt instance's address.
   */
  addressing?: 'lisp' | 'dns';
  /** With `addressing: 'dns'`: send the updates to this HOST:PORT instead of BIND's (a relay in a test). */
  dnsServer?: string;
  /**
   * The Intercloud Root the cloud's gateway logs in to (issue 13). Default: `prosody` (Root 1),
   * reading its directory only, as before. Either value given explicitly makes the agent read the
   * other Root's directory too (`xmpp.directories`, over s2s).
   */
  xmppRoot?: 'prosody' | 'prosody2';
  /**
   * The gateway certificate and key files. Default: on Root 1 the one services.json's PKI issued
   * for the cloud (`<cloud>@intercloud.test`); on Root 2 one issued here under the same Intercloud
   * Root for `<cloud>@<Root 2's domain>` (the cloud re-homed: its libvirt, LISP site and broker
   * user stay the cloud's), written to `dir`.
   */
  identity?: { cert: string; key: string };
  /**
   * Lend (and subcontract from) the cloud's Swift as object storage (issue 14): a `storage`
   * section with services.json's `swift.<cloud>` in its region, which is added to the cloud's
   * regions. Default: on when services.json has a Swift for the cloud. `passSeconds`: how often A
   * lists a subcontracted bucket (default 2 on these test federations).
   */
  storage?: false | { capacityGiB?: number; passSeconds?: number };
}

/** Issues `<cloud>@<Root 2's domain>` under the Intercloud Root into `dir` (key 0600). */
async function issueOnRoot2(s: ServicesFile, cloud: string, dir: string): Promise<{ cert: string; key: string }> {
  const domain = s.prosody2?.domain;
  if (!domain) throw new Error("services.json has no 'prosody2': run 'scripts/services up pki prosody'");
  const issuer = { certificate: parseCertificatePem(readFileSync(s.pki.root, 'utf8')), privateKey: privateKeyFromPem(readFileSync(s.pki.rootKey, 'utf8')) };
  const keys = generateKeyPair('ec');
  const cert = issueGatewayCertificate(issuer, { cloudId: cloud, jid: `${cloud}@${domain}`, dns: [`${cloud}.${domain}`], publicKey: keys.publicKey, now: new Date(), days: 7 });
  await fs.mkdir(dir, { recursive: true });
  const files = { cert: join(dir, `${cloud}.${domain}.pem`), key: join(dir, `${cloud}.${domain}.key`) };
  await fs.writeFile(files.cert, certificateToPem(cert.der));
  await fs.writeFile(files.key, privateKeyToPem(keys.privateKey), { mode: 0o600 });
  return files;
}

/** The XMPP lines of a cloud's config: its Root, and with `xmppRoot` set the other Root's directory. */
function xmppLine(s: ServicesFile, root: AgentConfigOptions['xmppRoot']): string {
  const own = root === 'prosody2' ? s.prosody2 : s.prosody;
  const other = root === 'prosody2' ? s.prosody : root === 'prosody' ? s.prosody2 : undefined;
  if (!own || (root !== undefined && !other)) throw new Error("services.json has no 'prosody2': run 'scripts/services up pki prosody'");
  const dirs = other ? `, directories: [{ domain: ${other.domain}, pubsub: ${other.pubsubJid} }]` : '';
  return `xmpp: { service: "xmpp://${own.host}:${own.port}", domain: ${own.domain}, pubsub: ${own.pubsubJid}${dirs} }`;
}

/** Writes `dir/agent.yaml` for `cloud` and returns its path; state, socket and consoles live in `dir`. */
export async function writeAgentConfig(s: ServicesFile, cloud: string, dir: string, o: AgentConfigOptions = {}): Promise<string> {
  const lv = s.libvirt.instances[cloud];
  const pki = o.identity ?? (o.xmppRoot === 'prosody2' ? await issueOnRoot2(s, cloud, dir) : s.pki.clouds[cloud]);
  const site = s.lisp.sites[cloud];
  // Only this cloud's own broker: a source sends to the broker its peer's accept names (issue 13).
  const broker = s.brokers?.[cloud];
  if (!lv || !pki || !site) throw new Error(`services.json has no libvirt instance, certificate or lisp site for '${cloud}'`);
  if (!broker) throw new Error(`services.json has no broker for '${cloud}': run 'scripts/services up rabbitmq'`);
  // A broker's identity is a name under its cloud's `<cloud>.<Root domain>` (protocols/amqp
  // README, "Whose broker"): a cloud on Root 2 names its broker under root2's domain.
  const brokerIdentity = o.xmppRoot === 'prosody2' && s.prosody2 ? `broker.${cloud}.${s.prosody2.domain}` : broker.identity;
  await fs.mkdir(join(dir, 'consoles'), { recursive: true });
  const q = JSON.stringify;
  const swift = o.storage === false ? undefined : s.swift?.[cloud];
  const regions = [...new Set([o.region ?? 'eu-west', ...(swift ? [swift.region] : [])])];
  const yaml = [
    `cloud: { id: ${cloud}, regions: [${regions.join(', ')}] }`,
    `identity: { root: ${q(s.pki.root)}, cert: ${q(pki.cert)}, key: ${q(pki.key)}, crl: ${q(s.pki.crl)} }`,
    xmppLine(s, o.xmppRoot),
    `amqp: { url: ${q(broker.url)}, identity: ${brokerIdentity}, management: { url: ${q(broker.management.url)}, user: ${q(broker.management.user)}, passwordFile: ${q(broker.management.passwordFile)} } }`,
    'hypervisor:',
    '  kind: libvirt',
    '  config:',
    `    uri: ${q(lv.uri)}`,
    '    domainType: qemu',
    '    nicTarget: { type: user }',
    `    consoleLogDir: ${q(join(dir, 'consoles'))}`,
    `    ssh: { host: ${s.sshd.host}, port: ${s.sshd.port}, username: ${s.sshd.user}, privateKeyFile: ${q(s.sshd.privateKey)}, hostKeyFingerprint: ${q(s.sshd.hostKeyFingerprint)} }`,
    `policy: { acceptFrom: ${q(o.acceptFrom ?? ['*'])}, reservationSeconds: ${o.reservationSeconds ?? 600}, cpuAllocationRatio: ${o.cpuAllocationRatio ?? 4}` +
      `${o.quotaVcpusPerCloud === undefined ? '' : `, quotaVcpusPerCloud: ${o.quotaVcpusPerCloud}`}` +
      `${o.quotaReservationsPerCloud === undefined ? '' : `, quotaReservationsPerCloud: ${o.quotaReservationsPerCloud}`} }`,
    `terms: { currency: EUR, pricePerVcpuHour: ${o.pricePerVcpuHour ?? 0.04}, pricePerGbMonth: 0.02 }`,
    'addressing:',
    o.addressing === 'dns'
      ? dnsAddressing(s, lv.address, o.dnsServer)
      : `  lisp: { mapServer: "${s.lisp.host}:${s.lisp.port}", keyId: ${site.keyId}, algorithm: ${site.algorithm}, keyFile: ${q(site.keyFile)}, rlocs: ${q(site.rlocs)} }`,
    `migration: { shutdownTimeoutMs: ${o.shutdownTimeoutMs ?? 1000}, commitTimeoutMs: ${o.commitTimeoutMs ?? 3_600_000}, persistentTransfers: ${o.persistentTransfers ?? false}` +
      `${o.requestResendMs === undefined ? '' : `, requestResendMs: ${o.requestResendMs}`}` +
      `${o.restoreMachines === undefined ? '' : `, restoreMachines: ${q(o.restoreMachines)}`}` +
      `${o.baseImages === undefined ? '' : `, baseImages: ${q(o.baseImages)}`} }`,
    ...(swift ? [storageSection(swift, o.storage === false ? {} : o.storage ?? {})] : []),
    `state: { dir: ${q(join(dir, 'state'))} }`,
    `api: { socket: ${q(join(dir, 'agent.sock'))} }`,
    ...(o.metricsPort ? [`metrics: { listen: "127.0.0.1:${o.metricsPort}" }`] : []),
    'log: { level: info }',
  ].join('\n') + '\n';
  const path = join(dir, 'agent.yaml');
  // The config may carry a secret (the DNS update key): readable by root only, like an operator's.
  await fs.writeFile(path, yaml, { mode: 0o600 });
  await fs.chmod(path, 0o600);
  return path;
}

/** The `storage` line of an agent config: the cloud's Swift (S3 API) as the store of its region. */
function storageSection(swift: NonNullable<ServicesFile['swift']>[string], o: { capacityGiB?: number; passSeconds?: number }): string {
  const q = JSON.stringify;
  return `storage: { capacityGiB: ${o.capacityGiB ?? 100}, replication: { passSeconds: ${o.passSeconds ?? 2}, auditSeconds: 600 }, regions: { ${swift.region}: { kind: s3, maxReplicas: ${swift.replicas}, `
    + `config: { endpoint: ${q(swift.endpoint)}, accessKeyId: ${q(swift.accessKeyId)}, secretAccessKeyFile: ${q(swift.secretAccessKeyFile)} } } } }`;
}

/** The `addressing.dns` line of an agent config, from services.json's BIND. */
function dnsAddressing(s: ServicesFile, locator: string, server?: string): string {
  const b = s.bind;
  if (!b) throw new Error("services.json has no 'bind': run 'scripts/services up bind'");
  const q = JSON.stringify;
  const key = parseTsigKeyFile(readFileSync(b.keyFile, 'utf8'));
  return `  dns: { server: ${q(server ?? `${b.host}:${b.port}`)}, zone: ${b.zone}, tsigName: ${q(key.name)}, tsigSecret: ${q(key.secret)}, `
    + `tsigAlgorithm: ${key.algorithm}, locators: [${locator}], ttl: 30 }`;
}

/**
 * V8 flags the agent daemon runs with, here as in `systemd/intercloud-agent.service` and
 * `scripts/intercloud agent` (a unit test keeps the three the same): a young generation of 2 MiB
 * semi-spaces instead of 16 keeps ~25 MiB less resident for the same live objects (issue 16;
 * `bench/migration/README.md`), at a few percent more CPU while a transfer runs.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/**
 * glibc malloc settings the agent daemon runs with, here as in the systemd unit and
 * `scripts/intercloud agent` (the same unit test): two arenas instead of eight per core for
 * libuv's thread pool (reads, hashing), and a fixed mmap threshold of 128 KiB, so that the
 * transfers' 1 MiB frame buffers are mapped and given back when freed instead of fragmenting the
 * heap (glibc's dynamic threshold rises to 32 MiB after the first such free). A live move's
 * peaks fell from 214–218 / 184–186 MiB to 161–165 / 153–154 MiB (bench/migration/README.md).
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072' };

/**
 * The Node arguments that run the `intercloud` CLI (append its own arguments):
 * - with `INTERCLOUD_AGENT_DIST` set, the agent as an operator installs it: the `tsc` build of
 *   `tsconfig.build.json` in that folder, without source maps, as the systemd unit runs it (the
 *   benchmarks, whose memory and CPU figures are the installed agent's: {@link buildInstalledAgent});
 * - with `INTERCLOUD_JS_DIR` set, the JavaScript `scripts/compile-js.ts` wrote there
 *   (`scripts/test` compiles once per run: an agent then starts in about half the CPU);
 * - else the TypeScript sources through tsx (a single test file run with `npx vitest run`,
 *   always the current sources). tsx's loader and its source maps cost the agent about 35 MiB
 *   of resident memory that the installed agent does not have.
 */
export function cliNodeArgs(): string[] {
  const dist = process.env['INTERCLOUD_AGENT_DIST'];
  if (dist) {
    const bin = join(dist, 'agent/cli/bin.js');
    if (!existsSync(bin)) throw new Error(`INTERCLOUD_AGENT_DIST='${dist}' holds no agent/cli/bin.js: build it with buildInstalledAgent()`);
    return [bin];
  }
  const js = process.env['INTERCLOUD_JS_DIR'];
  if (js && existsSync(join(js, 'agent/cli/bin.js'))) return ['--enable-source-maps', join(js, 'agent/cli/bin.js')];
  return ['--import', join(REPO, 'node_modules/tsx/dist/loader.mjs'), join(REPO, 'agent/cli/bin.ts')];
}

/**
 * Builds the agent as `npm run build` does for an install (`tsc -p tsconfig.build.json`), into
 * `dist/installed-agent` of this checkout (so that it finds node_modules), and points
 * {@link cliNodeArgs} at it for the agents this process starts. Returns the folder.
 */
export async function buildInstalledAgent(): Promise<string> {
  const out = join(REPO, 'dist', 'installed-agent');
  await fs.rm(out, { recursive: true, force: true });
  await run(join(REPO, 'node_modules/.bin/tsc'), ['-p', join(REPO, 'tsconfig.build.json'), '--outDir', out], { cwd: REPO });
  process.env['INTERCLOUD_AGENT_DIST'] = out;
  return out;
}

/** A running agent (a child process). */
export class AgentProcess {
  private child: ChildProcess | undefined;
  readonly api: LocalApiClient;

  constructor(readonly cloud: string, readonly dir: string) {
    this.api = new LocalApiClient(join(dir, 'agent.sock'));
  }

  get logFile(): string {
    return join(this.dir, 'agent.log');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the agent and resolves once its local API answers. */
  async start(timeoutMs = 60_000): Promise<void> {
    const log = createWriteStream(this.logFile, { flags: 'a' });
    await new Promise((r) => log.once('open', r));
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, ...cliNodeArgs(), 'agent', '--config', join(this.dir, 'agent.yaml')], {
      stdio: ['ignore', log, log], detached: false,
      // The object stores use the AWS SDK, which warns on every start that Node 20 is old.
      env: { ...process.env, ...AGENT_ENV, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    this.child = child;
    const t0 = Date.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`agent of '${this.cloud}' exited with ${child.exitCode}: see '${this.logFile}'`);
      try {
        await this.api.health();
        return;
      } catch {
        if (Date.now() - t0 > timeoutMs) throw new Error(`agent of '${this.cloud}' did not come up in ${timeoutMs} ms: see '${this.logFile}'`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Stops the agent: SIGTERM (clean) or SIGKILL (a crash). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }
}

/** The virsh of one cloud (run locally; tests check state with it independently of the agent). */
export async function virsh(s: ServicesFile, cloud: string, ...args: string[]): Promise<string> {
  const lv = s.libvirt.instances[cloud];
  if (!lv) throw new Error(`no libvirt instance '${cloud}'`);
  const { stdout } = await run('virsh', ['-q', '-c', lv.uri, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/**
 * `virsh pool-refresh POOL` in `cloud`, asked again while libvirtd refuses it because it builds a
 * volume in the pool (an agent's define, a clone), for up to two minutes.
 */
export async function refreshPool(s: ServicesFile, cloud: string, pool = 'default'): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await virsh(s, cloud, 'pool-refresh', pool);
      return;
    } catch (err) {
      if (!isPoolBuildingVolume(String((err as { stderr?: unknown }).stderr)) || Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** The power state of `vm` in `cloud`, or `absent`. */
export async function domState(s: ServicesFile, cloud: string, vm: string): Promise<string> {
  try {
    return await virsh(s, cloud, 'domstate', vm);
  } catch {
    return 'absent';
  }
}

/** Options of {@link createDemoVm}. */
export interface DemoVmOptions {
  name: string;
  mac: string;
  /** Disk size in MiB (the FAT boot disk; sparse beyond what it holds). */
  diskMiB?: number;
  /** Bytes of random data written into the disk after the boot files (to make it non-sparse). */
  randomMiB?: number;
  /**
   * An image whose bytes fill the disk's tail after the boot files (holes stay holes): a disk
   * that holds a real system's data, e.g. bench/transfer's Debian root image.
   */
  tailImage?: string;
  /** The disk's identity, printed by the guest in every heartbeat. */
  diskId: string;
  /** Where the console log goes. */
  consoleLog: string;
  start?: boolean;
  /**
   * Makes the boot disk at the given path instead of `scripts/guest-boot-disk` (a 64 MiB FAT
   * whose guest heartbeats): e.g. a guest that also writes its disk. `diskMiB` still sets the
   * image's final size.
   */
  makeBootDisk?: (diskPath: string) => Promise<void>;
}

/** Creates (and by default starts) a VM in `cloud` that boots from its one disk. */
export async function createDemoVm(s: ServicesFile, cloud: string, o: DemoVmOptions): Promise<{ diskPath: string }> {
  const lv = s.libvirt.instances[cloud];
  if (!lv) throw new Error(`no libvirt instance '${cloud}'`);
  const diskPath = join(lv.poolPath, `${o.name}-disk0.img`);
  if (o.makeBootDisk) {
    await o.makeBootDisk(diskPath);
    await fs.truncate(diskPath, (o.diskMiB ?? 64) * 1024 * 1024);
  } else {
    await run(join(REPO, 'scripts/guest-boot-disk'), [o.diskId, diskPath, String(o.diskMiB ?? 64)]);
  }
  if (o.randomMiB) {
    // Fill the unused tail of the disk with random bytes (the FAT keeps its files at the front).
    const size = (o.diskMiB ?? 64) * 1024 * 1024;
    await run('dd', ['if=/dev/urandom', `of=${diskPath}`, 'bs=1M', `count=${o.randomMiB}`, `seek=${Math.floor(size / 1048576) - o.randomMiB}`, 'conv=notrunc', 'status=none']);
  }
  if (o.tailImage) {
    const size = (o.diskMiB ?? 64) * 1024 * 1024;
    const imageMiB = Math.ceil((await fs.stat(o.tailImage)).size / 1048576);
    if (imageMiB + 64 > size / 1048576) throw new Error(`'${o.tailImage}' (${imageMiB} MiB) does not fit after the boot files of a ${size / 1048576} MiB disk`);
    await run('dd', [`if=${o.tailImage}`, `of=${diskPath}`, 'bs=1M', `seek=${Math.floor(size / 1048576) - imageMiB}`, 'conv=notrunc,sparse', 'status=none']);
  }
  await refreshPool(s, cloud);
  const xmlPath = join(lv.poolPath, `${o.name}.xml`);
  await fs.writeFile(xmlPath, `<domain type='qemu'>
  <name>${o.name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${diskPath}'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><mac address='${o.mac}'/><model type='virtio'/></interface>
    <serial type='pty'><log file='${o.consoleLog}' append='off'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
`);
  await virsh(s, cloud, 'define', xmlPath);
  await fs.rm(xmlPath, { force: true });
  if (o.start !== false) await virsh(s, cloud, 'start', o.name);
  return { diskPath };
}

/** Removes `vm` and its storage from `cloud` (absent is fine). */
export async function removeVm(s: ServicesFile, cloud: string, vm: string): Promise<void> {
  await virsh(s, cloud, 'destroy', vm).catch(() => undefined);
  await virsh(s, cloud, 'undefine', vm, '--remove-all-storage').catch(() => virsh(s, cloud, 'undefine', vm).catch(() => undefined));
  // What a live move cut short may leave beside it in the pool (the libvirt adapter's names):
  // overlays no domain names any more and a saved state; a later VM of the name would trip on them.
  const pool = s.libvirt.instances[cloud]!.poolPath;
  const left = (await fs.readdir(pool)).filter((n) => n === `${vm}.state` || (n.startsWith(`${vm}-disk`) && /^-disk\d+\.ovl\d+\.qcow2$/.test(n.slice(vm.length))));
  await Promise.all(left.map((n) => fs.rm(join(pool, n), { force: true })));
}

/** Waits until `file` contains `text` (a guest's console line). */
export async function waitForText(file: string, text: string, timeoutMs = 60_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const content = await fs.readFile(file, 'latin1').catch(() => '');
    if (content.includes(text)) return content;
    if (Date.now() - t0 > timeoutMs) throw new Error(`'${text}' did not appear in '${file}' within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const [cmd, ...args] = process.argv.slice(2);
  const s = loadServicesFile();
  if (cmd === 'config' && args.length >= 2) {
    const [cloud, dir, region, price, root] = args as [string, string, string?, string?, string?];
    if (root !== undefined && root !== 'prosody' && root !== 'prosody2') throw new Error(`ROOT '${root}' is not prosody or prosody2`);
    process.stdout.write(await writeAgentConfig(s, cloud, dir, {
      ...(region ? { region } : {}), ...(price ? { pricePerVcpuHour: Number(price) } : {}), ...(root ? { xmppRoot: root } : {}),
    }) + '\n');
  } else if (cmd === 'vm' && args.length === 5) {
    const [cloud, name, mac, diskId, consoleLog] = args as [string, string, string, string, string];
    await removeVm(s, cloud, name);
    const { diskPath } = await createDemoVm(s, cloud, { name, mac, diskId, consoleLog });
    process.stdout.write(diskPath + '\n');
  } else {
    process.stderr.write('usage: local-federation.ts config CLOUD DIR [REGION] [PRICE] [ROOT: prosody|prosody2] | vm CLOUD NAME MAC DISK-ID CONSOLE-LOG\n');
    process.exitCode = 2;
  }
}
