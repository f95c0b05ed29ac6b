/**
 * The handshake: the first frame each way. The dialling side sends `hello`; the listening side
 * answers `welcome` or `reject` and closes. Both sides check the other's frame against its TLS
 * certificate: the node name must be the certificate's CN and the role its OU, and the protocol
 * version must be ours. Nothing else is read from a peer before its handshake is accepted.
 */
import type { Hello, Reject, Welcome } from '../../protocols/wire.js';
import { checkHandshake } from '../../protocols/wire.js';
import { PROTOCOL_VERSION } from '../../protocols/version.js';
import type { Role } from '../../protocols/roles.js';
import { ErrorCodes } from '../errors.js';
import { decodeFrame } from './codec.js';

export interface CertifiedIdentity {
  name: string;
  role: Role;
}

export type HandshakeResult<T> = { ok: true; frame: T } | { ok: false; reject: Reject };

function reject(code: string, reason: string): { ok: false; reject: Reject } {
  return { ok: false, reject: { t: 'reject', code, reason } };
}

/** Reads the first frame of a peer: exactly one handshake envelope of the expected tag. */
export function readHandshake<T extends Hello | Welcome>(
  data: Buffer,
  isBinary: boolean,
  expected: T['t'],
  certified: CertifiedIdentity | null,
): HandshakeResult<T> | { ok: 'rejected'; reject: Reject } {
  let envelopes: unknown[];
  try {
    if (!isBinary) throw new TypeError('text frame');
    envelopes = decodeFrame(data);
  } catch (err) {
    return reject(ErrorCodes.HANDSHAKE_INVALID, `the first frame must be a msgpack [${expected}] (${(err as Error).message})`);
  }
  const [first] = envelopes;
  if (envelopes.length !== 1) return reject(ErrorCodes.HANDSHAKE_INVALID, `the first frame must hold exactly one ${expected}`);
  const invalid = checkHandshake(first);
  if (invalid) return reject(ErrorCodes.HANDSHAKE_INVALID, invalid.reason);
  const frame = first as Hello | Welcome | Reject;
  if (frame.t === 'reject') return { ok: 'rejected', reject: frame };
  if (frame.t !== expected) return reject(ErrorCodes.HANDSHAKE_INVALID, `expected ${expected}, got ${frame.t}`);
  if (frame.protocol !== PROTOCOL_VERSION) {
    return reject(ErrorCodes.PROTOCOL_VERSION, `protocol version mismatch: peer speaks ${frame.protocol}, this node speaks ${PROTOCOL_VERSION}`);
  }
  if (!certified) return reject(ErrorCodes.CERT_NO_ROLE, 'the peer certificate carries no troupe node name and role');
  if (frame.node !== certified.name) {
    return reject(ErrorCodes.NAME_MISMATCH, `node name "${frame.node}" does not match its certificate's "${certified.name}"`);
  }
  if (frame.role !== certified.role) {
    return reject(ErrorCodes.ROLE_MISMATCH, `role "${frame.role}" does not match its certificate's role "${certified.role}"`);
  }
  return { ok: true, frame: frame as T };
}
