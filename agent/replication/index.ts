/**
 * Replication of a subcontracted bucket from cloud A to cloud B (issue 14): change detection by
 * journaled listing passes, per-object PENDING / COMPLETED / FAILED with visible retries, batched
 * transfers over the AMQP reliable transfer, B's verified writes, the write path's ack modes, a
 * bandwidth limit, honest status, metrics and events, and the audit that repairs B's replicas.
 *
 * Pure: subcontract naming, backoff, token bucket, journal records, the state fold, messages,
 * events. I/O: journal file, throttle, receiver (B), replicator (A), the AMQP peer, metrics.
 */
export { REPL_ERRORS, replError, type ReplCode } from './errors.js';
export {
  channelTransferId, isSubcontractTransfer, newTransferId, parseSubcontract, subcontractGrantPattern, transferPrefix,
  type AckMode, type DeletePolicy, type Subcontract,
} from './subcontract.js';
export { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from './backoff.js';
export { TokenBucket } from './token-bucket.js';
export { decodeReplJournal, encodeReplRecord, type DecodedReplJournal, type ReplRecord } from './journal-records.js';
export {
  ReplicationState, compareKeys, type FailureInfo, type ListedObject, type ObjectReceipt, type ReplicaObject, type ReplicaState, type ReplicationStatus,
} from './state.js';
export { MAX_REPL_TEXT, REPL_MESSAGE_VERSION, decodeReplMessage, encodeReplMessage, type AuditEntry, type BatchObject, type ReplMessage } from './messages.js';
export { eventOf, type ReplicationEvent } from './events.js';
export { ReplicationJournal } from './journal-file.js';
export { throttle } from './throttle.js';
export { ReplicaReceiver, type ReceiverTerms } from './receiver.js';
export { directPeer, type BatchSource, type ReplicaPeer, type ReplicateBatch } from './peer.js';
export { Replicator, type AuditReport, type PutResult, type ReplicatorOptions } from './replicator.js';
export { registerReplicationMetrics } from './metrics.js';
export { AmqpReplicaPeer, STAGING_HEADROOM_BYTES, checkStagingRoom, serveReplicaPeer, type AmqpPeerOptions, type ReplicaServer, type ServeOptions } from './amqp-peer.js';
export { confirmationsNeeded, putQuorum } from './write-path.js';
