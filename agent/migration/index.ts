/**
 * VM migration between clouds: the source and target transactions, the ports they use,
 * and the target's request handling.
 */
export * from './ports.js';
export { migrateOutDefinition, migrateDryRunDefinition, migrateOutSteps, migrateMoveDefinition, migrateMoveSteps, MIGRATION_ERRORS, type MigrateOutInput } from './source.js';
export { imageKey, parseImageKey, planPrecopy, type PrecopyCheckpoint, type PrecopyPlan, type PrecopyResult } from './precopy.js';
export { migrateInDefinition, migrateInLiveDefinition, migrateInWarmDefinition, localVmOf, MAX_CHAIN_DEPTH, type MigrateInInput } from './target.js';
export { legacyDomainUuid, localVmModel, parseImageInfo, type ImageInfo, type LocalModel, type LocalModelInput, type NetworkPolicy } from './target-model.js';
export { MigrationTargetService, inboundJobId, type HeldReservation, type TargetPolicy, type TargetServiceHooks } from './target-service.js';
export { SourceRequestMailbox } from './source-requests.js';
export {
  chooseMode, offerModeFields, sourceModeSupport, type ModeChoice, type ModeChoiceInput, type ModeRequest, type SourceModeSupport,
} from './modes.js';
