/**
 * Russula protocols as data: a pair of state machines, the worker's and the coordinator's.
 *
 * A worker state names what happens in it (start its process, stop it) and how it is left: `peer`
 * transitions wait for the coordinator's `russulaAdvance`, `self` transitions are taken by the
 * worker alone (its process exited, it finished stopping). The coordinator drives a group towards
 * a state by sending the peer-driven transitions on the way and waiting for the self-driven ones;
 * the workers push each state they enter and nothing while they hold still.
 *
 * Every worker machine also has two terminal states that any state may fall into: `failed` (its
 * process could not start, exited early or non-zero, its readiness check timed out) and `stopped`
 * (the coordinator stopped the run). Adding a protocol is adding an entry to PROTOCOLS.
 */

export interface WorkerStateDef {
  /** The state that follows; absent for a terminal state. */
  readonly next?: string;
  /** Who takes the transition to `next`: the coordinator (`peer`) or the worker itself (`self`). */
  readonly by?: 'peer' | 'self';
  /**
   * What the worker does on entering the state: `start` its step's command, `stop` it (SIGTERM to
   * its process group, SIGKILL after a grace) and wait for it to end.
   */
  readonly process?: 'start' | 'stop';
  /**
   * With `process: 'start'`: what the end of the process means. `exit`: the state is left when it
   * exits (exit code 0 → `next`, anything else → `failed`). `hold`: it must run until stopped; an
   * exit before that is a failure ("exited early").
   */
  readonly until?: 'exit' | 'hold';
}

export interface CoordinatorStateDef {
  /** What the coordinator waits for in this state: every peer of the group in this worker state. */
  readonly awaits?: string;
  readonly next?: string;
}

export interface RussulaProtocol {
  readonly name: string;
  readonly description: string;
  readonly worker: { readonly initial: string; readonly states: Readonly<Record<string, WorkerStateDef>> };
  readonly coordinator: { readonly initial: string; readonly states: Readonly<Record<string, CoordinatorStateDef>> };
}

/** Terminal states every worker machine has besides its own. */
export const FAILED = 'failed';
export const STOPPED = 'stopped';
export const COMMON_TERMINAL_STATES = [FAILED, STOPPED] as const;

/** A long-lived process (a server): started on the coordinator's word, held until it says stop. */
export const SERVER_PROTOCOL: RussulaProtocol = {
  name: 'server',
  description: 'ready → running (a long-lived process, readiness checked) → stopping → done',
  worker: {
    initial: 'ready',
    states: {
      ready: { next: 'running', by: 'peer' },
      running: { next: 'stopping', by: 'peer', process: 'start', until: 'hold' },
      stopping: { next: 'done', by: 'self', process: 'stop' },
      done: {},
    },
  },
  coordinator: {
    initial: 'checkPeers',
    states: {
      checkPeers: { awaits: 'ready', next: 'runPeers' },
      runPeers: { awaits: 'running', next: 'killPeers' },
      killPeers: { awaits: 'done', next: 'done' },
      done: {},
    },
  },
};

/** A process that runs to its end (a client): started on the coordinator's word, done when it exits 0. */
export const CLIENT_PROTOCOL: RussulaProtocol = {
  name: 'client',
  description: 'ready → running (until the process exits; 0 is done, anything else failed) → done',
  worker: {
    initial: 'ready',
    states: {
      ready: { next: 'running', by: 'peer' },
      running: { next: 'done', by: 'self', process: 'start', until: 'exit' },
      done: {},
    },
  },
  coordinator: {
    initial: 'checkPeers',
    states: {
      checkPeers: { awaits: 'ready', next: 'runPeers' },
      runPeers: { awaits: 'running', next: 'waitPeersDone' },
      waitPeersDone: { awaits: 'done', next: 'done' },
      done: {},
    },
  },
};

export const PROTOCOLS: Readonly<Record<string, RussulaProtocol>> = {
  server: SERVER_PROTOCOL,
  client: CLIENT_PROTOCOL,
};

export const PROTOCOL_NAMES = Object.keys(PROTOCOLS);

export function protocolNamed(name: string): RussulaProtocol | undefined {
  return Object.hasOwn(PROTOCOLS, name) ? PROTOCOLS[name] : undefined;
}

/** The worker states of a protocol in order from its initial state, then the common terminal ones. */
export function workerStates(protocol: RussulaProtocol): string[] {
  const order: string[] = [];
  for (let s: string | undefined = protocol.worker.initial; s !== undefined && !order.includes(s); s = protocol.worker.states[s]?.next) order.push(s);
  return [...order, ...COMMON_TERMINAL_STATES];
}

export function isTerminal(protocol: RussulaProtocol, state: string): boolean {
  if ((COMMON_TERMINAL_STATES as readonly string[]).includes(state)) return true;
  return protocol.worker.states[state]?.next === undefined;
}

/** The position of a state on the protocol's path (-1 for failed / stopped / unknown). */
export function stateIndex(protocol: RussulaProtocol, state: string): number {
  const path = workerStates(protocol).slice(0, -COMMON_TERMINAL_STATES.length);
  return path.indexOf(state);
}

/** True when `state` is on the path and at or after `target`. */
export function reached(protocol: RussulaProtocol, state: string, target: string): boolean {
  const i = stateIndex(protocol, state);
  return i >= 0 && i >= stateIndex(protocol, target);
}
