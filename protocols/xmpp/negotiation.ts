/**
 * The negotiation protocol (`urn:intercloud:negotiation:0`), carried in iq stanzas:
 *
 * - `<iq type='set'><offer/></iq>` → `<iq type='result'><accept/></iq>`, or an error iq
 *   whose application condition is `<reject reason='…'/>` (RFC 6120 §8.3.4);
 * - `<iq type='set'><cancel reservation='…'/></iq>` → empty result;
 * - `<message><progress reservation='…' state='…'/></message>` so the peer can follow a
 *   long transaction.
 *
 * Offers and accepts are signed: the signed value is {@link offerPayload} /
 * {@link acceptPayload} (see `signature.ts`).
 */
import { xml, type Element } from '@xmpp/client';
import {
  attr, checkSize, child, CLOUD_ID_RE, decimal, LIMITS, MAC_RE, malformed, num, numAttr, optAttr, oversized, texts, timeAttr, TOKEN_RE,
} from './fields.js';
import {
  buildStateNeeds, modeAttr, parseStateNeeds, type MigrationMode, type StateNeeds,
} from './migration-mode.js';
import { ICNS } from './namespaces.js';
import { buildSignature, readSignature } from './signature.js';
import { buildStanzaError, type StanzaErrorCondition, type StanzaErrorType } from './stanza-error.js';

/** One disk of a VM shape. */
export interface DiskSpec {
  readonly id: string;
  readonly sizeGiB: number;
  readonly format: string;
  /**
   * Issue 16: the whole-image SHA-256 (64 lowercase hex digits) of the raw base image this disk
   * is a qcow2 overlay on. A target that holds a base of that content answers with the disk's
   * id in {@link Accept.bases} and gets the overlay only; otherwise the flattened image. Only a
   * hash: a peer never names a file of the target.
   */
  readonly base?: string;
}

/** One NIC of a VM shape; the MAC is kept across the move. */
export interface NicSpec {
  readonly mac: string;
  readonly network?: string;
}

/** A VM to host: "as suitable as the first" (vCPUs, memory, disks, NICs, firmware). */
export interface VmWorkload {
  readonly type: 'vm';
  readonly name: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly firmware: 'bios' | 'uefi';
  readonly disks: readonly DiskSpec[];
  readonly nics: readonly NicSpec[];
}

/** When a write to subcontracted storage is acknowledged (the paper's storage parameters). */
export const STORAGE_ACK_MODES = ['async', 'sync', 'quorum'] as const;
/**
 * `async`: once the first replica (at A) is written, copies to B follow lazily; `sync`: only
 * once B has persisted the object; `quorum`: once a majority of the replicas are persisted.
 */
export type StorageAckMode = (typeof STORAGE_ACK_MODES)[number];

/** What happens to the data at B when the subcontract ends. */
export const STORAGE_END_ACTIONS = ['return', 'delete'] as const;
/** `return`: B's copy is sent back to A; `delete`: B deletes every object and the bucket. */
export type StorageEndAction = (typeof STORAGE_END_ACTIONS)[number];

/** Limits of a storage offer (besides {@link LIMITS}). */
export const STORAGE_LIMITS = {
  /** Replicas B may be asked to keep. */
  replicas: 16,
  /** Capacity of one subcontract, GiB (1 EiB). */
  capacityGiB: 1024 ** 3,
  /** Objects in one subcontract. */
  maxObjects: 1_000_000_000_000,
  /** Allowed regions of one offer. */
  regions: 16,
  /** Characters of the key prefix at A. */
  prefixChars: 512,
} as const;

/**
 * Object storage to subcontract (issue 14): A's bucket (or a prefix of it) whose objects B
 * keeps `replicas` copies of, in one of the offer's allowed regions (`constraints.regions`,
 * never empty for storage), for at most `capacityGiB` and `maxObjects`, until `ends`, after
 * which B returns or deletes the data (`atEnd`). The bucket at B is B's choice (the accept's
 * {@link StoragePlacement}); A's bucket name is A's own and never names storage at B.
 */
export interface StorageWorkload {
  readonly type: 'storage';
  /** The subcontract's id, chosen by A; B derives its bucket's name from it and A's cloud id. */
  readonly subcontractId: string;
  /** The bucket at A whose objects are subcontracted. */
  readonly sourceBucket: string;
  /** Only the keys under this prefix of {@link sourceBucket} (absent: the whole bucket). */
  readonly sourcePrefix?: string;
  /** Copies B keeps. */
  readonly replicas: number;
  readonly ack: StorageAckMode;
  /** Logical capacity (one replica's worth), GiB. */
  readonly capacityGiB: number;
  readonly maxObjects: number;
  /** XEP-0082 DateTime at which the subcontract ends (its expiry). */
  readonly ends: string;
  readonly atEnd: StorageEndAction;
}

/** What an offer asks the peer to take. */
export type Workload = VmWorkload | StorageWorkload;

/** Constraints on where and by when. */
export interface OfferConstraints {
  /** Regions the workload may live in (empty: any). */
  readonly regions: readonly string[];
  /** XEP-0082 DateTime by which the transaction must be done. */
  readonly deadline?: string;
}

/** The most the sender will pay. */
export interface OfferTerms {
  readonly currency: string;
  readonly maxPricePerVcpuHour?: number;
  readonly maxPricePerGbMonth?: number;
}

/** An offer (paper step 3: "A offers VM shape, disk sizes, region constraints, terms"). */
export interface Offer {
  readonly offerId: string;
  /** The sending cloud's id (must match its certificate and JID). */
  readonly from: string;
  readonly workload: Workload;
  readonly constraints: OfferConstraints;
  readonly terms: OfferTerms;
  readonly issued: string;
  readonly expires: string;
  /**
   * The migration mode the source wants (issue 15); absent means `cold`, and a cold offer
   * carries none on the wire (so old targets read it). Only a VM moves warm or live.
   */
  readonly mode?: MigrationMode;
  /** For `live` only, and then required: what the VM's saved state needs of the target's host. */
  readonly state?: StateNeeds;
}

/** An accept: the reservation and where to send data. */
export interface Accept {
  readonly offerId: string;
  readonly reservationId: string;
  /** The accepting cloud's id. */
  readonly by: string;
  /** Where to send the disks/objects (AMQP broker URI). */
  readonly transferUri: string;
  /** The queue or routing key the sender must use for this reservation. */
  readonly transferQueue: string;
  /**
   * The identity (a DNS name) the certificate of the broker at {@link transferUri} must carry:
   * the accepting cloud's own broker, under its own `<cloud>.<domain>` (issue 13). A sender
   * refuses an accept without one, or whose identity is not the accepting cloud's.
   */
  readonly transferIdentity?: string;
  /** The reservation lapses at this XEP-0082 DateTime unless used. */
  readonly expires: string;
  /** For a storage offer: where B keeps A's objects (absent in the accept of a vm offer). */
  readonly storage?: StoragePlacement;
  /** The migration mode the target agreed to: the offer's (issue 15); absent means `cold`. */
  readonly mode?: MigrationMode;
  /**
   * Issue 16: the ids of the offer's disks whose base (their {@link DiskSpec.base}) the target
   * holds: the source sends those disks as their overlays only. Absent: none.
   */
  readonly bases?: readonly string[];
}

/** Where the accepting cloud keeps a subcontract's objects: its own bucket, in one region. */
export interface StoragePlacement {
  /** The bucket B made for A (B's choice; an S3 bucket name). */
  readonly bucket: string;
  /** The region B stores in: one of the offer's allowed regions. */
  readonly region: string;
}

/** Why an offer was rejected. */
export const REJECT_REASONS = [
  'no-capacity', 'policy', 'untrusted', 'expired', 'replayed', 'malformed', 'clock-skew', 'name-taken', 'unavailable', 'unsupported-mode',
] as const;
/** One of {@link REJECT_REASONS}. */
export type RejectReason = (typeof REJECT_REASONS)[number];

/** A rejection, as sent in the error iq. */
export interface Reject {
  readonly reason: RejectReason;
  readonly text?: string;
}

/**
 * How each reason maps to an RFC 6120 §8.3.3 condition and §8.3.2 type, so generic
 * clients understand the error even without our namespace.
 */
export const REJECT_CONDITIONS: Readonly<Record<RejectReason, { type: StanzaErrorType; condition: StanzaErrorCondition }>> = {
  'no-capacity': { type: 'wait', condition: 'resource-constraint' },
  policy: { type: 'auth', condition: 'forbidden' },
  untrusted: { type: 'auth', condition: 'not-authorized' },
  expired: { type: 'modify', condition: 'not-acceptable' },
  replayed: { type: 'cancel', condition: 'conflict' },
  malformed: { type: 'modify', condition: 'bad-request' },
  'clock-skew': { type: 'modify', condition: 'not-acceptable' },
  // The offered VM's name is taken at the target: it never adopts a VM it did not make.
  'name-taken': { type: 'cancel', condition: 'conflict' },
  // The target cannot take data now (its broker is down): the same offer may succeed later.
  unavailable: { type: 'wait', condition: 'internal-server-error' },
  // The target does not take the offered migration mode, or cannot restore the offered VM's saved
  // state (hypervisor, machine type): refused before any cut-over; the source may offer a lower
  // mode if its operator allowed it (issue 15).
  'unsupported-mode': { type: 'cancel', condition: 'feature-not-implemented' },
};

/**
 * Reject reasons after which a sender retries the same offer on its own: the target is
 * momentarily unable to take data. (`no-capacity` is `wait` too, but a sender looks for
 * another cloud rather than waiting for this one to free room.)
 */
export const RETRYABLE_REJECT_REASONS: ReadonlySet<RejectReason> = new Set<RejectReason>(['unavailable']);

/** Progress states of a transaction a peer follows. */
export const PROGRESS_STATES = ['running', 'completed', 'failed', 'cancelled'] as const;

/** A progress report of a long transaction. */
export interface Progress {
  readonly reservationId: string;
  readonly state: (typeof PROGRESS_STATES)[number];
  /** The sequencer step (`transfer`, `instantiate` …). */
  readonly step: string;
  readonly percent?: number;
  readonly text?: string;
}

/** A request to cancel a reservation (and the transaction using it). */
export interface Cancel {
  readonly reservationId: string;
  readonly reason?: string;
}

const CURRENCY_RE = /^[A-Z]{3}$/;
/** A SHA-256 (FIPS 180-4) as 64 lowercase hex digits: a base image's content (issue 16). */
const SHA256_HEX_RE = /^[0-9a-f]{64}$/;
const URI_RE = /^[a-z][a-z0-9+.-]*:\/\/[^\s<>"]{1,512}$/;
/** RFC 1123 host name, lowercase, at most 253 characters. */
const DNS_NAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const MiB_MAX = 64 * 1024 * 1024;
/**
 * The shape of an S3 bucket name (3–63 of `a-z0-9.-`, letter or digit at both ends). The agent
 * checks the full rules (`validateBucketName` in `adapters/storage`) before it uses one.
 */
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** A key prefix: printable, no control characters, not starting with '/'. */
const PREFIX_RE = /^[^/\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*$/u;

/** The value signed for an offer (prices rounded as the wire carries them). */
export function offerPayload(offer: Offer): Record<string, unknown> {
  return { type: 'offer', ...normalizeOffer(offer) };
}

/**
 * The offer with its decimals rounded to what the XML carries (see {@link decimal}), and a
 * `cold` mode dropped (absent means cold, and the wire never carries it).
 */
export function normalizeOffer(offer: Offer): Offer {
  const t = offer.terms;
  const { mode, state, ...rest } = offer;
  return {
    ...rest,
    ...(mode === undefined || mode === 'cold' ? {} : { mode }),
    ...(mode === 'live' && state !== undefined ? { state } : {}),
    terms: {
      currency: t.currency,
      ...(t.maxPricePerVcpuHour === undefined ? {} : { maxPricePerVcpuHour: decimal(t.maxPricePerVcpuHour) }),
      ...(t.maxPricePerGbMonth === undefined ? {} : { maxPricePerGbMonth: decimal(t.maxPricePerGbMonth) }),
    },
  };
}

/** The value signed for an accept (a `cold` mode and an empty list of held bases dropped: absent means the same). */
export function acceptPayload(accept: Accept): Record<string, unknown> {
  const { mode, bases, ...rest } = accept;
  return {
    type: 'accept', ...rest, ...(mode === undefined || mode === 'cold' ? {} : { mode }), ...(bases === undefined || bases.length === 0 ? {} : { bases: [...bases] }),
  };
}

function buildWorkload(w: Workload): Element {
  if (w.type === 'vm') {
    return xml(
      'vm',
      { name: w.name, vcpus: num(w.vcpus), 'memory-mib': num(w.memoryMiB), firmware: w.firmware },
      ...w.disks.map((d) => xml('disk', { id: d.id, 'size-gib': num(d.sizeGiB), format: d.format, base: d.base })),
      ...w.nics.map((n) => xml('nic', { mac: n.mac, network: n.network })),
    );
  }
  return xml(
    'storage',
    {
      subcontract: w.subcontractId, replicas: num(w.replicas), ack: w.ack, 'capacity-gib': num(w.capacityGiB),
      'max-objects': num(w.maxObjects), ends: w.ends, 'at-end': w.atEnd,
    },
    xml('source', { bucket: w.sourceBucket, prefix: w.sourcePrefix }),
  );
}

/** `<offer xmlns='urn:intercloud:negotiation:0' …>` with its signature. */
export function buildOffer(offer: Offer, signature: string): Element {
  return xml(
    'offer',
    { xmlns: ICNS.NEGOTIATION, id: offer.offerId, from: offer.from, issued: offer.issued, expires: offer.expires },
    buildWorkload(offer.workload),
    xml('constraints', { deadline: offer.constraints.deadline }, ...offer.constraints.regions.map((r) => xml('region', {}, r))),
    xml('terms', {
      currency: offer.terms.currency,
      'max-vcpu-hour': offer.terms.maxPricePerVcpuHour === undefined ? undefined : num(offer.terms.maxPricePerVcpuHour),
      'max-gb-month': offer.terms.maxPricePerGbMonth === undefined ? undefined : num(offer.terms.maxPricePerGbMonth),
    }),
    ...(offer.mode === undefined || offer.mode === 'cold'
      ? []
      : [xml('migration', { mode: offer.mode }, ...(offer.mode === 'live' && offer.state !== undefined ? [buildStateNeeds(offer.state)] : []))]),
    buildSignature(signature),
  );
}

function parseWorkload(offer: Element): Workload {
  const vm = offer.getChildren('vm');
  const storage = offer.getChildren('storage');
  if (vm.length + storage.length !== 1) return malformed('offer/(vm|storage)', 'must be exactly one vm or storage element');
  if (vm.length === 1) {
    const el = vm[0] as Element;
    const p = 'offer/vm';
    const diskEls = el.getChildren('disk');
    const nicEls = el.getChildren('nic');
    if (diskEls.length > LIMITS.disks) throw oversized(`${p}/disk`, `has more than ${LIMITS.disks} entries`);
    if (nicEls.length > LIMITS.nics) throw oversized(`${p}/nic`, `has more than ${LIMITS.nics} entries`);
    if (diskEls.length === 0) malformed(`${p}/disk`, 'is missing (at least one disk)');
    const firmware = attr(el, 'firmware', p, /^(bios|uefi)$/) as 'bios' | 'uefi';
    return {
      type: 'vm',
      name: attr(el, 'name', p, TOKEN_RE),
      vcpus: numAttr(el, 'vcpus', p, { min: 1, max: 4096 }),
      memoryMiB: numAttr(el, 'memory-mib', p, { min: 1, max: MiB_MAX }),
      firmware,
      disks: diskEls.map((d, i) => {
        const base = optAttr(d, 'base', `${p}/disk[${i}]`, SHA256_HEX_RE);
        return {
          id: attr(d, 'id', `${p}/disk[${i}]`, TOKEN_RE),
          sizeGiB: numAttr(d, 'size-gib', `${p}/disk[${i}]`, { min: 1, max: 1024 * 1024 }),
          format: attr(d, 'format', `${p}/disk[${i}]`, TOKEN_RE),
          ...(base === undefined ? {} : { base }),
        };
      }),
      nics: nicEls.map((n, i) => {
        const network = optAttr(n, 'network', `${p}/nic[${i}]`, TOKEN_RE);
        return { mac: attr(n, 'mac', `${p}/nic[${i}]`, MAC_RE).toLowerCase(), ...(network === undefined ? {} : { network }) };
      }),
    };
  }
  return parseStorageWorkload(storage[0] as Element);
}

/** Issue 14: the `<storage/>` workload of a subcontract offer. */
function parseStorageWorkload(el: Element): StorageWorkload {
  const p = 'offer/storage';
  const source = child(el, 'source', p);
  const prefix = optAttr(source, 'prefix', `${p}/source`);
  if (prefix !== undefined) {
    if (prefix.length > STORAGE_LIMITS.prefixChars) throw oversized(`${p}/source@prefix`, `is longer than ${STORAGE_LIMITS.prefixChars} characters`);
    if (!PREFIX_RE.test(prefix)) malformed(`${p}/source@prefix`, 'holds a control character or starts with \'/\'');
  }
  return {
    type: 'storage',
    subcontractId: attr(el, 'subcontract', p, TOKEN_RE),
    sourceBucket: attr(source, 'bucket', `${p}/source`, BUCKET_RE),
    ...(prefix === undefined ? {} : { sourcePrefix: prefix }),
    replicas: numAttr(el, 'replicas', p, { min: 1, max: STORAGE_LIMITS.replicas }),
    ack: attr(el, 'ack', p, new RegExp(`^(${STORAGE_ACK_MODES.join('|')})$`)) as StorageAckMode,
    capacityGiB: numAttr(el, 'capacity-gib', p, { min: 1, max: STORAGE_LIMITS.capacityGiB }),
    maxObjects: numAttr(el, 'max-objects', p, { min: 1, max: STORAGE_LIMITS.maxObjects }),
    ends: timeAttr(el, 'ends', p),
    atEnd: attr(el, 'at-end', p, new RegExp(`^(${STORAGE_END_ACTIONS.join('|')})$`)) as StorageEndAction,
  };
}

/**
 * Reads an offer's optional `<migration mode><state/></migration>` (issue 15): a mode other
 * than cold only for a VM; `<state/>` required for `live` and refused otherwise.
 */
function parseMigration(el: Element, workload: Workload): { mode?: MigrationMode; state?: StateNeeds } {
  const found = el.getChildren('migration');
  if (found.length === 0) return {};
  const m = child(el, 'migration', 'offer');
  const p = 'offer/migration';
  const mode = modeAttr(m, p);
  if (mode === undefined) return malformed(`${p}@mode`, 'is missing');
  const stateEls = m.getChildren('state');
  if (stateEls.length > 1) malformed(`${p}/state`, 'appears more than once');
  if (mode !== 'cold' && workload.type !== 'vm') malformed(`${p}@mode`, `'${mode}' applies to a vm only`);
  if (mode === 'live') {
    if (stateEls.length === 0) malformed(`${p}/state`, "is missing (mode 'live' needs it)");
    return { mode, state: parseStateNeeds(stateEls[0] as Element, `${p}/state`) };
  }
  if (stateEls.length > 0) malformed(`${p}/state`, `is only for mode 'live', not '${mode}'`);
  return mode === 'cold' ? {} : { mode };
}

/** Reads an `<offer/>`; throws `XMPP_MALFORMED` / `XMPP_OVERSIZED` naming the bad field. */
export function parseOffer(el: Element | undefined): { offer: Offer; signature: string } {
  if (!el || !el.is('offer', ICNS.NEGOTIATION)) return malformed('offer', `is not an offer in '${ICNS.NEGOTIATION}'`);
  checkSize(el, 'offer');
  const constraints = child(el, 'constraints', 'offer');
  const terms = child(el, 'terms', 'offer');
  const deadline = constraints.attrs['deadline'] === undefined ? undefined : timeAttr(constraints, 'deadline', 'offer/constraints');
  const maxVcpu = terms.attrs['max-vcpu-hour'] === undefined ? undefined : numAttr(terms, 'max-vcpu-hour', 'offer/terms', { decimal: true });
  const maxGb = terms.attrs['max-gb-month'] === undefined ? undefined : numAttr(terms, 'max-gb-month', 'offer/terms', { decimal: true });
  const workload = parseWorkload(el);
  const offer: Offer = {
    offerId: attr(el, 'id', 'offer', TOKEN_RE),
    from: attr(el, 'from', 'offer', CLOUD_ID_RE),
    workload,
    constraints: {
      regions: texts(constraints, 'region', 'offer/constraints', TOKEN_RE),
      ...(deadline === undefined ? {} : { deadline }),
    },
    terms: {
      currency: attr(terms, 'currency', 'offer/terms', CURRENCY_RE),
      ...(maxVcpu === undefined ? {} : { maxPricePerVcpuHour: maxVcpu }),
      ...(maxGb === undefined ? {} : { maxPricePerGbMonth: maxGb }),
    },
    issued: timeAttr(el, 'issued', 'offer'),
    expires: timeAttr(el, 'expires', 'offer'),
    ...parseMigration(el, workload),
  };
  if (offer.workload.type === 'storage') {
    // Issue 14: a storage offer names where its data may live, and what A pays per GiB-month.
    if (offer.constraints.regions.length === 0) malformed('offer/constraints/region', 'is missing (a storage offer names at least one allowed region)');
    if (offer.constraints.regions.length > STORAGE_LIMITS.regions) {
      throw oversized('offer/constraints/region', `has more than ${STORAGE_LIMITS.regions} entries for a storage offer`);
    }
    if (new Set(offer.constraints.regions).size !== offer.constraints.regions.length) malformed('offer/constraints/region', 'names a region twice');
    if (offer.terms.maxPricePerGbMonth === undefined) malformed('offer/terms@max-gb-month', 'is missing (a storage offer names its price per gib-month)');
    if (Date.parse(offer.workload.ends) <= Date.parse(offer.issued)) malformed('offer/storage@ends', 'is not after the offer was issued');
  }
  return { offer, signature: readSignature(el, 'offer') };
}

/**
 * `<accept … [mode]><transfer uri queue [identity]/>[<storage bucket region/>]<base disk/>*<signature/></accept>`
 * (a `cold` mode is not written; one `<base/>` per disk whose base the target holds, issue 16).
 */
export function buildAccept(accept: Accept, signature: string): Element {
  return xml(
    'accept',
    {
      xmlns: ICNS.NEGOTIATION, offer: accept.offerId, reservation: accept.reservationId, by: accept.by, expires: accept.expires,
      mode: accept.mode === 'cold' ? undefined : accept.mode,
    },
    xml('transfer', { uri: accept.transferUri, queue: accept.transferQueue, identity: accept.transferIdentity }),
    ...(accept.storage === undefined ? [] : [xml('storage', { bucket: accept.storage.bucket, region: accept.storage.region })]),
    ...(accept.bases ?? []).map((disk) => xml('base', { disk })),
    buildSignature(signature),
  );
}

/** Reads an `<accept/>`. */
export function parseAccept(el: Element | undefined): { accept: Accept; signature: string } {
  if (!el || !el.is('accept', ICNS.NEGOTIATION)) return malformed('accept', `is not an accept in '${ICNS.NEGOTIATION}'`);
  checkSize(el, 'accept');
  const transfer = child(el, 'transfer', 'accept');
  const identity = optAttr(transfer, 'identity', 'accept/transfer', DNS_NAME_RE);
  const storageEls = el.getChildren('storage');
  if (storageEls.length > 1) malformed('accept/storage', 'appears more than once');
  const storageEl = storageEls[0];
  const storage: StoragePlacement | undefined = storageEl === undefined ? undefined : {
    bucket: attr(storageEl, 'bucket', 'accept/storage', BUCKET_RE),
    region: attr(storageEl, 'region', 'accept/storage', TOKEN_RE),
  };
  const mode = modeAttr(el, 'accept');
  const baseEls = el.getChildren('base');
  if (baseEls.length > LIMITS.disks) throw oversized('accept/base', `has more than ${LIMITS.disks} entries`);
  const bases = baseEls.map((b, i) => attr(b, 'disk', `accept/base[${i}]`, TOKEN_RE));
  if (new Set(bases).size !== bases.length) malformed('accept/base', 'names a disk more than once');
  return {
    accept: {
      offerId: attr(el, 'offer', 'accept', TOKEN_RE),
      reservationId: attr(el, 'reservation', 'accept', TOKEN_RE),
      by: attr(el, 'by', 'accept', CLOUD_ID_RE),
      transferUri: attr(transfer, 'uri', 'accept/transfer', URI_RE),
      transferQueue: attr(transfer, 'queue', 'accept/transfer', TOKEN_RE),
      ...(identity === undefined ? {} : { transferIdentity: identity }),
      expires: timeAttr(el, 'expires', 'accept'),
      ...(storage === undefined ? {} : { storage }),
      ...(mode === undefined || mode === 'cold' ? {} : { mode }),
      ...(bases.length === 0 ? {} : { bases }),
    },
    signature: readSignature(el, 'accept'),
  };
}

/**
 * The `<error/>` of a rejection: the mapped RFC 6120 condition, a human text, and
 * `<reject xmlns='urn:intercloud:negotiation:0' reason='…'/>` as application condition.
 */
export function buildRejectError(reject: Reject): Element {
  const { type, condition } = REJECT_CONDITIONS[reject.reason];
  return buildStanzaError(type, condition, reject.text, xml('reject', { xmlns: ICNS.NEGOTIATION, reason: reject.reason }));
}

/** Reads our `<reject/>` application condition; `undefined` when the error is not a rejection. */
export function parseReject(application: Element | undefined, text?: string): Reject | undefined {
  if (!application || !application.is('reject', ICNS.NEGOTIATION)) return undefined;
  const reason = application.attrs['reason'];
  if (!(REJECT_REASONS as readonly string[]).includes(reason ?? '')) return undefined;
  return { reason: reason as RejectReason, ...(text === undefined || text === '' ? {} : { text }) };
}

/** `<cancel xmlns reservation [reason]/>`. */
export function buildCancel(cancel: Cancel): Element {
  return xml('cancel', { xmlns: ICNS.NEGOTIATION, reservation: cancel.reservationId, reason: cancel.reason });
}

/** Reads a `<cancel/>`. */
export function parseCancel(el: Element | undefined): Cancel {
  if (!el || !el.is('cancel', ICNS.NEGOTIATION)) return malformed('cancel', `is not a cancel in '${ICNS.NEGOTIATION}'`);
  const reason = el.attrs['reason'];
  return {
    reservationId: attr(el, 'reservation', 'cancel', TOKEN_RE),
    ...(reason === undefined ? {} : { reason: reason.slice(0, LIMITS.textChars) }),
  };
}

/** `<progress xmlns reservation state step [percent]>text</progress>`. */
export function buildProgress(progress: Progress): Element {
  return xml(
    'progress',
    {
      xmlns: ICNS.NEGOTIATION,
      reservation: progress.reservationId,
      state: progress.state,
      step: progress.step,
      percent: progress.percent === undefined ? undefined : num(progress.percent),
    },
    progress.text,
  );
}

/** Reads a `<progress/>`. */
export function parseProgress(el: Element | undefined): Progress {
  if (!el || !el.is('progress', ICNS.NEGOTIATION)) return malformed('progress', `is not a progress in '${ICNS.NEGOTIATION}'`);
  const percent = el.attrs['percent'] === undefined ? undefined : numAttr(el, 'percent', 'progress', { decimal: true, max: 100 });
  const text = el.text().trim();
  return {
    reservationId: attr(el, 'reservation', 'progress', TOKEN_RE),
    state: attr(el, 'state', 'progress', new RegExp(`^(${PROGRESS_STATES.join('|')})$`)) as Progress['state'],
    step: attr(el, 'step', 'progress', TOKEN_RE),
    ...(percent === undefined ? {} : { percent }),
    ...(text === '' ? {} : { text: text.slice(0, LIMITS.textChars) }),
  };
}
