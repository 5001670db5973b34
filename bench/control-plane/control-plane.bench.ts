/**
 * Control-plane benchmark: N provider gateways (default 200 connections, certificates
 * issued under the real Intercloud Root) on the one Prosody that `scripts/services up`
 * starts, and one discovering gateway. Measured in the same run:
 *
 *   anchor   XEP-0199 ping round trip gateway → peer gateway (c2s → Prosody → c2s)
 *   discovery  discoverPeers(filter) over the live directory view (kept by PubSub
 *              notifications), reconciled with the Root first (`refresh`: item ids by
 *              disco#items, unknown entries fetched), and after a full fetch of every entry
 *   negotiation  sendOffer → signed accept (sign, verify chain + signature + replay, policy,
 *              reservation, signed accept, verify), p50/p99
 *
 * and prints each as a ratio to the ping anchor. Aims: negotiation ≤ 3× ping; discovery
 * over 200 clouds p99 ≤ 50 ms.
 *
 *   npx tsx bench/control-plane/control-plane.bench.ts [--n 200] [--samples 300] [--json]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  certificateToPem, generateKeyPair, issueGatewayCertificate, parseCertificatePem, privateKeyFromPem, privateKeyToPem,
} from '../../protocols/trust/index.js';
import {
  createTrustBinding, GatewaySession, type CloudProfile, type OfferRequest,
} from '../../protocols/xmpp/index.js';
import { createDefaultPolicy, createOfferAdmission } from '../../agent/admission/index.js';
import { serviceEnv } from '../../test/helpers/services.js';

const { values: args } = parseArgs({
  options: { n: { type: 'string', default: '200' }, samples: { type: 'string', default: '300' }, json: { type: 'boolean', default: false } },
});
const N = Number(args.n);
const SAMPLES = Number(args.samples);

execFileSync(join(import.meta.dirname, '../../scripts/services'), ['up', 'pki', 'prosody'], { stdio: 'ignore' });
const prosody = serviceEnv<{ host: string; port: number; domain: string; pubsubJid: string; tls: { servername: string } }>('prosody');
const pki = serviceEnv<{ root: string; rootKey: string }>('pki');
const rootPem = readFileSync(pki.root, 'utf8');
const issuer = { certificate: parseCertificatePem(rootPem), privateKey: privateKeyFromPem(readFileSync(pki.rootKey, 'utf8')) };

const REGIONS = ['eu-central', 'eu-west', 'us-east', 'ap-south'];

function identity(cloud: string): { cert: string; key: string } {
  const keys = generateKeyPair('ec');
  const cert = issueGatewayCertificate(issuer, { cloudId: cloud, publicKey: keys.publicKey, now: new Date(), days: 1 });
  return { cert: certificateToPem(cert.der), key: privateKeyToPem(keys.privateKey) };
}

function profileOf(i: number): CloudProfile {
  return {
    regions: [REGIONS[i % REGIONS.length] as string],
    hypervisors: [i % 3 === 0 ? 'vmware' : 'kvm'],
    formats: i % 3 === 0 ? ['ovf', 'vmdk'] : ['ovf', 'qcow2'],
    capabilities: i % 5 === 0 ? ['storage-federation', 'transfer-amqp'] : ['vm-hosting', 'transfer-amqp'],
    // Plenty, so repeated offers are never refused for capacity.
    capacity: { vcpus: 100_000 + i, memoryMiB: 1 << 30, diskGiB: 1 << 20, objectStorageGiB: 1 << 20 },
    terms: { currency: 'EUR', pricePerVcpuHour: 0.01 + (i % 10) / 100, pricePerGbMonth: 0.02 },
    transferUri: 'amqps://127.0.0.1:25671/intercloud',
  };
}

function session(cloud: string, id: { cert: string; key: string }, profile: CloudProfile, watchCatalog: boolean): GatewaySession {
  return new GatewaySession({
    cloudId: cloud,
    service: `xmpp://${prosody.host}:${prosody.port}`,
    domain: prosody.domain,
    pubsubJid: prosody.pubsubJid,
    tls: { ca: rootPem, cert: id.cert, key: id.key, servername: prosody.tls.servername },
    trust: createTrustBinding({ certificatePem: id.cert, privateKeyPem: id.key, rootsPem: rootPem }),
    admission: createOfferAdmission({
      policy: createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 64, maxMemoryMiBPerVm: 1 << 20 }),
      domain: prosody.domain, capacity: profile.capacity, reservationTtlMs: 5_000,
    }),
    profile,
    watchCatalog,
    iqTimeoutMs: 20_000,
  });
}

async function inBatches<T>(items: T[], size: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

async function time(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

const t0 = performance.now();
const ids = Array.from({ length: N }, (_, i) => `bench-${String(i + 1).padStart(4, '0')}`);
const providers = ids.map((cloud, i) => session(cloud, identity(cloud), profileOf(i), false));
const client = session('bench-client', identity('bench-client'), profileOf(1), true);
const warnings: string[] = [];
client.on('warning', (w: Error & { code?: string }) => warnings.push(`${w.code ?? ''} ${w.message}`));
process.stderr.write(`issued ${N + 1} certificates in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
const t1 = performance.now();
// A loaded machine may time a stream open out: retry what is retryable.
async function startWithRetry(s: GatewaySession): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await s.start();
    } catch (err) {
      if (attempt >= 4 || !(err as { retryable?: boolean }).retryable) throw err;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}
await inBatches(providers, 20, startWithRetry);
process.stderr.write(`${N} provider gateways online in ${((performance.now() - t1) / 1000).toFixed(1)} s\n`);
await startWithRetry(client);
// Presence of every provider (subscriptions are approved by the providers).
const t2 = performance.now();
while (client.onlinePeers().filter((j) => j.startsWith('bench-0')).length < N && performance.now() - t2 < 60_000) {
  await new Promise((r) => setTimeout(r, 200));
}
await client.refreshCatalog({ full: true });
const all = await client.discoverPeers({});
process.stderr.write(`client sees ${all.length} online providers with verified entries after ${((performance.now() - t2) / 1000).toFixed(1)} s\n`);
for (const w of warnings.slice(0, 5)) process.stderr.write(`  warning: ${w}\n`);

const filter = { capability: 'vm-hosting' as const, region: 'eu-central', minVcpus: 4, format: 'ovf' };
const target = (i: number): string => `${ids[(i * 7) % N]}@${prosody.domain}/gateway`;
const offer: OfferRequest = {
  workload: {
    type: 'vm', name: 'bench', vcpus: 2, memoryMiB: 2048, firmware: 'bios',
    disks: [{ id: 'vda', sizeGiB: 10, format: 'qcow2' }], nics: [{ mac: '52:54:00:00:be:01' }],
  },
  constraints: { regions: [] },
  terms: { currency: 'EUR' },
};

// Warm up every path (JIT, TLS session state) before measuring.
await time(30, (i) => client.ping(target(i)));
await time(10, () => client.discoverPeers(filter, { refresh: true }));
await time(20, (i) => client.sendOffer(target(i), offer));

// Interleave the three so background load hits each alike.
const ping: number[] = [];
const discoverLive: number[] = [];
const discoverFresh: number[] = [];
const negotiate: number[] = [];
let matches = 0;
let accepted = 0;
for (let i = 0; i < SAMPLES; i++) {
  ping.push(...(await time(1, () => client.ping(target(i)))));
  discoverLive.push(...(await time(1, async () => { matches = (await client.discoverPeers(filter)).length; })));
  discoverFresh.push(...(await time(1, () => client.discoverPeers(filter, { refresh: true }))));
  negotiate.push(...(await time(1, async () => {
    const out = await client.sendOffer(target(i), offer);
    if (out.type === 'accept') accepted++;
  })));
}

// A full fetch of every entry (what a gateway does at login) blocks Prosody for a while:
// measured last, so its stalls do not land in the rows above.
const fullFetch = await time(Math.max(5, Math.round(SAMPLES / 30)), async () => {
  await client.refreshCatalog({ full: true });
  await client.discoverPeers(filter);
});

const p50ping = pct(ping, 50);
const rows = [
  ['xep-0199 ping (anchor)', ping],
  [`discovery, live view (${N} clouds, ${matches} match)`, discoverLive],
  [`discovery, reconciled with the Root (${N} clouds)`, discoverFresh],
  ['offer → signed accept', negotiate],
  [`full catalog fetch + discovery (${N} clouds)`, fullFetch],
] as const;
const result = rows.map(([name, xs]) => ({
  name, n: xs.length, p50: pct([...xs], 50), p99: pct([...xs], 99), ratioP50: pct([...xs], 50) / p50ping, ratioP99: pct([...xs], 99) / pct(ping, 99),
}));
if (args.json) {
  process.stdout.write(JSON.stringify({ n: N, samples: SAMPLES, accepted, result }, null, 2) + '\n');
} else {
  process.stdout.write(`control plane, ${N} gateways on one Prosody, ${SAMPLES} rounds (2 cores shared with other work: figures are noisy)\n`);
  process.stdout.write(`${'what'.padEnd(48)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'p50/ping'.padStart(9)} ${'p99/ping'.padStart(9)}\n`);
  for (const r of result) {
    process.stdout.write(`${r.name.padEnd(48)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${r.ratioP50.toFixed(2).padStart(9)} ${r.ratioP99.toFixed(2).padStart(9)}\n`);
  }
  const neg = result[3];
  const fresh = result[2];
  process.stdout.write(`aims: negotiation p50 ≤ 3× ping: ${neg && neg.ratioP50 <= 3 ? 'met' : 'not met'} (${neg?.ratioP50.toFixed(2)}×); `
    + `discovery over ${N} clouds p99 ≤ 50 ms: live ${result[1] && result[1].p99 <= 50 ? 'met' : 'not met'}, reconciled ${fresh && fresh.p99 <= 50 ? 'met' : 'not met'}\n`);
  process.stdout.write(`accepted ${accepted}/${SAMPLES} offers\n`);
}

// Leave the directory as we found it: each provider retracts its own entry (the Root's
// directory lets a cloud retract only its own item; gateways are not pubsub admins).
await inBatches(providers, 25, (s) => s.retractCatalog());
await inBatches([...providers, client], 50, (s) => s.stop());
