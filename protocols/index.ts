export { PROTOCOL_VERSION } from './version.js';
export { ROLES, isRole, type Role } from './roles.js';
export { ActorRef, TActorRef, NODE_NAME, ACTOR_PATH, SESSION_SEPARATOR, MAX_NODE_NAME_LENGTH, certificateName } from './actor-ref.js';
export * from './wire.js';
export { MessageCatalog, defineMessage, type MessageSpec, type MessageOf, type CatalogVerdict } from './message-catalog.js';
export * from './cluster-messages.js';
export { WORKER_KEY, RESERVED_KEYS, checkInRefusal } from './receptionist-keys.js';
