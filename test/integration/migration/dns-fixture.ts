/**
 * DNS re-addressing for the end-to-end migration tests: the VM's name in the zone of the BIND
 * that `scripts/services up bind` starts, read back with `dig` (BIND's own client, never the
 * agent), and a UDP relay a test puts between an agent and BIND to hold its updates for a while.
 */
import { execFile } from 'node:child_process';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { listRecords, updateDnsRecord, type DnsUpdateOptions } from '../../../protocols/dns/index.js';
import { domState, virsh } from '../../../scripts/local-federation.js';
import { bindService } from '../../helpers/services.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { inboundOf, type Cloud, type Federation } from './federation-fixture.js';

const run = promisify(execFile);


/** BIND's address, zone and update key. */
export function bindEnv(): ReturnType<typeof bindService> {
  return bindService();
}

/** The VM's DNS name: `<vm>.<zone>`, as the agents' DNS addresser publishes it. */
export function dnsNameOf(f: Federation): string {
  return `${f.vm}.${bindEnv().zone}`;
}

/** A cloud's locator: the address of its libvirt instance (what the agent config's `locators` holds). */
export function locatorOf(f: Federation, cloud: Cloud): string {
  const address = f.s.libvirt.instances[cloud]?.address;
  if (!address) throw new Error(`services.json has no address for '${cloud}'`);
  return address;
}

/** The A records BIND serves for the VM's name (`dig +short`), sorted. */
export async function digA(f: Federation): Promise<string[]> {
  const b = bindEnv();
  const { stdout } = await run('dig', [`@${b.host}`, '-p', String(b.port), dnsNameOf(f), 'A', '+short', '+norecurse']);
  return stdout.split('\n').filter((l) => l.length > 0).sort();
}

/** Points the VM's name at `cloud`'s locator only, as that cloud did when it created the VM. */
export async function publishName(f: Federation, cloud: Cloud): Promise<void> {
  const b = bindEnv();
  const opts: DnsUpdateOptions = { server: { host: b.host, port: b.port }, zone: b.zone, key: { name: b.keyName, secret: b.key.secret, algorithm: b.keyAlgorithm } };
  await updateDnsRecord(dnsNameOf(f), [locatorOf(f, cloud)], 30, opts);
}

/** Deletes the VM's name (the end of a test). */
export async function unpublishName(f: Federation): Promise<void> {
  const b = bindEnv();
  await updateDnsRecord(dnsNameOf(f), [], 30, { server: { host: b.host, port: b.port }, zone: b.zone, key: { name: b.keyName, secret: b.key.secret, algorithm: b.keyAlgorithm } });
}

/** Waits until cloud-b has a job for the source job `jobId` (it accepted the offer). */
export async function waitForTargetJob(f: Federation, jobId: string, timeoutMs = 90_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      await f.b.api.job(inboundOf(jobId));
      return;
    } catch (err) {
      if (!isIntercloudError(err, 'SEQ_UNKNOWN_JOB')) throw err;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`cloud-b has no job for '${jobId}' after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The VM runs in `cloud` with its MAC, and is absent from the other (virsh, not the agent). */
export async function assertRunsOnlyIn(f: Federation, cloud: Cloud): Promise<void> {
  const other: Cloud = cloud === 'cloud-a' ? 'cloud-b' : 'cloud-a';
  const states = { [cloud]: await domState(f.s, cloud, f.vm), [other]: await domState(f.s, other, f.vm) };
  expect(states, 'vm states').toEqual({ [cloud]: 'running', [other]: 'absent' });
  expect((await virsh(f.s, cloud, 'domiflist', f.vm)).split(/\s+/)).toContain(f.mac);
}

/**
 * A UDP relay between an agent and BIND. While held it drops what the agent sends (BIND seems
 * silent); released, it forwards both ways. It notes each update it forwarded, as the RFC 2136
 * update section says: `add ADDR` (class IN) or `delete ADDR` (class NONE, §2.5.4).
 */
export class DnsRelay {
  /** Updates forwarded to BIND, in order. */
  readonly forwarded: string[] = [];
  /** Datagrams dropped while held. */
  dropped = 0;
  private held = true;
  private readonly clients = new Map<number, RemoteInfo>();

  private constructor(private readonly front: Socket, private readonly back: Socket, private readonly upstream: { host: string; port: number }) {
    front.on('message', (msg, rinfo) => {
      if (this.held || msg.length < 12) { this.dropped++; return; }
      this.clients.set(msg.readUInt16BE(0), rinfo);
      this.forwarded.push(...describeUpdate(msg));
      back.send(msg, upstream.port, upstream.host);
    });
    back.on('message', (msg) => {
      const client = msg.length >= 2 ? this.clients.get(msg.readUInt16BE(0)) : undefined;
      if (client) front.send(msg, client.port, client.address);
    });
  }

  /** Starts a relay to BIND on a free loopback port, held. */
  static async start(): Promise<DnsRelay> {
    const b = bindEnv();
    const front = createSocket('udp4');
    const back = createSocket('udp4');
    await Promise.all([new Promise<void>((r) => front.bind(0, '127.0.0.1', r)), new Promise<void>((r) => back.bind(0, '127.0.0.1', r))]);
    return new DnsRelay(front, back, { host: b.host, port: b.port });
  }

  /** `HOST:PORT` for the agent config's `addressing.dns.server`. */
  get address(): string {
    return `127.0.0.1:${this.front.address().port}`;
  }

  /** Forwards from now on. */
  release(): void {
    this.held = false;
  }

  async close(): Promise<void> {
    await Promise.all([new Promise<void>((r) => this.front.close(() => r())), new Promise<void>((r) => this.back.close(() => r()))]);
  }
}

/** The A records an RFC 2136 update adds or deletes, as `add ADDR` / `delete ADDR`. */
function describeUpdate(msg: Buffer): string[] {
  return listRecords(msg)
    .filter((r) => r.section === 'update' && r.type === 1 && r.rdata?.length === 4)
    .map((r) => `${r.class === 254 ? 'delete' : 'add'} ${[...r.rdata!].join('.')}`);
}
