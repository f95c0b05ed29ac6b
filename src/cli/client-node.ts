/**
 * A client node for `troupe attach`, `run` and `status`: joins the manager with a client
 * certificate, and gives up after a bounded wait instead of redialling forever as a worker does
 * (a person, or a script, is waiting). A refusal that retrying cannot fix (an untrusted
 * certificate, a wrong role) ends the wait at once. Once joined, a lost connection is redialled as
 * usual; the manager counts as lost once it has been away for the reconnect grace
 * (DEFAULT_RECONNECT_GRACE_MS): a manager restarted within it is ridden through (the task client
 * follows its tasks again, and a worker replays what they printed meanwhile).
 */
import { COORDINATOR_RUSSULA_MESSAGES } from '../../protocols/russula/index.js';
import { CLIENT_TASK_MESSAGES } from '../../protocols/tasks.js';
import { CLIENT_LIVE_VIEW_MESSAGES } from '../../protocols/live-view.js';
import { CLIENT_JOURNAL_MESSAGES } from '../../protocols/journal.js';
import type { Identity } from '../../certs/index.js';
import { ClusterSystem } from '../cluster/cluster-system.js';
import { ConnectionError, ErrorCodes, TroupeError } from '../errors.js';
import type { Logger } from '../log.js';
import { TaskClient } from '../../actors/tasks/task-client.js';
import { formatAddress } from '../transport/websocket-client.js';
import type { HostPort } from './options.js';
import { managerLost } from './task-runner.js';

import { DEFAULT_RECONNECT_GRACE_MS } from './client-settings.js';

export { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RECONNECT_GRACE_MS } from './client-settings.js';

export interface ClientNode {
  system: ClusterSystem;
  tasks: TaskClient;
  /** The manager's node name. */
  manager: string;
  target: string;
  /** A promise that rejects (TROUPE_E_NODE_DOWN) once the manager has been away for the reconnect grace (at once while it is); never resolves. */
  lost(): Promise<never>;
  shutdown(): Promise<void>;
}

export async function connectClient(options: { identity: Identity; join: HostPort; connectTimeoutMs: number; reconnectGraceMs?: number; log: Logger }): Promise<ClientNode> {
  const graceMs = options.reconnectGraceMs ?? DEFAULT_RECONNECT_GRACE_MS;
  const target = formatAddress(options.join.host, options.join.port);
  const system = await ClusterSystem.start({ identity: options.identity, join: options.join, messages: [...CLIENT_TASK_MESSAGES, ...CLIENT_JOURNAL_MESSAGES, ...COORDINATOR_RUSSULA_MESSAGES, ...CLIENT_LIVE_VIEW_MESSAGES], log: options.log });
  let last: TroupeError | undefined;
  system.on('failure', (err) => (last = err));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const seconds = options.connectTimeoutMs / 1000;
      reject(
        last
          ? new TroupeError(last.code, `${last.message}; gave up after ${seconds} s`, { cause: last })
          : new ConnectionError(ErrorCodes.CONNECTION, `${target}: no answer within ${seconds} s (is the manager running, and is this its address?)`),
      );
    }, options.connectTimeoutMs);
  });
  try {
    await Promise.race([system.ready(), timeout]);
  } catch (err) {
    await system.shutdown();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const manager = system.manager!;
  // One promise per absence of the manager past the grace: rejected then, replaced when it is back.
  let settle!: (err: TroupeError) => void;
  let settled = false;
  const fresh = () => {
    settled = false;
    const p = new Promise<never>((_, reject) => (settle = reject));
    p.catch(() => {});
    return p;
  };
  let lost = fresh();
  let grace: NodeJS.Timeout | undefined;
  let stopped = false;
  system.on('disconnected', (node) => {
    if (node !== manager || grace || stopped) return;
    grace = setTimeout(() => {
      settled = true;
      settle(managerLost(manager, graceMs));
    }, graceMs);
  });
  system.on('connected', (node) => {
    if (node !== manager) return;
    clearTimeout(grace);
    grace = undefined;
    if (settled) lost = fresh();
  });
  // A redial refused for good (our certificate revoked meanwhile): no manager to wait for.
  system.on('failure', (err, detail) => {
    if (!detail.fatal) return;
    settled = true;
    settle(err);
  });
  const tasks = TaskClient.start(system, manager);
  return {
    system,
    tasks,
    manager,
    target,
    lost: () => lost,
    async shutdown() {
      stopped = true;
      clearTimeout(grace);
      tasks.stop();
      await system.shutdown();
    },
  };
}
