/**
 * The Russula wire messages (see machines.ts for the state machines they drive).
 *
 *   coordinator ──russulaAssign (once per member, at the start of a run)──▶ Russula worker
 *   coordinator ──russulaAdvance {to: a state name}, russulaStop──────────▶ Russula worker
 *   coordinator ◀──russulaState {state, and small results}───────────────── Russula worker
 *
 * What a worker runs comes only from its `russulaAssign`, which the coordinator sends once, before
 * any member of the run starts anything. After that only state names cross (plus, on `advance`,
 * addresses reported by other groups, which the worker puts into its step's environment; never a
 * command). A worker pushes `russulaState` when it enters a state (and once more when its
 * readiness check passes); it sends nothing while it holds still. Delivery is at most once: the
 * coordinator repeats `russulaAssign` when a worker's node comes back after a short loss, and the
 * worker answers a repeated assign or advance with its current state, so both are idempotent.
 */
import type { Static } from '@sinclair/typebox';
import { Type } from '../deferred-schema.js';
import { TActorRef } from '../actor-ref.js';
import { defineMessage, type MessageOf } from '../message-catalog.js';
import { BoundedRecord } from '../wire.js';
import { MAX_TEMPLATE_VALUE_CHARS } from './templates.js';

/** Output kept per stream for the result file: the last 4 KiB. */
export const TAIL_BYTES = 4096;
export const MAX_STEP_COMMAND_BYTES = 64 * 1024;

const RunId = Type.String({ minLength: 1, maxLength: 64 });
/** `servers/0`: the group and the member's index in it. */
const Member = Type.String({ minLength: 3, maxLength: 130 });
const StateName = Type.String({ minLength: 1, maxLength: 32 });
const Millis = Type.Number({ minimum: 0 });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
/** A `host:port` list: what one group may pass to another. */
export const ADDRESS_LIST = /^[A-Za-z0-9.:[\]_-]+(,[A-Za-z0-9.:[\]_-]+)*$|^$/;

export const ReadinessT = Type.Object({
  /** A regular expression (JavaScript syntax) matched against each stdout line; named groups `host` and `port` give the address. */
  stdout: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  /** A TCP port on the worker that must accept connections (also the address's port). */
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
});
export type Readiness = Static<typeof ReadinessT>;

/** Samples one member's worker keeps (and sends once, at the end) at most: 4096. */
export const MAX_SAMPLES = 4096;
/** Series one sample keeps at most: 2048 (the rest of a scrape is dropped). */
export const MAX_SERIES = 2048;
/** Faults one member may be given: 100. */
export const MAX_FAULTS = 100;

/**
 * Where a member exposes metrics, scraped by its own worker on its own host (never across the
 * network under test): a Prometheus endpoint `http://127.0.0.1:PORT/PATH` (no port: the port of the
 * member's ready address), or a file in Prometheus text format the member writes in its directory.
 */
export const MetricsSpecT = Type.Object({
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  path: Type.String({ minLength: 1, maxLength: 1024, pattern: '^/' }),
  file: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  intervalMs: Type.Integer({ minimum: 10, maximum: 3_600_000 }),
});
export type MetricsSpec = Static<typeof MetricsSpecT>;

/**
 * Crashes the worker itself inflicts on its member (SIGKILL to the process group): the members
 * with index below `count` each crash once, member i at (i + 1) × intervalMs after it became ready.
 */
export const FaultSpecT = Type.Object({
  count: Type.Integer({ minimum: 0, maximum: MAX_FAULTS }),
  intervalMs: Type.Integer({ minimum: 1, maximum: 24 * 3600 * 1000 }),
  /** Start the command again at once after the crash. */
  recover: Type.Boolean(),
});
export type FaultSpec = Static<typeof FaultSpecT>;

/** One scrape: the worker's clock, and each series (`name{labels}`, protocols/prometheus-text.ts seriesKey) with its value. */
export const SampleT = Type.Object({
  at: Millis,
  values: Type.Record(Type.String({ maxLength: 1024 }), Type.Number(), { maxProperties: MAX_SERIES }),
});
export type Sample = Static<typeof SampleT>;

export const FaultEventT = Type.Object({
  action: Type.Union([Type.Literal('kill'), Type.Literal('restart')]),
  at: Millis,
  pid: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type FaultEvent = Static<typeof FaultEventT>;

/** What one member of a group runs: sent once, in russulaAssign. */
export const StepSpecT = Type.Object({
  protocol: StateName,
  command: Type.String({ minLength: 1, maxLength: MAX_STEP_COMMAND_BYTES }),
  /** Values may hold `${group.addresses}`, `${group.hosts}`, `${group.ports}`: filled in from russulaAdvance. */
  env: BoundedRecord(256, Type.String({ maxLength: 64 * 1024 })),
  ready: Type.Optional(ReadinessT),
  /** SIGTERM → SIGKILL grace when the process is stopped. */
  killGraceMs: Millis,
  metrics: Type.Optional(MetricsSpecT),
  faults: Type.Optional(FaultSpecT),
});
export type StepSpec = Static<typeof StepSpecT>;

const CoordinatorRoles = ['manager', 'client'] as const;

export const RussulaAssign = defineMessage('russulaAssign', { run: RunId, member: Member, step: StepSpecT, coordinator: TActorRef() }, { allow: CoordinatorRoles });
export const RussulaAdvance = defineMessage(
  'russulaAdvance',
  { run: RunId, member: Member, to: StateName, values: Type.Optional(BoundedRecord(64, Type.String({ maxLength: MAX_TEMPLATE_VALUE_CHARS, pattern: ADDRESS_LIST.source }))) },
  { allow: CoordinatorRoles },
);
export const RussulaStop = defineMessage('russulaStop', { run: RunId, reason: Type.String({ maxLength: 2048 }) }, { allow: CoordinatorRoles });

export const RussulaState = defineMessage(
  'russulaState',
  {
    run: RunId,
    member: Member,
    state: StateName,
    /** The worker's clock, ms since the epoch, when it entered the state (or became ready). */
    at: Millis,
    /** In a state with a process: its readiness check has passed (true at once without one). */
    ready: Type.Boolean(),
    /** `host:port` of a server, once ready. */
    address: Type.Optional(Type.String({ maxLength: 300 })),
    pid: Type.Optional(Type.Integer({ minimum: 0 })),
    exitCode: Type.Optional(Nullable(Type.Integer())),
    signal: Type.Optional(Nullable(Type.String({ maxLength: 16 }))),
    durationMs: Type.Optional(Millis),
    /** failed / stopped: why, with a stable code. */
    code: Type.Optional(Type.String({ maxLength: 64 })),
    reason: Type.Optional(Type.String({ maxLength: 2048 })),
    /** In a terminal state: the last TAIL_BYTES of each stream. */
    stdoutTail: Type.Optional(Type.String({ maxLength: TAIL_BYTES * 4 })),
    stderrTail: Type.Optional(Type.String({ maxLength: TAIL_BYTES * 4 })),
    /**
     * The worker's own count for this member: messages pushed so far (this one included), and the
     * bytes of those before this one. The coordinator compares it with what it received, so that
     * "no traffic" is measured on both ends.
     */
    sent: Type.Optional(Type.Object({ messages: Type.Integer({ minimum: 1 }), bytesBefore: Type.Integer({ minimum: 0 }) })),
    /** In a terminal state, with metrics: every scrape kept, sent once the member's process is over. */
    samples: Type.Optional(Type.Array(SampleT, { maxItems: MAX_SAMPLES })),
    /** Scrapes that failed (no answer, not Prometheus text): how many, and the first reason. */
    scrapeErrors: Type.Optional(Type.Object({ count: Type.Integer({ minimum: 0 }), first: Type.String({ maxLength: 1024 }) })),
    /** In a terminal state: the crashes its worker inflicted and the restarts, with when. */
    faults: Type.Optional(Type.Array(FaultEventT, { maxItems: 2 * MAX_FAULTS })),
  },
  { allow: ['worker'] },
);

export type RussulaAssign = MessageOf<typeof RussulaAssign>;
export type RussulaAdvance = MessageOf<typeof RussulaAdvance>;
export type RussulaStop = MessageOf<typeof RussulaStop>;
export type RussulaState = MessageOf<typeof RussulaState>;

/** What a worker node accepts (from a coordinator on the manager or on a client node). */
export const WORKER_RUSSULA_MESSAGES = [RussulaAssign, RussulaAdvance, RussulaStop];
/** What a node running a coordinator accepts: the manager, or a client node. */
export const COORDINATOR_RUSSULA_MESSAGES = [RussulaState];

/** The receptionist key Russula workers check in under. */
export const RUSSULA_WORKER_KEY = 'russula';
