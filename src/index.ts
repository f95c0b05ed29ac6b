/**
 * troupe's public API: what an application embedding troupe imports. Everything else is internal
 * and may change between versions.
 */
export {
  ClusterSystem,
  Receptionist,
  type Behavior,
  type ClusterIdentity,
  type ClusterOptions,
  type SpawnOptions,
  type TroupeContext,
} from './cluster/cluster-system.js';
export type { Member } from './cluster/membership.js';
export { clusterSettings, type ClusterSettings } from './cluster/settings.js';
export { transportSettings, type TransportSettings, DEFAULT_PORT } from './transport/settings.js';
export * from './errors.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './log.js';
export {
  ActorRef,
  TActorRef,
  defineMessage,
  MessageCatalog,
  PROTOCOL_VERSION,
  ROLES,
  isRole,
  type MessageOf,
  type MessageSpec,
  type Role,
  type Terminated,
  type Listing,
  type ListingEntry,
  type MemberEvent,
} from '../protocols/index.js';
export {
  addCertificate,
  ensureDevCertificates,
  generateCertificates,
  loadIdentity,
  peerIdentity,
  type Identity,
  type IdentitySource,
} from '../certs/index.js';
export {
  RussulaCoordinator,
  pick as pickRussulaWorkers,
  type CoordinatorOptions as RussulaCoordinatorOptions,
  type GroupPlan,
  type MemberRecord,
  type Traffic as RussulaTraffic,
} from '../actors/russula-coordinator.js';
export { spawnRussulaWorker, type RussulaWorkerHandle, type RussulaWorkerOptions } from '../actors/russula-worker.js';
export { PROTOCOLS as RUSSULA_PROTOCOLS, WORKER_RUSSULA_MESSAGES, COORDINATOR_RUSSULA_MESSAGES, type RussulaProtocol } from '../protocols/russula/index.js';
export { parseScenario, type Scenario, type ScenarioStep } from './cli/scenario-file.js';
export { runScenario, runScenarioFile, resultFileFor, type ScenarioResult } from './cli/scenario-runner.js';
export {
  deployUp,
  deployStatus,
  deployStop,
  deployDown,
  deployLogs,
  loadInventory,
  parseInventory,
  selectHosts,
  buildBundle,
  type UpOptions,
  type UpReport,
  type FleetOptions,
  type FleetReport,
  type HostResult,
  type HostStatus,
  type StatusReport,
  type Inventory,
  type HostSpec,
  type ManagerSpec,
  type Bundle,
} from './deploy/index.js';
