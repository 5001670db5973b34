/**
 * Where integration tests find the real servers: `scripts/services up` writes
 * `$INTERCLOUD_STATE_DIR/services.json` (default /var/lib/intercloud-dev), one key per
 * service, each shaped by that service's file in scripts/services.d/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTsigKeyFile, type TsigKeyFile } from '../../protocols/dns/index.js';

/** The state directory the services script uses. */
export const STATE_DIR = process.env['INTERCLOUD_STATE_DIR'] ?? '/var/lib/intercloud-dev';

let cached: Record<string, unknown> | undefined;

/** The whole services.json; throws with the fix when the services are not up. */
export function loadServices(): Record<string, unknown> {
  if (cached) return cached;
  const file = join(STATE_DIR, 'services.json');
  try {
    cached = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot read '${file}': start the servers with 'scripts/services up' first`, { cause: err });
  }
  return cached;
}

/** How to reach one service, as its services.d file described it. */
export function serviceEnv<T>(name: string): T {
  const env = loadServices()[name];
  if (env === undefined) {
    throw new Error(`service '${name}' is not in services.json: run 'scripts/services up ${name}'`);
  }
  return env as T;
}

/** A certificate and its private key, as PEM file paths. */
export interface CertKeyPair {
  /** PEM certificate file. */
  cert: string;
  /** PEM private key file (mode 0600; Prosody's is group-readable by the prosody user). */
  key: string;
}

/** One gateway identity issued by the Intercloud Root (scripts/services.d/10-pki.sh). */
export interface GatewayIdentity extends CertKeyPair {
  /** Its XMPP address, also its id-on-xmppAddr SAN, e.g. `cloud-a@intercloud.test`. */
  jid: string;
  /** Its SAN URI, e.g. `intercloud://cloud-a`. */
  uri: string;
  /** Its DNS SAN, e.g. `cloud-a.intercloud.test`. */
  dns: string;
}

/** `services.json` → `pki`: the Intercloud Root and the certificates made with `intercloud ca`. */
export interface PkiEnv {
  /** The CA directory (`intercloud ca … --dir`). */
  dir: string;
  /** Root certificate (PEM): the trust anchor for every server and gateway. */
  root: string;
  /** Root private key (PEM). */
  rootKey: string;
  /** The root's current CRL (PEM). */
  crl: string;
  /** XMPP domain, `intercloud.test`. */
  domain: string;
  /** Gateway identities by cloud id (`cloud-a`, `cloud-b`, `cloud-c`). */
  clouds: Record<string, GatewayIdentity>;
  /** Server certificates of Prosody (Root 1), the second Root's Prosody and RabbitMQ. */
  servers: { prosody: CertKeyPair; prosody2: CertKeyPair; rabbitmq: CertKeyPair };
}

/** `services.json` → `prosody`: the XMPP server (scripts/services.d/20-prosody.sh). */
export interface XmppEnv {
  /** c2s address, `127.0.0.1`. */
  host: string;
  /** c2s port (STARTTLS, required), 15222. */
  port: number;
  /** Gateway domain, `intercloud.test` (SASL EXTERNAL by client certificate, XEP-0178). */
  domain: string;
  /** PubSub service JID, `pubsub.intercloud.test`. */
  pubsubJid: string;
  /** How to verify the server: CA file (the Intercloud Root) and the TLS server name. */
  tls: { ca: string; servername: string };
  /** JIDs that can log in with SASL EXTERNAL (any certificate with such an xmppAddr works). */
  sasl: { external: string[] };
  /** The directory's catalog node, made by the server (gateways are not PubSub admins). */
  catalogNode: string;
  /** A password account (SCRAM-SHA-1/PLAIN) on a second host, for clients without a certificate;
   * its password is in `passwordFile` (0600: never in services.json, which any local user reads). */
  scram: { domain: string; username: string; passwordFile: string; jid: string };
  /** State directory, log file and pid file of the server. */
  dir: string;
  log: string;
  pidFile: string;
  /** s2s port (STARTTLS required, certificate-authenticated), 15269: it federates with Root 2. */
  s2sPort: number;
}

/** `services.json` → `prosody2`: the second Intercloud Root's XMPP server (issue 13), like `prosody` without the password host. */
export interface Xmpp2Env {
  /** c2s address, `127.0.0.1`. */
  host: string;
  /** c2s port, 15223. */
  port: number;
  /** s2s port, 15270. */
  s2sPort: number;
  /** Its gateways' domain, `root2.test`. */
  domain: string;
  /** Its directory, `pubsub.root2.test`. */
  pubsubJid: string;
  catalogNode: string;
  tls: { ca: string; servername: string };
  dir: string;
  log: string;
  pidFile: string;
}

/** `services.json` → `roots`: every Root, Root 1 first, and how they federate. */
export interface RootsEnv {
  /** s2s is certificate-authenticated (XEP-0178) and dialback is off. */
  s2s: { secureAuth: boolean; dialback: boolean };
  list: Array<{ name: 'prosody' | 'prosody2'; domain: string; host: string; port: number; s2sPort: number; pubsubJid: string; servername: string }>;
}

/** `services.json` → `rabbitmq`: the AMQP broker (scripts/services.d/30-rabbitmq.sh). */
export interface AmqpEnv {
  /** TLS listener address, `127.0.0.1`. */
  host: string;
  /** TLS listener port, 25671 (there is no plain listener). */
  port: number;
  /** `amqps://127.0.0.1:25671/intercloud` (pass credentials.external() and the TLS options). */
  url: string;
  /** The gateways' vhost, `intercloud`. */
  vhost: string;
  /** TLS server name to verify (`localhost`). */
  servername: string;
  /** CA file to verify the broker with (the Intercloud Root). */
  tls: { ca: string };
  /** EXTERNAL users (certificate CN = cloud id) and their client certificates. There is no
   * password login: the operator manages the broker with {@link AmqpEnv.ctl}. */
  users: Record<string, CertKeyPair>;
  /** rabbitmqctl wired to this node (an executable path, root only), e.g. `[ctl, 'add_vhost', 'x']`. */
  ctl: string;
  /** Erlang node name. */
  nodeName: string;
  /** State directory, log directory and pid file. */
  dir: string;
  log: string;
  pidFile: string;
}

/**
 * `services.json` → `brokers`: each cloud's own broker (issue 13), keyed by cloud id (cloud-a,
 * cloud-b; cloud-c has none). cloud-a's is also `rabbitmq`, whose `intercloud` vhost keeps the
 * former shared permissions for the protocol tests; the agents use the `transfers` vhost.
 */
export type BrokersEnv = Record<string, BrokerEnv>;

/** One cloud's broker. */
export interface BrokerEnv {
  host: string;
  port: number;
  /** `amqps://127.0.0.1:PORT/transfers`. */
  url: string;
  vhost: string;
  /** DNS name of its certificate (`broker.<cloud>.intercloud.test`): the TLS server name to verify. */
  identity: string;
  tls: { ca: string };
  ctl: string;
  nodeName: string;
  dir: string;
  log: string;
  pidFile: string;
  /** The management API (127.0.0.1 only) and the credential only the broker's own agent uses. */
  management: { url: string; user: string; passwordFile: string };
}

/** `services.json` → `sshd`: key-only OpenSSH (scripts/services.d/40-sshd.sh). */
export interface SshEnv {
  /** `127.0.0.1`. */
  host: string;
  /** 22322. */
  port: number;
  /** Login user, `root`. */
  user: string;
  /** The agent's client key (OpenSSH ed25519 private key file) and its public key file. */
  privateKey: string;
  publicKey: string;
  /** The server's host key, `ssh-ed25519 AAAA…`. */
  hostPublicKey: string;
  /** `SHA256:…` fingerprint of the host key (as `ssh-keygen -l -E sha256` prints it). */
  hostKeyFingerprint: string;
  /** known_hosts line `[127.0.0.1]:22322 ssh-ed25519 AAAA…`, and a file holding it. */
  knownHostsLine: string;
  knownHostsFile: string;
  pidFile: string;
  log: string;
}

/** One libvirtd "cloud" (scripts/services.d/50-libvirt.sh). */
export interface LibvirtInstance {
  /** `qemu:///system?socket=…`: for virsh here, or run through sshd on this same machine. */
  uri: string;
  /** Its control socket. */
  socket: string;
  /** Network namespace the daemon and its guests live in (`ic-cloud-a` …). */
  netns: string;
  /** Its address on the veth joining the two namespaces (libvirt migration traffic). */
  address: string;
  /** libvirt host UUID (distinct per instance). */
  hostUuid: string;
  /** Name and directory of its `dir` storage pool. */
  pool: string;
  poolPath: string;
  /** State directory, daemon log, pid file. */
  dir: string;
  log: string;
  pidFile: string;
  /** Port range QEMU uses for incoming migrations, [min, max]. */
  migrationPorts: [number, number];
}

/** `services.json` → `libvirt`: two independent hypervisors. */
export interface LibvirtEnv {
  /** By cloud id: `cloud-a`, `cloud-b`. */
  instances: Record<string, LibvirtInstance>;
}

/** `services.json` → `guest`: a bootable Linux guest (scripts/services.d/60-guest.sh). */
export interface GuestEnv {
  /** Kernel image and initrd for `<os><kernel>`/`<initrd>`. */
  kernel: string;
  initrd: string;
  /** Kernel command line (`console=ttyS0 quiet`): give the domain a file-backed serial port. */
  cmdline: string;
  kernelRelease: string;
  /** Memory the guest is known to boot with, in MiB. */
  memoryMiB: number;
  /** Console line prefixes: `INTERCLOUD-GUEST-UP kernel=… disk=<id>` once, then one
   * `INTERCLOUD-GUEST-HB n=… uptime=… disk=<id>` a second. */
  startMarker: string;
  heartbeatMarker: string;
  /** First-sector line of a marked disk, `INTERCLOUD-DISK-ID <id>`. */
  diskMarker: string;
  /** `scripts/guest-disk ID OUT.qcow2 [SIZE]`: makes a marked qcow2. */
  makeDisk: string;
  dir: string;
}

/** One device of a Swift object ring: a plain folder a test may wipe. */
export interface SwiftDevice {
  /** Ring device name (`d1`…), also its folder's name under `devicesDir`. */
  name: string;
  /** Ring region number and zone. */
  ringRegion: number;
  zone: number;
  /** Geographic name of its ring region (`eu-west`…). */
  region: string;
  /** Its folder. */
  path: string;
}

/** One cloud's OpenStack Swift with the S3 API (scripts/services.d/72-swift.sh). */
export interface SwiftCloudEnv {
  /** S3 endpoint, `http://127.0.0.1:PORT` (path-style addressing). */
  endpoint: string;
  /** The S3 region to sign with (s3api `location`), also the cloud's main geographic region. */
  region: string;
  /** Every geographic region its object ring stores replicas in. */
  regions: string[];
  /** S3 access key id, `<cloud>:agent` (tempauth), and the file (0600) holding its secret. */
  accessKeyId: string;
  secretAccessKeyFile: string;
  /** Swift account the S3 buckets live in (`AUTH_<cloud>`). */
  account: string;
  /** Server configurations: `swift-object-replicator <objectConf> once` repairs lost replicas. */
  proxyConf: string;
  objectConf: string;
  containerConf: string;
  accountConf: string;
  /** Folder of the rings (`swift_dir`) and the object ring (for `swift-get-nodes`). */
  swiftDir: string;
  objectRing: string;
  /** Replicas of each object (3). */
  replicas: number;
  /** The servers' `devices` folder and the object ring's devices in it. */
  devicesDir: string;
  devices: SwiftDevice[];
  /** Ring region number → geographic name. */
  ringRegions: Record<string, string>;
  ports: { proxy: number; object: number; container: number; account: number; memcached: number };
  dir: string;
  logs: Record<'proxy' | 'object' | 'container' | 'account' | 'memcached', string>;
  pidFiles: Record<'proxy' | 'object' | 'container' | 'account' | 'memcached', string>;
}

/** `services.json` → `swift`: each cloud's own object store, by cloud id (`cloud-a`, `cloud-b`). */
export type SwiftEnv = Record<string, SwiftCloudEnv>;

/** The services.json key of each service, with its shape. */
export interface ServiceEnvs {
  pki: PkiEnv;
  prosody: XmppEnv;
  prosody2: Xmpp2Env;
  roots: RootsEnv;
  rabbitmq: AmqpEnv;
  brokers: BrokersEnv;
  sshd: SshEnv;
  libvirt: LibvirtEnv;
  guest: GuestEnv;
  swift: SwiftEnv;
}

/** Typed {@link serviceEnv} for the services whose shape is declared here. */
export function service<K extends keyof ServiceEnvs>(name: K): ServiceEnvs[K] {
  return serviceEnv<ServiceEnvs[K]>(name);
}

/** `services.json` → `bind`: BIND 9 with the zone the DNS re-address tests update (scripts/services.d/70-bind.sh). */
export interface BindEnv {
  host: string;
  port: number;
  zone: string;
  keyName: string;
  keyAlgorithm: 'hmac-sha256';
  /** The BIND key file (root:bind 0640): the only place the TSIG secret is kept. */
  keyFile: string;
  pidFile: string;
  log: string;
}

/** BIND's env with its TSIG key read from the key file (tests run as root). */
export function bindService(): BindEnv & { key: TsigKeyFile } {
  const env = serviceEnv<BindEnv>('bind');
  return { ...env, key: parseTsigKeyFile(readFileSync(env.keyFile, 'utf8')) };
}
