/**
 * The wire protocol version, carried in the first frame each way (hello / welcome). Peers with
 * different versions are rejected with TROUPE_E_PROTOCOL_VERSION and a reason naming both.
 * Bump it on any change to an envelope's shape or meaning.
 */
export const PROTOCOL_VERSION = 1;
