/**
 * Storage subcontracts (issue 14), the negotiation part: the bucket B names for A, the checks
 * A makes of a peer and its accept, and the subcontract as sequencer transactions at both ends.
 * Replication of the objects is another folder's; it plugs in through the ports declared here.
 */
export { SUBCONTRACT_BUCKET_PREFIX, subcontractBucketName } from './names.js';
export { storagePolicyOf } from './policy.js';
export { SUBCONTRACT_ERRORS, subcontractError, type SubcontractCode } from './errors.js';
export { checkStorageAccept, chooseStoragePeer, storagePeerUnfit, type CheckedStorageAccept, type StoragePeerWant } from './peer.js';
export { emptyAndDeleteBucket, listingOf } from './bucket.js';
export { subcontractOutDefinition, subcontractOutSteps, type NegotiatedSubcontract, type SubcontractOutInput } from './out.js';
export { subcontractInDefinition, subcontractInJobId, subcontractInSteps, type SubcontractInInput } from './in.js';
export type * from './ports.js';
export { SubcontractMailbox } from './mailbox.js';
export { SubcontractTargetService, type SubcontractServiceHooks } from './target-service.js';
