/**
 * The Russula worker (one per worker node, beside the Worker): plays the worker side of a Russula
 * protocol (protocols/russula/machines.ts) for each run it is assigned to.
 *
 * - A run member starts with `russulaAssign`, which carries the one step it will ever run. Nothing
 *   the coordinator sends later can change what runs: `russulaAdvance` names a state (and may bring
 *   other groups' addresses for the step's environment), `russulaStop` ends the run.
 * - Push, not poll: the worker sends `russulaState` to the coordinator when a member enters a
 *   state, and once more when its readiness check passes; nothing while it holds still. The
 *   readiness checks (a stdout line matching a regex, a TCP port accepting connections) run here,
 *   locally, so they cost no coordination traffic.
 * - A repeated assign or advance (the coordinator retries after a lost connection) is answered with
 *   the current state and changes nothing.
 * - Metrics (a step's `metrics`, member-metrics.ts): the worker scrapes its own member on this host
 *   from when it is ready and keeps the samples until the member's process is over; they go to the
 *   coordinator once, in the terminal russulaState. Nothing is sent while it runs: a benchmark's
 *   network carries no scraping and no coordination traffic.
 * - Faults (a step's `faults`, member-faults.ts): the worker itself SIGKILLs its member's process
 *   group, and starts the command again with `recover`; a crash it inflicted is not a failure of
 *   the member. When and what goes in the terminal russulaState too.
 * - Everything a run started ends with it: on `russulaStop`, when the coordinator stops or its node
 *   goes down (watched), when this actor stops, and when this process exits.
 */
import net from 'node:net';
import os from 'node:os';
import { ActorRef } from '../../protocols/actor-ref.js';
import type { Terminated } from '../../protocols/cluster-messages.js';
import {
  expandTemplates,
  FAILED,
  isTerminal,
  protocolNamed,
  RUSSULA_WORKER_KEY,
  STOPPED,
  TAIL_BYTES,
  type FaultEvent,
  type Sample,
  type RussulaAdvance,
  type RussulaAssign,
  type RussulaProtocol,
  type RussulaState,
  type RussulaStop,
  type StepSpec,
} from '../../protocols/russula/index.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes } from '../../src/errors.js';
import { encodeFrame } from '../../src/transport/codec.js';
import { OutputTail } from '../process/output-tail.js';
import { runCommand, type CommandResult, type RunningCommand } from '../process/run-command.js';
import type { Spawner } from '../process/spawner.js';
import { TaskDirs } from '../process/task-dirs.js';
import { inflictFault, recordRestart, scheduleFault } from './member-faults.js';
import { keepSample, scrapeMember, startScraping } from './member-metrics.js';

export { RUSSULA_WORKER_KEY };

/** How often a TCP readiness check tries to connect: every 50 ms. */
export const DEFAULT_PROBE_INTERVAL_MS = 50;
/** Run members one worker holds at once (live or finished, until their coordinator stops). */
export const MAX_MEMBERS = 1000;
/** A stdout line longer than this is cut for the readiness regex: 64 KiB. */
const MAX_LINE_CHARS = 64 * 1024;
export interface RussulaWorkerOptions {
  tags?: readonly string[];
  /** The host other groups reach this worker's servers at; default 127.0.0.1. */
  advertiseHost?: string;
  /** Where each process's temporary directory is made; default: the OS's. Not used with `dirs`. */
  tmpRoot?: string;
  /** Where each process's directory comes from instead (shared, left open). Default: one of its own under tmpRoot, closed when it stops. */
  dirs?: TaskDirs;
  /**
   * Start processes through this spawner (actors/process/spawner.ts), which kills them if the worker is
   * SIGKILLed; their pid is then known once started. Default: none, forked from this process.
   */
  spawner?: Spawner;
  probeIntervalMs?: number;
}

/** What this actor's own callbacks tell it: local messages, never accepted from the wire. */
type Internal =
  | { type: 'russula.exited'; key: string; result: CommandResult }
  | { type: 'russula.ready'; key: string; address?: string }
  | { type: 'russula.scraped'; key: string; at: number; text?: string; error?: string }
  | { type: 'russula.fault'; key: string };

type Message = RussulaAssign | RussulaAdvance | RussulaStop | Terminated | Internal;

class Member {
  state: string;
  at = Date.now();
  ready = false;
  address?: string;
  process?: RunningCommand;
  /** The process's pid, kept past its end (through a spawner it is known only once started). */
  pid?: number;
  exit?: CommandResult;
  values: Record<string, string> = {};
  /** What this member pushed to its coordinator so far. */
  sentMessages = 0;
  sentBytes = 0;
  /** Why the process is being stopped: the protocol's stop state, or the run's end. */
  stopping?: { to: string; code?: string; reason?: string };
  code?: string;
  reason?: string;
  readonly tails = { stdout: new OutputTail(TAIL_BYTES), stderr: new OutputTail(TAIL_BYTES) };
  lineBuffer = '';
  readyRegex?: RegExp;
  probeTimer?: NodeJS.Timeout;
  /** Metrics kept until the process is over. */
  samples: Sample[] = [];
  sampleValues = 0;
  scrapeErrors = { count: 0, first: '' };
  scrapeTimer?: NodeJS.Timeout;
  scraping = false;
  /** Crashes inflicted and restarts, and the timers of those to come. */
  faults: FaultEvent[] = [];
  faultTimers: NodeJS.Timeout[] = [];
  /** The process now ending was killed on purpose (a fault), not by itself. */
  crashing = false;
  /** The last fault left it without a process (no recover): stopping it is immediate. */
  crashed = false;

  constructor(
    readonly key: string,
    readonly run: string,
    readonly name: string,
    readonly step: StepSpec,
    readonly protocol: RussulaProtocol,
    readonly coordinator: ActorRef,
  ) {
    this.state = protocol.worker.initial;
  }
}

export interface RussulaWorkerHandle {
  ref: ActorRef;
  /** Bytes of Russula messages this worker has sent, as encoded for the wire. */
  readonly bytesSent: number;
}

export function spawnRussulaWorker(system: ClusterSystem, options: RussulaWorkerOptions = {}): RussulaWorkerHandle {
  const members = new Map<string, Member>();
  const host = options.advertiseHost ?? '127.0.0.1';
  const probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
  let bytesSent = 0;
  let self!: ActorRef;
  // Made when needed (ahead: 0), named for this node so that a later run removes what a killed one left.
  const dirs = options.dirs ?? new TaskDirs(options.tmpRoot ?? os.tmpdir(), { ahead: 0, owner: system.node });
  const closeDirs = () => {
    if (!options.dirs) dirs.close();
  };

  const push = (m: Member, extra: Partial<RussulaState> = {}) => {
    const msg: RussulaState = { type: 'russulaState', run: m.run, member: m.name, state: m.state, at: m.at, ready: m.ready, ...extra };
    if (m.address !== undefined) msg.address = m.address;
    const pid = m.process?.pid ?? m.pid;
    if (pid !== undefined) msg.pid = pid;
    if (m.exit) {
      msg.exitCode = m.exit.exitCode;
      msg.signal = m.exit.signal;
      msg.durationMs = Math.round(m.exit.durationMs);
    }
    if (m.code !== undefined) msg.code = m.code;
    if (m.reason !== undefined) msg.reason = m.reason;
    if (isTerminal(m.protocol, m.state)) {
      msg.stdoutTail = m.tails.stdout.text();
      msg.stderrTail = m.tails.stderr.text();
      if (m.step.metrics) {
        msg.samples = m.samples;
        msg.scrapeErrors = { ...m.scrapeErrors };
      }
      if (m.step.faults) msg.faults = m.faults;
    }
    m.sentMessages += 1;
    msg.sent = { messages: m.sentMessages, bytesBefore: m.sentBytes };
    const bytes = encodeFrame([{ t: 'send', to: m.coordinator, msg }]).length;
    m.sentBytes += bytes;
    bytesSent += bytes;
    system.dispatch(m.coordinator, msg);
  };

  const enter = (m: Member, state: string) => {
    m.state = state;
    m.at = Date.now();
    m.ready = false;
    const def = m.protocol.worker.states[state];
    if (def?.process === 'start') return start(m);
    if (def?.process === 'stop') {
      m.ready = true;
      push(m);
      return stopProcess(m, { to: def.next ?? STOPPED });
    }
    m.ready = true;
    push(m);
  };

  const fail = (m: Member, code: string, reason: string) => {
    m.code = code;
    m.reason = reason;
    stopTimers(m);
    if (m.process) return stopProcess(m, { to: FAILED, code, reason });
    m.state = FAILED;
    m.at = Date.now();
    m.ready = false;
    push(m);
  };

  const start = (m: Member) => {
    let env: Record<string, string>;
    try {
      env = expandEnv(m.step.env, m.values);
    } catch (err) {
      return fail(m, ErrorCodes.RUSSULA_NO_VALUE, (err as Error).message);
    }
    const ready = m.step.ready;
    if (!launch(m, env)) return;
    if (!ready || (ready.stdout === undefined && ready.port === undefined)) {
      m.ready = true;
      push(m);
      return onReady(m);
    }
    push(m);
    if (ready.stdout !== undefined) m.readyRegex = new RegExp(ready.stdout);
    else probe(m, ready.port!);
  };

  /** Starts the step's command; false (the member failed) when it cannot be run. */
  const launch = (m: Member, env: Record<string, string>): boolean => {
    try {
      m.process = runCommand({
        command: m.step.command,
        env: { ...env, TROUPE_WORKER: system.node, TROUPE_RUSSULA_RUN: m.run, TROUPE_RUSSULA_MEMBER: m.name },
        killGraceMs: m.step.killGraceMs,
        dirs,
        spawner: options.spawner,
        onOutput: (stream, data) => {
          m.tails[stream].push(data);
          if (stream === 'stdout' && m.readyRegex && !m.ready) matchLines(m, data);
        },
      });
    } catch (err) {
      // runCommand refuses what it cannot run (an env name with "=", a NUL byte): the step is refused, not the worker.
      fail(m, ErrorCodes.RUSSULA_REFUSED, `cannot run the step: ${(err as Error).message}`);
      return false;
    }
    const key = m.key;
    const proc = m.process;
    void proc.result.then((result) => system.dispatch(self, { type: 'russula.exited', key, result } satisfies Internal));
    return true;
  };

  /** The member's process became ready: scraping and faults start from here. */
  const onReady = (m: Member) => {
    startScraping(m, () => scrapeMember(m, (answer) => system.dispatch(self, { type: 'russula.scraped', key: m.key, ...answer } satisfies Internal)));
    scheduleFault(m, () => system.dispatch(self, { type: 'russula.fault', key: m.key } satisfies Internal));
  };

  const stopTimers = (m: Member) => {
    clearTimeout(m.probeTimer);
    clearTimeout(m.scrapeTimer);
    for (const t of m.faultTimers) clearTimeout(t);
  };

  const onFault = (m: Member) => {
    if (m.process === undefined || m.stopping || isTerminal(m.protocol, m.state)) return;
    inflictFault(m as Member & { process: RunningCommand });
  };

  /** The process a fault killed has ended: start it again (recover), or leave the member without one. */
  const afterCrash = (m: Member) => {
    m.crashing = false;
    if (!m.step.faults?.recover) {
      m.crashed = true;
      return;
    }
    let env: Record<string, string>;
    try {
      env = expandEnv(m.step.env, m.values);
    } catch (err) {
      return fail(m, ErrorCodes.RUSSULA_NO_VALUE, (err as Error).message);
    }
    if (!launch(m, env)) return;
    recordRestart(m);
  };

  const matchLines = (m: Member, data: Buffer) => {
    const lines = (m.lineBuffer + data.toString('utf8')).split('\n');
    m.lineBuffer = lines.pop()!.slice(-MAX_LINE_CHARS);
    for (const line of lines) {
      const found = m.readyRegex!.exec(line.slice(0, MAX_LINE_CHARS));
      if (!found) continue;
      const port = found.groups?.port ?? (m.step.ready?.port !== undefined ? String(m.step.ready.port) : undefined);
      const address = port !== undefined ? `${found.groups?.host ?? host}:${port}` : undefined;
      m.readyRegex = undefined;
      system.dispatch(self, { type: 'russula.ready', key: m.key, address } satisfies Internal);
      return;
    }
  };

  const probe = (m: Member, port: number) => {
    const attempt = () => {
      if (m.process === undefined || m.ready) return;
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        system.dispatch(self, { type: 'russula.ready', key: m.key, address: `${host}:${port}` } satisfies Internal);
      });
      socket.once('error', () => {
        socket.destroy();
        m.probeTimer = setTimeout(attempt, probeIntervalMs);
      });
    };
    attempt();
  };

  const stopProcess = (m: Member, why: NonNullable<Member['stopping']>) => {
    stopTimers(m);
    m.stopping ??= why;
    if (m.process) m.process.cancel();
    else finishStop(m);
  };

  const finishStop = (m: Member) => {
    const why = m.stopping!;
    m.stopping = undefined;
    m.state = why.to;
    m.at = Date.now();
    // A state without a process (done) is ready on entry; failed and stopped never are.
    m.ready = why.to !== FAILED && why.to !== STOPPED;
    if (why.code !== undefined) m.code = why.code;
    if (why.reason !== undefined) m.reason = why.reason;
    push(m);
  };

  const onExited = (m: Member, result: CommandResult) => {
    // Through a spawner a restart's pid is known only once it started: fill it in now.
    const last = m.faults[m.faults.length - 1];
    if (last?.action === 'restart' && last.pid === undefined && m.process?.pid !== undefined) last.pid = m.process.pid;
    m.pid = m.process?.pid ?? m.pid;
    m.process = undefined;
    m.exit = result;
    if (m.crashing && !m.stopping && !isTerminal(m.protocol, m.state)) return afterCrash(m);
    stopTimers(m);
    if (m.stopping) return finishStop(m);
    if (isTerminal(m.protocol, m.state)) return;
    const def = m.protocol.worker.states[m.state];
    if (result.outcome === 'failed-to-start') return fail(m, ErrorCodes.RUSSULA_PROCESS_FAILED, `could not start: ${result.error ?? 'unknown error'}`);
    if (def?.until === 'exit' && result.exitCode === 0) return enter(m, def.next!);
    const how = result.exitCode !== null ? `exited with code ${result.exitCode}` : `was killed by ${result.signal ?? 'a signal'}`;
    if (def?.until === 'hold') return fail(m, ErrorCodes.RUSSULA_EXITED_EARLY, `the process ${how} in "${m.state}", before it was told to stop`);
    return fail(m, ErrorCodes.RUSSULA_PROCESS_FAILED, `the process ${how}`);
  };

  const endRun = (run: string | undefined, coordinator: ActorRef | undefined, reason: string, tell: boolean) => {
    for (const m of members.values()) {
      if ((run !== undefined && m.run !== run) || (coordinator !== undefined && !m.coordinator.equals(coordinator))) continue;
      if (!tell) members.delete(m.key);
      if (isTerminal(m.protocol, m.state)) {
        if (tell) push(m);
        continue;
      }
      if (!tell) {
        stopTimers(m);
        m.process?.cancel();
        continue;
      }
      stopProcess(m, { to: STOPPED, code: ErrorCodes.RUSSULA_STOPPED, reason });
    }
  };

  self = system.spawn<null, Message>(
    (state, msg) => {
      switch (msg.type) {
        case 'russulaAssign': {
          const key = `${msg.run}\0${msg.member}`;
          const known = members.get(key);
          if (known) {
            push(known);
            break;
          }
          if (members.size >= MAX_MEMBERS) {
            // A coordinator (or many) that never ends its runs cannot grow this map without bound.
            system.dispatch(msg.coordinator, { type: 'russulaState', run: msg.run, member: msg.member, state: FAILED, at: Date.now(), ready: false, code: ErrorCodes.RUSSULA_REFUSED, reason: `this worker already holds ${MAX_MEMBERS} run members` } satisfies RussulaState);
            break;
          }
          const protocol = protocolNamed(msg.step.protocol);
          const m = new Member(key, msg.run, msg.member, msg.step, protocol ?? FALLBACK, msg.coordinator);
          m.ready = m.protocol.worker.states[m.state]?.process === undefined;
          members.set(key, m);
          system.watch(self, msg.coordinator);
          if (!protocol) {
            fail(m, ErrorCodes.RUSSULA_REFUSED, `unknown protocol "${msg.step.protocol}"`);
            break;
          }
          if (msg.step.ready?.stdout !== undefined) {
            try {
              new RegExp(msg.step.ready.stdout);
            } catch (err) {
              fail(m, ErrorCodes.RUSSULA_REFUSED, `ready.stdout is not a regular expression: ${(err as Error).message}`);
              break;
            }
          }
          push(m);
          break;
        }
        case 'russulaAdvance': {
          const m = members.get(`${msg.run}\0${msg.member}`);
          if (!m) break; // not assigned (yet): the coordinator repeats the assign
          const def = m.protocol.worker.states[m.state];
          if (def?.by === 'peer' && def.next === msg.to && !m.stopping) {
            m.values = { ...m.values, ...(msg.values ?? {}) };
            enter(m, msg.to);
          } else push(m);
          break;
        }
        case 'russulaStop':
          endRun(msg.run, undefined, msg.reason, true);
          break;
        case 'terminated':
          // The coordinator is gone: nobody will stop what its runs started but us.
          endRun(undefined, msg.ref, 'the coordinator is gone', false);
          break;
        case 'russula.exited': {
          const m = members.get(msg.key);
          if (m) onExited(m, msg.result);
          break;
        }
        case 'russula.ready': {
          const m = members.get(msg.key);
          if (!m || m.ready || m.process === undefined || m.stopping) break;
          m.ready = true;
          m.at = Date.now();
          m.address = msg.address;
          push(m);
          onReady(m);
          break;
        }
        case 'russula.scraped': {
          const m = members.get(msg.key);
          if (m) keepSample(m, msg);
          break;
        }
        case 'russula.fault': {
          const m = members.get(msg.key);
          if (m) onFault(m);
          break;
        }
      }
      return state;
    },
    'russula',
    {
      initialState: null,
      onCrash: 'resume',
      afterStop: () => {
        for (const m of members.values()) {
          stopTimers(m);
          m.process?.cancel();
        }
        process.off('exit', closeDirs);
        // The trash goes now; a cancelled process's directory, when it ends, the usual way.
        closeDirs();
      },
    },
  );

  // A worker process that exits takes the processes of its runs with it: runCommand sees to that
  // (and removes their directories); the trash goes here.
  process.on('exit', closeDirs);

  system.receptionist.checkIn(RUSSULA_WORKER_KEY, self, {
    name: system.node,
    tags: [...(options.tags ?? [])],
    platform: process.platform,
    arch: process.arch,
    pid: process.pid,
  });
  return {
    ref: self,
    get bytesSent() {
      return bytesSent;
    },
  };
}

/** A member assigned an unknown protocol still needs a machine to fail in. */
const FALLBACK: RussulaProtocol = { name: 'unknown', description: '', worker: { initial: 'ready', states: { ready: {} } }, coordinator: { initial: 'done', states: { done: {} } } };

/** The step's env with `${group.addresses}` (and the like) filled in from the values the coordinator sent. */
export function expandEnv(env: Record<string, string>, values: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    out[key] = expandTemplates(value, (name) => {
      if (!Object.hasOwn(values, name)) throw new Error(`env.${key}: no value for \${${name}}`);
      return values[name]!;
    });
  }
  return out;
}
