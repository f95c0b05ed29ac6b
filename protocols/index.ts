export { PROTOCOL_VERSION } from './version.js';
export { ROLES, isRole, type Role } from './roles.js';
export { ActorRef, TActorRef, NODE_NAME, ACTOR_PATH } from './actor-ref.js';
export * from './wire.js';
export { MessageCatalog, defineMessage, type MessageSpec, type MessageOf, type CatalogVerdict } from './message-catalog.js';
export * from './cluster-messages.js';
export { WORKER_KEY, RESERVED_KEYS, checkInRefusal } from './receptionist-keys.js';
