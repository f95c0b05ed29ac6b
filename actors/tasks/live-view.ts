/**
 * The LiveView (on the manager): keeps the live tasks (pending and running) and the tasks finished
 * per second over the last minute, from the Controller's TaskObserver, and pushes whole views of
 * the cluster to its watchers (`troupe top`), see protocols/live-view.ts.
 *
 * Cost: with no watcher, a map update per lifecycle change and nothing else (no timer). With
 * watchers: a change (a task's, or a worker's usage report: workers report every second, looked
 * for once a second) sends a view, coalesced to at most one per DEFAULT_LIVE_VIEW_INTERVAL_MS, so at
 * most one view a second whatever the task rate, and no wake-up on a clock of its own: the reports
 * are looked for on the clock the heartbeats run on. The workers are read in place where the Controller keeps them
 * (`followWorkers(controller.workers)`): no query. A watcher is dropped when it unwatches or its
 * node goes down; only a client's or a manager's actor can be one.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import { VIEW_COMMAND_CHARS, type ClusterView, type UnwatchCluster, type ViewTask, type ViewWorker, type WatchCluster } from '../../protocols/live-view.js';
import type { TaskRecord, TaskStatus } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { addTick, heartbeatTickMs, removeTick } from '../../src/transport/heartbeat-clock.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../../src/transport/settings.js';
import type { WorkerInfo } from './worker-info.js';
import type { TaskObserver } from './task-table.js';

export const LIVE_VIEW_NAME = 'live-view';
/**
 * At most one view a second (htop redraws every 1.5 s by default, k9s every 2 s). A view costs the
 * manager mostly its TLS write, whatever its size, so under a steady task load, where every interval
 * has a change, a watcher costs the manager in proportion to this rate: four a second were 6 ms/s of
 * a manager's CPU in bench:metrics (December 2026), over the whole 5 % budget of being observed, and
 * two a second still cost about as much as the scrape once a second (2.3 against 2.2 ms/s in short
 * runs, stop 23).
 */
export const DEFAULT_LIVE_VIEW_INTERVAL_MS = 1000;
/** Bounds of one view: running tasks, and queued ones (the counts stay exact). */
export const MAX_VIEW_RUNNING = 2000;
export const MAX_VIEW_PENDING = 200;
const SECONDS = 60;
/** How often the workers' usage reports are looked for (they come every second). */
const REPORTS_CHECK_MS = 1000;
/**
 * The reports are looked for on the clock the connections' heartbeats run on (a quarter of
 * DEFAULT_HEARTBEAT_INTERVAL_MS), at its first tick REPORTS_CHECK_MS after the last look: no
 * wake-up of the manager's own for it.
 */
const CLOCK_MS = heartbeatTickMs(DEFAULT_HEARTBEAT_INTERVAL_MS);

export interface LiveView {
  ref: ActorRef;
  /** Pass to spawnController (beside others: see fanOut). */
  observer: TaskObserver;
  /** Where the views read the workers: the Controller's `workers` (until then, none). */
  followWorkers(workers: () => Iterable<WorkerInfo>): void;
  close(): void;
}

/** One observer that tells each given one, in order. */
export function fanOut(...observers: (TaskObserver | undefined)[]): TaskObserver {
  const list = observers.filter((o): o is TaskObserver => o !== undefined);
  if (list.length === 1) return list[0]!;
  return (record, from) => {
    for (const o of list) o(record, from);
  };
}

export function spawnLiveView(system: ClusterSystem, options: { intervalMs?: number } = {}): LiveView {
  const intervalMs = options.intervalMs ?? DEFAULT_LIVE_VIEW_INTERVAL_MS;
  const live = new Map<string, TaskRecord>();
  const perSecond = new Array<number>(SECONDS).fill(0);
  let second = Math.floor(Date.now() / 1000);
  const watchers = new Map<string, ActorRef>();
  let dirty = true;
  /** The next view's, while one is due; the once-a-second look at the workers' reports. */
  let timer: NodeJS.Timeout | undefined;
  let reports = false;
  let lookedAt = 0;
  let sentAt = 0;
  let workers: () => Iterable<WorkerInfo> = () => [];
  /** The workers and their last reports' times at the last view: a new report (or worker) is a change. */
  let reported = new Map<string, number>();

  const roll = (now: number) => {
    const s = Math.floor(now / 1000);
    for (let i = 0; i < Math.min(SECONDS, s - second); i++) perSecond[(second + 1 + i) % SECONDS] = 0;
    if (s > second) second = s;
  };

  const observer: TaskObserver = (record: TaskRecord, _from: TaskStatus | null) => {
    if (record.status === 'pending' || record.status === 'running') {
      live.set(record.id, record);
    } else {
      live.delete(record.id);
      roll(Date.now());
      perSecond[second % SECONDS]! += 1;
    }
    dirty = true;
    if (watchers.size > 0) schedule();
  };

  /** Whether a worker came, went or reported since the last view. */
  const workersChanged = () => {
    let n = 0;
    for (const w of workers()) {
      n++;
      if (reported.get(w.name) !== (w.usage?.at ?? 0)) return true;
    }
    return n !== reported.size;
  };

  const view = (now: number): ClusterView => {
    roll(now);
    const busy = new Map<string, number>();
    const running: ViewTask[] = [];
    const pending: ViewTask[] = [];
    let pendingCount = 0;
    let runningCount = 0;
    for (const t of live.values()) {
      if (t.status === 'running') {
        runningCount++;
        if (t.worker) busy.set(t.worker, (busy.get(t.worker) ?? 0) + 1);
        if (running.length < MAX_VIEW_RUNNING) running.push(row(t));
      } else {
        pendingCount++;
        if (pending.length < MAX_VIEW_PENDING) pending.push(row(t));
      }
    }
    const known = [...workers()].sort(byName);
    reported = new Map(known.map((w) => [w.name, w.usage?.at ?? 0]));
    const rows: ViewWorker[] = known.map((w) => ({
      worker: w.name,
      slots: w.slots,
      busy: busy.get(w.name) ?? 0,
      tags: [...w.tags],
      platform: w.platform,
      arch: w.arch,
      cpus: cpusOf(system.membership.get(w.name)?.meta),
      upSince: system.membership.get(w.name)?.status === 'up' ? system.membership.get(w.name)!.since : null,
      usage: w.usage ?? null,
    }));
    const finishedPerSecond = Array.from({ length: SECONDS }, (_, i) => perSecond[(second + 1 + i) % SECONDS]!);
    return { type: 'clusterView', at: now, workers: rows, tasks: [...running, ...pending], pending: pendingCount, running: runningCount, finishedPerSecond };
  };

  const send = (to: Iterable<ActorRef>) => {
    const now = Date.now();
    const v = view(now);
    for (const w of to) system.dispatch(w, v);
    dirty = false;
    sentAt = now;
  };

  /** A view to every watcher, at most one per interval: the first change after a quiet spell at once. */
  const schedule = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      if (dirty || workersChanged()) send(watchers.values());
    }, Math.max(0, sentAt + intervalMs - Date.now())).unref();
  };

  /**
   * The once-a-second look at the workers' reports: a new one is sent from this very wake-up when
   * the interval allows, not from a timer set for now (a second wake-up of an idle manager).
   */
  const checkReports = (now: number) => {
    if (now - lookedAt < REPORTS_CHECK_MS - CLOCK_MS / 2) return;
    lookedAt = now;
    if (timer !== undefined || !workersChanged()) return;
    if (Date.now() - sentAt >= intervalMs) send(watchers.values());
    else schedule();
  };

  const onMember = (event: MemberEvent) => {
    if (event.status !== 'down') return;
    for (const [key, w] of watchers) if (w.node === event.node) watchers.delete(key);
    if (watchers.size === 0) stopTimer();
  };
  const stopTimer = () => {
    clearTimeout(timer);
    if (reports) removeTick(CLOCK_MS, checkReports);
    timer = undefined;
    reports = false;
  };
  system.on('member', onMember);

  const ref = system.spawn<null, WatchCluster | UnwatchCluster>(
    (state, msg) => {
      if (msg.type === 'watchCluster') {
        // Views go only to a manager or a client: a watcher pointed at a worker would have the
        // manager send it what it refuses, and every refusal is a strike against the manager's link.
        const role = msg.subscriber.node === system.node ? system.role : system.membership.get(msg.subscriber.node)?.role;
        if (role !== 'client' && role !== 'manager') {
          system.log.warn({ subscriber: msg.subscriber.toString(), role }, 'watchCluster for a node that is not a client; ignored');
          return state;
        }
        watchers.set(msg.subscriber.toString(), msg.subscriber);
        // The first view at once.
        send([msg.subscriber]);
        if (!reports) {
          reports = true;
          lookedAt = Date.now();
          addTick(CLOCK_MS, checkReports);
        }
      } else if (msg.type === 'unwatchCluster') {
        watchers.delete(msg.subscriber.toString());
        if (watchers.size === 0) stopTimer();
      }
      return state;
    },
    LIVE_VIEW_NAME,
    { initialState: null, onCrash: 'resume' },
  );
  return {
    ref,
    observer,
    followWorkers(source) {
      workers = source;
      dirty = true;
    },
    close() {
      stopTimer();
      system.off('member', onMember);
    },
  };
}

function byName(a: WorkerInfo, b: WorkerInfo): number {
  return a.name.localeCompare(b.name, 'en', { numeric: true });
}

function cpusOf(meta: Record<string, unknown> | undefined): number {
  const cpus = meta?.cpus;
  return typeof cpus === 'number' && Number.isInteger(cpus) && cpus > 0 ? cpus : 0;
}

function row(t: TaskRecord): ViewTask {
  return {
    id: t.id,
    status: t.status as 'pending' | 'running',
    worker: t.worker,
    command: t.command.length > VIEW_COMMAND_CHARS ? `${t.command.slice(0, VIEW_COMMAND_CHARS - 1)}…` : t.command,
    submittedAt: t.submittedAt,
    startedAt: t.startedAt,
  };
}
