/**
 * Every error troupe raises on purpose carries a stable `code` (`TROUPE_E_*`) that tests and users
 * match on; `docs/errors.md` explains each one. The class tells the kind of failure; `cause` keeps
 * the low-level error (an `ECONNREFUSED`, an OpenSSL alert) where there is one.
 */

// The codes live in protocols/ (they cross the wire, and protocols/ names them too); re-exported here.
import { ErrorCodes, type ErrorCode } from '../protocols/error-codes.js';
export { ErrorCodes, type ErrorCode };

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

/** A message could not be delivered or answered: no such actor, node down, query timeout. */
export class DeliveryError extends TroupeError {}

/** The peer's role may not do what it asked. */
export class ForbiddenError extends TroupeError {}

/** A task could not be submitted, cancelled or found: bad command, selector, id. */
export class TaskError extends TroupeError {}

/** A Russula run or scenario failed: a bad scenario file, too few workers, a timeout, a lost worker, a failed process. */
export class RussulaError extends TroupeError {}

/** `troupe deploy`: a bad inventory, an SSH failure, a host that cannot run troupe, a node that did not join (src/deploy/). */
export class DeployError extends TroupeError {}

/** A setting has a value of the wrong type or outside its range; the message names both. */
export class SettingError extends TroupeError {}

/** A testbed (src/testbed/) could not be set up, read or removed: its settings, its key file, an EC2 call. */
export class TestbedError extends TroupeError {}

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
