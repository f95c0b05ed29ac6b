/**
 * The one-shot client commands: `troupe run` (one command on the cluster, its output streamed,
 * its exit status ours, as ssh or pdsh) and `troupe status` (workers and tasks, as a table or JSON).
 */
import type { Identity } from '../../certs/index.js';
import { RECEIVER_GROWTH, growSmallHeap } from '../../actors/heap-growth.js';
import { ErrorCodes, TroupeError, hasCode } from '../errors.js';
import { connectClient } from './client-node.js';
import { statusReport, workerViews } from './cluster-views.js';
import type { HostPort } from './options.js';
import { Screen } from './screen.js';
import { logLevel, sessionLogger } from './session-log.js';
import { Interrupted, TaskRunner } from './task-runner.js';
import { auditLines, fetchAudit, printLogs } from './journal-commands.js';

export { DEFAULT_WAIT_FOR_WORKER_MS } from './client-settings.js';

interface ClientCommand {
  identity: Identity;
  join: HostPort;
  connectTimeoutMs: number;
  logFile?: string;
}

export interface RunCommand extends ClientCommand {
  command: string;
  selector?: string;
  all: boolean;
  timeoutMs?: number;
  waitForWorkerMs: number;
  /** A status line for every task, not only for those that did not simply exit. */
  verbose: boolean;
  /** How long a lost manager may be away (restarting) before the task counts as lost; default DEFAULT_RECONNECT_GRACE_MS. */
  reconnectGraceMs?: number;
}

/**
 * Resolves with the exit status: the command's (128 + n for signal n); with --all the highest of
 * all, so 0 only when every worker's command succeeded. Ctrl-C (or SIGTERM) cancels the task(s) and
 * waits for them to end; a second Ctrl-C leaves at once.
 */
export async function runOnCluster(options: RunCommand): Promise<number> {
  // It receives every byte of the output: fewer full collections (heap-growth.ts).
  growSmallHeap(RECEIVER_GROWTH);
  const screen = new Screen({ notes: 'stderr' });
  const log = sessionLogger(options.identity.name, { level: logLevel('warn'), file: options.logFile });
  const client = await connectClient({ identity: options.identity, join: options.join, connectTimeoutMs: options.connectTimeoutMs, reconnectGraceMs: options.reconnectGraceMs, log });
  // --wait: how long the Controller may hold the command while no worker has joined.
  const runner = new TaskRunner(client.tasks, screen, { statusLines: options.verbose ? 'all' : 'abnormal', lost: client.lost, waitForWorkerMs: options.waitForWorkerMs });
  const interrupt = new AbortController();
  let started: Awaited<ReturnType<TaskRunner['start']>> | undefined;
  let interrupts = 0;
  let brokenPipe = false;
  const stop = () => {
    if (!started) return interrupt.abort();
    started.cancel().catch(() => {});
  };
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) process.exit(signal === 'SIGINT' ? 130 : 143);
    if (started) screen.note(`troupe: ${signal === 'SIGINT' ? '^C' : signal}: cancelling ${started.tasks.map((t) => t.id).join(', ')} (again to leave at once)`);
    stop();
  };
  // `troupe run … | head`: the reader left; what runs is cancelled, as SIGPIPE would end a local command.
  screen.onBrokenPipe = () => {
    brokenPipe = true;
    stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    started = await runner.start(
      { command: options.command, selector: options.selector, broadcast: options.all, timeoutMs: options.timeoutMs },
      options.all ? 'by-worker' : 'raw',
      interrupt.signal,
    );
    const { status } = await started.done;
    return brokenPipe ? 141 : status;
  } catch (err) {
    // The Controller held the command for --wait and no worker joined: said as before.
    if (hasCode(err, ErrorCodes.NO_WORKERS)) throw new TroupeError(ErrorCodes.NO_MATCHING_WORKER, `no worker joined ${client.target} within ${options.waitForWorkerMs / 1000} s (--wait)`);
    if (!(err instanceof Interrupted)) throw err;
    if (brokenPipe) return 141;
    return 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.shutdown();
  }
}

export interface StatusCommand extends ClientCommand {
  json: boolean;
  print: (text: string) => void;
}

export async function showStatus(options: StatusCommand): Promise<number> {
  const log = sessionLogger(options.identity.name, { level: logLevel('warn'), file: options.logFile });
  const client = await connectClient({ identity: options.identity, join: options.join, connectTimeoutMs: options.connectTimeoutMs, log });
  try {
    // The task history comes in pages, each well under the frame limit, however long its commands.
    const [executors, usage, tasks] = await Promise.all([client.tasks.ask('executors'), client.tasks.ask('resourceUsage'), client.tasks.list('tasks')]);
    const workers = workerViews(executors.executors ?? [], usage.usage ?? []);
    if (options.json) {
      options.print(JSON.stringify({ manager: client.manager, address: client.target, workers, tasks }, null, 2));
    } else {
      const screen = new Screen({ notes: 'stderr' });
      options.print(statusReport(client.manager, workers, tasks, screen.colors.stdout).join('\n'));
    }
    return 0;
  } finally {
    await client.shutdown();
  }
}

export interface LogsCommand extends ClientCommand {
  id: string;
  follow: boolean;
  stream?: 'stdout' | 'stderr';
  tail?: number;
}

/** `troupe logs ID`: the task's output as the manager stored it (stdout to stdout, stderr to stderr). */
export async function showLogs(options: LogsCommand): Promise<number> {
  const log = sessionLogger(options.identity.name, { level: logLevel('warn'), file: options.logFile });
  const client = await connectClient({ identity: options.identity, join: options.join, connectTimeoutMs: options.connectTimeoutMs, log });
  try {
    await printLogs(client.system, client.manager, {
      id: options.id,
      follow: options.follow,
      stream: options.stream,
      tail: options.tail,
      write: (stream, data) => (stream === 'stdout' ? process.stdout : process.stderr).write(data),
      note: (line) => process.stderr.write(`${line}\n`),
    });
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    return 0;
  } finally {
    await client.shutdown();
  }
}

export interface AuditCommand extends ClientCommand {
  since?: number;
  by?: string;
  json: boolean;
  print: (text: string) => void;
}

/** `troupe audit`: the manager's audit trail. */
export async function showAudit(options: AuditCommand): Promise<number> {
  const log = sessionLogger(options.identity.name, { level: logLevel('warn'), file: options.logFile });
  const client = await connectClient({ identity: options.identity, join: options.join, connectTimeoutMs: options.connectTimeoutMs, log });
  try {
    const entries = await fetchAudit(client.system, client.manager, { since: options.since, by: options.by });
    options.print(options.json ? JSON.stringify(entries, null, 2) : auditLines(entries).join('\n'));
    return 0;
  } finally {
    await client.shutdown();
  }
}
