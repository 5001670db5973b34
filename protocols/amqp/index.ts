/**
 * Reliable transfer of disks and objects between clouds over AMQP 0-9-1.
 *
 * Pure protocol: chunk frames (`frame.ts`), control messages (`messages.ts`), chunk sets,
 * journal records, broker names and permissions, the sender and receiver state machines.
 * I/O: staging file, journals, sources, content index, broker connection, and the two entry
 * points the migration sequencer calls: {@link sendTransfer} and {@link receiveTransfer}.
 */
export { XFER_ERRORS, type XferCode, type XferError } from './errors.js';
export {
  FRAME_CODEC,
  FRAME_HEADER_SIZE,
  FRAME_KIND,
  decodeFrame,
  encodeFrame,
  isAllZero,
  isTransferId,
  sha256,
  verifyPayload,
  type Frame,
  type FrameCodec,
  type FrameHeader,
  type FrameKind,
} from './frame.js';
export {
  CHUNK_CODECS, COMPRESS_RATIO, compressChunk, compressChunkSync, decodeChunk, decodeChunkSync, worthCompressing, type BadPayloadReason,
} from './chunk-codec.js';
export type { CompressCounts } from './compress-stage.js';
export {
  CONTROL_VERSION,
  classifyBody,
  decodeControl,
  encodeControl,
  MAX_STATUS_HASHES,
  MAX_TRANSFER_MESSAGE_BYTES,
  parseManifest,
  type AbortReason,
  type ControlMessage,
  type ControlOf,
  type ControlType,
  type Manifest,
} from './messages.js';
export { WholeDigest, zeroChunkSha256 } from './digest.js';
export { ChunkSet, type ChunkRanges } from './chunk-set.js';
export { decodeJournal, encodeJournalRecord, type JournalRecord, type SourceIdentity } from './journal-records.js';
export { QUEUE_IDLE_EXPIRY_MS, QUEUE_LIMITS, ROUTING, TRANSFER_QUEUE_POLICY, grantPattern, isTransferPrefix, permissionPattern, transferTopology, type TransferTopology } from './naming.js';
export { AMQPS_DEFAULT_PORT, checkTransferEndpoint, type TransferEndpoint, type TransferEndpointClaim } from './endpoint.js';
export { ProgressMeter, type ProgressEvent } from './progress.js';
export {
  MAX_CHUNK_COUNT, MAX_NEED_RANGES, MAX_RECEIVED_CHUNK_SIZE, ReceiverMachine, checkManifestLimits, type FrameDecision, type ReceiverAction, type ReceiverLimits, type ReceiverPhase,
} from './receiver-machine.js';
export {
  SenderMachine, type ChunkPlan, type SenderAction, type SenderChunkCounts, type SenderFailure, type SenderMachineOptions, type SenderPhase, type TransferQueue,
} from './sender-machine.js';
export { StagingFile } from './staging-file.js';
export { TransferJournal } from './journal-file.js';
export { fileSource, streamSource, type Extent, type TransferSource } from './source.js';
export { ContentIndex } from './content-index.js';
export { connectBroker, probeBrokerIdentity, type BrokerOptions } from './connection.js';
export { MESSAGE_CAP_PROBE, probeMessageCap } from './message-cap.js';
export type { FrameTap, FrameTapInfo } from './publisher.js';
export { sendTransfer, type SendOptions, type SendResult } from './sender.js';
export { receiveTransfer, type ReceiveOptions, type ReceiveResult } from './receiver.js';
