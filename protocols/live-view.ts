/**
 * The live view of a cluster, pushed by the manager to whoever watches it (`troupe top`):
 *
 *   client / manager ──watchCluster, unwatchCluster──▶ LiveView (on the manager)
 *   subscriber ◀──clusterView── LiveView   (at once, then at most every DEFAULT_LIVE_VIEW_INTERVAL_MS
 *                                            while something changed, and every second for usage)
 *
 * Each view is whole (the workers, the running tasks, the head of the queue, tasks finished per
 * second over the last minute), so a view lost to a reconnect costs nothing: the next one replaces
 * it. Only managers and clients may watch (they may read every task anyway).
 */
import { Type } from './deferred-schema.js';
import { TActorRef } from './actor-ref.js';
import { defineMessage, type MessageOf } from './message-catalog.js';
import { UsageT } from './tasks.js';

const Millis = Type.Number({ minimum: 0 });
const NodeName = Type.String({ minLength: 1, maxLength: 63 });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const WatcherRoles = ['manager', 'client'] as const;

/** Commands are cut to this many characters in a view: it is for a screen, not a record. */
export const VIEW_COMMAND_CHARS = 200;

export const WatchCluster = defineMessage('watchCluster', { subscriber: TActorRef() }, { allow: WatcherRoles });
export const UnwatchCluster = defineMessage('unwatchCluster', { subscriber: TActorRef() }, { allow: WatcherRoles });

export const ViewWorkerT = Type.Object({
  worker: NodeName,
  slots: Type.Integer({ minimum: 0 }),
  busy: Type.Integer({ minimum: 0 }),
  tags: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 }),
  platform: Type.String({ maxLength: 32 }),
  arch: Type.String({ maxLength: 32 }),
  /** From its membership record; 0 when not known. */
  cpus: Type.Integer({ minimum: 0 }),
  /** When it joined (as the manager saw it), if known. */
  upSince: Nullable(Millis),
  usage: Nullable(UsageT),
});

export const ViewTaskT = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  status: Type.Union([Type.Literal('pending'), Type.Literal('running')]),
  worker: Nullable(NodeName),
  command: Type.String({ maxLength: VIEW_COMMAND_CHARS }),
  submittedAt: Millis,
  startedAt: Nullable(Millis),
});

export const ClusterView = defineMessage(
  'clusterView',
  {
    at: Millis,
    workers: Type.Array(ViewWorkerT, { maxItems: 100_000 }),
    /** The running tasks (up to a bound), then the head of the queue, oldest first. */
    tasks: Type.Array(ViewTaskT, { maxItems: 100_000 }),
    pending: Type.Integer({ minimum: 0 }),
    running: Type.Integer({ minimum: 0 }),
    /** Tasks that ended in each of the last 60 seconds, oldest first (the current second last). */
    finishedPerSecond: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 60 }),
  },
  { allow: ['manager'] },
);

export type WatchCluster = MessageOf<typeof WatchCluster>;
export type UnwatchCluster = MessageOf<typeof UnwatchCluster>;
export type ClusterView = MessageOf<typeof ClusterView>;
export type ViewWorker = ClusterView['workers'][number];
export type ViewTask = ClusterView['tasks'][number];

/** What a manager accepts. */
export const MANAGER_LIVE_VIEW_MESSAGES = [WatchCluster, UnwatchCluster];
/** What a client accepts. */
export const CLIENT_LIVE_VIEW_MESSAGES = [ClusterView];
