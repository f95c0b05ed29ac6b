/**
 * A client node for `troupe attach`, `run` and `status`: joins the manager with a client
 * certificate, and gives up after a bounded wait instead of redialling forever as a worker does
 * (a person, or a script, is waiting). A refusal that retrying cannot fix (an untrusted
 * certificate, a wrong role) ends the wait at once. Once joined, a lost connection is redialled as
 * usual; the manager counts as lost when it is down (DEFAULT_MEMBER_DOWN_AFTER_MS of silence).
 */
import { COORDINATOR_RUSSULA_MESSAGES } from '../../protocols/russula/index.js';
import { CLIENT_TASK_MESSAGES } from '../../protocols/tasks.js';
import { CLIENT_LIVE_VIEW_MESSAGES } from '../../protocols/live-view.js';
import type { Identity } from '../../certs/index.js';
import { ClusterSystem } from '../cluster/cluster-system.js';
import { ConnectionError, ErrorCodes, TroupeError } from '../errors.js';
import type { Logger } from '../log.js';
import { TaskClient } from '../client/task-client.js';
import { formatAddress } from '../transport/websocket-client.js';
import type { HostPort } from './options.js';
import { managerLost } from './task-runner.js';

/** How long `attach`, `run` and `status` try to reach the manager before they give up. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export interface ClientNode {
  system: ClusterSystem;
  tasks: TaskClient;
  /** The manager's node name. */
  manager: string;
  target: string;
  /** A promise that rejects (TROUPE_E_NODE_DOWN) when the manager goes down (at once while it is down); never resolves. */
  lost(): Promise<never>;
  shutdown(): Promise<void>;
}

export async function connectClient(options: { identity: Identity; join: HostPort; connectTimeoutMs: number; log: Logger }): Promise<ClientNode> {
  const target = formatAddress(options.join.host, options.join.port);
  const system = await ClusterSystem.start({ identity: options.identity, join: options.join, messages: [...CLIENT_TASK_MESSAGES, ...COORDINATOR_RUSSULA_MESSAGES, ...CLIENT_LIVE_VIEW_MESSAGES], log: options.log });
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
  // One promise per stay of the manager: rejected when it goes down, replaced when it is back.
  let settle!: (err: TroupeError) => void;
  const fresh = () => {
    const p = new Promise<never>((_, reject) => (settle = reject));
    p.catch(() => {});
    return p;
  };
  let lost = fresh();
  system.on('member', (event) => {
    if (event.role !== 'manager') return;
    if (event.status === 'down') settle(managerLost(event.node));
    else if (event.status === 'up') lost = fresh();
  });
  const tasks = TaskClient.start(system, manager);
  return {
    system,
    tasks,
    manager,
    target,
    lost: () => lost,
    async shutdown() {
      tasks.stop();
      await system.shutdown();
    },
  };
}
