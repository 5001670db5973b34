/**
 * The migration's control port on the XMPP session: find and verify the peer, offer,
 * and the instantiate/commit/release requests; plus the target side, serving those
 * requests from the session into the {@link MigrationTargetService}.
 */
import type { Element } from '@xmpp/client';
import { IntercloudError, isIntercloudError, messageOf } from '../../protocols/errors/index.js';
import {
  NS_MIGRATION, RETRYABLE_REJECT_REASONS, buildInstantiate, buildMigrationFailure, buildMigrationState, buildOfferRequest, migrationRequestPayload, parseMigrationFailure,
  parseMigrationRequest, parseMigrationState, type GatewaySession, type MigrationRequest, type PeerInfo,
} from '../../protocols/xmpp/index.js';
import type { ControlPort, DataEndpoint, MigrationTargetService, PeerRef, VmSummary } from '../migration/index.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** How long the source waits for each kind of answer. */
export const REQUEST_TIMEOUTS_MS = { instantiate: 300_000, commit: 120_000, release: 300_000 } as const;

/**
 * How often an unanswered instantiate or commit is sent again. Between two Roots, a stanza
 * written into an s2s connection that is then reset is lost without a bounce (no stream
 * management on s2s), and presence of a remote gateway does not go unavailable: without a
 * resend the source would learn it only at the request's timeout. Both requests are idempotent
 * at the target (keyed on the offer; a repeat joins the running work).
 */
export const REQUEST_RESEND_MS = 30_000;

/**
 * Sends a request with `send(timeoutMs)` and again every `resendMs` while no copy is answered,
 * until `deadlineMs` from now; resolves with the first answer. A copy's refusal (any error but
 * `XMPP_TIMEOUT`) is the answer: it rejects at once. At the deadline, the timeout rejects.
 */
export function sendUntilAnswered<T>(
  send: (timeoutMs: number) => Promise<T>,
  o: { deadlineMs: number; resendMs: number; signal?: AbortSignal },
): Promise<T> {
  const start = Date.now();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let pending = 0;
    let timer: NodeJS.Timeout | undefined;
    // The step ended (cancelled, or the peer left): no more copies.
    const onAbort = (): void => finish(() => reject(o.signal?.reason as Error));
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    if (o.signal?.aborted) { onAbort(); return; }
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const attempt = (): void => {
      const left = o.deadlineMs - (Date.now() - start);
      pending++;
      send(left).then(
        (v) => finish(() => resolve(v)),
        (err: unknown) => {
          pending--;
          // A timeout of one copy is not an answer while another copy may still be answered.
          if (!isIntercloudError(err, 'XMPP_TIMEOUT') || (pending === 0 && timer === undefined)) finish(() => reject(err as Error));
        },
      );
      if (left > o.resendMs) {
        timer = setTimeout(() => { timer = undefined; if (!settled) attempt(); }, o.resendMs);
      }
    };
    attempt();
  });
}

const UNAVAILABLE = new Set(['service-unavailable', 'recipient-unavailable', 'remote-server-timeout', 'remote-server-not-found', 'item-not-found']);

/** Turns a peer's refusal back into its coded error; transport problems stay retryable. */
export function fromPeer(err: unknown, what: string, peer: PeerRef): never {
  if (isIntercloudError(err, 'XMPP_STANZA_ERROR')) {
    const failure = parseMigrationFailure(err.details['application'] as Element | undefined);
    if (failure) {
      throw new IntercloudError(failure.code, `${peer.cloudId}: ${what}: ${String(err.details['text'] ?? err.message)}`, { retryable: failure.retryable, cause: err });
    }
    // No answer from the peer's agent itself (it is offline or restarting): try again later.
    if (UNAVAILABLE.has(String(err.details['condition']))) {
      throw new IntercloudError('XMPP_PEER_UNAVAILABLE', `${peer.cloudId}: ${what}: the peer's gateway is not online`, { cause: err, details: err.details });
    }
  }
  if (err instanceof IntercloudError) throw err;
  throw new IntercloudError('XMPP_CONNECT', `${peer.cloudId}: ${what}: ${messageOf(err)}`, { retryable: true, cause: err });
}

/**
 * Settles like `pending`, unless the peer's gateway goes offline first (unavailable
 * presence, RFC 6121 §4.5.2): a request it received before it died is never answered, so
 * waiting out the long timeout would only delay the retry. Rejects then with the retryable
 * `XMPP_PEER_UNAVAILABLE`; the step is retried once the peer is back.
 */
function unlessPeerLeaves<T>(session: GatewaySession, peer: PeerRef, what: string, pending: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onPresence = (p: { from: string; type: string }): void => {
      if (p.type !== 'unavailable' || p.from.split('/')[0] !== peer.jid) return;
      session.off('presence', onPresence);
      reject(new IntercloudError('XMPP_PEER_UNAVAILABLE', `${peer.cloudId}: ${what}: the peer's gateway went offline before answering`, {
        details: { from: p.from },
      }));
    };
    session.on('presence', onPresence);
    pending.then(
      (v) => { session.off('presence', onPresence); resolve(v); },
      (err: unknown) => { session.off('presence', onPresence); reject(err as Error); },
    );
  });
}

/** Picks the best peer: cheapest vCPU, then lowest round trip. */
export function choosePeer(peers: readonly PeerInfo[]): PeerInfo | undefined {
  return [...peers]
    .filter((p) => p.unreachable === undefined && p.resources.length > 0)
    .sort((a, b) => a.entry.terms.pricePerVcpuHour - b.entry.terms.pricePerVcpuHour || (a.rttMs ?? 1e9) - (b.rttMs ?? 1e9))[0];
}

/** Options of {@link sourceControlPort}. */
export interface SourceControlOptions {
  currency: string;
  /**
   * Checks the data endpoint a peer's accept names — that it is the peer's own broker (issue
   * 13) — before the migration goes on; throws a coded error (`XFER_BROKER_IDENTITY`) if not.
   */
  checkEndpoint(claim: { uri: string; identity?: string }, peer: PeerRef, signal: AbortSignal): Promise<DataEndpoint>;
  /** How often an unanswered instantiate or commit is sent again (default {@link REQUEST_RESEND_MS}). */
  resendMs?: number;
}

/** The source side's control port. */
export function sourceControlPort(session: GatewaySession, opts: SourceControlOptions): ControlPort {
  // Every request is signed afresh (new nonce, short expiry) for the peer it goes to: a retry
  // after a crash is a new message, not a replay.
  const request = async (peer: PeerRef, req: MigrationRequest, what: keyof typeof REQUEST_TIMEOUTS_MS, signal?: AbortSignal): Promise<'running' | 'released'> => {
    const send = async (timeoutMs: number): Promise<Element> => {
      const signature = await session.signRequest(migrationRequestPayload(req, peer.cloudId));
      const child = req.type === 'instantiate' ? buildInstantiate(req.request, signature) : buildOfferRequest(req.type, req.offerId, signature);
      return session.request(peer.jid, child, timeoutMs);
    };
    // Instantiate and commit are idempotent at the target: sent again while unanswered. A release
    // is sent once (a second one racing the first could find the job mid-cancel).
    // The resend loop stops with the step's signal, or as soon as the peer is seen leaving.
    const stop = new AbortController();
    const onStep = (): void => stop.abort(signal?.reason);
    signal?.addEventListener('abort', onStep, { once: true });
    const answer = what === 'release'
      ? send(REQUEST_TIMEOUTS_MS[what])
      : sendUntilAnswered(send, { deadlineMs: REQUEST_TIMEOUTS_MS[what], resendMs: opts.resendMs ?? REQUEST_RESEND_MS, signal: stop.signal });
    try {
      return parseMigrationState(await unlessPeerLeaves(session, peer, what, answer));
    } catch (err) {
      return fromPeer(err, what, peer);
    } finally {
      signal?.removeEventListener('abort', onStep);
      stop.abort();
      answer.catch(() => undefined);
    }
  };
  return {
    async findPeer(want) {
      const peers = await session.discoverPeers({
        capability: 'vm-hosting', excludeCloud: session.cloudId,
        minVcpus: want.vm.vcpus, minMemoryMiB: Math.ceil(want.vm.memoryBytes / MiB),
        ...(want.region ? { region: want.region } : {}),
      }, { refresh: true, measure: want.to === undefined });
      const chosen = want.to ? peers.find((p) => p.entry.cloudId === want.to && p.resources.length > 0) : choosePeer(peers);
      if (!chosen) {
        throw new IntercloudError('MIGRATE_NO_PEER', want.to
          ? `cloud '${want.to}' is not online in the directory, or cannot host a vm of ${want.vm.vcpus} vcpus and ${want.vm.memoryBytes / MiB} mib`
          : `no online cloud matches${want.region ? ` region '${want.region}' and` : ''} ${want.vm.vcpus} vcpus, ${want.vm.memoryBytes / MiB} mib`);
      }
      return { cloudId: chosen.entry.cloudId, jid: chosen.entry.jid };
    },
    async verifyPeer(peer) {
      // The catalog entry was verified against the Intercloud Root when read; the accept is
      // verified again (chain, revocation, identity = JID) by the session.
      const [p] = (await session.discoverPeers({ excludeCloud: session.cloudId })).filter((x) => x.entry.cloudId === peer.cloudId);
      if (!p) throw new IntercloudError('MIGRATE_NO_PEER', `cloud '${peer.cloudId}' left the directory`);
      return { fingerprint: p.entry.certificateSha256 };
    },
    async offer(peer, offer, signal) {
      const outcome = await session.sendOffer(peer.jid, {
        offerId: offer.offerId,
        workload: vmWorkload(offer.vm),
        constraints: { regions: offer.region ? [offer.region] : [] },
        terms: { currency: opts.currency },
        // Issue 15: the mode both sides must agree (the session checks the accept names it).
        ...(offer.mode === undefined ? {} : { mode: offer.mode }),
        ...(offer.state === undefined ? {} : { state: offer.state }),
      });
      if (outcome.type === 'reject') {
        // A reason of RFC 6120 type `wait` (its broker is down, no capacity now) may pass.
        throw new IntercloudError('MIGRATE_REJECTED', `cloud '${peer.cloudId}' rejected the offer: ${outcome.reason}${outcome.text ? ` (${outcome.text})` : ''}`, {
          details: { reason: outcome.reason }, retryable: RETRYABLE_REJECT_REASONS.has(outcome.reason),
        });
      }
      const a = outcome.accept;
      // The accept is the one source of truth for where the data goes: the peer's own broker,
      // checked to be the peer's before a byte is sent (issue 13).
      // Issue 16: held bases only for disks that offered one (the accept is signed, but a
      // target that names another disk does not follow the protocol: nothing is sent to it).
      const bases = a.bases ?? [];
      const stray = bases.filter((id) => !offer.vm.disks.some((d) => d.id === id && d.base !== undefined));
      if (stray.length > 0) {
        throw new IntercloudError('MIGRATE_BAD_ACCEPT', `cloud '${peer.cloudId}' accepted offer '${offer.offerId}' naming held bases for disks that offered none: ${stray.map((s) => `'${s}'`).join(', ')}`, {
          retryable: false, details: { disks: stray },
        });
      }
      const transfer = await opts.checkEndpoint({ uri: a.transferUri, ...(a.transferIdentity === undefined ? {} : { identity: a.transferIdentity }) }, peer, signal);
      return { reservationId: a.reservationId, transfer, expiresAt: a.expires, ...(bases.length === 0 ? {} : { bases: [...bases] }) };
    },
    async advert(peer) {
      // The peer's signed catalog entry, as verified when read.
      const [p] = (await session.discoverPeers({ excludeCloud: session.cloudId })).filter((x) => x.entry.cloudId === peer.cloudId);
      return p?.entry.migration;
    },
    async release(peer, offerId) {
      await request(peer, { type: 'release', offerId }, 'release');
    },
    async instantiate(peer, order, signal) {
      await request(peer, { type: 'instantiate', request: order }, 'instantiate', signal);
      return { state: 'running' };
    },
    async commit(peer, offerId, signal) {
      await request(peer, { type: 'commit', offerId }, 'commit', signal);
      return { state: 'running' };
    },
  };
}

/** The offer's workload for a VM summary. */
export function vmWorkload(vm: VmSummary) {
  return {
    type: 'vm' as const,
    name: vm.name,
    vcpus: vm.vcpus,
    memoryMiB: Math.ceil(vm.memoryBytes / MiB),
    firmware: 'bios' as const,
    // Issue 16: an overlay disk names its base's content hash (the target may hold it).
    disks: vm.disks.map((d) => ({ id: d.id, sizeGiB: Math.max(1, Math.ceil(d.capacityBytes / GiB)), format: 'raw', ...(d.base === undefined ? {} : { base: d.base }) })),
    nics: vm.macs.map((mac) => ({ mac })),
  };
}

/** The VM summary a target reads from an accepted offer's workload. */
export function summaryFromWorkload(w: ReturnType<typeof vmWorkload>): VmSummary {
  return {
    name: w.name, vcpus: w.vcpus, memoryBytes: w.memoryMiB * MiB, macs: w.nics.map((n) => n.mac),
    disks: w.disks.map((d) => ({ id: d.id, capacityBytes: Math.round(d.sizeGiB * GiB), ...(d.base === undefined ? {} : { base: d.base }) })), addresses: [],
  };
}

/**
 * Serves the source's migration requests on the target, from the session into the service.
 * A request is acted on only when signed (issue 12 finding 7): by the certificate naming the
 * sending JID's cloud and that JID, for this cloud, fresh and not replayed; the peer is then
 * the verified cloud id and full bare JID, and the service acts only for the offer's own peer.
 */
export function serveMigrationRequests(session: GatewaySession, service: MigrationTargetService): void {
  const handler = async (el: Element, from: string): Promise<Element> => {
    try {
      const req = parseMigrationRequest(el);
      const signer = await session.verifyRequest(from, req.signature, migrationRequestPayload(req, session.cloudId));
      const peer: PeerRef = { cloudId: signer.cloudId, jid: signer.jid };
      switch (req.type) {
        case 'instantiate':
          await service.handleInstantiate(peer, { ...req.request, digests: { ...req.request.digests }, addresses: [...req.request.addresses] });
          return buildMigrationState('running');
        case 'commit':
          await service.handleCommit(peer, req.offerId);
          return buildMigrationState('running');
        case 'release':
          await service.handleRelease(peer, req.offerId);
          return buildMigrationState('released');
      }
    } catch (err) {
      const e = err instanceof IntercloudError ? err : new IntercloudError('MIGRATE_FAILED', messageOf(err));
      return buildMigrationFailure(e.code, e.message, e.retryable);
    }
  };
  for (const name of ['instantiate', 'commit', 'release']) session.serveRequests(NS_MIGRATION, name, handler);
}
