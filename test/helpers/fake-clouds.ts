/**
 * Two fake clouds wired for the migration transactions: in-memory hypervisors, a wire
 * for disks, and the target's request handling called directly as the control plane
 * would. For hermetic tests of the sequence and its invariant; the integration tests
 * run the same transactions over the real servers.
 */
import { createHash } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntercloudError } from '../../protocols/errors/index.js';
import { Sequencer } from '../../agent/sequencer/index.js';
import {
  MigrationTargetService, SourceRequestMailbox, migrateInDefinition, migrateOutDefinition, migrateDryRunDefinition,
  type AddressingPort, type SourcePorts, type TargetPorts, type VmSummary,
} from '../../agent/migration/index.js';

export interface FakeVm { summary: VmSummary; state: 'running' | 'stopped'; disks: Record<string, Buffer>; uuid?: string }

/** A place where something fails once, chosen by the test. */
export type FaultPoint = string;

export class FakeWorld {
  readonly vms = { 'cloud-a': new Map<string, FakeVm>(), 'cloud-b': new Map<string, FakeVm>() };
  readonly wire = new Map<string, Buffer>();
  /** EID → clouds that registered it. */
  readonly addresses = new Map<string, Set<string>>();
  /** VM name → clouds that registered it (as a DNS addresser publishes names). */
  readonly names = new Map<string, Set<string>>();

  addressing(cloud: string): AddressingPort {
    return {
      register: async ({ name, addresses }, signal) => {
        await this.hit(`register:${cloud}`, signal);
        for (const a of addresses) { const s = this.addresses.get(a) ?? new Set<string>(); s.add(cloud); this.addresses.set(a, s); }
        const s = this.names.get(name) ?? new Set<string>(); s.add(cloud); this.names.set(name, s);
      },
      withdraw: async ({ name, addresses }, signal) => {
        await this.hit(`withdraw:${cloud}`, signal);
        for (const a of addresses) this.addresses.get(a)?.delete(cloud);
        this.names.get(name)?.delete(cloud);
      },
      held: async ({ name, addresses }) => ({
        addresses: addresses.filter((a) => this.addresses.get(a)?.has(cloud) ?? false),
        name: this.names.get(name)?.has(cloud) ?? false,
      }),
    };
  }
  readonly audit: Array<{ cloud: string; event: string }> = [];
  /** Fault points that throw once (a non-retryable error) the next time they are reached. */
  readonly faults = new Set<FaultPoint>();
  /** Fault points that hang until aborted (to simulate a crash or a cancel mid-step). */
  readonly hangs = new Set<FaultPoint>();
  /** Hang points some step is blocked in right now. */
  readonly reached = new Set<FaultPoint>();
  /** How to let each blocked hang point go on (see {@link letGo}). */
  readonly #waiting = new Map<FaultPoint, () => void>();

  /** Stops hanging at `point`; a step blocked there now goes on as if nothing happened. */
  letGo(point: FaultPoint): void {
    this.hangs.delete(point);
    this.#waiting.get(point)?.();
  }

  hit(point: FaultPoint, signal: AbortSignal): Promise<void> {
    if (this.faults.delete(point)) return Promise.reject(new IntercloudError('TEST_FAULT', `injected fault at '${point}'`));
    if (this.hangs.has(point)) {
      this.reached.add(point);
      return new Promise((res, rej) => {
        const leave = (): void => { this.reached.delete(point); this.#waiting.delete(point); rej(signal.reason); };
        if (signal.aborted) leave();
        signal.addEventListener('abort', leave);
        this.#waiting.set(point, () => { this.reached.delete(point); this.#waiting.delete(point); signal.removeEventListener('abort', leave); res(); });
      });
    }
    return Promise.resolve();
  }

  /** Where the VM runs: the invariant says exactly one entry. */
  runningIn(name: string): string[] {
    return Object.entries(this.vms).filter(([, m]) => m.get(name)?.state === 'running').map(([c]) => c);
  }
}

export function vmOf(name: string, diskBytes: Buffer): FakeVm {
  return {
    summary: { name, vcpus: 1, memoryBytes: 128 << 20, macs: ['52:54:00:aa:bb:01'], disks: [{ id: 'disk0', capacityBytes: diskBytes.length }], addresses: ['10.1.0.5'] },
    state: 'running',
    disks: { disk0: diskBytes },
  };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Builds the two clouds' sequencers over `world`; call `start()` again to simulate a restart. */
export async function fakeClouds(world: FakeWorld) {
  const dirA = await mkdtemp(join(tmpdir(), 'mig-a-'));
  const dirB = await mkdtemp(join(tmpdir(), 'mig-b-'));
  const peerA = { cloudId: 'cloud-a', jid: 'cloud-a@intercloud.test' };
  const peerB = { cloudId: 'cloud-b', jid: 'cloud-b@intercloud.test' };
  const state = {
    target: undefined as MigrationTargetService | undefined, targetUp: true, mailbox: new SourceRequestMailbox(),
    /** Offers whose target job ended, in order, as the service's `jobEnded` hook reported them. */
    ended: [] as Array<{ offerId: string; peer: string }>,
  };

  const targetDown = (): IntercloudError => new IntercloudError('TEST_UNREACHABLE', 'cloud-b is not answering', { retryable: true });
  const target = (): MigrationTargetService => {
    if (!state.targetUp || !state.target) throw targetDown();
    return state.target;
  };

  const sourcePorts: SourcePorts = {
    cloudId: 'cloud-a',
    hypervisor: {
      describe: async (vm, signal) => {
        await world.hit('describe', signal);
        const v = world.vms['cloud-a'].get(vm)!;
        return { summary: structuredClone(v.summary), descriptor: JSON.stringify(v.summary) };
      },
      state: async (vm) => world.vms['cloud-a'].get(vm)?.state ?? 'absent',
      stop: async (vm, signal) => { await world.hit('stop-source', signal); const v = world.vms['cloud-a'].get(vm); if (v) v.state = 'stopped'; },
      start: async (vm) => { const v = world.vms['cloud-a'].get(vm); if (v) v.state = 'running'; },
      remove: async (vm, signal) => { await world.hit('release-source', signal); world.vms['cloud-a'].delete(vm); },
    },
    control: {
      findPeer: async (want, signal) => {
        await world.hit('find-peer', signal);
        if (want.to && want.to !== 'cloud-b') throw new IntercloudError('TEST_NO_PEER', `no cloud '${want.to}'`);
        return peerB;
      },
      verifyPeer: async (_p, signal) => { await world.hit('verify-peer', signal); return { fingerprint: 'ab:cd' }; },
      offer: async (_p, offer, signal) => {
        await world.hit('negotiate', signal);
        // What the target's admission would give this offer (agent/admission).
        return target().handleOffer(peerA, offer, { reservationId: `rsv-${offer.offerId}`, expiresAt: Date.now() + 60_000 });
      },
      release: async (_p, offerId, signal) => target().handleRelease(peerA, offerId, signal),
      instantiate: async (_p, req, signal) => { await world.hit('instantiate', signal); return target().handleInstantiate(peerA, req, signal); },
      commit: async (_p, offerId, signal) => { await world.hit('commit', signal); return target().handleCommit(peerA, offerId, signal); },
    },
    transfer: {
      sendDisk: async (req, progress, signal) => {
        await world.hit('transfer', signal);
        const bytes = world.vms['cloud-a'].get(req.vm)!.disks[req.diskId]!;
        world.wire.set(`${req.reservation.reservationId}/${req.diskId}`, bytes);
        progress({ bytesDone: bytes.length, bytesTotal: bytes.length });
        return { sha256: sha(bytes), bytes: bytes.length, bytesSent: bytes.length };
      },
    },
    addressing: world.addressing('cloud-a'),
    audit: { record: async (event) => { world.audit.push({ cloud: 'cloud-a', event }); } },
  };

  const received = new Map<string, Record<string, Buffer>>();
  const targetPorts: TargetPorts = {
    cloudId: 'cloud-b',
    hypervisor: {
      // Like the real port: a VM of the name with another uuid is never adopted, started, stopped or removed.
      nameInUse: async (name) => world.vms['cloud-b'].has(name),
      define: async ({ descriptor, disks, vm: ref }, signal) => {
        await world.hit('define', signal);
        const summary = JSON.parse(descriptor) as VmSummary;
        if (summary.name !== ref.name) throw new IntercloudError('MIGRATE_BAD_DESCRIPTOR', `descriptor names '${summary.name}', the offer '${ref.name}'`);
        const files = Object.fromEntries(Object.entries(disks).map(([id, key]) => [id, received.get(key.split('#')[0]!)![id]!]));
        const there = world.vms['cloud-b'].get(ref.name);
        if (there && there.uuid !== ref.uuid) throw new IntercloudError('MIGRATE_NAME_TAKEN', `a vm named '${ref.name}' exists`);
        if (!there) world.vms['cloud-b'].set(ref.name, { summary, state: 'stopped', disks: files, uuid: ref.uuid });
        return { vm: ref.name, uuid: ref.uuid, volumes: Object.values(disks), losses: [] };
      },
      start: async (ref, signal) => {
        await world.hit('start', signal);
        const v = world.vms['cloud-b'].get(ref.name);
        if (v?.uuid !== ref.uuid) throw new IntercloudError('MIGRATE_NOT_OURS', `vm '${ref.name}' is not ours`);
        v.state = 'running';
      },
      stop: async (ref) => {
        const v = world.vms['cloud-b'].get(ref.name);
        if (v?.uuid !== ref.uuid) return { touched: false };
        v.state = 'stopped';
        return { touched: true };
      },
      state: async (ref) => { const v = world.vms['cloud-b'].get(ref.name); return v?.uuid === ref.uuid ? v.state : 'absent'; },
      remove: async (ref) => {
        if (world.vms['cloud-b'].get(ref.name)?.uuid !== ref.uuid) return { undefined: false };
        world.vms['cloud-b'].delete(ref.name);
        return { undefined: true };
      },
    },
    receive: {
      receiveDisks: async (req, _progress, signal) => {
        const out: Record<string, { path: string; sha256: string }> = {};
        const got: Record<string, Buffer> = {};
        for (const d of req.disks) {
          const key = `${req.reservation.reservationId}/${d.id}`;
          while (!world.wire.has(key)) {
            if (signal.aborted) throw signal.reason;
            await new Promise((r) => setTimeout(r, 2));
          }
          got[d.id] = world.wire.get(key)!;
          out[d.id] = { path: `${req.offerId}#${d.id}`, sha256: sha(got[d.id]!) };
        }
        received.set(req.offerId, got);
        return out;
      },
      discard: async (offerId) => { received.delete(offerId); },
    },
    requests: {
      instantiateRequest: (offerId, signal) => state.mailbox.instantiateRequest(offerId, signal),
      commitRequest: (offerId, signal) => state.mailbox.commitRequest(offerId, signal),
    },
    addressing: world.addressing('cloud-b'),
    audit: { record: async (event) => { world.audit.push({ cloud: 'cloud-b', event }); } },
  };

  const make = {
    source: () => new Sequencer({ journalDir: dirA, definitions: [migrateOutDefinition(sourcePorts), migrateDryRunDefinition(sourcePorts)], backoffMs: () => 1 }),
    target: () => {
      const seq = new Sequencer({ journalDir: dirB, definitions: [migrateInDefinition(targetPorts)], backoffMs: () => 1 });
      state.mailbox = new SourceRequestMailbox();
      state.target = new MigrationTargetService(seq, state.mailbox, {
        admit: async () => undefined, vmNameInUse: async (name) => world.vms['cloud-b'].has(name),
        commitTimeoutMs: 60_000, transferEndpoint: () => ({ uri: 'amqps://127.0.0.1:1/transfers', identity: 'broker.cloud-b.intercloud.test' }),
      }, { jobEnded: (offerId, peer) => state.ended.push({ offerId, peer: peer.jid }) });
      return seq;
    },
  };
  return { make, state, dirA, dirB };
}

/** The reservation the target's admission gives an offer (id, expiry): what `handleOffer` is handed. */
export function held(reservationId: string, ms = 60_000): { reservationId: string; expiresAt: number } {
  return { reservationId, expiresAt: Date.now() + ms };
}
