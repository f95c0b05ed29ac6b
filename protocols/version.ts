/**
 * The wire protocol version, carried in the first frame each way (hello / welcome). Peers with
 * different versions are rejected with TROUPE_E_PROTOCOL_VERSION and a reason naming both.
 * Bump it on any change to an envelope's shape or meaning.
 * 2: a message's large `data` may come as a raw header and payload (src/transport/raw-frame.ts).
 */
export const PROTOCOL_VERSION = 2;
