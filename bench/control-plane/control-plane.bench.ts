/**
 * Control-plane benchmark at scale (issue 13, "Scale, measured"). N provider gateways
 * (default 1,000) log in to the Root(s) as real XMPP clients — `GatewaySession`, SASL
 * EXTERNAL with certificates issued under the real Intercloud Root — and each publishes its
 * signed catalog entry to its Root's PubSub directory. With two Roots in services.json (a
 * second Prosody federated over s2s) half the gateways sit on each. One more gateway per
 * Root (`cpb-src-<r>`) discovers and negotiates. Measured in the same run:
 *
 *   anchor       XEP-0199 ping, source gateway → provider gateway (c2s → Root → c2s)
 *   discovery    discoverPeers(filter) over the live directory view, and reconciled with the
 *                Root first (disco#items on the node, unknown entries fetched)
 *   negotiation  sendOffer → signed accept with the same two gateways as the ping (sign,
 *                verify chain + CRL + signature + replay, policy, reservation, signed accept, verify)
 *   the Root's memory per connected cloud (Prosody's VmRSS before and after the N logins / N)
 *   connection setup: logins per second and per-login p50/p99
 *
 * Each as p50/p99 with its ratio to the ping and the load average. `--rtt-ms 20` runs the
 * gateways in a network namespace of their own, joined to the host by a veth, with 20 ms
 * added to each gateway ↔ Root round trip (link.ts: netem when the kernel has it, else the
 * host-side relay holds each segment), and counts the segments one ping and one offer send.
 *
 *   npx tsx bench/control-plane/control-plane.bench.ts [--n 1000] [--samples 200] [--rtt-ms 0]
 *       [--concurrency 25] [--roots prosody[,KEY]] [--directory-max 100000] [--time-cli] [--json] [--unlocked]
 *
 * Needs root (namespaces, the Root's key) and `scripts/services up pki prosody`. Holds the
 * machine's federation lock (/tmp/intercloud-federation.lock) for the run unless `--unlocked`. The bench's
 * catalog items are retracted at the end, and any a failed run left are swept first.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createTrustBinding, GatewaySession, MESSAGE_TYPES, normalizeOffer, offerPayload, type CloudProfile, type OfferRequest, type PeerFilter,
} from '../../protocols/xmpp/index.js';
import { createDefaultPolicy, createOfferAdmission } from '../../agent/admission/index.js';
import { lockFederation } from '../../scripts/federation-lock.js';
import { loadServices, STATE_DIR } from '../../test/helpers/services.js';
import { loadIdentities, timeCliIssue, type Identity } from './certs.js';
import { catalogIds, rawClient, sweep, type Dial } from './directory.js';
import { openLink, type TripCounters } from './link.js';
import { rootsOf, rssKiB, type RootServer } from './roots.js';
import {
  formatLoad, formatTable, perConnectionKiB, percentile, ratio, spreadOverRoots, summarize, type Row,
} from './stats.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    samples: { type: 'string', default: '200' },
    'rtt-ms': { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '25' },
    roots: { type: 'string' },
    'directory-max': { type: 'string', default: '100000' },
    'time-cli': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    unlocked: { type: 'boolean', default: false },
    // Internal: set by the outer process when it re-runs this file inside the namespace.
    inside: { type: 'boolean', default: false },
    endpoints: { type: 'string' },
    'delay-by': { type: 'string', default: 'none' },
  },
});
const REPO = join(import.meta.dirname, '../..');
/** Cloud ids of the bench start with this (the sweep retracts only these). */
const PREFIX = 'cpb-';
const RTT_MS = Number(args['rtt-ms']);
const REGIONS = ['eu-central', 'eu-west', 'us-east', 'ap-south'];
const FILTER: PeerFilter = { capability: 'vm-hosting', region: 'eu-central', minVcpus: 4, format: 'ovf' };

const services = loadServices();
const roots = rootsOf(services, args.roots?.split(',').filter((k) => k !== ''));
const pki = services['pki'] as { root: string; rootKey: string };
const rootPem = readFileSync(pki.root, 'utf8');
const cacheDir = join(STATE_DIR, 'bench-control-plane', 'certs');
const log = (s: string): void => void process.stderr.write(`${s}\n`);
const load = (): number[] => loadavg();

function identitiesFor(root: RootServer, ids: readonly string[]): { ids: Map<string, Identity>; issued: number; issueMs: number } {
  const r = loadIdentities({ rootPem, rootKeyPem: readFileSync(pki.rootKey, 'utf8'), domain: root.domain, cloudIds: ids, cacheDir });
  return { ids: r.identities, issued: r.issued, issueMs: r.issueMs };
}

/** Retracts what a run left behind on every Root (before a run, and after a failed one). */
async function sweepAll(dials: Readonly<Record<string, Dial>>): Promise<number> {
  let n = 0;
  for (const [r, root] of roots.entries()) {
    const src = `${PREFIX}src-${r}`;
    const ids = identitiesFor(root, [src]).ids;
    const left = await sweep(root, dials[root.key] as Dial, rootPem, { cloudId: src, id: ids.get(src) as Identity }, PREFIX,
      (id) => identitiesFor(root, [id]).ids.get(id) as Identity);
    n += left.length;
  }
  return n;
}

const directDials = Object.fromEntries(roots.map((r) => [r.key, { host: r.host, port: r.port }]));

/** Opens the namespace and link, runs this file inside it, answers its counter requests, cleans up. */
async function outer(): Promise<void> {
  const link = await openLink(roots, RTT_MS);
  let code: number | null = 1;
  try {
    log(`namespace '${link.namespace}', ${RTT_MS} ms added per gateway ↔ Root round trip by ${link.delayBy}`);
    const forwarded = process.argv.slice(2);
    const child = spawn('ip', [
      'netns', 'exec', link.namespace, process.execPath, '--import', join(REPO, 'node_modules/tsx/dist/loader.mjs'),
      join(import.meta.dirname, 'control-plane.bench.ts'), ...forwarded,
      '--inside', '--endpoints', JSON.stringify(link.endpoints), '--delay-by', link.delayBy,
    ], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m) => {
      if (m === 'counters') child.send({ ...link.counters });
    });
    code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  } finally {
    await link.close();
  }
  if (code !== 0) {
    const n = await sweepAll(directDials);
    log(`the run failed (exit ${code}); swept ${n} bench catalog item(s) it left`);
    process.exitCode = code ?? 1;
  }
}

/** The link's counters (only inside the namespace: the outer process owns the relay). */
async function tripCounters(): Promise<TripCounters | undefined> {
  const send = process.send?.bind(process);
  if (!send) return undefined;
  return new Promise((resolve) => {
    process.once('message', (m) => resolve(m as TripCounters));
    send('counters');
  });
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

function session(root: RootServer, dial: Dial, cloud: string, id: Identity, profile: CloudProfile, watchCatalog: boolean): GatewaySession {
  const others = roots.filter((r) => r.domain !== root.domain);
  return new GatewaySession({
    cloudId: cloud,
    service: `xmpp://${dial.host}:${dial.port}`,
    domain: root.domain,
    pubsubJid: root.pubsubJid,
    tls: { ca: rootPem, cert: id.cert, key: id.key, servername: root.servername },
    trust: createTrustBinding({ certificatePem: id.cert, privateKeyPem: id.key, rootsPem: rootPem }),
    // The other Roots' directories, read over s2s (their gateways are peers too).
    directories: others.map((r) => ({ domain: r.domain, pubsubJid: r.pubsubJid })),
    admission: createOfferAdmission({
      policy: createDefaultPolicy({ acceptFrom: ['*'], maxVcpusPerVm: 64, maxMemoryMiBPerVm: 1 << 20 }),
      domain: root.domain,
      federatedDomains: others.map((r) => r.domain),
      capacity: profile.capacity,
      reservationTtlMs: 5_000,
    }),
    profile,
    watchCatalog,
    iqTimeoutMs: 30_000,
  });
}

/**
 * p50 cost of signing an offer-sized payload and of verifying it as the peer does (chain,
 * certificate names the cloud and JID, payload, time window, replay), in-process.
 */
async function cpuOfSignedExchange(a: Identity, b: Identity, aCloud: string, domain: string, request: OfferRequest): Promise<{ n: number; signMs: number; verifyMs: number }> {
  const signer = createTrustBinding({ certificatePem: a.cert, privateKeyPem: a.key, rootsPem: rootPem });
  const verifier = createTrustBinding({ certificatePem: b.cert, privateKeyPem: b.key, rootsPem: rootPem });
  const sign: number[] = [];
  const verify: number[] = [];
  for (let i = 0; i < 100; i++) {
    const now = Date.now();
    const payload = offerPayload(normalizeOffer({
      offerId: `cpu-${i}`, from: aCloud, workload: request.workload, constraints: request.constraints, terms: request.terms,
      issued: new Date(now).toISOString(), expires: new Date(now + 60_000).toISOString(),
    }));
    let t0 = performance.now();
    const env = await signer.sign(MESSAGE_TYPES.OFFER, payload, 60_000);
    sign.push(performance.now() - t0);
    t0 = performance.now();
    await verifier.verify(env, { type: MESSAGE_TYPES.OFFER, payload, cloudId: aCloud, jid: `${aCloud}@${domain}`, replay: true });
    verify.push(performance.now() - t0);
  }
  return { n: sign.length, signMs: percentile(sign, 50), verifyMs: percentile(verify, 50) };
}

/** Starts a session, retrying what is retryable (a loaded Root may time a stream open out). */
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

async function inBatches<T>(items: readonly T[], size: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function inner(): Promise<void> {
  const dials: Record<string, Dial> = args.endpoints ? JSON.parse(args.endpoints) as Record<string, Dial> : directDials;
  const where = RTT_MS > 0 ? `inside a namespace, +${RTT_MS} ms per gateway ↔ Root round trip (${args['delay-by']})` : 'on loopback';
  const startLoad = load();

  // ── certificates ────────────────────────────────────────────────────────────────────
  const swept = await sweepAll(dials);
  if (swept > 0) log(`swept ${swept} bench catalog item(s) an earlier run left`);
  const requested = Number(args.n);
  const dirMax = Number(args['directory-max']);
  // Room in each Root's directory: pubsub_max_items/max_items (1000 in 20-prosody.sh) less the
  // items already there and the source's own. Past it Prosody drops the OLDEST items — real
  // clouds' entries — so N is cut to fit rather than evict them.
  const room: number[] = [];
  for (const [r, root] of roots.entries()) {
    const src = `${PREFIX}src-${r}`;
    const c = await rawClient(root, dials[root.key] as Dial, rootPem, src, identitiesFor(root, [src]).ids.get(src) as Identity, 'bench-count');
    try {
      room.push(dirMax - (await catalogIds(c, root)).length - 1);
    } finally {
      await c.stop();
    }
  }
  const fit = Math.min(requested, Math.min(...room) * roots.length);
  if (fit < requested) {
    log(`NOTE: N cut from ${requested} to ${fit}: the Root's directory holds at most ${dirMax} items and has room for ${room.join(' / ')} more `
      + '(a publish past that evicts the oldest entry, e.g. cloud-a\'s)');
  }
  const N = fit;
  const rootOf = spreadOverRoots(N, roots.length);
  const provIds = Array.from({ length: N }, (_, i) => `${PREFIX}${String(i + 1).padStart(4, '0')}`);
  const srcIds = roots.map((_, r) => `${PREFIX}src-${r}`);
  let issued = 0;
  let issueMs = 0;
  const idOf = new Map<string, Identity>();
  for (const [r, root] of roots.entries()) {
    const mine = [...provIds.filter((_, i) => rootOf[i] === r), srcIds[r] as string];
    const got = identitiesFor(root, mine);
    issued += got.issued;
    issueMs += got.issueMs;
    for (const [k, v] of got.ids) idOf.set(k, v);
  }
  log(`certificates: ${issued} issued in ${(issueMs / 1000).toFixed(2)} s${issued > 0 ? ` (${(issueMs / issued).toFixed(2)} ms each)` : ''}, `
    + `${N + roots.length - issued} from the cache (${cacheDir}); load ${formatLoad(load())}`);
  const cliMs = args['time-cli'] ? timeCliIssue(join(REPO, 'scripts/intercloud')) : [];
  if (cliMs.length > 0) log(`'intercloud ca issue' (one process per certificate, throw-away CA): ${cliMs.map((m) => m.toFixed(0)).join(', ')} ms`);

  const sources = roots.map((root, r) => session(root, dials[root.key] as Dial, srcIds[r] as string, idOf.get(srcIds[r] as string) as Identity, profileOf(1), true));
  const providers = provIds.map((id, i) => {
    const root = roots[rootOf[i] as number] as RootServer;
    return session(root, dials[root.key] as Dial, id, idOf.get(id) as Identity, profileOf(i), false);
  });
  const warnings: string[] = [];
  for (const s of sources) s.on('warning', (w: Error & { code?: string }) => warnings.push(`${w.code ?? ''} ${w.message}`));
  const started: GatewaySession[] = [];
  let failed = false;
  try {
    await Promise.all(sources.map(async (s) => {
      await startWithRetry(s);
      started.push(s);
    }));
    const rssBefore = roots.map((r) => rssKiB(r));

    // ── connection setup ──────────────────────────────────────────────────────────────
    const loginMs: number[] = [];
    const t1 = performance.now();
    await inBatches(providers, Number(args.concurrency), async (s) => {
      loginMs.push(await timed(() => startWithRetry(s)));
      started.push(s);
    });
    const setupS = (performance.now() - t1) / 1000;
    const setupLoad = load();
    log(`${N} provider gateways online in ${setupS.toFixed(1)} s (${(N / setupS).toFixed(0)}/s); load ${formatLoad(setupLoad)}`);

    // Each source sees every provider of its own Root (catalog entry verified + presence).
    const t2 = performance.now();
    const perRoot = roots.map((_, r) => rootOf.filter((x) => x === r).length);
    const seen = async (r: number): Promise<number> => (await (sources[r] as GatewaySession).discoverPeers({})).filter((p) => p.entry.cloudId.startsWith(PREFIX)).length;
    for (let r = 0; r < roots.length; r++) {
      while ((await seen(r)) < (perRoot[r] as number) && performance.now() - t2 < 180_000) await sleep(250);
    }
    const convergedS = (performance.now() - t2) / 1000;
    const visible = await Promise.all(roots.map((_, r) => seen(r)));
    log(`sources see ${visible.join(' / ')} of ${perRoot.join(' / ')} providers online with verified entries after ${convergedS.toFixed(1)} s more`);
    for (const w of warnings.slice(0, 5)) log(`  warning: ${w}`);
    await sleep(2_000);
    const rssAfter = roots.map((r) => rssKiB(r));

    // ── the same pair for ping and offer ─────────────────────────────────────────────
    const src = sources[0] as GatewaySession;
    const onRoot = (r: number): string[] => provIds.filter((_, i) => rootOf[i] === r).map((id) => `${id}@${(roots[r] as RootServer).domain}/gateway`);
    const same = onRoot(0);
    let cross = roots.length > 1 ? onRoot(1) : [];
    let crossNote = '';
    if (cross.length > 0) {
      // Across Roots needs s2s between them; without it the exchanges are left out, and said so.
      try {
        await src.ping(cross[0] as string);
      } catch (err) {
        crossNote = `across Roots: left out, a ping to '${cross[0]}' failed: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`;
        log(crossNote);
        cross = [];
      }
    }
    const pick = (list: readonly string[], i: number): string => list[(i * 7) % list.length] as string;
    const offer: OfferRequest = {
      workload: {
        type: 'vm', name: 'bench', vcpus: 2, memoryMiB: 2048, firmware: 'bios',
        disks: [{ id: 'vda', sizeGiB: 10, format: 'qcow2' }], nics: [{ mac: '52:54:00:00:be:01' }],
      },
      constraints: { regions: [] },
      terms: { currency: 'EUR' },
    };
    let accepted = 0;
    let rejected = 0;
    const rejects = new Map<string, number>();
    const negotiate = async (to: string): Promise<void> => {
      const out = await src.sendOffer(to, offer);
      if (out.type === 'accept') accepted++;
      else {
        rejected++;
        rejects.set(out.reason, (rejects.get(out.reason) ?? 0) + 1);
      }
    };
    // A sample that fails (a timeout on a loaded Root) is counted by its error code, not timed,
    // and the run goes on: one stall must not throw away a 1,000-gateway run.
    const failures = new Map<string, number>();
    const sample = async (into: number[], what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        into.push(await timed(fn));
      } catch (err) {
        const key = `${what}: ${(err as { code?: string }).code ?? 'error'}`;
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
    };
    // Warm up (JIT, TLS state) before measuring.
    const warm: number[] = [];
    for (let i = 0; i < 20; i++) await sample(warm, 'warm-up ping', () => src.ping(pick(same, i)));
    for (let i = 0; i < 5; i++) await sample(warm, 'warm-up discovery', () => src.discoverPeers(FILTER, { refresh: true }));
    for (let i = 0; i < 10; i++) await sample(warm, 'warm-up offer', () => negotiate(pick(same, i)));
    accepted = 0;
    rejected = 0;
    rejects.clear();

    const SAMPLES = Number(args.samples);
    const ping: number[] = [];
    const live: number[] = [];
    const fresh: number[] = [];
    const neg: number[] = [];
    const xping: number[] = [];
    const xneg: number[] = [];
    let matches = 0;
    // Interleaved, so background load hits each alike.
    for (let i = 0; i < SAMPLES; i++) {
      const to = pick(same, i);
      await sample(ping, 'ping', () => src.ping(to));
      await sample(live, 'discovery', async () => { matches = (await src.discoverPeers(FILTER)).length; });
      await sample(fresh, 'reconciled discovery', () => src.discoverPeers(FILTER, { refresh: true }));
      await sample(neg, 'offer', () => negotiate(to));
      if (cross.length > 0) {
        const x = pick(cross, i);
        await sample(xping, 'ping across', () => src.ping(x));
        await sample(xneg, 'offer across', () => negotiate(x));
      }
    }
    const loopLoad = load();
    // A full fetch of every entry (what a gateway does at each login) holds the Root a while:
    // measured last, so its stalls do not land in the rows above.
    const full: number[] = [];
    for (let i = 0; i < Math.max(5, Math.round(SAMPLES / 40)); i++) {
      await sample(full, 'full fetch', async () => {
        await src.refreshCatalog({ full: true });
        await src.discoverPeers(FILTER);
      });
    }
    const fullLoad = load();
    // What the agent's findPeer does without a named target (agent/daemon/control-ports.ts):
    // discovery reconciled with the Root AND measured — three XEP-0202 exchanges with every
    // match, all matches at once — before the offer. A handful of samples: it is N-sized.
    const agentFilter: PeerFilter = { capability: 'vm-hosting', minVcpus: 2, minMemoryMiB: 2048 };
    const measured: number[] = [];
    let measuredMatches = 0;
    for (let i = 0; i < 3; i++) {
      await sample(measured, 'findPeer', async () => {
        measuredMatches = (await src.discoverPeers(agentFilter, { refresh: true, measure: true })).length;
      });
    }
    const measuredLoad = load();

    // ── trips of one exchange (only through the link, which counts them) ───────────────
    const trips: Array<{ what: string; ms: number; up: number; down: number }> = [];
    if (args.inside) {
      for (let k = 0; k < 3; k++) {
        for (const [what, fn] of [['ping', () => src.ping(pick(same, k))], ['offer → accept', () => negotiate(pick(same, k))]] as const) {
          await sleep(1_500); // let republishes (250 ms debounce) and their notifications pass
          const c0 = await tripCounters() as TripCounters;
          const one: number[] = [];
          await sample(one, `trips ${what}`, fn);
          const c1 = await tripCounters() as TripCounters;
          if (one.length === 1) trips.push({ what, ms: one[0] as number, up: c1.up - c0.up, down: c1.down - c0.down });
        }
      }
    }

    // ── CPU on the offer path, off the wire: what an offer → accept adds to the ping ─────
    // Each side signs once and verifies once (chain to the Root + CRL + ECDSA + canonical JSON).
    const cpu = await cpuOfSignedExchange(idOf.get(srcIds[0] as string) as Identity, idOf.get(provIds[0] as string) as Identity,
      srcIds[0] as string, (roots[0] as RootServer).domain, offer);

    // ── report ─────────────────────────────────────────────────────────────────────────
    if (ping.length === 0) throw new Error(`no ping answered: ${[...failures].map(([k, v]) => `${k} ×${v}`).join(', ')}`);
    const anchor = summarize(ping);
    const measuredRows: Array<{ name: string; xs: number[]; load: number[] }> = [
      { name: 'xep-0199 ping, same Root (anchor)', xs: ping, load: loopLoad },
      { name: `discovery, live view (${perRoot[0]} clouds on the Root, ${matches} match)`, xs: live, load: loopLoad },
      { name: `discovery, reconciled with the Root (${perRoot[0]} clouds)`, xs: fresh, load: loopLoad },
      { name: 'offer → signed accept, same pair as the ping', xs: neg, load: loopLoad },
      { name: `full catalog fetch + discovery (${perRoot[0]} clouds)`, xs: full, load: fullLoad },
      { name: 'gateway login (TLS + EXTERNAL + presence + publish)', xs: loginMs, load: setupLoad },
      { name: `agent's findPeer: reconciled + measured (${measuredMatches} matches × 3)`, xs: measured, load: measuredLoad },
      ...(cross.length > 0 ? [
        { name: 'xep-0199 ping, across Roots (s2s)', xs: xping, load: loopLoad },
        { name: 'offer → signed accept, across Roots', xs: xneg, load: loopLoad },
      ] : []),
    ];
    const rows: Row[] = measuredRows.filter((r) => r.xs.length > 0).map((r) => ({ name: r.name, summary: summarize(r.xs), load: r.load }));
    const memory = roots.map((r, i) => ({
      root: r.key, beforeKiB: rssBefore[i] as number, afterKiB: rssAfter[i] as number, connections: perRoot[i] as number,
      perCloudKiB: perConnectionKiB(rssBefore[i] as number, rssAfter[i] as number, perRoot[i] as number),
    }));
    const negSummary = neg.length > 0 ? summarize(neg) : { n: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
    const aim = RTT_MS > 0 ? 1.5 : 3;
    if (args.json) {
      process.stdout.write(`${JSON.stringify({
        n: N, requested, roots: roots.map((r) => r.key), rttMs: RTT_MS, delayBy: args['delay-by'], samples: SAMPLES, startLoad, accepted, rejected,
        rejects: Object.fromEntries(rejects), failures: Object.fromEntries(failures), crossNote, certificates: { issued, issueMs, cliMs }, setup: { seconds: setupS, perSecond: N / setupS, convergedS },
        memory, cpu, rows: rows.map((r) => ({ ...r, ratioP50: ratio(r.summary.p50, anchor.p50), ratioP99: ratio(r.summary.p99, anchor.p99) })), trips,
      }, null, 2)}\n`);
    } else {
      const out: string[] = [];
      out.push(`control plane: ${N} gateways on ${roots.length} Root(s) [${roots.map((r) => r.key).join(', ')}], ${where}, ${SAMPLES} rounds; `
        + `load at start ${formatLoad(startLoad)} (2 cores shared with other work: only same-run ratios mean much)`);
      out.push(formatTable(rows, anchor));
      if (crossNote !== '') out.push(crossNote);
      if (failures.size > 0) out.push(`failed samples (not timed): ${[...failures].map(([k, v]) => `${k} ×${v}`).join(', ')}`);
      out.push(`offers: ${accepted} accepted, ${rejected} rejected${rejected > 0 ? ` (${[...rejects].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`);
      for (const m of memory) {
        out.push(`Root '${m.root}' memory: Prosody RSS ${(m.beforeKiB / 1024).toFixed(1)} → ${(m.afterKiB / 1024).toFixed(1)} MiB for ${m.connections} clouds `
          + `= ${m.perCloudKiB.toFixed(1)} KiB per connected cloud (session + roster + catalog item)`);
      }
      out.push(`connection setup: ${N} logins in ${setupS.toFixed(1)} s = ${(N / setupS).toFixed(0)}/s at ${args.concurrency} at a time `
        + `(login p50 ${percentile(loginMs, 50).toFixed(0)} ms, p99 ${percentile(loginMs, 99).toFixed(0)} ms); directory converged ${convergedS.toFixed(1)} s later; load ${formatLoad(setupLoad)}`);
      out.push(`certificates: ${issued} issued this run in ${(issueMs / 1000).toFixed(2)} s, the rest cached`
        + `${cliMs.length > 0 ? `; 'intercloud ca issue' costs ${percentile(cliMs, 50).toFixed(0)} ms per certificate (a process each)` : ''}`);
      out.push(`cpu of the signed exchange (off the wire, p50 of ${cpu.n}): sign ${cpu.signMs.toFixed(2)} ms + verify ${cpu.verifyMs.toFixed(2)} ms, `
        + `twice (offer, accept) = ${(2 * (cpu.signMs + cpu.verifyMs)).toFixed(1)} ms; offer p50 − ping p50 = ${(negSummary.p50 - anchor.p50).toFixed(1)} ms`);
      for (const t of trips) out.push(`trips: one ${t.what} took ${t.ms.toFixed(1)} ms = ${(t.ms / RTT_MS).toFixed(2)} added round trips; relay forwarded ${t.up} segments up, ${t.down} down`);
      out.push(`aim: offer → accept p50 ≤ ${aim}× ping: ${ratio(negSummary.p50, anchor.p50) <= aim ? 'met' : 'NOT met'} (${ratio(negSummary.p50, anchor.p50).toFixed(2)}×, p99 ${ratio(negSummary.p99, anchor.p99).toFixed(2)}×)`);
      process.stdout.write(`${out.join('\n')}\n`);
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    // Leave the directory as we found it: each gateway retracts its own entry and logs out at
    // once (a gateway whose capacity changed — an accepted offer, a reservation that lapsed —
    // republishes its entry 250 ms later; stopped, it cannot). The sweep takes what slipped by.
    const t = performance.now();
    await inBatches(started, 25, async (s) => {
      try {
        await s.retractCatalog();
      } catch (err) {
        log(`warning: ${s.cloudId} could not retract its entry: ${(err as Error).message}`);
      }
      await s.stop();
    });
    const left = await sweepAll(dials);
    log(`cleanup: ${started.length} entries retracted, sessions closed in ${((performance.now() - t) / 1000).toFixed(1)} s; ${left} left over and swept${failed ? ' (run failed)' : ''}`);
    process.disconnect?.();
  }
}

// Dispatch last: every const above is initialised by now. The machine's federation lock is
// held for the whole run: N gateways flood every catalog watcher (an end-to-end test's agents
// would verify N entries and subscribe to N presences), and a Root restarted mid-run (another
// federation's `services up`) would cut every session.
const release = args.inside || args.unlocked ? undefined : await lockFederation({ timeoutS: 1800 });
try {
  if (RTT_MS > 0 && !args.inside) await outer();
  else await inner();
} finally {
  await release?.();
}
