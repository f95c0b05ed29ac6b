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
// Observability (docs/metrics.md): Prometheus metrics and the live view `troupe top` watches.
export { metricsRegistry, registerClusterMetrics } from './cluster/cluster-metrics.js';
export { MetricsServer, parseMetricsAddress, DEFAULT_METRICS_HOST, type MetricsAddress } from './cluster/metrics-server.js';
export { registerTaskMetrics, startManagerMetrics, startNodeMetrics, type TaskMetrics, type NodeMetrics, type RussulaRunOutcome } from '../actors/task-metrics.js';
export { spawnLiveView, fanOut, LIVE_VIEW_NAME, type LiveView } from '../actors/live-view.js';
export type { TaskObserver } from '../actors/task-table.js';
export { ClusterView, WatchCluster, UnwatchCluster, MANAGER_LIVE_VIEW_MESSAGES, CLIENT_LIVE_VIEW_MESSAGES } from '../protocols/live-view.js';
