/**
 * The gateway agent assembled from its parts: trust (the cloud's certificate, the Root,
 * CRL, audit log), the local hypervisor adapter, the XMPP session on the Root's server
 * (presence, catalog, offers, migration requests), the AMQP transfers, addressing (LISP or DNS),
 * and the sequencer that runs migrations in both directions, with its local API and
 * metrics. {@link startGateway} brings it up; the returned `stop` brings it down cleanly.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { createHypervisor, type Hypervisor } from '../../adapters/hypervisor/index.js';
import { isIntercloudError } from '../../protocols/errors/index.js';
import { AuditLog, parseCertificatesPem, privateKeyFromPem, type Certificate, type Signer } from '../../protocols/trust/index.js';
import {
  CAPABILITIES, GATEWAY_RESOURCE, GatewaySession, createTrustBinding, type CloudProfile,
  type MigrationMode, type RejectReason,
} from '../../protocols/xmpp/index.js';
import { advertisedCapacity, createDefaultPolicy, createOfferAdmission } from '../admission/index.js';
import { startLocalApi, type MigrationRequest } from '../api/index.js';
import { storagePolicyOf } from '../subcontract/index.js';
import type { AgentConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { AgentMetrics } from '../metrics.js';
import {
  MigrationTargetService, SourceRequestMailbox, migrateDryRunDefinition, migrateInDefinition, migrateInLiveDefinition, migrateInWarmDefinition, migrateMoveDefinition,
  migrateOutDefinition,
  type AuditPort, type MigrateInInput, type MigrateOutInput, type SourcePorts, type TargetPorts,
} from '../migration/index.js';
import { Sequencer, type SequencerEvent } from '../sequencer/index.js';
import { BaseImageStore } from '../base-images/index.js';
import { createAddresser } from './addressing-ports.js';
import { checkFreeStorage } from './admission.js';
import { MAX_TRANSFER_MESSAGE_BYTES, connectBroker, probeMessageCap } from '../../protocols/amqp/index.js';
import { endpointCheck } from './broker-endpoint.js';
import { BrokerGrants, FOREIGN_QUEUE_SWEEP_MS, MAX_NEW_PEER_QUEUES, MAX_PEER_QUEUES, type OfferGrant } from './broker-grants.js';
import { serveMigrationRequests, sourceControlPort, summaryFromWorkload, type vmWorkload } from './control-ports.js';
import { CrlWatcher } from './crl-watch.js';
import { heldBasesOf } from './held-bases.js';
import { StorageFederation } from './storage-federation.js';
import { migrationAdvertOf } from './migration-advert.js';
import { sourceHypervisorPort, sourcePrecopyPort, targetHypervisorPort } from './hypervisor-ports.js';
import { moveTransferPrefix, transferIdFor } from './transfer-ids.js';
import { sourceImagePort, sourceTransferPort, targetReceivePort, type TransferSettings } from './transfer-ports.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** A running gateway. */
export interface RunningGateway {
  readonly sequencer: Sequencer;
  readonly session: GatewaySession;
  readonly hypervisor: Hypervisor;
  stop(): Promise<void>;
}

/** Starts every part of the gateway described by `config`. */
export async function startGateway(config: AgentConfig, log: Logger): Promise<RunningGateway> {
  const cloudId = config.cloud.id;
  const stateDir = config.state.dir;
  // The adapter was parsed with the config; creating it reads the files its config names (key,
  // CA) but connects nothing. Done first, so a file it cannot read stops the agent before the
  // state folder or the audit log exist.
  const hypervisor = createHypervisor(config.hypervisor);
  await fs.mkdir(stateDir, { recursive: true, mode: 0o750 });
  const [certPem, keyPem, rootPem, crlPem] = await Promise.all([
    fs.readFile(config.identity.cert, 'utf8'), fs.readFile(config.identity.key, 'utf8'), fs.readFile(config.identity.root, 'utf8'),
    config.identity.crl ? fs.readFile(config.identity.crl, 'utf8') : Promise.resolve(undefined),
  ]);

  const auditLog = await AuditLog.open(join(stateDir, 'audit.log'));
  const audit: AuditPort = { record: async (event, fields) => { await auditLog.append({ type: event, cloud: cloudId, ...fields }); } };
  const trust = createTrustBinding({
    certificatePem: certPem, privateKeyPem: keyPem, rootsPem: rootPem, ...(crlPem ? { crlPem } : {}),
    auditLog, clockSkewMs: config.policy.maxClockSkewMs,
  });
  // The CRL the endpoint check's TLS probe uses; declared before the watcher, whose first check
  // (in start) may already apply a newer file.
  let currentCrl = crlPem;
  // Revocation is live: a re-issued CRL file is taken without a restart, and a CRL nearing its
  // nextUpdate is warned about (issue 12, finding 7).
  const crlWatch = config.identity.crl
    ? new CrlWatcher({ file: config.identity.crl, apply: (pem) => { trust.setCrl(pem); currentCrl = pem; }, log: log.child({ component: 'trust' }) })
    : undefined;
  await crlWatch?.start();

  // This cloud's own broker: named in its accepts, with the identity its certificate carries
  // (issue 13). Peers are granted there, per accepted offer, what that offer's transfers need.
  const brokerIdentity = config.amqp.identity ?? config.amqp.servername ?? new URL(config.amqp.url).hostname;
  const ownEndpoint = { uri: config.amqp.url, identity: brokerIdentity };
  const grants = config.amqp.management
    ? new BrokerGrants({
      url: config.amqp.management.url, user: config.amqp.management.user,
      password: (await fs.readFile(config.amqp.management.passwordFile, 'utf8')).trim(),
      vhost: decodeURIComponent(new URL(config.amqp.url).pathname.slice(1)), cloudId,
    })
    : undefined;

  // Issue 16: the base images this cloud holds, by content; every one not hashed yet is hashed now.
  const baseImages = config.migration.baseImages === undefined ? undefined : await BaseImageStore.open(config.migration.baseImages);
  // The host's free capacity and the modes it takes are independent hypervisor reads (about
  // 5 virsh calls over SSH together): asked side by side, not one after the other. Both run to
  // their end; a failure of the capacity read is reported first, as when it ran alone first.
  const [capacityRead, advertRead] = await Promise.allSettled([
    hypervisor.hostCapacity(),
    migrationAdvertOf(hypervisor, {
      ...(config.migration.restoreMachines === undefined ? {} : { restoreMachines: config.migration.restoreMachines }),
    }),
  ]);
  if (capacityRead.status === 'rejected') throw capacityRead.reason;
  if (advertRead.status === 'rejected') throw advertRead.reason;
  const capacity = capacityRead.value;
  const migrationAdvert = advertRead.value;
  // Object storage lent to peers (issue 14): advertised only when the config names a store.
  const objectStorageGiB = config.storage?.capacityGiB ?? 0;
  const lendsStorage = Object.keys(config.storage?.regions ?? {}).length > 0;
  const profile: CloudProfile = {
    regions: config.cloud.regions,
    hypervisors: [hypervisor.kind],
    formats: ['ovf', 'qcow2', 'raw'],
    capabilities: [...CAPABILITIES].filter((c) => lendsStorage || c !== 'storage-federation'),
    capacity: advertisedCapacity(capacity, objectStorageGiB, config.policy.cpuAllocationRatio),
    terms: { currency: config.terms.currency, pricePerVcpuHour: config.terms.pricePerVcpuHour, pricePerGbMonth: config.terms.pricePerGbMonth },
    transferUri: config.amqp.url,
    // Issue 15: the modes this side takes, from its adapter's capabilities (never its kind).
    ...(migrationAdvert === undefined ? {} : { migration: migrationAdvert }),
  };
  const session = new GatewaySession({
    cloudId,
    service: config.xmpp.service,
    domain: config.xmpp.domain,
    pubsubJid: config.xmpp.pubsub,
    directories: config.xmpp.directories.map((d) => ({ domain: d.domain, pubsubJid: d.pubsub })),
    tls: { ca: rootPem, cert: certPem, key: keyPem, servername: config.xmpp.servername ?? config.xmpp.domain },
    trust,
    admission: createOfferAdmission({
      policy: createDefaultPolicy({
        acceptFrom: config.policy.acceptFrom,
        maxVcpusPerVm: config.policy.maxVcpusPerVm,
        maxMemoryMiBPerVm: Math.floor(config.policy.maxMemoryBytesPerVm / MiB),
        quotaReservationsPerCloud: config.policy.quotaReservationsPerCloud,
        ...(config.policy.quotaVcpusPerCloud === undefined ? {} : { quotaVcpusPerCloud: config.policy.quotaVcpusPerCloud }),
        ...(config.storage === undefined ? {} : { storage: storagePolicyOf(config.storage) }),
      }),
      domain: config.xmpp.domain,
      federatedDomains: config.xmpp.directories.map((d) => d.domain),
      capacity: profile.capacity,
      reservationTtlMs: config.policy.reservationSeconds * 1000,
      maxClockSkewMs: config.policy.maxClockSkewMs,
      ...(migrationAdvert === undefined ? {} : { migration: migrationAdvert }),
    }),
    profile,
    transferEndpoint: () => ownEndpoint,
    ...(baseImages === undefined ? {} : { heldBases: heldBasesOf(baseImages, log.child({ component: 'base-images' })) }),
  });
  const sessionLog = log.child({ component: 'xmpp' });
  session.on('status', (status: string) => sessionLog.info({ status }, 'xmpp session'));
  session.on('warning', (err: unknown) => sessionLog.warn({ err }, 'xmpp warning'));

  const metrics = new AgentMetrics();
  const checkEndpoint = endpointCheck({ domain: config.xmpp.domain, ca: rootPem, crl: () => currentCrl });
  const transfer: TransferSettings = {
    cloudId,
    broker: { url: config.amqp.url, ca: rootPem, cert: certPem, key: keyPem, servername: config.amqp.servername ?? brokerIdentity },
    checkEndpoint,
    journalDir: join(stateDir, 'transfers'),
    chunkBytes: config.amqp.chunkBytes,
    windowBytes: config.amqp.chunkBytes * config.amqp.window,
    persistent: config.migration.persistentTransfers,
    onBytes: (direction, bytes) => metrics.transferBytes.inc({ direction }, bytes),
  };

  // The site is this cloud: with LISP it signs the hand-over of a VM's EIDs it holds with its
  // own certificate (the map server checks it under the Root), and presents the one it receives.
  const [certificate, ...chain] = parseCertificatesPem(certPem) as [Certificate, ...Certificate[]];
  const signer: Signer = { certificate, privateKey: privateKeyFromPem(keyPem), ...(chain.length ? { chain } : {}) };
  // LISP, DNS, both or none, from the config: the migration sees only the port. A key or zone
  // the mapping system refuses stops the agent here (exit 2), not a migration halfway.
  const addressing = await createAddresser(config.addressing, { cloudId, signer });
  try {
    if ((await addressing.verify(AbortSignal.timeout(15_000))) === 'unreachable') {
      log.warn({ addressing: addressing.kinds }, 'the addressing server did not answer: re-address steps will retry');
    }
  } catch (err) {
    await addressing.close();
    throw err;
  }

  const precopy = sourcePrecopyPort(hypervisor);
  const sourcePorts: SourcePorts = {
    cloudId,
    hypervisor: sourceHypervisorPort(hypervisor, { shutdownTimeoutMs: config.migration.shutdownTimeoutMs }),
    control: sourceControlPort(session, { currency: config.terms.currency, checkEndpoint, resendMs: config.migration.requestResendMs }),
    transfer: sourceTransferPort(hypervisor, transfer),
    addressing,
    audit,
    ...(precopy === undefined ? {} : { precopy, images: sourceImagePort(hypervisor, transfer) }),
  };
  const mailbox = new SourceRequestMailbox();
  const targetPorts: TargetPorts = {
    cloudId,
    hypervisor: targetHypervisorPort(hypervisor, {
      shutdownTimeoutMs: config.migration.shutdownTimeoutMs,
      networks: { map: config.migration.networks.map, ...(config.migration.networks.default !== undefined ? { default: config.migration.networks.default } : {}) },
      // Issue 16: received overlays are linked onto this cloud's own bases.
      ...(baseImages === undefined ? {} : { baseImages }),
    }),
    receive: targetReceivePort(join(stateDir, 'incoming'), transfer, hypervisor),
    requests: mailbox,
    addressing,
    audit,
  };

  // Storage subcontracts at both ends (issue 14): one object store per configured region.
  const storage = new StorageFederation({
    cloudId, storage: config.storage, stateDir, currency: config.terms.currency, session, broker: transfer.broker, grants, audit,
    log: log.child({ component: 'storage' }),
  });

  const jobLog = log.child({ component: 'sequencer' });
  const sequencer = new Sequencer({
    journalDir: join(stateDir, 'journal'),
    definitions: [
      migrateOutDefinition(sourcePorts), migrateMoveDefinition(sourcePorts), migrateDryRunDefinition(sourcePorts),
      migrateInDefinition(targetPorts), migrateInLiveDefinition(targetPorts), migrateInWarmDefinition(targetPorts), ...storage.definitions(),
    ],
    onEvent: (e: SequencerEvent) => {
      metrics.observe(e);
      if (e.type === 'progress') return;
      const l = jobLog.child({ job: e.jobId, kind: e.kind });
      if (e.type === 'step-failed') l.warn({ step: e.step, error: e.error }, 'step failed');
      else if (e.type === 'job-finished') {
        l.info({ outcome: e.outcome, error: e.error }, 'job finished');
        // A VM came or went: the catalog entry shows the new free capacity.
        republishCapacity().catch((err: unknown) => l.warn({ err }, 'catalog update failed'));
      }
      else l.info({ event: e.type, step: e.step }, e.type);
    },
  });
  async function republishCapacity(): Promise<void> {
    const c = await hypervisor.hostCapacity();
    await session.publishCatalog({ capacity: advertisedCapacity(c, objectStorageGiB, config.policy.cpuAllocationRatio) });
  }
  storage.attach(sequencer);
  // An accepted offer's reservation holds capacity for as long as its inbound job runs, and
  // is released when the job ends, whatever the outcome (issue 12 finding 6).
  const endedOffers = new Set<string>();
  const targetService = new MigrationTargetService(sequencer, mailbox, {
    // The session applied the policy (allow-list, limits, quotas, capacity) already; the pool
    // must also have room for the offered disks now, besides what live reservations hold.
    admit: async (_peer, offer) => checkFreeStorage(hypervisor, offer, session.reservations.held(Date.now()).diskGiB * GiB),
    vmNameInUse: (name) => targetPorts.hypervisor.nameInUse(name, AbortSignal.timeout(30_000)),
    commitTimeoutMs: config.migration.commitTimeoutMs,
    transferEndpoint: () => ownEndpoint,
  }, {
    jobEnded: (offerId, peer) => {
      grants?.withdraw(peer.cloudId, offerId).catch((err: unknown) => log.warn({ err, offer: offerId }, 'could not withdraw the peer\'s broker grant'));
      if (!session.releaseOffer(peer.cloudId, offerId)) {
        // The job ended before the session recorded the reservation: release it when it does.
        endedOffers.add(offerId);
        setTimeout(() => endedOffers.delete(offerId), 60_000).unref();
      }
    },
  });
  session.on('reservation', (r: { reservationId: string; senderCloud: string; offer: { offerId: string } }) => {
    if (endedOffers.delete(r.offer.offerId)) session.releaseOffer(r.senderCloud, r.offer.offerId);
    // A storage reservation stays unused until A begins the subcontract (B's job marks it then).
    else if ((r.offer as { workload?: { type?: string } }).workload?.type !== 'storage') session.useReservation(r.reservationId);
  });
  session.onOffer(async (incoming) => {
    const w = incoming.offer.workload;
    if (w.type === 'storage') {
      try {
        await storage.handleOffer(incoming);
        return undefined;
      } catch (err) {
        log.warn({ err, offer: incoming.offer.offerId }, 'storage offer refused');
        return { reason: rejectReasonOf(err), text: isIntercloudError(err) ? err.message : 'cannot take this storage offer' };
      }
    }
    if (w.type !== 'vm') return { reason: 'policy', text: 'this gateway hosts vms and storage only' };
    const offerId = incoming.offer.offerId;
    const grant = offerGrant(incoming.signer.cloudId, offerId, w.disks, incoming.offer.mode);
    try {
      // The peer may touch, at this cloud's broker, the resources of this offer's transfers
      // only; a broker that does not answer refuses the offer (`unavailable`, retryable).
      await grants?.grant(grant);
      try {
        await targetService.handleOffer(
          { cloudId: incoming.signer.cloudId, jid: incoming.from.split('/')[0] ?? incoming.from },
          { offerId, vm: summaryFromWorkload(w as ReturnType<typeof vmWorkload>), ...(incoming.offer.mode === undefined ? {} : { mode: incoming.offer.mode }) },
          // The reservation admission made, which the accept carries: the job's only one.
          incoming.reservation,
        );
      } catch (err) {
        await grants?.withdraw(grant.peer, offerId);
        throw err;
      }
      return undefined;
    } catch (err) {
      log.warn({ err, offer: incoming.offer.offerId }, 'offer refused');
      return { reason: rejectReasonOf(err), text: isIntercloudError(err) ? err.message : 'cannot take this offer' };
    }
  });
  // A peer's <cancel> of its offer cancels the inbound job; its reservation stays held until the
  // job has ended (jobEnded above), and a committed job is not cancelled (issue 12, findings 6, 8).
  session.onCancel(async (_cancel, from, reservation) => {
    if (reservation.offer.workload.type === 'storage') {
      try {
        return await storage.handleCancel({ cloudId: reservation.senderCloud, jid: from.split('/')[0] ?? from }, reservation.offer.offerId);
      } catch (err) {
        log.warn({ err, offer: reservation.offer.offerId }, 'peer cancel of a storage offer refused');
        return { action: 'refuse', text: isIntercloudError(err) ? err.message : 'cannot cancel this offer' };
      }
    }
    try {
      const r = await targetService.handleCancel({ cloudId: reservation.senderCloud, jid: from.split('/')[0] ?? from }, reservation.offer.offerId);
      return r === 'cancelling' ? { action: 'hold' } : undefined;
    } catch (err) {
      log.warn({ err, offer: reservation.offer.offerId }, 'peer cancel refused');
      return { action: 'refuse', text: isIntercloudError(err) ? err.message : 'cannot cancel this offer' };
    }
  });
  serveMigrationRequests(session, targetService);

  await session.start();
  await session.publishCatalog();
  // The live subcontracts' reservations are held again before their jobs resume (B's await-begin marks its one used).
  await storage.restoreReservations();
  const resumed = await sequencer.resumeAll();
  if (resumed.length) log.info({ jobs: resumed.map((r) => r.jobId) }, 'resumed unfinished jobs');
  // Live subcontracts: their replicas are served (B) and replicated (A) again.
  await storage.resume();
  // The broker kept the grants across a restart: make them match the inbound jobs that run.
  const jobsNow = await sequencer.list();
  await grants?.reconcile([...liveGrants(jobsNow), ...storage.liveGrants(jobsNow)]).catch((err: unknown) => {
    log.warn({ err }, 'could not reconcile peers\' broker grants: they are set again at the next offer or job end');
  });
  // A peer may declare its granted queue names first as streams, which no policy bounds: deleted.
  const deleteQueuesAsThisCloud = async (names: string[]): Promise<void> => {
    const conn = await connectBroker(transfer.broker);
    try {
      const ch = await conn.createChannel();
      for (const name of names) await ch.deleteQueue(name);
      await ch.close();
    } finally {
      await conn.close().catch(() => undefined);
    }
  };
  const sweepQueues = async (): Promise<void> => {
    const swept = await grants?.sweep(deleteQueuesAsThisCloud).catch((err: unknown) => {
      log.warn({ err }, 'could not sweep the broker\'s transfer queues');
      return undefined;
    });
    if (swept?.foreign.length) log.warn({ queues: swept.foreign }, 'deleted transfer queues a peer declared as other than classic queues (a stream or quorum queue escapes the queue limits)');
    for (const c of swept?.cut ?? []) {
      log.error({ peer: c.peer, queues: c.queues, max: MAX_PEER_QUEUES, maxNew: MAX_NEW_PEER_QUEUES }, 'cut a peer off from this cloud\'s broker: its transfers held, or made since the last sweep, more queues than any transfers need; its permission is withdrawn until the agent restarts, its connections closed and its queues deleted');
    }
  };
  await sweepQueues();
  const queueSweep = grants ? setInterval(() => void sweepQueues(), FOREIGN_QUEUE_SWEEP_MS) : undefined;
  queueSweep?.unref();

  const api = await startLocalApi(config.api.socket, {
    cloudId,
    startMigration: async (req: MigrationRequest) => {
      const offerId = randomUUID();
      const input: MigrateOutInput = {
        vm: req.vm, offerId,
        ...(req.to ? { to: req.to } : {}), ...(req.region ? { region: req.region } : {}),
        ...(req.addresses ? { addresses: req.addresses } : {}),
        ...(req.mode ? { mode: req.mode } : {}), ...(req.fallback ? { fallback: req.fallback } : {}),
      };
      // A move with a mode (issue 15) runs as `migrate-move`; without, the cold `migrate-out` as before.
      const kind = req.dryRun ? 'migrate-dry-run' : req.mode === undefined || (req.mode === 'cold' && req.fallback === undefined) ? 'migrate-out' : 'migrate-move';
      const { jobId } = await sequencer.start(kind, `out-${offerId}`, input);
      return { jobId };
    },
    listJobs: () => sequencer.list(),
    job: (id) => sequencer.status(id),
    cancel: (id) => sequencer.cancel(id),
    subscribe: (id, listener) => sequencer.watch((e) => { if (e.jobId === id) listener(e); }),
    storage: {
      subcontract: (req) => storage.subcontract(req),
      list: () => storage.list(),
      status: (id, o) => storage.status(id, o),
      verify: (id, o) => storage.verify(id, o),
      end: (id) => storage.end(id),
      put: (id, key, body, o) => storage.put(id, key, body, o),
      subscribe: (listener) => storage.subscribe(listener),
    },
    peerTimes: async () => {
      const out = [];
      for (const jid of session.onlinePeers()) {
        try {
          const t = await session.peerTime(`${jid}/${GATEWAY_RESOURCE}`);
          out.push({ peer: jid.split('@')[0] ?? jid, offsetMs: t.offsetMs, roundTripMs: t.rttMs, measuredAt: Date.now() });
        } catch (err) {
          log.debug({ err, peer: jid }, 'no entity time from peer');
        }
      }
      return out;
    },
  });
  storage.registerMetrics(metrics.registry);
  let metricsServer: Server | undefined;
  if (config.metrics.listen) metricsServer = await metrics.serve(config.metrics.listen);
  log.info({ cloud: cloudId, jid: session.jid, socket: config.api.socket, metrics: config.metrics.listen, addressing: addressing.kinds }, 'gateway up');
  // A peer's transfer into this cloud is held here message by message: this cloud's broker's cap
  // on a message is what bounds it (protocols/amqp/README.md, Limits). Asked once, in the background.
  probeMessageCap(transfer.broker, cloudId).then((cap) => {
    if (cap === 'capped') log.info({ maxMessageBytes: MAX_TRANSFER_MESSAGE_BYTES }, 'this cloud\'s broker refuses messages over the cap');
    else {
      log.error({ broker: config.amqp.url, maxMessageBytes: MAX_TRANSFER_MESSAGE_BYTES },
        `this cloud's broker takes messages over ${MAX_TRANSFER_MESSAGE_BYTES} bytes: set max_message_size = ${MAX_TRANSFER_MESSAGE_BYTES} in its rabbitmq.conf, `
        + 'or a peer\'s transfer can make this agent hold 16 messages of the broker\'s largest (RabbitMQ\'s default: 128 MiB)');
    }
  }, (err: unknown) => log.warn({ err }, 'could not ask this cloud\'s broker for its cap on a message'));

  return {
    sequencer, session, hypervisor,
    async stop() {
      if (queueSweep) clearInterval(queueSweep);
      api.close();
      metricsServer?.close();
      crlWatch?.stop();
      await storage.stop();
      await sequencer.stop();
      await session.stop();
      await addressing.close();
      await hypervisor.close();
      await auditLog.close();
      log.info('gateway stopped');
    },
  };
}

/** The grants of the inbound jobs that run (their peers may still send). */
function liveGrants(jobs: ReadonlyArray<{ kind: string; state: string; input: unknown }>): OfferGrant[] {
  return jobs.filter((j) => (j.kind === 'migrate-in' || j.kind === 'migrate-in-live' || j.kind === 'migrate-in-warm') && j.state === 'running').map((j) => {
    const input = j.input as MigrateInInput;
    return offerGrant(input.peer.cloudId, input.offerId, input.vm.disks, input.mode);
  });
}

/**
 * What a peer may send for an offer: its disks' transfers (cold), or every transfer under the
 * offer's move prefix (warm and live: as many chain images as its pre-copy takes; live: and the state).
 */
function offerGrant(peer: string, offerId: string, disks: ReadonlyArray<{ id: string }>, mode: MigrationMode | undefined): OfferGrant {
  if (mode === 'live' || mode === 'warm') return { peer, offerId, transferIds: [], transferPrefixes: [moveTransferPrefix(offerId)] };
  return { peer, offerId, transferIds: disks.map((d) => transferIdFor(offerId, d.id)) };
}

/** The reject reason a peer is sent for the target service's refusal of an offer. */
function rejectReasonOf(err: unknown): RejectReason {
  // This cloud's broker cannot take the peer's data now (down, or refusing the agent's grant).
  if (isIntercloudError(err, 'XFER_BROKER') || isIntercloudError(err, 'XFER_BROKER_AUTH')) return 'unavailable';
  if (isIntercloudError(err, 'MIGRATE_NAME_TAKEN')) return 'name-taken';
  if (isIntercloudError(err, 'MIGRATE_BAD_VM_NAME')) return 'malformed';
  if (isIntercloudError(err, 'MIGRATE_NO_CAPACITY')) return 'no-capacity';
  return 'policy';
}

