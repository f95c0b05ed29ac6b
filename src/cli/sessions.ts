/**
 * The REPL sessions: on the manager (`troupe manager`, `troupe demo`) and from elsewhere with a
 * client certificate (`troupe attach`, as `iex --remsh`). Both run the same Repl; they differ in
 * where the TaskClient lives (in the manager's process, or on a client node that joined it) and in
 * what leaving means (stopping the manager and its local workers, or only this client).
 */
import fs from 'node:fs';
import path from 'node:path';
import tty from 'node:tty';
import type { Identity } from '../../certs/index.js';
import { TaskClient } from '../../actors/tasks/task-client.js';
import { connectClient } from './client-node.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import { CONTROLLER_NAME } from '../../protocols/tasks.js';
import { memberLine } from './membership-view.js';
import type { ManagerCommand, ManagerNode } from '../../actors/nodes.js';
import type { HostPort } from './options.js';
import { STATE_DIR } from './options.js';
import { Repl } from './repl.js';
import { Screen } from './screen.js';
import { logLevel, sessionLogger, workerLogLine } from './session-log.js';

export const HISTORY_FILE = path.join(STATE_DIR, 'history');

/**
 * What stdin is: a terminal (an interactive REPL; stdout must be one too, or the prompt and line
 * editing would land in a file), a stream (a script's lines, or typing echoed by the terminal
 * itself), or nothing to read (/dev/null, a closed fd: a service or a background job), which means
 * no REPL at all.
 */
export function stdinKind(): 'terminal' | 'stream' | 'none' {
  if (tty.isatty(0)) return tty.isatty(1) ? 'terminal' : 'stream';
  try {
    const stat = fs.fstatSync(0);
    return stat.isCharacterDevice() ? 'none' : 'stream';
  } catch {
    return 'none';
  }
}

type ManagerHooks = Pick<ManagerCommand, 'print' | 'log' | 'workerArgs' | 'workerEnv' | 'workerStderr' | 'signals'>;

/** Starts a manager (through `start`) with the REPL on stdin; resolves with the REPL's exit status once all is stopped. */
export async function managerSession(start: (hooks: ManagerHooks) => Promise<ManagerNode>, options: { logFile?: string }): Promise<number> {
  const interactive = stdinKind() === 'terminal';
  const screen = new Screen({ notes: interactive ? 'stdout' : 'stderr' });
  const level = logLevel(interactive ? 'warn' : 'info');
  const onTerminal = interactive && options.logFile === undefined;
  const node = await start({
    print: (line) => screen.note(line),
    log: (name) => sessionLogger(name, { level, file: options.logFile, screen: onTerminal ? screen : undefined }),
    workerArgs: options.logFile !== undefined ? ['--log-file', options.logFile] : [],
    workerEnv: { TROUPE_LOG: level },
    workerStderr: onTerminal ? workerLogLine(screen) : undefined,
    signals: [],
  });
  const tasks = TaskClient.start(node.system);
  const repl = new Repl({ system: node.system, tasks, screen, interactive, historyFile: interactive ? HISTORY_FILE : undefined });
  const onTerm = () => repl.stop(143);
  process.on('SIGTERM', onTerm);
  try {
    await node.workersJoined;
    if (interactive) screen.note(screen.noteColors.dim('Type a shell command to run it on a worker; :help for more; Ctrl-D or :quit leaves.'));
    return await repl.run();
  } finally {
    process.off('SIGTERM', onTerm);
    tasks.stop();
    await node.stop();
  }
}

export interface AttachCommand {
  identity: Identity;
  join: HostPort;
  connectTimeoutMs: number;
  logFile?: string;
}

/** `troupe attach`: the manager's REPL from another machine, as a client node. */
export async function attachSession(options: AttachCommand): Promise<number> {
  const interactive = stdinKind() === 'terminal';
  const screen = new Screen({ notes: interactive ? 'stdout' : 'stderr' });
  const log = sessionLogger(options.identity.name, { level: logLevel('warn'), file: options.logFile, screen: interactive && options.logFile === undefined ? screen : undefined });
  const client = await connectClient({ identity: options.identity, join: options.join, connectTimeoutMs: options.connectTimeoutMs, log });
  const { system } = client;
  // For the manager's audit trail (who attached, from where, when).
  system.dispatch(new ActorRef(client.manager, CONTROLLER_NAME), { type: 'attached' });
  screen.note(`attached to manager "${client.manager}" at ${client.target} as "${system.certName}"${interactive ? '; a line runs on a worker, :help for more, Ctrl-D leaves' : ''}`);
  system.on('member', (event) => {
    if (event.role === 'worker') screen.note(memberLine(event));
  });
  system.on('disconnected', () => screen.note(screen.noteColors.yellow(`lost the manager at ${client.target}; reconnecting…`)));
  system.on('connected', (manager) => screen.note(`reconnected to manager "${manager}"`));
  const repl = new Repl({ system, tasks: client.tasks, screen, interactive, historyFile: interactive ? HISTORY_FILE : undefined, lost: client.lost });
  const onTerm = () => repl.stop(143);
  process.on('SIGTERM', onTerm);
  try {
    return await repl.run();
  } finally {
    process.off('SIGTERM', onTerm);
    await client.shutdown();
  }
}
