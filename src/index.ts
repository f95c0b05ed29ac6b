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
  type Revocation,
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
  certificateName,
} from '../protocols/index.js';
export {
  addCertificate,
  ensureDevCertificates,
  generateCertificates,
  loadIdentity,
  peerIdentity,
  type Identity,
  type IdentitySource,
  revokeCertificates,
  RevocationWatcher,
  type RevokeOptions,
  type RevocationList,
} from '../certs/index.js';
export {
  RussulaCoordinator,
  pick as pickRussulaWorkers,
  type CoordinatorOptions as RussulaCoordinatorOptions,
  type GroupPlan,
  type MemberRecord,
  type Traffic as RussulaTraffic,
} from '../actors/russula/coordinator.js';
export { spawnRussulaWorker, type RussulaWorkerHandle, type RussulaWorkerOptions } from '../actors/russula/worker.js';
export { PROTOCOLS as RUSSULA_PROTOCOLS, WORKER_RUSSULA_MESSAGES, COORDINATOR_RUSSULA_MESSAGES, type RussulaProtocol } from '../protocols/russula/index.js';
export { parseScenario, type Scenario, type ScenarioStep } from '../actors/russula/scenario-file.js';
export { runScenario, runScenarioFile, resultFileFor, type ScenarioResult } from '../actors/russula/scenario-runner.js';

// ── Running tasks: the nodes and the task client (docs/tasks.md) ─────────────────────────────────
// The same entry points the `troupe` command uses. Issue 11 moves them to actors/nodes.ts and the
// task client to actors/tasks/; the names exported here stay.
export {
  runManager as startManagerNode,
  runWorker as startWorkerNode,
  type ManagerCommand as ManagerNodeOptions,
  type WorkerCommand as WorkerNodeOptions,
  type ManagerNode,
  type RunningNode,
} from '../actors/nodes.js';
export { connectClient as startClientNode, DEFAULT_CONNECT_TIMEOUT_MS, type ClientNode } from './cli/client-node.js';
export { TaskClient, type SubmitOptions } from '../actors/tasks/task-client.js';
// `SubmitOptions.waitForWorkerMs`: how long a submit may wait for a matching worker (at most MAX_WAIT_FOR_WORKER_MS).
export { MAX_WAIT_FOR_WORKER_MS, type ControllerOptions, type ControllerSettings } from '../actors/tasks/controller-settings.js';
export { WORKER_KEY } from '../protocols/receptionist-keys.js';
export { FINISHED_STATUSES, type Answer, type AskWhat, type Submit, type TaskOutput, type TaskRecord, type TaskStatus } from '../protocols/tasks.js';

// ── Putting troupe on hosts over SSH (docs/deploy.md) ──────────────────────────────────────────────
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

// Observability (docs/metrics.md): Prometheus metrics and the live view `troupe top` watches.
export { metricsRegistry, registerClusterMetrics } from './cluster/cluster-metrics.js';
export { MetricsServer, parseMetricsAddress, DEFAULT_METRICS_HOST, type MetricsAddress } from './cluster/metrics-server.js';
export { registerTaskMetrics, startManagerMetrics, startNodeMetrics, type TaskMetrics, type NodeMetrics, type RussulaRunOutcome } from '../actors/tasks/task-metrics.js';
export { spawnLiveView, fanOut, LIVE_VIEW_NAME, type LiveView } from '../actors/tasks/live-view.js';
export type { TaskObserver } from '../actors/tasks/task-table.js';
export { ClusterView, WatchCluster, UnwatchCluster, MANAGER_LIVE_VIEW_MESSAGES, CLIENT_LIVE_VIEW_MESSAGES } from '../protocols/live-view.js';
