/**
 * Every error troupe raises on purpose carries a stable `code` (`TROUPE_E_*`) that tests and users
 * match on; `docs/errors.md` explains each one. The class tells the kind of failure; `cause` keeps
 * the low-level error (an `ECONNREFUSED`, an OpenSSL alert) where there is one.
 */

export const ErrorCodes = {
  // certificates (certs/)
  CERT_MISSING: 'TROUPE_E_CERT_MISSING',
  CERT_INVALID: 'TROUPE_E_CERT_INVALID',
  CERT_KEY_MISMATCH: 'TROUPE_E_CERT_KEY_MISMATCH',
  CERT_EXPIRED: 'TROUPE_E_CERT_EXPIRED',
  CERT_NOT_YET_VALID: 'TROUPE_E_CERT_NOT_YET_VALID',
  CERT_NO_ROLE: 'TROUPE_E_CERT_NO_ROLE',
  CERT_UNTRUSTED: 'TROUPE_E_CERT_UNTRUSTED',
  CERT_EXISTS: 'TROUPE_E_CERT_EXISTS',
  // TLS and connections (src/transport/)
  TLS_UNTRUSTED: 'TROUPE_E_TLS_UNTRUSTED',
  TLS_HOSTNAME: 'TROUPE_E_TLS_HOSTNAME',
  TLS_REJECTED: 'TROUPE_E_TLS_REJECTED',
  CONNECTION: 'TROUPE_E_CONNECTION',
  HANDSHAKE_TIMEOUT: 'TROUPE_E_HANDSHAKE_TIMEOUT',
  HANDSHAKE_INVALID: 'TROUPE_E_HANDSHAKE_INVALID',
  PROTOCOL_VERSION: 'TROUPE_E_PROTOCOL_VERSION',
  NAME_MISMATCH: 'TROUPE_E_NAME_MISMATCH',
  ROLE_MISMATCH: 'TROUPE_E_ROLE_MISMATCH',
  FRAME_TOO_LARGE: 'TROUPE_E_FRAME_TOO_LARGE',
  DECODE: 'TROUPE_E_DECODE',
  INVALID_MESSAGE: 'TROUPE_E_INVALID_MESSAGE',
  UNKNOWN_MESSAGE: 'TROUPE_E_UNKNOWN_MESSAGE',
  TOO_MANY_ERRORS: 'TROUPE_E_TOO_MANY_ERRORS',
  ENCODE: 'TROUPE_E_ENCODE',
  PEER_TOO_SLOW: 'TROUPE_E_PEER_TOO_SLOW',
  // the cluster (src/cluster/)
  NO_SUCH_ACTOR: 'TROUPE_E_NO_SUCH_ACTOR',
  NODE_DOWN: 'TROUPE_E_NODE_DOWN',
  NODE_UNREACHABLE: 'TROUPE_E_NODE_UNREACHABLE',
  QUERY_TIMEOUT: 'TROUPE_E_QUERY_TIMEOUT',
  FORBIDDEN: 'TROUPE_E_FORBIDDEN',
  SHUTDOWN: 'TROUPE_E_SHUTDOWN',
  // tasks (actors/)
  INVALID_TASK: 'TROUPE_E_INVALID_TASK',
  BAD_SELECTOR: 'TROUPE_E_BAD_SELECTOR',
  NO_MATCHING_WORKER: 'TROUPE_E_NO_MATCHING_WORKER',
  NO_WORKERS: 'TROUPE_E_NO_WORKERS',
  NO_SUCH_TASK: 'TROUPE_E_NO_SUCH_TASK',
  TASK_FINISHED: 'TROUPE_E_TASK_FINISHED',
  WORKER_BUSY: 'TROUPE_E_WORKER_BUSY',
  TASK_LOST: 'TROUPE_E_TASK_LOST',
  // russula (protocols/russula/, actors/russula/*.ts, actors/russula/scenario-*.ts)
  SCENARIO_SYNTAX: 'TROUPE_E_SCENARIO_SYNTAX',
  SCENARIO_INVALID: 'TROUPE_E_SCENARIO_INVALID',
  RUSSULA_TOO_FEW_WORKERS: 'TROUPE_E_RUSSULA_TOO_FEW_WORKERS',
  RUSSULA_TIMEOUT: 'TROUPE_E_RUSSULA_TIMEOUT',
  RUSSULA_WORKER_LOST: 'TROUPE_E_RUSSULA_WORKER_LOST',
  RUSSULA_EXITED_EARLY: 'TROUPE_E_RUSSULA_EXITED_EARLY',
  RUSSULA_PROCESS_FAILED: 'TROUPE_E_RUSSULA_PROCESS_FAILED',
  RUSSULA_UNREACHABLE_STATE: 'TROUPE_E_RUSSULA_UNREACHABLE_STATE',
  RUSSULA_NO_VALUE: 'TROUPE_E_RUSSULA_NO_VALUE',
  RUSSULA_REFUSED: 'TROUPE_E_RUSSULA_REFUSED',
  RUSSULA_STOPPED: 'TROUPE_E_RUSSULA_STOPPED',
  // settings and usage
  SETTING: 'TROUPE_E_SETTING',
  LISTEN: 'TROUPE_E_LISTEN',
  // task output (src/client/, src/cli/task-runner.ts)
  OUTPUT_LOST: 'TROUPE_E_OUTPUT_LOST',
  // revocation (certs/revocation-*.ts, the manager's handshake)
  REVOKED: 'TROUPE_E_REVOKED',
  CRL_INVALID: 'TROUPE_E_CRL_INVALID',
  // the task journal (actors/tasks/journal.ts)
  JOURNAL: 'TROUPE_E_JOURNAL',
  JOURNAL_WRITE: 'TROUPE_E_JOURNAL_WRITE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The base of every troupe error: a stable code, a one-line message, the cause kept. */
export class TroupeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A certificate or key could not be loaded, or is not fit for use (certs/). */
export class CertificateError extends TroupeError {}

/** TLS refused the connection: an untrusted peer, a wrong hostname, our certificate rejected. */
export class TlsError extends TroupeError {}

/** The connection could not be made or was lost (ECONNREFUSED and friends become this). */
export class ConnectionError extends TroupeError {}

/** The hello / welcome exchange failed: version, name, role, timeout. */
export class HandshakeError extends TroupeError {}

/** A peer sent something that is not a valid message: undecodable, unknown, wrong shape, too big. */
export class ProtocolError extends TroupeError {}

/** A message could not be delivered or answered: no such actor, node down, query timeout. */
export class DeliveryError extends TroupeError {}

/** The peer's role may not do what it asked. */
export class ForbiddenError extends TroupeError {}

/** A task could not be submitted, cancelled or found: bad command, selector, id. */
export class TaskError extends TroupeError {}

/** A Russula run or scenario failed: a bad scenario file, too few workers, a timeout, a lost worker, a failed process. */
export class RussulaError extends TroupeError {}

/** A setting has a value of the wrong type or outside its range; the message names both. */
export class SettingError extends TroupeError {}

/** Builds the message of a SettingError: the option, the value given, what was expected. */
export function settingError(option: string, value: unknown, expected: string): SettingError {
  let shown: string;
  try {
    shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    shown = typeof value;
  }
  return new SettingError(ErrorCodes.SETTING, `${option}: expected ${expected}, got ${shown}`);
}

/** The message of whatever was thrown, for one line of text. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for a troupe error with the given code. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof TroupeError && err.code === code;
}
