/**
 * A certified peer is a stranger: it may touch only what it brought (issue 12, findings 1, 2
 * and the vm-name part of 9).
 *
 * The attacker is a separate certified cloud, `cloud-c` (its certificate under the Intercloud
 * Root from services.json), played by plain clients in this file — the XMPP control-plane
 * client of `protocols/xmpp` sending signed offers and migration requests, and the AMQP
 * transfer client of `protocols/amqp` sending disks — never by an agent. The victim is a real
 * `cloud-b` agent over the real servers and cloud-b's real libvirt. Every check of what
 * happened is made with virsh and the files directly.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointCheck } from '../../../agent/daemon/broker-endpoint.js';
import { sourceControlPort } from '../../../agent/daemon/control-ports.js';
import { transferIdFor } from '../../../agent/daemon/transfer-ids.js';
import type { ControlPort, PeerRef, Reservation, VmSummary } from '../../../agent/migration/index.js';
import { fileSource, sendTransfer } from '../../../protocols/amqp/index.js';
import { isIntercloudError } from '../../../protocols/errors/index.js';
import { writeOvf } from '../../../protocols/ovf/index.js';
import type { VirtualMachine } from '../../../protocols/vm/index.js';
import {
  AgentProcess, createDemoVm, domState, loadServicesFile, removeVm, virsh, writeAgentConfig,
} from '../../../scripts/local-federation.js';
import { STATE_DIR } from '../../helpers/services.js';
import { brokerFor } from '../amqp/helpers.js';
import { servicesUp, startGateway, type TestGateway } from '../xmpp/gateways.js';
import { lockFederation } from '../../../scripts/federation-lock.js';
import { sha256File } from './federation-fixture.js';

const run = promisify(execFile);
const s = loadServicesFile(STATE_DIR);
const POOL = s.libvirt.instances['cloud-b']!.poolPath;
const B: PeerRef = { cloudId: 'cloud-b', jid: `cloud-b@${s.prosody.domain}` };
const MiB = 1024 * 1024;

let unlock: (() => Promise<void>) | undefined;
let dir = '';
let b: AgentProcess;
let c: TestGateway;
let control: ControlPort;
/**
 * The cloud-b VM the attacker aims at: defined and shut off (cloud-b's two vCPUs may be taken
 * by other VMs, and a shut-off VM shows an adoption too: it would be started), with a disk in
 * cloud-b's pool.
 */
const victim = { name: 'tsafe-victim', disk: '', sha256: '' };

async function victimUntouched(): Promise<void> {
  expect(await domState(s, 'cloud-b', victim.name)).toBe('shut off');
  const blk = await virsh(s, 'cloud-b', 'domblklist', victim.name, '--details');
  expect(blk).toContain(victim.disk);
  expect(existsSync(victim.disk)).toBe(true);
  expect(await sha256File(victim.disk)).toBe(victim.sha256);
}

function summary(name: string, disks = 1): VmSummary {
  return {
    name, vcpus: 1, memoryBytes: 128 * MiB, macs: ['52:54:00:7e:0c:01'],
    disks: Array.from({ length: disks }, (_, i) => ({ id: String(i), capacityBytes: 1024 * MiB })), addresses: [],
  };
}

/** A descriptor (OVF) for `vm`, written by the project's OVF writer from the model. */
function descriptor(vm: Partial<VirtualMachine> & { name: string }): string {
  const model: VirtualMachine = {
    firmware: 'bios', cpu: { count: 1 }, memoryBytes: 128 * MiB,
    disks: [{ capacityBytes: 4 * MiB, format: 'raw', bus: 'virtio', file: { href: `${vm.name}-disk0.img` } }],
    cdroms: [], nics: [{ mac: '52:54:00:7e:0c:01', model: 'virtio', network: 'VM Network' }],
    ...vm,
  };
  return writeOvf([model]).value;
}

/** Reservations cloud-b holds lapse this fast (each test waits for the last one's to go). */
const RESERVATION_S = 20;

/**
 * Offers `name` to cloud-b as cloud-c (signed). A `no-capacity` answer (an earlier test's
 * reservation still held: cloud-b may have one free vCPU only), or cloud-b's gateway not
 * online yet, is waited out.
 */
async function offer(name: string, disks = 1): Promise<{ offerId: string; reservation: Reservation }> {
  const t0 = Date.now();
  for (;;) {
    const offerId = randomUUID();
    try {
      const reservation = await control.offer(B, { offerId, vm: summary(name, disks) }, AbortSignal.timeout(30_000));
      return { offerId, reservation };
    } catch (err) {
      // Not yet: an earlier reservation holds the vCPU, or cloud-b's agent has just come up.
      const busy = (isIntercloudError(err, 'MIGRATE_REJECTED') && err.details['reason'] === 'no-capacity') || isIntercloudError(err, 'XMPP_PEER_UNAVAILABLE');
      if (!busy || Date.now() - t0 > (RESERVATION_S + 15) * 1000) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Sends `file` as disk `diskId` of the offer over AMQP as cloud-c; returns its sha256. */
async function sendDisk(offerId: string, diskId: string, file: string, reservation: Reservation): Promise<string> {
  const r = await sendTransfer({
    // To the broker cloud-b's accept named (issue 13), as cloud-c.
    broker: { ...brokerFor('cloud-c'), url: reservation.transfer.uri, servername: reservation.transfer.identity! }, transferId: transferIdFor(offerId, diskId), from: 'cloud-c', to: 'cloud-b',
    source: await fileSource(file), expiresAt: Date.parse(reservation.expiresAt), journalDir: join(dir, 'c-journal'),
  });
  return r.digest;
}

/** Asks cloud-b to instantiate; resolves with the coded refusal, or 'running'. */
async function instantiate(offerId: string, ovf: string, digests: Record<string, string>): Promise<string> {
  try {
    await control.instantiate(B, { offerId, descriptor: ovf, digests, addresses: [] }, AbortSignal.timeout(120_000));
    return 'running';
  } catch (err) {
    if (isIntercloudError(err)) return err.code;
    throw err;
  }
}

async function release(offerId: string): Promise<void> {
  await control.release(B, offerId, AbortSignal.timeout(120_000));
}

/** A raw image of `mib` MiB of zeros with a marker at the front. */
async function rawImage(name: string, mib = 4): Promise<string> {
  const p = join(dir, name);
  const fh = await fs.open(p, 'w');
  await fh.write(Buffer.from(`tsafe ${name}\n`));
  await fh.truncate(mib * MiB);
  await fh.close();
  return p;
}

async function jobOf(offerId: string): Promise<{ state: string; results: Record<string, unknown> }> {
  for (let i = 0; i < 600; i++) {
    const st = await b.api.job(`in-${offerId}`);
    if (st.state !== 'running') return st;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`cloud-b's job for '${offerId}' did not end`);
}

/**
 * The files of cloud-b's pool this file's peer could leave: received disks (`intercloud-in-…`)
 * and its VMs' (`tsafe-…`). Others come and go with the VM tests that run beside this file.
 */
async function poolVolumes(): Promise<string[]> {
  return (await fs.readdir(POOL)).filter((n) => /^\.?intercloud-in-/.test(n) || n.startsWith('tsafe-')).map((n) => join(POOL, n));
}

// The machine's federation lock (cloud-b has one XMPP identity).
beforeAll(async () => {
  unlock = await lockFederation();
}, 660_000);

beforeAll(async () => {
  dir = join(STATE_DIR, 'test-migration', `tsafe-${process.pid}`);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  await removeVm(s, 'cloud-b', victim.name);
  const { diskPath } = await createDemoVm(s, 'cloud-b', {
    name: victim.name, mac: '52:54:00:7e:0c:99', diskId: `victim-${Date.now()}`, consoleLog: join(dir, 'victim.log'), diskMiB: 16, start: false,
  });
  victim.disk = diskPath;
  victim.sha256 = await sha256File(diskPath);
  b = new AgentProcess('cloud-b', join(dir, 'cloud-b'));
  await writeAgentConfig(s, 'cloud-b', b.dir, { region: 'eu-central', reservationSeconds: RESERVATION_S });
  await b.start();
  // cloud-c's own certificate, under a resource of this file's own (other suites log in as cloud-c/gateway).
  c = await startGateway(servicesUp(), 'cloud-c', { resource: `attacker-${process.pid}` });
  control = sourceControlPort(c.session, {
    currency: 'EUR', checkEndpoint: endpointCheck({ domain: s.prosody.domain, ca: await fs.readFile(s.pki.root, 'utf8') }),
  });
}, 300_000);

afterAll(async () => {
  await c?.session.stop();
  await b?.stop('SIGKILL');
  for (const vm of [victim.name, 'tsafe-late', 'tsafe-c-1', 'tsafe-c-2', 'tsafe-c-3']) await removeVm(s, 'cloud-b', vm);
  if (process.env['INTERCLOUD_KEEP_TEST_DIRS'] === undefined) await fs.rm(dir, { recursive: true, force: true });
  await unlock?.();
}, 180_000);

describe('a certified peer may touch only what it brought (cloud-c against a real cloud-b)', () => {
  // Each test waits out the previous test's reservation at most once (see `offer`).
  it('an offer naming a vm that exists at cloud-b is refused (name-taken) before any byte moves; the vm is untouched', async () => {
    const err = await offer(victim.name).then(() => undefined, (e: unknown) => e);
    expect(isIntercloudError(err, 'MIGRATE_REJECTED')).toBe(true);
    expect((err as { details: { reason: string } }).details.reason).toBe('name-taken');
    await victimUntouched();
  });

  it('an offer whose vm name virsh would read as an option, an id or a uuid is refused as malformed', async () => {
    for (const name of ['--help', '-x', '1', randomUUID(), 'a/b']) {
      const err = await offer(name).then(() => undefined, (e: unknown) => e);
      expect(isIntercloudError(err, 'MIGRATE_REJECTED'), `name '${name}'`).toBe(true);
      expect((err as { details: { reason: string } }).details.reason, `name '${name}'`).toBe('malformed');
    }
    await victimUntouched();
  });

  it('a descriptor naming another (existing) vm than the offer is refused; that vm is untouched and nothing received is left', async () => {
    const before = await poolVolumes();
    const { offerId, reservation } = await offer('tsafe-c-1');
    const digest = await sendDisk(offerId, '0', await rawImage('c1.img'), reservation);
    const outcome = await instantiate(offerId, descriptor({ name: victim.name }), { 0: digest });
    expect(outcome).toBe('MIGRATE_BAD_DESCRIPTOR');
    await release(offerId);
    expect((await jobOf(offerId)).state).toBe('compensated');
    await victimUntouched();
    expect(await domState(s, 'cloud-b', 'tsafe-c-1')).toBe('absent');
    expect((await poolVolumes()).filter((p) => !before.includes(p))).toEqual([]);
  });

  it('a vm of the offered name defined locally after the accept is not adopted, and the compensation of the failed define leaves it alone', async () => {
    const { offerId, reservation } = await offer('tsafe-late');
    const digest = await sendDisk(offerId, '0', await rawImage('late.img'), reservation);
    // The operator (or anyone) defines a vm of that name meanwhile: it is not the peer's.
    const { diskPath } = await createDemoVm(s, 'cloud-b', {
      name: 'tsafe-late', mac: '52:54:00:7e:0c:98', diskId: 'late', consoleLog: join(dir, 'late.log'), diskMiB: 16, start: false,
    });
    const lateSha = await sha256File(diskPath);
    const outcome = await instantiate(offerId, descriptor({ name: 'tsafe-late' }), { 0: digest });
    expect(outcome).not.toBe('running');
    await release(offerId).catch(() => undefined);
    expect((await jobOf(offerId)).state).toBe('compensated');
    expect(await domState(s, 'cloud-b', 'tsafe-late')).toBe('shut off');
    expect(existsSync(diskPath)).toBe(true);
    expect(await sha256File(diskPath)).toBe(lateSha);
    await victimUntouched();
  });

  it('a qcow2 whose backing file is a host file is refused; no vm is defined and nothing received is left', async () => {
    const before = await poolVolumes();
    const img = join(dir, 'evil.qcow2');
    // The backing file is the victim's disk: the peer's vm would read it.
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', victim.disk, img]);
    const { offerId, reservation } = await offer('tsafe-c-2');
    const digest = await sendDisk(offerId, '0', img, reservation);
    const ovf = descriptor({ name: 'tsafe-c-2', disks: [{ capacityBytes: 16 * MiB, format: 'qcow2', bus: 'virtio', file: { href: 'evil.qcow2' } }] });
    expect(await instantiate(offerId, ovf, { 0: digest })).toBe('MIGRATE_BAD_DISK');
    await release(offerId);
    expect((await jobOf(offerId)).state).toBe('compensated');
    expect(await domState(s, 'cloud-b', 'tsafe-c-2')).toBe('absent');
    expect((await poolVolumes()).filter((p) => !before.includes(p))).toEqual([]);
    await victimUntouched();
  });

  it('a raw disk declared qcow2 by the descriptor is defined as raw (the format is read from the file)', async () => {
    const { offerId, reservation } = await offer('tsafe-c-3');
    const digest = await sendDisk(offerId, '0', await rawImage('c3.img'), reservation);
    const ovf = descriptor({
      name: 'tsafe-c-3',
      disks: [{ capacityBytes: 4 * MiB, format: 'qcow2', bus: 'virtio', file: { href: 'c3.img' } }],
      // Host files the peer would like its vm to see: the victim's disk and a host file.
      cdroms: [{ bus: 'ide', file: { href: victim.disk } }, { bus: 'ide', file: { href: '/etc/hostname' } }],
    });
    expect(await instantiate(offerId, ovf, { 0: digest })).toBe('running');
    const xml = await virsh(s, 'cloud-b', 'dumpxml', 'tsafe-c-3');
    expect(xml).not.toContain(victim.disk);
    expect(xml).not.toContain('/etc/hostname');
    expect(xml).toMatch(/<driver name='qemu' type='raw'/);
    // The dropped paths are reported as losses of the define step.
    const st = await b.api.job(`in-${offerId}`);
    const losses = (st.results['define'] as { losses: Array<{ path: string }> }).losses.map((l) => l.path);
    expect(losses).toEqual(expect.arrayContaining(['cdroms[0].file', 'cdroms[1].file']));
    // Released before the commit (the running job is cancelled): only what this offer made goes.
    await release(offerId);
    expect((await jobOf(offerId)).state).toBe('cancelled');
    expect(await domState(s, 'cloud-b', 'tsafe-c-3')).toBe('absent');
    await victimUntouched();
  });
});
