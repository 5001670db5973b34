/**
 * The migration's transfer ports on the AMQP reliable transfer: the source sends each disk
 * of the stopped VM straight from the hypervisor adapter; the target receives each straight
 * into the hypervisor's storage when the adapter says it is a directory of this machine
 * ({@link Hypervisor.localStorageDir}), so the VM is later defined on the received file
 * without copying it again; else into its staging folder. Transfer ids derive from the offer,
 * so both sides agree without asking.
 */
import { promises as fs } from 'node:fs';
import { IntercloudError } from '../../protocols/errors/index.js';
import { join } from 'node:path';
import { QCOW2_HEADER_READ_BYTES, qcow2HeaderProblem, receivedDiskProblem, type Hypervisor } from '../../adapters/hypervisor/index.js';
import { receiveTransfer, sendTransfer, type BrokerOptions, type TransferSource } from '../../protocols/amqp/index.js';
import { imageKey, type ImageTransferPort, type PeerRef, type ReceivePort, type Reservation, type TransferPort } from '../migration/index.js';
import type { EndpointCheck } from './broker-endpoint.js';
import { chainImageSource, diskTransferSource, localStorageDirOf, savedStateSource, saveVmState } from './hypervisor-ports.js';
import { moveTransferId, transferIdFor } from './transfer-ids.js';

/** What both transfer ports need. */
export interface TransferSettings {
  cloudId: string;
  /**
   * This cloud's certificate and the Root; `url` (and `servername`) name this cloud's own
   * broker, where the target receives. A source sends to the broker its peer's accept named.
   */
  broker: BrokerOptions;
  /** Checks a peer's data endpoint before the source sends there (issue 13). */
  checkEndpoint: EndpointCheck;
  /** Where this side keeps transfer journals. */
  journalDir: string;
  chunkBytes: number;
  windowBytes: number;
  persistent: boolean;
  /** Called with the bytes each transfer moved (metrics). */
  onBytes?: (direction: 'sent' | 'received', bytes: number) => void;
}

/** What one send needs to know of the move: whom to send to, under which reservation. */
interface SendRequest {
  peer: PeerRef;
  reservation: Reservation;
}

/**
 * Sends one image (`source`, opened once the target's endpoint is checked) on `transferId`:
 * the cold disk sender and the live/warm image sender alike.
 */
async function sendOne(
  s: TransferSettings,
  req: SendRequest,
  what: { transferId: string; name: string; open: () => Promise<TransferSource> },
  progress: (p: { bytesDone: number; bytesTotal: number }) => void,
  signal: AbortSignal,
): Promise<{ sha256: string; bytes: number; bytesSent: number }> {
  // The target's broker, as its accept named it — never one of this cloud's config — and
  // only once it proved the target's identity; every connection verifies it again.
  const endpoint = await s.checkEndpoint(req.reservation.transfer, req.peer, signal);
  const broker: BrokerOptions = { ...s.broker, url: endpoint.uri, servername: endpoint.identity };
  const source = await what.open();
  try {
    const r = await sendTransfer({
      broker,
      transferId: what.transferId,
      from: s.cloudId,
      to: req.peer.cloudId,
      source,
      name: what.name,
      chunkSize: s.chunkBytes,
      windowBytes: s.windowBytes,
      persistent: s.persistent,
      expiresAt: Date.parse(req.reservation.expiresAt),
      journalDir: s.journalDir,
      signal,
      onProgress: (p) => progress({ bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
    });
    s.onBytes?.('sent', r.bytesSent);
    return { sha256: r.digest, bytes: r.size, bytesSent: r.bytesSent };
  } finally {
    await source.close();
  }
}

/** The source side: sends disk `diskId` of `vm`. */
export function sourceTransferPort(hv: Hypervisor, s: TransferSettings): TransferPort {
  return {
    sendDisk: (req, progress, signal) => {
      const transferId = transferIdFor(req.offerId, req.diskId);
      return sendOne(s, req, {
        transferId,
        name: `${req.vm}-disk${req.diskId}`,
        // An overlay disk is flattened beside the transfer journals (removed once sent).
        open: () => diskTransferSource(hv, req.vm, req.diskId, signal, { scratchDir: s.journalDir, key: transferId }, { overlay: req.overlay === true }),
      }, progress, signal);
    },
  };
}

/**
 * The source side of a live move (issue 15): sends one image of the running VM's chain, or its
 * saved state, on the transfer id both sides derive from the offer and the image.
 */
export function sourceImagePort(hv: Hypervisor, s: TransferSettings): ImageTransferPort {
  return {
    sendImage: (req, progress, signal) => {
      const what = { transferId: moveTransferId(req.offerId, imageKey(req.image)), name: `${req.vm}-${imageKey(req.image)}` };
      const { image } = req;
      if (image !== 'state') return sendOne(s, req, { ...what, open: () => chainImageSource(hv, req.vm, image, signal) }, progress, signal);
      return sendSavedState(hv, s, req, what, progress, signal);
    },
  };
}

/**
 * Saves the paused VM's state and sends it: from the moment the file is whole, while the
 * hypervisor still stops the VM (libvirt: a second or more of the cut-over). Resolves once the
 * target committed the file, maybe before the save ended: the commit waits for that
 * (`PrecopyPort.saveState` answers with the save running) and checks the file saved is the file
 * sent (the same length; the transfer's digest covers its bytes).
 */
async function sendSavedState(
  hv: Hypervisor, s: TransferSettings, req: SendRequest & { vm: string },
  what: { transferId: string; name: string },
  progress: (p: { bytesDone: number; bytesTotal: number }) => void,
  signal: AbortSignal,
): Promise<{ sha256: string; bytes: number; bytesSent: number }> {
  const { written, saved } = saveVmState(hv, req.vm, signal);
  // A save that fails once the file is whole fails the commit, which asks for it again.
  saved.catch(() => undefined);
  const state = await written;
  return sendOne(s, req, { ...what, open: () => savedStateSource(hv, req.vm, state, signal) }, progress, signal);
}

/**
 * Name of a disk received straight into the hypervisor's storage: offer ids come from the
 * peer, so the name carries a UUID derived from it instead (letters, digits and `-` only).
 */
const storageNamePrefix = (offerId: string): string => `intercloud-in-${transferIdFor(offerId, '*')}-`;

/**
 * The target side: receives every disk of an offer into the hypervisor's local storage
 * directory when `hv` has one, else into `stagingDir/<offerId>/`.
 */
export function targetReceivePort(stagingDir: string, s: TransferSettings, hv?: Hypervisor): ReceivePort {
  const dirOf = (offerId: string): string => join(stagingDir, offerId);
  const storageDir = async (signal: AbortSignal): Promise<string | undefined> => (hv ? localStorageDirOf(hv, signal) : undefined);
  return {
    async receiveDisks(req, progress, signal) {
      const direct = await storageDir(signal);
      const pathOf = (diskId: string): string => direct !== undefined
        ? join(direct, `${storageNamePrefix(req.offerId)}disk${diskId}.img`)
        : join(dirOf(req.offerId), `disk-${diskId}`);
      if (direct === undefined) await fs.mkdir(dirOf(req.offerId), { recursive: true, mode: 0o750 });
      const out: Record<string, { path: string; sha256: string }> = {};
      const total = req.disks.reduce((n, d) => n + d.capacityBytes, 0);
      let before = 0;
      // The source sends the disks one after the other; receive them in the same order.
      for (const d of req.disks) {
        const r = await receiveTransfer({
          broker: s.broker,
          transferId: transferIdFor(req.offerId, d.id),
          from: req.from,
          to: s.cloudId,
          targetPath: pathOf(d.id),
          journalDir: s.journalDir,
          durable: s.persistent,
          expiresAt: Date.parse(req.reservation.expiresAt),
          // The sender may not send more than the disk it offered (issue 12 finding 8).
          maxSize: d.capacityBytes,
          signal,
          onProgress: (p) => progress({ bytesDone: before + p.bytesDone, bytesTotal: Math.max(total, before + p.bytesTotal) }),
        });
        s.onBytes?.('received', r.bytesReceived);
        // A received disk is probed for its format (`qemu-img info`), which opens the files its
        // header names: refused here first, from its first bytes.
        const problem = receivedDiskProblem(await readHead(r.path, QCOW2_HEADER_READ_BYTES));
        if (problem !== undefined) {
          throw new IntercloudError('MIGRATE_BAD_DISK', `disk '${d.id}' of offer '${req.offerId}' is refused: ${problem}`, { retryable: false, details: { diskId: d.id } });
        }
        out[d.id] = { path: r.path, sha256: r.digest };
        before += d.capacityBytes;
      }
      return out;
    },
    async receiveImage(req, progress, signal) {
      // A warm or live move links its chains in the hypervisor's own storage: received there, or not at all.
      const direct = await storageDir(signal);
      if (direct === undefined) {
        throw new IntercloudError('MIGRATE_MODE_UNSUPPORTED', 'this cloud\'s hypervisor storage is not a local directory: it cannot take a warm or live move', { retryable: false });
      }
      // The file's name comes from this side only: the offer's derived prefix and the step's slot.
      if (!/^(state|d\d{1,4}-\d{1,4})$/.test(req.slot)) throw new IntercloudError('MIGRATE_BAD_IMAGES', `bad image slot '${req.slot}'`, { retryable: false });
      const r = await receiveTransfer({
        broker: s.broker,
        transferId: moveTransferId(req.offerId, imageKey(req.image)),
        from: req.from,
        to: s.cloudId,
        targetPath: join(direct, `${storageNamePrefix(req.offerId)}${req.slot}.img`),
        journalDir: s.journalDir,
        durable: s.persistent,
        expiresAt: Date.parse(req.reservation.expiresAt),
        maxSize: req.maxSize,
        signal,
        onProgress: (p) => progress({ bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
      });
      s.onBytes?.('received', r.bytesReceived);
      // An overlay is the peer's qcow2: QEMU opens whatever file its header names as its data
      // file as soon as anything looks at it (`qemu-img info`), before that answer can be refused.
      // Its header is read here first, from the file this side wrote.
      if (req.image !== 'state' && req.image.depth > 0) {
        const problem = qcow2HeaderProblem(await readHead(r.path, QCOW2_HEADER_READ_BYTES));
        if (problem !== undefined) {
          throw new IntercloudError('MIGRATE_BAD_IMAGES', `image '${imageKey(req.image)}' of offer '${req.offerId}' is refused: ${problem}`, { retryable: false, details: { image: imageKey(req.image) } });
        }
      }
      return { path: r.path, sha256: r.digest };
    },
    async discard(offerId, signal) {
      await fs.rm(dirOf(offerId), { recursive: true, force: true });
      const direct = await storageDir(signal);
      if (direct === undefined) return;
      // Committed files and the receiver's staging files beside them (`.NAME.ID.part`).
      const prefix = storageNamePrefix(offerId);
      for (const name of await fs.readdir(direct)) {
        if (name.startsWith(prefix) || name.startsWith(`.${prefix}`)) await fs.rm(join(direct, name), { force: true });
      }
    },
  };
}

/** The first `n` bytes of file `path` (all of it when shorter). */
async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await fs.open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
