/**
 * `intercloud peers`: which clouds are ready, willing and able — their catalog entries on
 * the Root's directory that match, whose gateways are online, with capacity, terms and a
 * measured round trip and clock offset (XEP-0202). Logs in as this cloud with a separate
 * resource and only looks (publishes nothing, takes no offers).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import type { IntercloudError } from '../../../protocols/errors/index.js';
import {
  CAPABILITIES, createTrustBinding, GatewaySession, type Capability, type PeerFilter, type PeerInfo,
} from '../../../protocols/xmpp/index.js';
import { printJson, usageError } from '../output.js';

interface PeersFlags {
  config?: string;
  cloud?: string;
  cert?: string;
  key?: string;
  root?: string;
  crl?: string;
  service: string;
  domain: string;
  pubsub?: string;
  servername?: string;
  capability?: string;
  region?: string;
  minVcpus?: string;
  minMemoryMib?: string;
  format?: string;
  hypervisor?: string;
  samples: string;
  wait: string;
  json?: boolean;
}

/** A usage error (`CLI_USAGE`): exits 2 with the fix in the message. */
function usage(message: string, cause?: unknown): IntercloudError {
  return usageError(message, cause);
}

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw usage(`cannot read ${what} '${path}'`, err);
  }
}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usage(`${flag} '${value}' is not a non-negative integer`);
  return Number(value);
}

interface Resolved {
  cloud: string;
  cert: string;
  key: string;
  root: string;
  crl?: string;
  service: string;
  domain: string;
  pubsub: string;
  servername?: string;
  directories: Array<{ domain: string; pubsubJid: string }>;
}

async function resolve(o: PeersFlags): Promise<Resolved> {
  if (o.config !== undefined) {
    const c = await loadConfig(o.config);
    return {
      cloud: o.cloud ?? c.cloud.id,
      cert: o.cert ?? c.identity.cert,
      key: o.key ?? c.identity.key,
      root: o.root ?? c.identity.root,
      ...((o.crl ?? c.identity.crl) === undefined ? {} : { crl: (o.crl ?? c.identity.crl) as string }),
      service: c.xmpp.service,
      domain: c.xmpp.domain,
      pubsub: c.xmpp.pubsub,
      directories: c.xmpp.directories.map((d) => ({ domain: d.domain, pubsubJid: d.pubsub })),
      ...(c.xmpp.servername === undefined ? {} : { servername: c.xmpp.servername }),
    };
  }
  if (o.cloud === undefined || o.cert === undefined || o.key === undefined || o.root === undefined) {
    throw usage('give --config FILE, or --cloud, --cert, --key and --root');
  }
  return {
    cloud: o.cloud, cert: o.cert, key: o.key, root: o.root, ...(o.crl === undefined ? {} : { crl: o.crl }),
    service: o.service, domain: o.domain, pubsub: o.pubsub ?? `pubsub.${o.domain}`, directories: [],
    ...(o.servername === undefined ? {} : { servername: o.servername }),
  };
}

function fmt(n: number | undefined, digits = 1): string {
  return n === undefined ? '-' : n.toFixed(digits);
}

function printTable(peers: readonly PeerInfo[]): void {
  const rows = [['CLOUD', 'PRESENCE', 'REGIONS', 'FORMATS', 'VCPU', 'MEM-MIB', 'DISK-GIB', 'OBJ-GIB', 'PRICE/VCPU-H', 'PRICE/GB-MO', 'RTT-MS', 'OFFSET-MS']];
  for (const p of peers) {
    const e = p.entry;
    rows.push([
      e.cloudId, p.unreachable === undefined ? 'online' : `unreachable`, e.regions.join(','), e.formats.join(','),
      String(e.capacity.vcpus), String(e.capacity.memoryMiB), String(e.capacity.diskGiB), String(e.capacity.objectStorageGiB),
      `${e.terms.pricePerVcpuHour} ${e.terms.currency}`, `${e.terms.pricePerGbMonth} ${e.terms.currency}`,
      fmt(p.rttMs, 2), fmt(p.clockOffsetMs, 1),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd() + '\n');
  if (peers.length === 0) process.stdout.write('(no matching cloud is online)\n');
}

/** Registers `intercloud peers`. */
export function registerXmppCommands(program: Command): void {
  program.command('peers')
    .description('list online clouds whose catalog entry matches, with capacity, terms, round trip and clock offset')
    .option('--config <file>', 'agent config (cloud id, identity, xmpp server)')
    .option('--cloud <id>', 'log in as this cloud (its certificate names <id>@<domain>)')
    .option('--cert <file>', "this cloud's gateway certificate, PEM")
    .option('--key <file>', "this cloud's private key, PEM")
    .option('--root <file>', 'the Intercloud Root certificate, PEM')
    .option('--crl <file>', "the Root's CRL, PEM")
    .option('--service <uri>', 'xmpp server', 'xmpp://127.0.0.1:15222')
    .option('--domain <domain>', 'xmpp domain', 'intercloud.test')
    .option('--pubsub <jid>', 'pubsub service of the directory (default pubsub.<domain>)')
    .option('--servername <name>', 'name to verify in the server certificate (default: the domain)')
    .option('--capability <name>', `one of ${CAPABILITIES.join(', ')}`)
    .option('--region <region>', 'must serve this region')
    .option('--min-vcpus <n>', 'at least this many free vCPUs')
    .option('--min-memory-mib <n>', 'at least this much free memory')
    .option('--format <format>', 'must accept this disk/package format (ovf, qcow2 …)')
    .option('--hypervisor <name>', 'must run this hypervisor (kvm, vmware …)')
    .option('--samples <n>', 'entity-time exchanges per peer (the least-delayed one counts)', '3')
    .option('--wait <ms>', 'how long to collect presence after login', '1000')
    .option('--json', 'print json')
    .action(async (o: PeersFlags) => {
      if (o.capability !== undefined && !(CAPABILITIES as readonly string[]).includes(o.capability)) {
        throw usage(`--capability '${o.capability}' is not one of ${CAPABILITIES.join(', ')}`);
      }
      const filter: PeerFilter = {
        ...(o.capability === undefined ? {} : { capability: o.capability as Capability }),
        ...(o.region === undefined ? {} : { region: o.region }),
        ...(o.format === undefined ? {} : { format: o.format }),
        ...(o.hypervisor === undefined ? {} : { hypervisor: o.hypervisor }),
        ...(o.minVcpus === undefined ? {} : { minVcpus: int(o.minVcpus, '--min-vcpus') as number }),
        ...(o.minMemoryMib === undefined ? {} : { minMemoryMiB: int(o.minMemoryMib, '--min-memory-mib') as number }),
      };
      const samples = int(o.samples, '--samples') ?? 3;
      const wait = int(o.wait, '--wait') ?? 1000;
      const r = await resolve(o);
      const cert = readFile(r.cert, 'certificate');
      const key = readFile(r.key, 'key');
      const root = readFile(r.root, 'root');
      const trust = createTrustBinding({
        certificatePem: cert, privateKeyPem: key, rootsPem: root, ...(r.crl === undefined ? {} : { crlPem: readFile(r.crl, 'crl') }),
      });
      const session = new GatewaySession({
        cloudId: r.cloud,
        service: r.service,
        domain: r.domain,
        pubsubJid: r.pubsub,
        directories: r.directories,
        tls: { ca: root, cert, key, ...(r.servername === undefined ? {} : { servername: r.servername }) },
        trust,
        // An observer: it reads the directory and presence, publishes nothing, takes no offers.
        resource: `cli-${randomBytes(4).toString('hex')}`,
        observer: true,
      });
      const warnings: string[] = [];
      session.on('warning', (w: IntercloudError) => warnings.push(`${w.code}: ${w.message}`));
      await session.start();
      try {
        await new Promise((res) => setTimeout(res, wait));
        const peers = await session.discoverPeers({ ...filter, excludeCloud: r.cloud }, { refresh: true, measure: true, samples });
        if (o.json) printJson({ peers, warnings });
        else {
          printTable(peers);
          for (const w of warnings) process.stderr.write(`warning [${w}]\n`);
        }
      } finally {
        await session.stop();
      }
    });
}
