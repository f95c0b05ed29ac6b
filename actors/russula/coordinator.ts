/**
 * The Russula coordinator: drives groups of Russula workers through their protocol's states
 * (protocols/russula/machines.ts), one coordinator per run.
 *
 * - `assign()` picks the workers (russula-placement.ts: the `russula` receptionist listing, each
 *   group's selector and count, no worker in two groups) and sends each member its step, once. Too
 *   few matching workers is an error before anything is sent.
 * - `runTillReady(group)` and `runTillState(group, state)` send the peer-driven transitions on the
 *   way (`russulaAdvance`, a state name) and wait for the workers to push the rest. Each has a
 *   timeout. Nothing is polled: while the workers hold still, no Russula message moves (`traffic`
 *   counts every Russula message and its bytes both ways, as encoded for the wire; `linkTraffic`
 *   reads what the transport counted on the links the run crosses, every kind of message).
 * - Any failure anywhere in the run (a member failed, its process exited early, its node went down
 *   and did not come back within `reconnectGraceMs`, a timeout) rejects the wait in progress with a
 *   RussulaError naming it. `stopAll()` then stops every process the run started and waits for the
 *   workers to confirm.
 * - A worker node that comes back within the grace with the same incarnation (a reconnect) is sent
 *   its assign again; the worker answers with its current state, and the run goes on.
 */
import { EventEmitter } from 'node:events';
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { MemberEvent, Terminated } from '../../protocols/cluster-messages.js';
import {
  FAILED,
  isTerminal,
  protocolNamed,
  reached,
  stateIndex,
  workerStates,
  type RussulaProtocol,
  type FaultEvent,
  type Sample,
  type RussulaAdvance,
  type RussulaAssign,
  type RussulaState,
  type RussulaStop,
} from '../../protocols/russula/index.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, RussulaError, type ErrorCode } from '../../src/errors.js';
import { encodeFrame } from '../../src/transport/codec.js';
import { enoughWorkers, nameOf, pick, type GroupPlan } from './placement.js';
import { valuesFor } from './values.js';

export { pick, type GroupPlan };

/** How long a member's node may be gone before the member counts as lost: 1 second. */
export const DEFAULT_RECONNECT_GRACE_MS = 1000;
/** How long to wait for every assigned worker to answer its assign: 10 seconds. */
export const DEFAULT_ASSIGN_TIMEOUT_MS = 10_000;
/** While waiting for answers to assigns, repeat them this often: 1 second. */
export const ASSIGN_RETRY_MS = 1000;
/** How long stopAll waits for the workers to confirm, beyond the longest kill grace: 5 seconds. */
export const STOP_CONFIRM_MS = 5000;

export interface StateRecord {
  state: string;
  /** The worker's clock, ms since the epoch. */
  at: number;
  ready: boolean;
}

/** What the coordinator knows of one member: its worker, its states, and how its process ended. */
export interface MemberRecord {
  member: string;
  group: string;
  index: number;
  worker: string;
  state: string;
  ready: boolean;
  states: StateRecord[];
  address?: string;
  pid?: number;
  exitCode?: number | null;
  signal?: string | null;
  durationMs?: number;
  code?: string;
  reason?: string;
  stdoutTail?: string;
  stderrTail?: string;
  /** Russula messages (and their bytes) the coordinator received from this member. */
  received: { messages: number; bytes: number };
  /** Times its worker came back (same process) after being down, and was asked for its state again. */
  reconnects: number;
  /** What the worker says it sent for this member, as of its last message: equal to `received` when nothing was lost. */
  workerSent?: { messages: number; bytes: number };
  /** With metrics: every scrape its worker kept (sent once, at the end), and the scrapes that failed. */
  samples?: Sample[];
  scrapeErrors?: { count: number; first: string };
  /** With faults: the crashes its worker inflicted and the restarts. */
  faults?: FaultEvent[];
}

export interface Traffic {
  sentBytes: number;
  receivedBytes: number;
  sentMessages: number;
  receivedMessages: number;
}

/** What the transport counted on the links a run's messages cross (ClusterSystem.linkStats). */
export interface LinkTraffic {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

interface Member {
  record: MemberRecord;
  ref: ActorRef;
  incarnation: string | undefined;
  protocol: RussulaProtocol;
  plan: GroupPlan;
  /** The transition last asked for, so that it is asked once. */
  advanced?: string;
  answered: boolean;
  lostTimer?: NodeJS.Timeout;
  gone: boolean;
  error?: RussulaError;
}

interface Waiter {
  check(): boolean;
  reject(err: RussulaError): void;
}

type CoordinatorMessage = RussulaState | Terminated | MemberEvent;

export interface CoordinatorOptions {
  run: string;
  groups: readonly GroupPlan[];
  reconnectGraceMs?: number;
}

type CoordinatorEvents = { state: [MemberRecord] };

export class RussulaCoordinator extends EventEmitter<CoordinatorEvents> {
  readonly run: string;
  readonly ref: ActorRef;
  readonly members: Member[] = [];
  readonly #system: ClusterSystem;
  readonly #groups: readonly GroupPlan[];
  readonly #graceMs: number;
  readonly #traffic: Traffic = { sentBytes: 0, receivedBytes: 0, sentMessages: 0, receivedMessages: 0 };
  #waiters = new Set<Waiter>();
  #closed = false;
  #aborted: RussulaError | undefined;

  constructor(system: ClusterSystem, options: CoordinatorOptions) {
    super();
    this.#system = system;
    this.run = options.run;
    this.#groups = options.groups;
    this.#graceMs = options.reconnectGraceMs ?? DEFAULT_RECONNECT_GRACE_MS;
    for (const g of options.groups) if (!protocolNamed(g.step.protocol)) throw new TypeError(`group ${g.name}: unknown protocol "${g.step.protocol}"`);
    this.ref = system.spawn<null, CoordinatorMessage>(
      (state, msg) => {
        this.#onMessage(msg);
        return state;
      },
      `russula-${options.run}`,
      { initialState: null, onCrash: 'resume' },
    );
    system.subscribeMembership(this.ref);
  }

  /** Bytes and messages of the Russula protocol so far, both ways, as encoded for the wire. */
  traffic(): Traffic {
    return { ...this.#traffic };
  }

  /**
   * Every envelope of every kind on the links this run's messages cross, as the transport counted it
   * (ClusterSystem.linkStats), not only Russula's: on a client (or worker) node the one link to the
   * manager, on the manager the links to the members' nodes. A link that reconnects counts afresh.
   */
  linkTraffic(): LinkTraffic {
    const total: LinkTraffic = { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 };
    const nodes = this.#system.isManager ? new Set(this.members.map((m) => m.ref.node)) : new Set(this.#system.manager === undefined ? [] : [this.#system.manager]);
    for (const node of nodes) {
      const s = this.#system.linkStats(node);
      if (!s) continue;
      total.bytesIn += s.bytesIn;
      total.bytesOut += s.bytesOut;
      total.messagesIn += s.messagesIn;
      total.messagesOut += s.messagesOut;
    }
    return total;
  }

  records(): MemberRecord[] {
    return this.members.map((m) => m.record);
  }

  group(name: string): Member[] {
    return this.members.filter((m) => m.plan.name === name);
  }

  /**
   * Picks the workers and sends each member its step; resolves when every one has answered in its
   * protocol's first state. Waits up to `waitForWorkersMs` for enough matching workers to join.
   */
  async assign(options: { waitForWorkersMs: number; timeoutMs?: number }): Promise<void> {
    const entries = await enoughWorkers(this.#system, this.#groups, options.waitForWorkersMs);
    const picked = pick(this.#groups, entries);
    if ('error' in picked) throw picked.error;
    for (const { plan, entries: chosen } of picked.groups) {
      const protocol = protocolNamed(plan.step.protocol)!;
      chosen.forEach((entry, index) => {
        const name = nameOf(entry);
        const member: Member = {
          ref: entry.ref,
          incarnation: this.#system.membership.get(entry.ref.node)?.incarnation,
          protocol,
          plan,
          answered: false,
          gone: false,
          record: { member: `${plan.name}/${index}`, group: plan.name, index, worker: name, state: 'assigned', ready: false, states: [], received: { messages: 0, bytes: 0 }, reconnects: 0 },
        };
        this.members.push(member);
        this.#system.watch(this.ref, entry.ref);
      });
    }
    const sendAssigns = () => {
      for (const m of this.members) if (!m.answered && !m.gone) this.#assignOne(m);
    };
    sendAssigns();
    const retry = setInterval(sendAssigns, ASSIGN_RETRY_MS);
    try {
      await this.#wait(`assign`, options.timeoutMs ?? DEFAULT_ASSIGN_TIMEOUT_MS, () => this.members.every((m) => m.answered), () =>
        this.members.filter((m) => !m.answered).map((m) => `${m.record.member} on ${m.record.worker} did not answer`),
      );
    } finally {
      clearInterval(retry);
    }
  }

  /** Brings every member of `group` to its process state with the readiness check passed. */
  runTillReady(group: string, timeoutMs: number): Promise<void> {
    const members = this.#groupOrThrow(group);
    const protocol = members[0]!.protocol;
    const target = Object.entries(protocol.worker.states).find(([, d]) => d.process === 'start')?.[0] ?? protocol.worker.initial;
    return this.#drive(group, members, target, timeoutMs, true);
  }

  /** Brings every member of `group` to `state` (or past it). */
  runTillState(group: string, state: string, timeoutMs: number): Promise<void> {
    const members = this.#groupOrThrow(group);
    const protocol = members[0]!.protocol;
    if (!workerStates(protocol).slice(0, -2).includes(state)) {
      throw new RussulaError(ErrorCodes.RUSSULA_UNREACHABLE_STATE, `group ${group} (protocol ${protocol.name}) has no state "${state}"; its states: ${workerStates(protocol).slice(0, -2).join(', ')}`);
    }
    return this.#drive(group, members, state, timeoutMs, false);
  }

  /**
   * Waits `ms` while the run holds still (a pause step); rejects at once with the first failure of
   * any member meanwhile (a server that exits early, a lost worker).
   */
  hold(ms: number): Promise<void> {
    let over = false;
    const timer = setTimeout(() => {
      over = true;
      this.#recheck();
    }, ms);
    return this.#wait(`pause of ${ms} ms`, ms + STOP_CONFIRM_MS, () => over, () => []).finally(() => clearTimeout(timer));
  }

  /** Fails the wait in progress, and every later one, with `err` (the run was interrupted). */
  abort(err: RussulaError): void {
    this.#aborted ??= err;
    this.#recheck();
  }

  /**
   * Stops every process of the run that is still going and waits (bounded) for the workers to
   * confirm. Never rejects. Members whose worker did not confirm keep their last known state.
   */
  async stopAll(reason: string): Promise<void> {
    const open = () => this.#unfinished().filter((m) => !m.gone);
    const workers = new Map<string, ActorRef>();
    for (const m of open()) workers.set(m.ref.toString(), m.ref);
    for (const ref of workers.values()) this.#send(ref, { type: 'russulaStop', run: this.run, reason });
    const grace = Math.max(0, ...this.#groups.map((g) => g.step.killGraceMs));
    await this.#wait('stop', grace + STOP_CONFIRM_MS, () => open().length === 0, () => [], false).catch(() => {});
  }

  /** Members that answered their assign and are not in a terminal state of their protocol (lost ones too). */
  unfinished(): MemberRecord[] {
    return this.#unfinished().map((m) => m.record);
  }

  #unfinished(): Member[] {
    return this.members.filter((m) => !isTerminal(m.protocol, m.record.state) && m.record.state !== 'assigned');
  }

  /** Stops the coordinator actor: the workers see it stop and drop what they kept for this run. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of this.members) clearTimeout(m.lostTimer);
    this.#system.unsubscribeMembership(this.ref);
    if (this.#system.isAlive(this.ref)) this.#system.stop(this.ref);
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  #groupOrThrow(group: string): Member[] {
    const members = this.group(group);
    if (members.length === 0) throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `no group named "${group}" in this run`);
    return members;
  }

  #assignOne(m: Member): void {
    this.#send(m.ref, { type: 'russulaAssign', run: this.run, member: m.record.member, step: m.plan.step, coordinator: this.ref });
  }

  #send(to: ActorRef, msg: RussulaAssign | RussulaAdvance | RussulaStop): void {
    this.#traffic.sentBytes += encodeFrame([{ t: 'send', to, msg }]).length;
    this.#traffic.sentMessages += 1;
    this.#system.dispatch(to, msg);
  }

  #drive(group: string, members: Member[], target: string, timeoutMs: number, needReady: boolean): Promise<void> {
    const what = needReady ? `${group} ready` : `${group} in "${target}"`;
    const done = (m: Member) =>
      reached(m.protocol, m.record.state, target) && (!needReady || m.record.state !== target || m.record.ready);
    return this.#wait(
      what,
      timeoutMs,
      () => {
        for (const m of members) {
          if (done(m)) continue;
          const def = m.protocol.worker.states[m.record.state];
          // Only the transitions on the way: a member at the target (not yet ready) is left to get there.
          const before = stateIndex(m.protocol, m.record.state) < stateIndex(m.protocol, target);
          if (before && def?.by === 'peer' && def.next !== undefined && m.advanced !== def.next && m.answered && !m.gone) {
            m.advanced = def.next;
            this.#send(m.ref, { type: 'russulaAdvance', run: this.run, member: m.record.member, to: def.next, values: valuesFor(m.plan, (g) => this.#addressesOf(g)) });
          }
        }
        return members.every(done);
      },
      () =>
        members
          .filter((m) => !done(m))
          .map((m) => `${m.record.member} on ${m.record.worker} in "${m.record.state}"${m.record.state === target && needReady ? ' (not ready)' : ''}`),
    );
  }

  /**
   * Waits until `check()` holds, re-checking on every state change. Rejects with the first
   * failure of any member of the run (when `failFast`), or with a timeout naming who is late.
   */
  #wait(what: string, timeoutMs: number, check: () => boolean, late: () => string[], failFast = true): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        check: () => {
          if (failFast) {
            if (this.#aborted) {
              finish();
              reject(this.#aborted);
              return true;
            }
            const failed = this.members.find((m) => m.error);
            if (failed) {
              finish();
              reject(failed.error);
              return true;
            }
          }
          let ok: boolean;
          try {
            ok = check();
          } catch (err) {
            finish();
            reject(err as RussulaError);
            return true;
          }
          if (ok) {
            finish();
            resolve();
          }
          return ok;
        },
        reject: (err) => {
          finish();
          reject(err);
        },
      };
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      this.#waiters.add(waiter);
      if (waiter.check()) return;
      timer = setTimeout(() => {
        const who = late();
        waiter.reject(new RussulaError(ErrorCodes.RUSSULA_TIMEOUT, `${what}: not reached within ${timeoutMs} ms${who.length ? `: ${who.join('; ')}` : ''}`));
      }, timeoutMs);
    });
  }

  #recheck(): void {
    for (const w of [...this.#waiters]) w.check();
  }

  /** What each member of `group` reported as its address; undefined when there is no such group. */
  #addressesOf(group: string): (string | undefined)[] | undefined {
    const members = this.group(group);
    return members.length === 0 ? undefined : members.map((m) => m.record.address);
  }

  #memberFor(ref: ActorRef, name?: string): Member | undefined {
    return this.members.find((m) => m.ref.equals(ref) && (name === undefined || m.record.member === name));
  }

  #onMessage(msg: CoordinatorMessage): void {
    switch (msg.type) {
      case 'russulaState': {
        const bytes = encodeFrame([{ t: 'send', to: this.ref, msg }]).length;
        this.#traffic.receivedBytes += bytes;
        this.#traffic.receivedMessages += 1;
        if (msg.run !== this.run) return;
        const m = this.members.find((x) => x.record.member === msg.member);
        if (!m) return;
        m.record.received.messages += 1;
        m.record.received.bytes += bytes;
        if (msg.sent) m.record.workerSent = { messages: msg.sent.messages, bytes: msg.sent.bytesBefore + bytes };
        this.#onState(m, msg);
        return;
      }
      case 'terminated': {
        for (const m of this.members) {
          if (!m.ref.equals(msg.ref) || m.gone || isTerminal(m.protocol, m.record.state)) continue;
          if (msg.reason === 'stopped' || this.#graceMs === 0) this.#lose(m, `its Russula worker ${msg.reason === 'stopped' ? 'stopped' : 'node went down'}`);
          else m.lostTimer ??= setTimeout(() => this.#lose(m, `its node went down and did not come back within ${this.#graceMs} ms`), this.#graceMs);
        }
        return;
      }
      case 'member': {
        if (msg.status !== 'up') return;
        for (const m of this.members) {
          if (m.ref.node !== msg.node || m.lostTimer === undefined || m.gone) continue;
          clearTimeout(m.lostTimer);
          m.lostTimer = undefined;
          if (msg.incarnation !== m.incarnation) {
            this.#lose(m, `its node restarted (a new incarnation): what it ran is gone`);
            continue;
          }
          // A reconnect: watch again, and ask for the current state (the worker answers a repeated assign with it).
          this.#system.watch(this.ref, m.ref);
          m.advanced = undefined;
          m.record.reconnects += 1;
          this.#assignOne(m);
        }
        return;
      }
    }
  }

  #onState(m: Member, msg: RussulaState): void {
    const r = m.record;
    m.answered = true;
    if (r.state !== msg.state || r.ready !== msg.ready) r.states.push({ state: msg.state, at: msg.at, ready: msg.ready });
    r.state = msg.state;
    r.ready = msg.ready;
    if (msg.address !== undefined) r.address = msg.address;
    if (msg.pid !== undefined) r.pid = msg.pid;
    if (msg.exitCode !== undefined) r.exitCode = msg.exitCode;
    if (msg.signal !== undefined) r.signal = msg.signal;
    if (msg.durationMs !== undefined) r.durationMs = msg.durationMs;
    if (msg.code !== undefined) r.code = msg.code;
    if (msg.reason !== undefined) r.reason = msg.reason;
    if (msg.stdoutTail !== undefined) r.stdoutTail = msg.stdoutTail;
    if (msg.stderrTail !== undefined) r.stderrTail = msg.stderrTail;
    if (msg.samples !== undefined) r.samples = msg.samples;
    if (msg.scrapeErrors !== undefined) r.scrapeErrors = msg.scrapeErrors;
    if (msg.faults !== undefined) r.faults = msg.faults;
    if (msg.state === FAILED && !m.error) {
      const code = (Object.values(ErrorCodes) as string[]).includes(msg.code ?? '') ? (msg.code as ErrorCode) : ErrorCodes.RUSSULA_PROCESS_FAILED;
      m.error = new RussulaError(code, `${r.member} on ${r.worker}: ${msg.reason ?? 'failed'}`);
    }
    this.emit('state', r);
    this.#recheck();
  }

  #lose(m: Member, why: string): void {
    clearTimeout(m.lostTimer);
    m.lostTimer = undefined;
    if (m.gone) return;
    m.gone = true;
    m.record.code = ErrorCodes.RUSSULA_WORKER_LOST;
    m.record.reason = `worker ${m.record.worker} lost in "${m.record.state}": ${why}`;
    m.error ??= new RussulaError(ErrorCodes.RUSSULA_WORKER_LOST, `${m.record.member}: ${m.record.reason}`);
    this.emit('state', m.record);
    this.#recheck();
  }
}
