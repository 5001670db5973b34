/**
 * LISP control-plane benchmark: codec encode/decode rates and Map-Registers processed per
 * second by our map server (state machine alone, and over loopback UDP), each next to an
 * anchor measured in the same run:
 *   - codec anchors: one HMAC-SHA-256 over the same bytes (the floor of signing), and
 *     JSON.stringify/parse of the same value (a generic serializer);
 *   - UDP anchor: a bare dgram echo server driven by the same client with the same window.
 *
 *   npx tsx bench/lisp/lisp.bench.ts [seconds-per-case (default 2)]
 *
 * The machine has 2 cores shared with other work: figures are indicative, ratios matter.
 */
import { createHmac } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import {
  MapServerCore, decodeLispMessage, encodeLispMessage, registerNonceAt, startMapServer, type LispMessage, type MapRegister,
} from '../../protocols/lisp/index.js';

const SECONDS = Number(process.argv[2] ?? 2);
const KEY = 'bench-site-key';
const SITES = [{ name: 'cloud-a', keyId: 1, key: KEY, allowedPrefixes: ['10.0.0.0/8'] }];

// Map-Register nonces increase per site (RFC 9301 §5.6) and are dated near the server's clock:
// message i carries BASE + i/65536 ms and counter i % 65536, so every datagram is new.
const BASE = Date.now();
function register(i: number): MapRegister {
  return {
    type: 'map-register', proxyReply: true, securityCapable: false, useTtlForTimeout: false, wantMapNotify: true,
    nonce: registerNonceAt(BASE + Math.floor(i / 65536), i % 65536), keyId: 1, algorithmId: 2, authData: Buffer.alloc(0),
    records: [{
      ttl: 1440, eid: { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, maskLength: 32 }, action: 0, authoritative: true, mapVersion: 0,
      locators: [
        { address: '192.0.2.1', priority: 1, weight: 50, multicastPriority: 255, multicastWeight: 0, local: true, probed: false, reachable: true },
        { address: '198.51.100.1', priority: 1, weight: 50, multicastPriority: 255, multicastWeight: 0, local: true, probed: false, reachable: true },
      ],
    }],
  };
}

/** Runs `fn` in batches for SECONDS and returns operations per second. */
function rate(fn: (i: number) => void): number {
  for (let i = 0; i < 2000; i++) fn(i); // warm-up
  let n = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  while (performance.now() < end) {
    for (let k = 0; k < 500; k++) fn(n++);
  }
  return n / ((performance.now() - start) / 1000);
}

function fmt(v: number): string {
  return `${Math.round(v).toLocaleString('en-US').padStart(12)} /s`;
}

const sample = register(7);
const signed = encodeLispMessage(sample, { key: KEY });
const asJson = JSON.stringify(sample, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

const results: Array<[string, number, string, number]> = [];
const encodeRate = rate((i) => encodeLispMessage(register(i), { key: KEY }));
const encodeUnsigned = rate((i) => encodeLispMessage({ ...register(i), authData: Buffer.alloc(32) } as LispMessage));
const hmacRate = rate(() => createHmac('sha256', KEY).update(signed).digest());
const jsonOut = rate((i) => JSON.stringify(register(i), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
const decodeRate = rate(() => decodeLispMessage(signed));
const jsonIn = rate(() => JSON.parse(asJson));
results.push(['encode Map-Register + HMAC-SHA-256', encodeRate, 'HMAC-SHA-256 alone', hmacRate]);
results.push(['encode Map-Register, unsigned', encodeUnsigned, 'JSON.stringify same value', jsonOut]);
results.push(['decode Map-Register', decodeRate, 'JSON.parse same value', jsonIn]);

// A replayed Map-Register is refused, so each pass over the datagrams gets a fresh core (cheap).
let core = new MapServerCore({ sites: SITES });
const datagrams = Array.from({ length: 4096 }, (_, i) => encodeLispMessage(register(i), { key: KEY }));
const from = { address: '127.0.0.1', port: 40000 };
const coreRate = rate((i) => {
  if (i % datagrams.length === 0) core = new MapServerCore({ sites: SITES });
  core.handle(datagrams[i % datagrams.length]!, from, BASE);
});
results.push(['map server core: Map-Register → Map-Notify', coreRate, 'HMAC-SHA-256 alone', hmacRate]);

/** Sends `datagrams` to host:port with `window` in flight; counts answers per second. */
async function udpRate(port: number, window: number): Promise<number> {
  const s: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => s.connect(port, '127.0.0.1', () => resolve()));
  let answered = 0;
  let sent = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await new Promise<void>((resolve) => {
    const next = (): void => {
      if (performance.now() >= end) { resolve(); return; }
      s.send(datagrams[sent++ % datagrams.length]!);
    };
    s.on('message', () => { answered++; next(); });
    // lost datagrams (socket buffers full) are replaced so the window stays open
    const refill = setInterval(() => { const missing = sent - answered; if (missing < window) for (let k = missing; k < window; k++) next(); }, 50);
    for (let k = 0; k < window; k++) next();
    setTimeout(() => { clearInterval(refill); resolve(); }, SECONDS * 1000 + 100);
  });
  const elapsed = (performance.now() - start) / 1000;
  s.close();
  return answered / elapsed;
}

// The UDP server needs every datagram new: enough for SECONDS at well over the measured rate.
const fresh = Array.from({ length: Math.ceil(SECONDS * 40_000) }, (_, i) => encodeLispMessage(register(i), { key: KEY }));
datagrams.splice(0, datagrams.length, ...fresh);
const server = await startMapServer({ host: '127.0.0.1', port: 0, sites: SITES, sweepIntervalMs: 60_000 });
const echo = createSocket('udp4');
echo.on('message', (m, r) => echo.send(m, r.port, r.address));
await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', () => resolve()));
const msUdp = await udpRate(server.address.port, 32);
const echoUdp = await udpRate(echo.address().port, 32);
results.push(['map server over UDP (32 in flight)', msUdp, 'UDP echo server, same client', echoUdp]);
await server.close();
echo.close();

process.stdout.write(`LISP control plane, ${SECONDS} s per case, node ${process.version}; 2 shared cores (other work was running): indicative\n\n`);
for (const [name, v, anchor, a] of results) {
  process.stdout.write(`${name.padEnd(44)} ${fmt(v)}   vs ${anchor.padEnd(30)} ${fmt(a)}   ratio ${(v / a).toFixed(2)}\n`);
}
