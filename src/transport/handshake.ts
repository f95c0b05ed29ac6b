/**
 * The handshake: the first frame each way. The dialling side sends `hello`; the listening side
 * answers `welcome` or `reject` and closes. Both sides check the other's frame against its TLS
 * certificate: the node name must be the certificate's CN and the role its OU, and the protocol
 * version must be ours. Nothing else is read from a peer before its handshake is accepted.
 *
 * One exception to "the name is the CN": a client names itself `<CN>~<session>`, a session unique
 * to its process, so that one person's many commands (one certificate) are separate members and
 * none replaces another. The part before `~` must still be the CN, and only a client may carry a
 * session: a worker or a manager is exactly its certificate, one connection per name.
 */
import type { Hello, Reject, Welcome } from '../../protocols/wire.js';
import { checkHandshake } from '../../protocols/wire.js';
import { PROTOCOL_VERSION } from '../../protocols/version.js';
import type { Role } from '../../protocols/roles.js';
import { NODE_NAME, SESSION_SEPARATOR } from '../../protocols/actor-ref.js';
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
  const named = nameMatches(frame.node, certified);
  if (named !== undefined) return reject(ErrorCodes.NAME_MISMATCH, named);
  if (frame.role !== certified.role) {
    return reject(ErrorCodes.ROLE_MISMATCH, `role "${frame.role}" does not match its certificate's role "${certified.role}"`);
  }
  return { ok: true, frame: frame as T };
}

/** Why `node` is not a name the certificate may use, or undefined when it is. */
function nameMatches(node: string, certified: CertifiedIdentity): string | undefined {
  const at = node.indexOf(SESSION_SEPARATOR);
  if (at < 0) {
    if (node === certified.name && certified.role !== 'client') return undefined;
    if (node === certified.name) return `a client names each connection "${certified.name}${SESSION_SEPARATOR}SESSION", not "${node}"`;
    return `node name "${node}" does not match its certificate's "${certified.name}"`;
  }
  if (certified.role !== 'client') return `only a client's node name carries a session ("${node}"); a ${certified.role} is named "${certified.name}", as its certificate`;
  if (node.slice(0, at) !== certified.name || !NODE_NAME.test(node)) {
    return `node name "${node}" is not "${certified.name}${SESSION_SEPARATOR}SESSION" (its certificate's name, "~", 1 to 16 letters or digits)`;
  }
  return undefined;
}
