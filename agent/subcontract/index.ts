/**
 * Storage subcontracts (issue 14), the negotiation part: the bucket B names for A, the checks
 * A makes of a peer and its accept, and the subcontract as sequencer transactions at both ends.
 * Replication of the objects is another folder's; it uses the ports declared here.
 */
export { SUBCONTRACT_BUCKET_PREFIX, subcontractBucketName } from './names.js';
export { storagePolicyOf } from './policy.js';
