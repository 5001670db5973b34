/**
 * What a migration needs from the rest of the agent, as narrow interfaces ("ports").
 * The daemon wires them to the real parts (hypervisor adapter, XMPP session, AMQP
 * transfer, descriptors, trust, addressing); unit tests wire them to fakes. The step
 * definitions in `source.ts` and `target.ts` see nothing else, so no backend detail
 * leaks into the sequence.
 *
 * Every port call must be idempotent for the same arguments: a step may run again after
 * a crash.
 */

import type { MigrationAdvert, MigrationMode, StateNeeds } from '../../protocols/xmpp/index.js';

/** A VM as the migration sees it: what must be the same on both sides. */
export interface VmSummary {
  name: string;
  vcpus: number;
  memoryBytes: number;
  macs: string[];
  /**
   * `base` (issue 16): the whole-image SHA-256 of the raw base the disk is a qcow2 overlay on,
   * when the source offers to send the overlay alone to a target that holds that base.
   */
  disks: Array<{ id: string; capacityBytes: number; base?: string }>;
  /** The VM's addresses (EIDs) to keep reachable after the move. */
  addresses: string[];
}

/** What the source sends the target once the disks are there. */
export interface InstantiateOrder {
  offerId: string;
  /** The VM's portable descriptor (OVF). */
  descriptor: string;
  /** disk id → SHA-256 of what was sent. */
  digests: Record<string, string>;
  /** The VM's addresses, registered by the target once the VM runs there. */
  addresses: string[];
  /**
   * The source's hand-over of those addresses to the target, signed under the Intercloud Root
   * (opaque here: made by the source's {@link AddressingPort.signHandOver}, presented by the
   * target's {@link AddressingPort.register}). Absent when the source's addressing has none.
   */
  handOver?: string;
}

/** A peer cloud, once found. */
export interface PeerRef {
  cloudId: string;
  jid: string;
}

/**
 * Where the source sends the disks: the target's own broker, as the target's signed accept
 * names it (issue 13) — the one source of truth; no config of the source names it.
 */
export interface DataEndpoint {
  /** `amqps://HOST:PORT/VHOST` of the target's broker. */
  uri: string;
  /**
   * The DNS name the broker's certificate must carry, under the target's `<cloud>.<domain>`.
   * Absent only in journals written before issue 13: the transfer port then refuses to send.
   */
  identity?: string;
}

/** The target's acceptance of an offer. */
export interface Reservation {
  reservationId: string;
  /** Where disks go. */
  transfer: DataEndpoint;
  expiresAt: string;
  /**
   * Issue 16: the ids of the offered disks whose base (their `base` hash) the target holds:
   * those disks travel as their overlays only, linked at the target onto its own base. Absent: none.
   */
  bases?: string[];
}

/** The local hypervisor, as the migration uses it. */
export interface HypervisorPort {
  /** The VM's summary and its portable descriptor (OVF text); not-found is an error. */
  describe(vm: string, signal: AbortSignal): Promise<{ summary: VmSummary; descriptor: string }>;
  /** `absent` when no VM has this name. */
  state(vm: string, signal: AbortSignal): Promise<'running' | 'stopped' | 'absent'>;
  /** Graceful shutdown, then force-off after a timeout; a stopped VM is fine. */
  stop(vm: string, signal: AbortSignal): Promise<void>;
  /** Starts a defined VM; a running one is fine. */
  start(vm: string, signal: AbortSignal): Promise<void>;
  /** Undefines the VM and removes its disks; an absent VM is fine. */
  remove(vm: string, signal: AbortSignal): Promise<void>;
}

/** Directory, trust and negotiation with peers (the XMPP control plane). */
export interface ControlPort {
  /** Finds the target: the named cloud, or the best match for the VM and region. */
  findPeer(want: { to?: string; region?: string; vm: VmSummary }, signal: AbortSignal): Promise<PeerRef>;
  /** Verifies the peer's certificate under the Intercloud Root; returns its fingerprint. */
  verifyPeer(peer: PeerRef, signal: AbortSignal): Promise<{ fingerprint: string }>;
  /** Offers the VM; resolves with a reservation or throws a coded rejection (not retryable). */
  offer(peer: PeerRef, offer: { offerId: string; vm: VmSummary; region?: string; mode?: MigrationMode; state?: StateNeeds }, signal: AbortSignal): Promise<Reservation>;
  /**
   * The migration modes the peer's signed catalog entry advertises (issue 15); `undefined`:
   * none (it takes `cold` only). Absent: every peer is taken as cold only.
   */
  advert?(peer: PeerRef, signal: AbortSignal): Promise<MigrationAdvert | undefined>;
  /**
   * Releases the reservation of `offerId`: the target removes whatever it made for it (staged
   * disks, a defined or running VM). Idempotent; fine when nothing was made.
   */
  release(peer: PeerRef, offerId: string, signal: AbortSignal): Promise<void>;
  /** Asks the target to instantiate the received VM; resolves once it runs there. Idempotent. */
  instantiate(peer: PeerRef, req: InstantiateOrder, signal: AbortSignal): Promise<{ state: 'running' }>;
  /**
   * Makes the move final: the target checks that the VM runs and records that it will not
   * remove it any more (its point of no return), or refuses with a coded error. Idempotent.
   */
  commit(peer: PeerRef, offerId: string, signal: AbortSignal): Promise<{ state: 'running' }>;
}

/** Moving disks (AMQP reliable transfer). */
export interface TransferPort {
  /** Sends one disk of a (stopped) VM; resolves with its SHA-256 once the target committed it. */
  sendDisk(
    /** `overlay`: the target holds the disk's base (issue 16): send the overlay's own bytes, not the flattened disk. */
    req: { offerId: string; vm: string; diskId: string; reservation: Reservation; peer: PeerRef; overlay?: boolean },
    progress: (p: { bytesDone: number; bytesTotal: number }) => void,
    signal: AbortSignal,
  ): Promise<{ sha256: string; bytes: number; bytesSent: number }>;
}

/**
 * One image of a warm or live move (issue 15): image `depth` of disk `diskId`'s chain
 * (`{ diskId, depth }`), or the VM's saved memory and device state (`'state'`).
 */
export type MoveImage = { readonly diskId: string; readonly depth: number } | 'state';

/** Moving the images of a warm or live move (the AMQP reliable transfer, one transfer each). */
export interface ImageTransferPort {
  /**
   * Sends one image of the VM's chain, or its saved state, to the target; resolves with its
   * SHA-256 once the target committed it. The image must no longer change (below the newest
   * overlay, or the newest once the VM is paused, stopped or saved). The state of a VM paused for
   * the cut-over is saved first, and sent from the moment its file is whole: the hypervisor may
   * still be stopping the VM when this resolves ({@link PrecopyPort.saveState} waits for that).
   * Idempotent (a repeat resumes).
   */
  sendImage(
    req: { offerId: string; vm: string; image: MoveImage; reservation: Reservation; peer: PeerRef },
    progress: (p: { bytesDone: number; bytesTotal: number }) => void,
    signal: AbortSignal,
  ): Promise<{ sha256: string; bytes: number; bytesSent: number }>;
}

/** One image of a running VM's disk chain, as the source's hypervisor stores it. */
export interface ChainImageInfo {
  readonly diskId: string;
  /** 0 is the base; `k` the overlay round `k` started. */
  readonly depth: number;
  readonly sizeBytes: number;
}

/**
 * The source's hypervisor for a warm or live move (issue 15): disk pre-copy rounds and the
 * cut-over, from the adapter's optional capabilities (never its kind). The rounds live in the
 * hypervisor (the domain's chain), so {@link chain} tells a restarted step where it was.
 */
export interface PrecopyPort {
  /** What the adapter can do for `vm` (change tracking, state capture and the state's needs). */
  support(vm: string, signal: AbortSignal): Promise<{ changeTracking: boolean; stateCapture: boolean; state?: StateNeeds }>;
  /** Starts a round: each disk's current image stops changing, a new overlay takes the writes. Not idempotent. */
  startRound(vm: string, signal: AbortSignal): Promise<{ round: number }>;
  /** Each disk's chain now, base first. Idempotent. */
  chain(vm: string, signal: AbortSignal): Promise<ChainImageInfo[][]>;
  /**
   * Pauses the VM (live cut-over): it writes nothing more, its newest images can be sent while
   * its state is saved. Idempotent (a paused or saved VM stays so).
   */
  pause(vm: string, signal: AbortSignal): Promise<void>;
  /**
   * Saves memory and device state and stops the (paused) VM (live cut-over); while a save of it
   * runs, answers when that one ends. Idempotent.
   */
  saveState(vm: string, signal: AbortSignal): Promise<{ sizeBytes: number }>;
  /** Resumes the VM here from its state file if it was saved, or where it is if paused (a failed cut-over). Idempotent. */
  resumeFromState(vm: string, signal: AbortSignal): Promise<void>;
  /** Merges the overlays back into each disk's base while the VM runs. Idempotent. */
  abortTracking(vm: string, signal: AbortSignal): Promise<void>;
  /** Removes the saved state (the VM runs elsewhere now). Idempotent. */
  discardState(vm: string, signal: AbortSignal): Promise<void>;
}

/** What a re-address moves: the VM's name and its addresses (EIDs). */
export interface AddressedVm {
  /** The VM's name (the same in both clouds); a DNS addresser publishes it as `<name>.<zone>`. */
  name: string;
  /** The VM's addresses (EIDs) to keep reachable; a LISP addresser maps them. */
  addresses: string[];
}

/**
 * The addresser: addressing continuity of this cloud's own site, whatever the mapping system
 * (LISP Map-Register of the VM's EIDs to this site's RLOCs, or a DNS update of the VM's name
 * to this site's locators — the daemon builds it from the config, the migration does not
 * know which). `register` makes the VM reachable through this site, `withdraw` removes this
 * site's part only (another site's registration of the same VM stays). Both resolve only once
 * the mapping system confirmed (LISP Map-Notify, DNS signed update response). Idempotent; an
 * absent registration is fine to withdraw.
 */
export interface AddressingPort {
  /**
   * Makes `vm` reachable through this site. `handOver` — the holder's signed hand-over from the
   * instantiate order — is presented first when the addresses come from another site (a LISP
   * mapping system lets a site take another's EIDs only with it; DNS has no use for it).
   */
  register(vm: AddressedVm, signal: AbortSignal, handOver?: string): Promise<void>;
  withdraw(vm: AddressedVm, signal: AbortSignal): Promise<void>;
  /**
   * What of `vm` this site holds already, as its own registrations (no query of other sites'):
   * the `addresses` of `vm` (or overlapping them) it keeps registered, and whether it publishes
   * `vm`'s name. The target refuses a migration that would register what it holds — for a VM of
   * its own — so that the migration's compensation never withdraws it. Throws, before anything
   * is registered, a coded error when `vm` cannot be addressed at all (a DNS addresser: a name
   * that is not a lowercase host label).
   */
  held(vm: AddressedVm, signal: AbortSignal): Promise<{ addresses: string[]; name: boolean }>;
  /**
   * As the holder of `addresses`, signs their hand-over to cloud `to` for offer `offerId`
   * (the source, before it asks the target to instantiate). Absent, or resolving undefined,
   * when this site's addressing has no such thing (no LISP mapping). Not idempotent in its
   * bytes (each call signs anew), which is fine: the target keeps the first order it gets.
   */
  signHandOver?(req: { addresses: string[]; to: string; offerId: string }, signal: AbortSignal): Promise<string | undefined>;
}

/** The audit trail of intercloud actions. */
export interface AuditPort {
  record(event: string, fields: Record<string, unknown>): Promise<void>;
}

/** Everything the source side of a migration uses. */
export interface SourcePorts {
  cloudId: string;
  hypervisor: HypervisorPort;
  control: ControlPort;
  transfer: TransferPort;
  addressing: AddressingPort;
  audit: AuditPort;
  /** Pre-copy and cut-over of a running VM (warm and live moves); absent: cold only. */
  precopy?: PrecopyPort;
  /** Sends the images of a warm or live move; absent: cold only. */
  images?: ImageTransferPort;
}

/**
 * A VM this target defined for an offer: its name and the UUID the target chose for it
 * (recorded in the job's journal before anything was defined). A domain of that name with
 * another UUID is not ours: the target never starts, stops or removes it.
 */
export interface LocalVmRef {
  name: string;
  uuid: string;
}

/** What the target's define step made, as recorded in its journal. */
export interface DefinedVm {
  /** The local VM name (the offer's). */
  vm: string;
  /** The domain's UUID (the one in the job's input). */
  uuid: string;
  /** Storage the define step made or took over for this VM (removed on compensation). */
  volumes: string[];
  /** What of the peer's descriptor was not kept (host paths, network names …). */
  losses: Array<{ severity: 'loss' | 'note'; path: string; message: string; value?: string }>;
}

/** The local hypervisor, as the receiving side uses it. */
export interface TargetHypervisorPort {
  /** Whether a VM of this name exists here (whoever made it). */
  nameInUse(name: string, signal: AbortSignal): Promise<boolean>;
  /**
   * Defines the VM `vm` from the source's portable descriptor and the received disk files
   * (`disks`: disk id → local path), built from those files and the descriptor's hardware
   * only. Refuses (`MIGRATE_BAD_DESCRIPTOR`) a descriptor that is not the offer's VM, and
   * (`MIGRATE_BAD_DISK`) a file that names another file of the host. Idempotent: a domain of
   * the name with `vm.uuid` (an earlier attempt) is taken as it is; one with another UUID is
   * refused with `MIGRATE_NAME_TAKEN`, never adopted.
   */
  define(req: {
    descriptor: string; disks: Record<string, string>; vm: LocalVmRef; offer: VmSummary;
    /**
     * Issue 16: disk id → the content hash of the base this side said it holds for it: that
     * disk's received file is an overlay, linked onto this side's own base (looked up again by
     * the hash, never a path from the peer) before the define. The base is never one of the
     * result's `volumes` (never removed, flattened into or sent back).
     */
    bases?: Record<string, string>;
  }, signal: AbortSignal): Promise<DefinedVm>;
  /**
   * Starts (or resumes) our VM and resolves once it runs; refuses (`MIGRATE_NOT_OURS`) a domain of
   * that name with another UUID.
   */
  start(vm: LocalVmRef, signal: AbortSignal): Promise<void>;
  /** Stops our VM; absent, or another UUID under that name (not ours), is left alone. */
  stop(vm: LocalVmRef, signal: AbortSignal): Promise<{ touched: boolean }>;
  /** `absent` when no VM of that name has our UUID. */
  state(vm: LocalVmRef, signal: AbortSignal): Promise<'running' | 'stopped' | 'absent'>;
  /**
   * Undefines our VM (never one of that name with another UUID) and removes exactly
   * `volumes` — never the other storage its definition may name. Absent is fine.
   */
  remove(vm: LocalVmRef, volumes: readonly string[], signal: AbortSignal): Promise<{ undefined: boolean }>;
  /**
   * Live moves (issue 15): restores the VM `vm` from the received state file and disk chains
   * (paths this side received, base first; bases read as `raw`, overlays as `qcow2`), paused,
   * not yet defined persistently ({@link persist} does that after the commit, off the cut-over). The domain keeps the UUID the state carries (the result's `uuid`).
   * Refuses (`HV_STATE_INVALID`) anything that is not this host's own received storage, or a
   * state that names other files. Idempotent through `beforeRestore`/`replacing`: the paused
   * domain an interrupted call made is removed and restored again. Absent: this cloud takes no live moves.
   */
  restore?(req: {
    vm: string; state: string; disks: ReadonlyArray<ReadonlyArray<{ path: string; format: 'raw' | 'qcow2' }>>;
    /** Called with the restored domain's UUID before it is created (the caller journals it). */
    beforeRestore?: (uuid: string) => Promise<void>;
    /** The UUID `beforeRestore` gave an interrupted earlier call: that paused domain is made again, no other. */
    replacing?: string;
  }, signal: AbortSignal): Promise<DefinedVm>;
  /**
   * Live moves: runs our VM that {@link restore} left paused, by its UUID alone (one step: the
   * cut-over waits on it). Idempotent (running: done). Present with {@link restore}.
   */
  resume?(vm: LocalVmRef, signal: AbortSignal): Promise<void>;
  /** Live moves: defines our restored VM persistently, as it runs now. Idempotent. Present with {@link restore}. */
  persist?(vm: LocalVmRef, signal: AbortSignal): Promise<void>;
  /**
   * Warm moves (issue 15): links each disk's received chain (paths this side received, base
   * first; bases read as `raw`, overlays as `qcow2`; each overlay onto the file below it, never
   * a backing file the peer named) and defines the VM `vm` on the top of each chain from the
   * source's descriptor, as {@link define} does (same refusals; idempotent the same way).
   * Absent: this cloud takes no warm moves.
   */
  defineOnChain?(req: { descriptor: string; disks: ReadonlyArray<ReadonlyArray<{ path: string; format: 'raw' | 'qcow2' }>>; vm: LocalVmRef; offer: VmSummary }, signal: AbortSignal): Promise<DefinedVm>;
  /**
   * Warm and live moves: links the chains received so far (paths this side received, base first,
   * as {@link defineOnChain} links them) ahead of the define or restore, which checks and links
   * every image again but finds these linked already: a link done while the rest still arrives
   * is off the cut-over. Idempotent. Absent: the define or restore links them all.
   */
  link?(disks: ReadonlyArray<ReadonlyArray<{ path: string; format: 'raw' | 'qcow2' }>>, signal: AbortSignal): Promise<void>;
  /**
   * Merges our running VM's disk chains into their bases (after a warm or live move), then
   * removes the files `discard` (a live move's restored state file: the guest runs from memory
   * now). Idempotent.
   */
  flatten?(vm: LocalVmRef, discard: readonly string[], signal: AbortSignal): Promise<void>;
}

/** Receiving disks (AMQP reliable transfer, target side). */
export interface ReceivePort {
  /**
   * Receives every disk of an accepted offer and resolves once each is committed (digest
   * verified) at its final path. Idempotent: resumes a partial receive.
   */
  receiveDisks(
    req: { offerId: string; from: string; reservation: Reservation; disks: VmSummary['disks'] },
    progress: (p: { bytesDone: number; bytesTotal: number }) => void,
    signal: AbortSignal,
  ): Promise<Record<string, { path: string; sha256: string }>>;
  /** Removes everything received (staged or committed) for the offer. Idempotent. */
  discard(offerId: string, signal: AbortSignal): Promise<void>;
  /**
   * Live moves (issue 15): receives one image of the offer's disk chains, or its state, into a
   * file whose name this side makes from `slot` (its own counters, never the peer's words), on a
   * transfer id derived from the offer and the image; at most `maxSize` bytes. Resolves once
   * committed (digest known). Idempotent: resumes a partial receive. Removed by {@link discard}.
   */
  receiveImage?(
    req: { offerId: string; from: string; reservation: Reservation; image: MoveImage; slot: string; maxSize: number },
    progress: (p: { bytesDone: number; bytesTotal: number }) => void,
    signal: AbortSignal,
  ): Promise<{ path: string; sha256: string }>;
}

/** What the source asks of the target, delivered to the waiting target job. */
export interface SourceRequestsPort {
  /** Resolves with the source's instantiate request for `offerId`. */
  instantiateRequest(offerId: string, signal: AbortSignal): Promise<InstantiateOrder>;
  /** Resolves when the source asks to commit `offerId`. */
  commitRequest(offerId: string, signal: AbortSignal): Promise<void>;
}

/** Everything the target side of a migration uses. */
export interface TargetPorts {
  cloudId: string;
  hypervisor: TargetHypervisorPort;
  receive: ReceivePort;
  requests: SourceRequestsPort;
  addressing: AddressingPort;
  audit: AuditPort;
}
