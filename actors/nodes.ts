/**
 * The long-running commands: `troupe manager`, `troupe worker`, and `troupe demo` (npm start). Each
 * starts a node, prints what a person needs to see through `print` (stdout, or the REPL's notes;
 * logs go to stderr or a file), and stops cleanly on SIGINT / SIGTERM (a REPL takes SIGINT for
 * itself: see sessions.ts).
 */
import { spawnController } from './tasks/controller.js';
import { TaskJournal } from './tasks/journal.js';
import { MANAGER_JOURNAL_MESSAGES } from '../protocols/journal.js';
import { spawnRussulaWorker } from './russula/worker.js';
import { WORKER_KEY } from '../protocols/receptionist-keys.js';
import { chooseSpawner, Spawner } from './process/spawner.js';
import { spawnWorker } from './tasks/worker.js';
import { workerSettings } from './tasks/worker-settings.js';
import path from 'node:path';
import { ensureDevCertificates, RevocationWatcher, REVOKED_FILE } from '../certs/index.js';
import { COORDINATOR_RUSSULA_MESSAGES, WORKER_RUSSULA_MESSAGES } from '../protocols/russula/index.js';
import { MANAGER_TASK_MESSAGES, WORKER_TASK_MESSAGES } from '../protocols/tasks.js';
import type { MemberEvent } from '../protocols/cluster-messages.js';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { ErrorCodes, TroupeError } from '../src/errors.js';
import { createLogger, type Logger } from '../src/log.js';
import { DEFAULT_PORT } from '../src/transport/settings.js';
import { LocalWorkers } from './local-workers.js';
import { growSmallHeap } from './heap-growth.js';
import { machineMeta } from './node-meta.js';
import { ScenarioWatcher } from './russula/scenario-watcher.js';
import { fanOut, spawnLiveView } from './tasks/live-view.js';
import { MANAGER_LIVE_VIEW_MESSAGES } from '../protocols/live-view.js';
import type { MetricsAddress } from '../src/cluster/metrics-server.js';
import { DEFAULT_CERTS_DIR, identityFrom, resolveIdentity, type CertificateOptions } from '../certs/identity-finder.js';
import type { HostPort } from '../src/cluster/cluster-options.js';
import type { Member } from '../src/cluster/membership.js';

export type Print = (line: string) => void;

/** How membership reads for a person (the CLI's membership-view.ts): a line per change, a table. */
export interface MembershipView {
  line(event: MemberEvent): string;
  table(members: readonly Member[]): string;
}

export interface RunningNode {
  system: ClusterSystem;
  /** Resolves when the node has stopped (by stop(), a signal, or a fatal error). */
  stopped: Promise<void>;
  stop(): Promise<void>;
}

export interface ManagerCommand {
  certs: string;
  name?: string;
  listen: HostPort;
  localWorkers: number;
  /** Tags of the local workers: the i-th entry for worker-i, the last one for the rest ("a,b"). */
  localWorkerTags?: readonly string[];
  /** Watch this directory and run every scenario file dropped there (see scenario-watcher.ts). */
  sessions?: string;
  /** Passed to each local worker. */
  workerArgs?: readonly string[];
  /** Added to each local worker's environment. */
  workerEnv?: Record<string, string>;
  /** Each line a local worker logs; default: straight to our stderr. */
  workerStderr?: (line: string) => void;
  print: Print;
  /** Prints each change of membership (not clients) and the table once all local workers are up; default: none. */
  membership?: MembershipView;
  /** The node's logger, made for its name; default: createLogger. */
  log?: (node: string) => Logger;
  /** The signals that stop the node; default SIGINT and SIGTERM (a REPL handles its own). */
  signals?: readonly NodeJS.Signals[];
  /** Serve Prometheus metrics here (--metrics); off when absent. */
  metrics?: MetricsAddress;
  /** The task journal's directory (`--state-dir`; the CLI's default `.troupe`); absent: no journal (the table lives in memory only). */
  stateDir?: string;
  /** Retention of finished tasks (`--keep-tasks`, `--keep-days`). */
  keepTasks?: number;
  keepDays?: number;
  /** After a restart, how long a task the journal says was running waits for its worker (ms; `--restore-grace`). */
  restoreGraceMs?: number;
}

export interface ManagerNode extends RunningNode {
  /** Resolves when every local worker has joined and checked in, or one of them exited first. */
  workersJoined: Promise<void>;
}

export async function runManager(options: ManagerCommand): Promise<ManagerNode> {
  const identity = resolveIdentity(options.certs, 'manager', options.name);
  growSmallHeap();
  const log = options.log?.(identity.name) ?? createLogger({ node: identity.name });
  // The revocation list next to the CA: read now (a bad one stops the manager here), then followed.
  const revocation = RevocationWatcher.start({ file: path.join(options.certs, REVOKED_FILE), ca: identity.ca });
  // --metrics: loaded only when asked for, before the node exists, so that the collectors are in
  // place (synchronously, below) before any peer can connect; a port in use ends the manager at once.
  // The journal before listening: one that cannot be read stops the manager here (TROUPE_E_JOURNAL).
  let journal: TaskJournal | undefined;
  let system: ClusterSystem;
  let metricsModule: typeof import('./tasks/task-metrics.js') | undefined;
  try {
    if (options.stateDir !== undefined) journal = TaskJournal.open({ stateDir: options.stateDir, keepTasks: options.keepTasks, keepDays: options.keepDays });
    metricsModule = options.metrics ? await import('./tasks/task-metrics.js') : undefined;
    system = await listen(identity, options.listen, log, revocation);
  } catch (err) {
    revocation.stop();
    journal?.close();
    throw err;
  }
  if (revocation.list) log.info({ number: revocation.list.number, revoked: revocation.list.entries.length }, 'revocation list loaded');
  let setUp = false;
  let metrics: Awaited<ReturnType<NonNullable<typeof metricsModule>['startManagerMetrics']>> | undefined;
  try {
    metrics = metricsModule ? await withMetrics(system, metricsModule.startManagerMetrics(system, options.metrics!, log, () => setUp)) : undefined;
  } catch (err) {
    revocation.stop();
    journal?.close();
    throw err;
  }
  // The live view `troupe top` watches; like the metrics, it follows the Controller's task table.
  const liveView = spawnLiveView(system);
  try {
    const controller = spawnController(system, { observer: fanOut(liveView.observer, metrics?.observer), journal, restoreGraceMs: options.restoreGraceMs });
    liveView.followWorkers(controller.workers);
    metrics?.followWorkers(controller.workers);
  } catch (err) {
    revocation.stop();
    liveView.close();
    await metrics?.close();
    await system.shutdown();
    journal?.close();
    throw err;
  }
  const { host, port } = system.address!;
  const url = `wss://${host.includes(':') ? `[${host}]` : host}:${port}`;
  options.print(`troupe manager "${identity.name}" listening on ${url} (certificates: ${options.certs})${metrics ? `; metrics on ${metrics.server.url}` : ''}`);

  // Under a REPL, Ctrl-C cancels a command instead (and the REPL says how to leave).
  const ctrlCStops = options.signals === undefined || options.signals.includes('SIGINT');
  const expected = options.localWorkers;
  let announced = expected === 0;
  let joined!: () => void;
  const workersJoined = new Promise<void>((resolve) => (joined = resolve));
  if (expected === 0) {
    joined();
    options.print(`waiting for workers: start them with \`troupe worker --join HOST:PORT\`${ctrlCStops ? '; Ctrl-C stops' : ''}`);
  }
  const onMember = (event: MemberEvent) => {
    // Clients are one member per command (`troupe run`, `status`, `attach`), so printing them
    // would flood the REPL; they are in the log ("node joined", with their certificate's name).
    if (event.node === system.node || event.role === 'client') return;
    if (options.membership) options.print(options.membership.line(event));
    // Counted only until announced: a walk over every member per event made joins O(W²).
    if (announced) return;
    const up = system.members().filter((m) => m.role === 'worker' && m.status === 'up').length;
    if (up >= expected) {
      announced = true;
      if (options.membership) options.print(options.membership.table(system.members()));
      options.print(`all ${expected} local workers joined over mTLS${ctrlCStops ? '; Ctrl-C stops the manager and its workers' : ''}`);
    }
  };
  system.on('member', onMember);

  let workers: LocalWorkers | undefined;
  if (expected > 0) {
    options.print(`starting ${expected} local worker${expected === 1 ? '' : 's'}…`);
    workers = LocalWorkers.start({
      count: expected,
      certs: options.certs,
      join: { host: loopbackFor(host), port },
      log,
      args: options.workerArgs,
      tags: options.localWorkerTags,
      env: options.workerEnv,
      stderr: options.workerStderr,
    });
    void workers.firstExit.then(joined);
    // Joined means ready for work: the Worker actors checked in, not only the nodes connected.
    let listening = true;
    const stopListing = system.receptionist.listing(WORKER_KEY, (entries) => {
      if (!listening || entries.length < expected) return;
      listening = false;
      joined();
      setImmediate(stopListing);
    });
  }
  let watcher: ScenarioWatcher | undefined;
  if (options.sessions !== undefined) {
    try {
      watcher = await ScenarioWatcher.start({ system, dir: options.sessions, print: options.print, log, onResult: metrics?.russulaRun });
    } catch (err) {
      revocation.stop();
      await metrics?.close();
      liveView.close();
      await workers?.stop();
      await system.shutdown();
      throw err;
    }
  }
  const node = lifecycle(system, async () => {
    revocation.stop();
    await watcher?.stop();
    await workers?.stop();
    await metrics?.close();
    liveView.close();
  }, options.signals);
  setUp = true;
  void node.stopped.finally(() => journal?.close()).catch(() => {});
  return { ...node, stop: node.stop, workersJoined };
}

export interface WorkerCommand extends CertificateOptions {
  join: HostPort;
  /** Exit when the parent process (a manager with --local-workers) goes away. */
  exitWithParent: boolean;
  slots?: number;
  tags?: readonly string[];
  print: Print;
  logFile?: string;
  /** Serve Prometheus metrics here (--metrics); off when absent. */
  metrics?: MetricsAddress;
}

export async function runWorker(options: WorkerCommand): Promise<RunningNode> {
  const identity = identityFrom(options, 'worker');
  growSmallHeap();
  // Checked before anything starts: a bad --slots or --tags (or option of an embedding program) is one error line.
  const settings = workerSettings({ slots: options.slots, tags: options.tags });
  chooseSpawner(); // and a bad TROUPE_SPAWNER (actors/process/spawner.ts)
  const log = createLogger({ node: identity.name, file: options.logFile });
  const metricsModule = options.metrics ? await import('./tasks/task-metrics.js') : undefined;
  const system = await ClusterSystem.start({ identity, join: options.join, meta: machineMeta(), messages: [...WORKER_TASK_MESSAGES, ...WORKER_RUSSULA_MESSAGES], log });
  // Its collectors are registered now, before the dial can complete; it listens further down.
  const metricsStarting = metricsModule?.startNodeMetrics(system, options.metrics!, log);
  // One spawner for both: a small process that forks each command, and kills them all if this
  // worker is SIGKILLed (actors/process/spawner.ts).
  const spawner = new Spawner();
  log.info({ spawner: spawner.kind, why: spawner.why }, `tasks start through the ${spawner.kind} spawner`);
  spawnWorker(system, { slots: settings.slots, tags: settings.tags, spawner });
  // Beside the Worker: the Russula worker, for coordinated runs (docs/russula.md).
  spawnRussulaWorker(system, { tags: settings.tags, spawner });
  const target = `${options.join.host}:${options.join.port}`;
  options.print(`troupe worker "${identity.name}" joining the manager at ${target}…`);

  let lastFailure = '';
  system.on('failure', (err: TroupeError, detail: { fatal: boolean; retryInMs?: number }) => {
    if (detail.fatal) return;
    // One line per kind of trouble, not one per attempt: the log has every attempt at debug.
    if (err.code + err.message === lastFailure) return;
    lastFailure = err.code + err.message;
    options.print(`cannot join yet: ${err.message} (${err.code}); retrying with backoff`);
  });
  system.on('connected', (node: string) => {
    lastFailure = '';
    options.print(`joined the cluster through "${node}"`);
  });
  system.on('disconnected', (node: string) => options.print(`lost "${node}"; reconnecting…`));
  // After the handlers above: the connection may be made while this waits.
  const metrics = metricsStarting
    ? await withMetrics(system, metricsStarting).catch((err: unknown) => {
        spawner.close();
        throw err;
      })
    : undefined;
  if (metrics) options.print(`metrics on ${metrics.server.url}`);

  const running = lifecycle(system, async () => {
    await metrics?.close();
  });
  // After the actors have stopped (the Worker cancels its tasks first); what is left is killed.
  running.stopped.finally(() => spawner.close()).catch(() => {});
  if (options.exitWithParent) process.once('disconnect', () => void running.stop());
  // A fatal dial failure (refused certificate, wrong role…) ends the node with that error, also
  // on a redial after it had joined (its certificate revoked meanwhile): the dialer has stopped.
  system.ready().catch((err: unknown) => running.fail(err));
  system.on('failure', (err: TroupeError, detail: { fatal: boolean }) => {
    if (detail.fatal) running.fail(err);
  });
  return running;
}

export interface DemoCommand extends Pick<ManagerCommand, 'workerArgs' | 'workerEnv' | 'workerStderr' | 'log' | 'signals' | 'localWorkerTags' | 'sessions' | 'membership' | 'stateDir' | 'keepTasks' | 'keepDays' | 'restoreGraceMs'> {
  certs?: string;
  workers: number;
  port?: number;
  print: Print;
}

/** npm start: dev certificates if there are none, a manager on loopback, local workers joining it. */
export async function runDemo(options: DemoCommand): Promise<ManagerNode> {
  const certs = options.certs ?? DEFAULT_CERTS_DIR;
  const made = ensureDevCertificates(certs, { workers: options.workers });
  if (made.created) options.print(`created development certificates in ${certs} (a local CA; not for production: see docs/security.md)`);
  const { workers, port: _port, certs: _certs, ...rest } = options;
  const start = (port: number) => runManager({ ...rest, certs, listen: { host: '127.0.0.1', port }, localWorkers: workers });
  const port = options.port ?? DEFAULT_PORT;
  try {
    return await start(port);
  } catch (err) {
    if (options.port !== undefined || !(err instanceof TroupeError && err.code === ErrorCodes.LISTEN)) throw err;
    options.print(`port ${port} is taken (another troupe manager?); using a free port instead`);
    return start(0);
  }
}

async function listen(identity: Parameters<typeof ClusterSystem.start>[0]['identity'], at: HostPort, log: Logger, revocation: RevocationWatcher): Promise<ClusterSystem> {
  // The transport says why it cannot listen (TROUPE_E_LISTEN, the system error as its cause).
  return ClusterSystem.start({ identity, listen: at, meta: machineMeta(), messages: [...MANAGER_TASK_MESSAGES, ...MANAGER_JOURNAL_MESSAGES, ...COORDINATOR_RUSSULA_MESSAGES, ...MANAGER_LIVE_VIEW_MESSAGES], log, revocation });
}

/** Starts the metrics endpoint (loaded only when asked for); if it cannot listen, the node stops. */
async function withMetrics<T>(system: ClusterSystem, starting: Promise<T>): Promise<T> {
  try {
    return await starting;
  } catch (err) {
    await system.shutdown();
    throw err;
  }
}

function loopbackFor(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

/** Signals stop the node once; a second Ctrl-C exits at once. */
function lifecycle(
  system: ClusterSystem,
  beforeShutdown: () => Promise<void>,
  signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): RunningNode & { fail(err: unknown): void } {
  let settle!: { resolve: () => void; reject: (err: unknown) => void };
  const stopped = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  let stopping: Promise<void> | undefined;
  const onSignal = () => {
    if (stopping) process.exit(130);
    void node.stop();
  };
  const finish = async (err?: unknown) => {
    for (const signal of signals) process.off(signal, onSignal);
    await beforeShutdown().catch(() => {});
    await system.shutdown();
    if (err === undefined) settle.resolve();
    else settle.reject(err);
  };
  const node = {
    system,
    stopped,
    stop(): Promise<void> {
      stopping ??= finish();
      return stopping;
    },
    fail(err: unknown): void {
      stopping ??= finish(err);
    },
  };
  for (const signal of signals) process.on(signal, onSignal);
  return node;
}
