/**
 * Receptionist keys the cluster itself relies on, and the roles that may check in under each. The
 * WorkerPool hands tasks to whatever is listed under `worker`, and the Russula coordinator assigns
 * runs to whatever is listed under `russula`: a client that checked in there would be given work it
 * never does. The manager's registry refuses a check-in under a reserved key from a node of any
 * other role (TROUPE_E_FORBIDDEN); every other key is open to every role. The manager's own
 * check-ins are not checked: it is the authority.
 */
import type { Role } from './roles.js';
import { RUSSULA_WORKER_KEY } from './russula/messages.js';

/** The key Workers check in under; the WorkerPool follows it. */
export const WORKER_KEY = 'worker';

export const RESERVED_KEYS: ReadonlyMap<string, readonly Role[]> = new Map<string, readonly Role[]>([
  [WORKER_KEY, ['worker']],
  [RUSSULA_WORKER_KEY, ['worker']],
]);

/** Why a node of `role` may not check in under `key`, or undefined when it may. */
export function checkInRefusal(key: string, role: Role, reserved: ReadonlyMap<string, readonly Role[]> = RESERVED_KEYS): string | undefined {
  const allowed = reserved.get(key);
  if (!allowed || allowed.includes(role)) return undefined;
  return `the receptionist key "${key}" is reserved for ${allowed.map((r) => `${r}s`).join(' and ')}; a ${role} may not check in under it`;
}
