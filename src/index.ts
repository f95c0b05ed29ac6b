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
